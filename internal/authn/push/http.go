package push

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
)

// Routes. The device's routes are authenticated by the device cookie;
// the status route by the sign-in session.
const (
	// DevicePath is the device page: pending approvals, live.
	DevicePath = "/account/push"
	// StreamPath is a Server-Sent Events stream of the device's pending
	// approvals ("event: pending", data: the same JSON as PendingPath).
	StreamPath = "/account/push/stream"
	// PendingPath is the JSON list of pending approvals, for polling
	// where EventSource is unavailable.
	PendingPath = "/account/push/pending"
	// AnswerPath takes a POST of {"approval": id, "choice": 42 | "deny" |
	// "not-me"} as application/json.
	AnswerPath = "/account/push/answer"
	// StatusPath answers the waiting page: GET ?approval=id →
	// {"status": "pending" | "answered" | "expired"}.
	StatusPath = "/stepup/push/status"
)

// maxAnswerBytes bounds an answer body.
const maxAnswerBytes = 4 << 10

// streamLife ends an event stream after a while; EventSource reconnects
// on its own, and a node can drain its connections.
const streamLife = 5 * time.Minute

// Mount registers the routes on mux.
//
// POSTs are protected against cross-site request forgery by the Fetch
// Metadata check of net/http's CrossOriginProtection (Sec-Fetch-Site, or
// Origin against Host for older browsers), by requiring a JSON body
// (which a cross-site form cannot send without a CORS preflight this
// server never grants) and by the device cookie being SameSite=Strict.
// The house form token (package web) is not used: the device page talks
// JSON, and the Strict device cookie is the credential being protected.
func (m *Method) Mount(mux *http.ServeMux) {
	cop := http.NewCrossOriginProtection()
	mux.Handle("GET "+DevicePath, m.handle(m.devicePage))
	mux.Handle("GET "+StreamPath, m.handle(m.stream))
	mux.Handle("GET "+PendingPath, m.handle(m.pendingJSON))
	mux.Handle("POST "+AnswerPath, cop.Handler(m.handle(m.answerJSON)))
	mux.Handle("GET "+StatusPath, m.handle(m.status))
}

// httpError carries a status and a message safe to show.
type httpError struct {
	status int
	public string
}

func (e *httpError) Error() string { return e.public }

// handle maps errors to status codes, here and only here.
func (m *Method) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		err := fn(w, r)
		if err == nil {
			return
		}
		var he *httpError
		switch {
		case errors.As(err, &he):
		case errors.Is(err, ErrNoDevice), errors.Is(err, ErrAnswered), errors.Is(err, errBadChoice):
			// Their own words say what to do.
			he = &httpError{httpx.StatusOf(err), err.Error()}
		default:
			f := httpx.Fail(r.Context(), m.o.Log, "push request failed", err, "path", r.URL.Path)
			he = &httpError{f.Status, f.Message}
		}
		writeJSON(w, he.status, map[string]string{"error": he.public})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// pendingView is what a device sees of an approval: the three choices,
// never which one is right.
type pendingView struct {
	Approval  string    `json:"approval"`
	Choices   []int     `json:"choices"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (m *Method) pendingViews(r *http.Request, userID string) ([]pendingView, error) {
	ps, err := m.pending(r.Context(), userID)
	if err != nil {
		return nil, err
	}
	out := make([]pendingView, 0, len(ps))
	for _, a := range ps {
		out = append(out, pendingView{Approval: a.ID, Choices: a.Choices, CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt})
	}
	return out, nil
}

func (m *Method) pendingJSON(w http.ResponseWriter, r *http.Request) error {
	dev, err := m.device(r)
	if err != nil {
		return err
	}
	views, err := m.pendingViews(r, dev.UserID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"pending": views})
	return nil
}

// stream sends the pending list whenever it changes, and a comment line
// every 15 seconds so proxies keep the connection open. It polls the
// store rather than listening in memory, so an approval created on any
// node reaches a device connected to any other.
func (m *Method) stream(w http.ResponseWriter, r *http.Request) error {
	dev, err := m.device(r)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Time{})
	ctx := r.Context()
	tick := time.NewTicker(m.o.PollInterval)
	defer tick.Stop()
	end := time.NewTimer(streamLife)
	defer end.Stop()
	var last []byte
	lastWrite := time.Now()
	for {
		views, err := m.pendingViews(r, dev.UserID)
		if err != nil {
			m.o.Log.ErrorContext(ctx, "push stream", "err", err)
			return nil // headers are out; the client reconnects
		}
		b, _ := json.Marshal(map[string]any{"pending": views})
		switch {
		case !bytes.Equal(b, last):
			_, err = fmt.Fprintf(w, "event: pending\ndata: %s\n\n", b)
			last, lastWrite = b, time.Now()
		case time.Since(lastWrite) > 15*time.Second:
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
			lastWrite = time.Now()
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return nil // the client went away
		}
		select {
		case <-ctx.Done():
			return nil
		case <-end.C:
			return nil
		case <-tick.C:
		}
	}
}

// answerRequest is the body of a POST to AnswerPath.
type answerRequest struct {
	Approval string          `json:"approval"`
	Choice   json.RawMessage `json:"choice"`
}

func (m *Method) answerJSON(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return &httpError{http.StatusUnsupportedMediaType, "send the answer as application/json"}
	}
	dev, err := m.device(r)
	if err != nil {
		return err
	}
	var req answerRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAnswerBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Approval == "" {
		return &httpError{http.StatusBadRequest, `send {"approval": id, "choice": number | "deny" | "not-me"}`}
	}
	var choice any
	var n int
	var s string
	switch {
	case json.Unmarshal(req.Choice, &n) == nil:
		choice = n
	case json.Unmarshal(req.Choice, &s) == nil:
		choice = s
	default:
		return errBadChoice
	}
	status, err := m.answer(r.Context(), dev, req.Approval, choice)
	if errors.Is(err, store.ErrNotFound) {
		return &httpError{httpx.StatusOf(err), "this sign-in request has expired or does not exist"}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": status})
	return nil
}

// status tells the waiting page whether the device has answered. It
// never says how: the page then sends the step-up form, and Verify
// decides. Only the user whose sign-in is waiting can ask.
func (m *Method) status(w http.ResponseWriter, r *http.Request) error {
	userID, err := m.o.SessionUser(r)
	if err != nil || userID == "" {
		return &httpError{http.StatusUnauthorized, "sign in again"}
	}
	id := r.URL.Query().Get("approval")
	a, err := approvals.At(userID, id).Get(r.Context(), m.o.KV)
	if errors.Is(err, store.ErrNotFound) || id == "" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "expired"})
		return nil
	}
	if err != nil {
		return err
	}
	st := "answered"
	switch {
	case a.Status == statusPending && m.o.Now().Before(a.ExpiresAt):
		st = "pending"
	case a.Status == statusPending:
		st = "expired"
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": st})
	return nil
}

// deviceView is the device page's own part; the layout around it is the
// Frame's.
type deviceView struct {
	Registered bool
	DeviceName string
	Stream     string
	Pending    string
	Answer     string
}

func (m *Method) devicePage(w http.ResponseWriter, r *http.Request) error {
	v := deviceView{Stream: StreamPath, Pending: PendingPath, Answer: AnswerPath}
	dev, err := m.device(r)
	switch {
	case err == nil:
		v.Registered, v.DeviceName = true, dev.Name
	case !errors.Is(err, ErrNoDevice):
		return err
	}
	var buf bytes.Buffer
	if err := m.page.Execute(&buf, v); err != nil {
		return fmt.Errorf("render device page: %w", err)
	}
	//nolint:gosec // the content comes from html/template, which escaped every value in it
	return m.o.Frame.Render(w, http.StatusOK, "Sign-in approvals", template.HTML(buf.String()))
}

//go:embed templates/device.html
var deviceHTML string

// deviceTemplate is the device page's content, which the Frame puts in
// the shared layout.
func deviceTemplate() (*template.Template, error) {
	return template.New("device").Parse(deviceHTML)
}
