// Package api serves Stepgate's JSON API under /api/v1/. It is kept
// apart from the browser pages: JSON in and out only, no forms, no
// cookies, and its own access rule (a bearer token, or a client on the
// loopback interface) checked before any route is looked at.
package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// maxBody bounds request bodies. A What-If description is a few hundred
// bytes; the limit keeps a client from making the server buffer more.
const maxBody = 64 << 10

// Deps is what the API needs.
type Deps struct {
	Policies *policy.Engine
	Users    access.UserFinder
	Access   *access.Builder
	// SignIns is the sign-in log GET /api/v1/signins reads; nil serves
	// none.
	SignIns store.SignIns
	// Token is api.token; empty disables bearer-token access.
	Token string
	// TrustedProxies are server.trusted_proxies: a request from one was
	// relayed for someone else and never counts as a local client.
	TrustedProxies []netip.Prefix
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// API is the /api/v1/ handler.
type API struct {
	deps Deps
	// tokenSum is the SHA-256 of the token, compared in constant time
	// with the presented token's: hashing first also hides the token's
	// length from timing.
	tokenSum [sha256.Size]byte
	mux      *http.ServeMux
}

// New builds the API.
func New(d Deps) *API {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	a := &API{deps: d, mux: http.NewServeMux()}
	if d.Token != "" {
		a.tokenSum = sha256.Sum256([]byte(d.Token))
	}
	a.mux.Handle("POST /api/v1/whatif", a.handle(a.whatIf))
	a.mux.Handle("/api/v1/whatif", a.handle(methodNotAllowed(http.MethodPost)))
	a.mux.Handle("GET /api/v1/signins", a.handle(a.signIns))
	a.mux.Handle("/api/v1/signins", a.handle(methodNotAllowed(http.MethodGet)))
	a.mux.Handle("/api/", a.handle(func(http.ResponseWriter, *http.Request) error {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no such API endpoint; the API has POST /api/v1/whatif and GET /api/v1/signins"}
	}))
	return a
}

// Mount serves the API under /api/ on mux.
func (a *API) Mount(mux *http.ServeMux) { mux.Handle("/api/", a) }

// Protect serves h under the API's access rule (loopback, or the API
// token): the metrics endpoint uses it.
func (a *API) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.authorize(r); err != nil {
			a.writeError(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP checks access, then routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpx.NoStore(w)
	if err := a.authorize(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// Error is an API error: the status and the public code and description
// sent to the client, and a private detail that only goes to the log.
type Error struct {
	Status      int
	Code        string
	Description string
	Debug       error
}

func (e *Error) Error() string {
	if e.Debug != nil {
		return e.Code + ": " + e.Description + ": " + e.Debug.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Debug }

// handle adapts a handler that returns an error.
func (a *API) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// writeError is the one place API errors become HTTP responses. An error
// that is not an *Error is a server fault: the client learns only that.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "the server failed; its log has the details", Debug: err}
	}
	if e.Status >= 500 {
		a.deps.Log.ErrorContext(r.Context(), "API request failed", "path", r.URL.Path, "err", err)
	} else if e.Debug != nil {
		a.deps.Log.DebugContext(r.Context(), "API request refused", "path", r.URL.Path, "err", err)
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stepgate", error="invalid_token"`)
	}
	writeJSON(w, e.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{e.Code, e.Description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func methodNotAllowed(allow string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", allow)
		return &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: r.Method + " is not allowed here; use " + allow}
	}
}

// authorize lets a request in when it carries the configured bearer
// token, or when it comes straight from this machine.
func (a *API) authorize(r *http.Request) error {
	if h := r.Header.Get("Authorization"); h != "" {
		return a.checkToken(h)
	}
	if a.localClient(r) {
		return nil
	}
	return &Error{Status: http.StatusForbidden, Code: "access_denied",
		Description: "the API answers only clients on this machine's loopback interface, or requests with Authorization: Bearer <api.token>; set api.token (STEPGATE_API_TOKEN) on the server and send it"}
}

func (a *API) checkToken(header string) error {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the Authorization header must be: Bearer <api.token>"}
	}
	if a.deps.Token == "" {
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_token",
			Description: "token access is disabled on this server; set api.token (STEPGATE_API_TOKEN) to enable it"}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the bearer token does not match api.token"}
	}
	return nil
}

// localClient reports whether r comes from a client on this machine.
//
// Only the TCP peer counts, never X-Forwarded-For, which any client can
// send. A reverse proxy on the same machine also connects from loopback
// on behalf of remote clients, so a request from a trusted proxy, or
// carrying any forwarding header, is not local. And the Host header must
// name the loopback interface: a web page that rebinds its own DNS name
// to 127.0.0.1 (DNS rebinding) sends its own name as Host.
func (a *API) localClient(r *http.Request) bool {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !peer.IsLoopback() {
		return false
	}
	for _, p := range a.deps.TrustedProxies {
		if p.Contains(peer) {
			return false
		}
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Forwarded-Host"} {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	return loopbackHost(r.Host)
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// now returns the injected clock's reading.
func (a *API) now() time.Time { return a.deps.Now() }

var _ http.Handler = (*API)(nil)
