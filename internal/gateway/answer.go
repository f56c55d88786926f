package gateway

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// A replayed request's answer is shown at the request's own address.
//
// The replay happens on the callback's navigation, so the browser would
// show the upstream's answer at /.stepgate/callback?ticket=…, and
// reloading it would load the callback again. Instead the gateway holds
// the answer (encrypted, for answerLifetime, under a one-time id that
// only this browser's cookie names) and sends the browser to the kept
// request's address with 303; that GET is answered with the held answer,
// once, and nothing is sent upstream for it. The address bar then shows
// the application's address, and a reload is a plain GET of it: a kept
// form is never sent twice, and a single-use rule asks again.
//
// An answer the upstream streams (server-sent events), that is larger than
// heldAnswerLimit, or that is a redirect is passed to the browser at
// once, as before; reloading the callback then leads to the address with
// GET (see callback).

const (
	// answerLifetime bounds the hop from the callback to the address:
	// the browser follows the redirect at once.
	answerLifetime = time.Minute
	// heldAnswerLimit is the largest answer held: a generous page.
	heldAnswerLimit = 256 << 10
)

// heldAnswer is an upstream's answer to a replayed request, waiting for
// the GET of the request's address by the browser that sent it.
type heldAnswer struct {
	Route    string      `json:"route"`
	Binding  string      `json:"bind"`
	UserID   string      `json:"uid"`
	Path     string      `json:"path"`
	RawQuery string      `json:"query,omitempty"`
	Status   int         `json:"status"`
	Header   http.Header `json:"header"`
	Body     []byte      `json:"body,omitempty"`
}

// answerCookie names the cookie that carries a held answer's id.
func (rt *route) answerCookie() string {
	if rt.scheme == "https" {
		return "__Host-stepgate_gw_answer"
	}
	return "stepgate_gw_answer"
}

// answerOnce proxies the replayed request r (kept as k) and shows its
// answer at r's own address.
func (g *Gateway) answerOnce(w http.ResponseWriter, r *http.Request, rt *route, who *identity, k kept) {
	if r.Method == http.MethodHead {
		g.proxyTo(rt)(w, r, who, k.Path)
		return
	}
	hw := &holdingWriter{w: w, header: http.Header{}, kept: k.Path}
	g.proxyTo(rt)(hw, r, who, k.Path)
	if hw.passing {
		return
	}
	a := heldAnswer{Route: rt.name, Binding: k.Binding, UserID: who.user.ID, Path: k.Path, RawQuery: k.RawQuery,
		Status: hw.statusOr200(), Header: hw.header.Clone(), Body: hw.body.Bytes()}
	// Cookies the upstream set go with the redirect, never into storage.
	cookies := a.Header.Values("Set-Cookie")
	for _, h := range []string{"Set-Cookie", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Trailer"} {
		a.Header.Del(h)
	}
	id := newSecret()
	plain, _ := json.Marshal(a)
	sealed := g.Box.Seal(plain, []byte("gateway-answer|"+id))
	if err := kvspace.GatewayAnswer.At(id).Create(r.Context(), g.Store, sealed, g.Now().Add(answerLifetime)); err != nil {
		// Show it here after all: the answer must not be lost.
		g.Log.WarnContext(r.Context(), "hold a replayed answer", "route", rt.name, "err", err)
		hw.release()
		return
	}
	for _, c := range cookies {
		w.Header().Add("Set-Cookie", c)
	}
	//nolint:gosec // Secure follows the route's scheme: http only for local development
	http.SetCookie(w, &http.Cookie{Name: rt.answerCookie(), Value: id, Path: "/", MaxAge: int(answerLifetime / time.Second),
		HttpOnly: true, Secure: rt.scheme == "https", SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, escapePath(k.Path)+query(k.RawQuery), http.StatusSeeOther)
}

func query(raw string) string {
	if raw == "" {
		return ""
	}
	return "?" + raw
}

// mayHoldAnswer is the quick check that leaves requests without an
// answer cookie alone (and unallocated).
func mayHoldAnswer(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Cookie"), "stepgate_gw_answer")
}

// serveHeld answers r, the GET of canonical path p, with the answer held
// for it, once, and reports whether it did. The answer is served only to
// the browser that sent the kept request (its binding cookie), signed in
// as the same user, at the kept request's address: a cookie planted in
// another browser, or an id seen anywhere, opens nothing.
func (g *Gateway) serveHeld(w http.ResponseWriter, r *http.Request, rt *route, p string) bool {
	c, err := r.Cookie(rt.answerCookie())
	if err != nil {
		return false
	}
	held := kvspace.GatewayAnswer.At(c.Value)
	sealed, err := held.Get(r.Context(), g.Store)
	var a heldAnswer
	if err == nil {
		var plain []byte
		if plain, err = g.Box.Open(sealed, []byte("gateway-answer|"+c.Value)); err == nil {
			err = json.Unmarshal(plain, &a)
		}
	}
	if err == nil && (a.Path != p || a.RawQuery != r.URL.RawQuery) {
		return false // another address: the cookie waits for its own
	}
	//nolint:gosec // Secure follows the route's scheme: http only for local development
	http.SetCookie(w, &http.Cookie{Name: rt.answerCookie(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: rt.scheme == "https", SameSite: http.SameSiteLaxMode})
	if err != nil || a.Route != rt.name || !boundTo(r, rt, a.Binding) {
		return false
	}
	who, err := g.browserIdentity(r, rt)
	if err != nil || who.user.ID != a.UserID {
		return false
	}
	if err := held.Delete(r.Context(), g.Store); err != nil {
		return false // served to a concurrent request already
	}
	h := w.Header()
	for k, v := range a.Header {
		h[k] = v
	}
	// Never cached: a reload or Back must ask the application again.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
	return true
}

// holdingWriter holds an upstream's answer in memory instead of sending
// it, until it is known to be one that can be held: complete, small and
// not a redirect. Otherwise it passes it on to the browser as it comes.
type holdingWriter struct {
	w      http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
	// kept is the kept request's path, against which a relative
	// redirect is resolved: the browser would resolve it against the
	// callback's address.
	kept    string
	passing bool
}

func (hw *holdingWriter) Header() http.Header {
	if hw.passing {
		return hw.w.Header()
	}
	return hw.header
}

func (hw *holdingWriter) statusOr200() int {
	if hw.status == 0 {
		return http.StatusOK
	}
	return hw.status
}

func (hw *holdingWriter) WriteHeader(status int) {
	switch {
	case hw.passing:
		hw.w.WriteHeader(status)
	case status < 200 || hw.status != 0:
		// Informational answers are not held; a second status is Go's
		// error to log, not ours.
	case status >= 300 && status < 400:
		hw.status = status
		if loc := hw.header.Get("Location"); loc != "" {
			hw.header.Set("Location", resolveAgainst(hw.kept, loc))
		}
		hw.release()
	default:
		hw.status = status
	}
}

func (hw *holdingWriter) Write(b []byte) (int, error) {
	if !hw.passing && hw.status == 0 {
		hw.WriteHeader(http.StatusOK)
	}
	if !hw.passing && hw.body.Len()+len(b) > heldAnswerLimit {
		hw.release()
	}
	if hw.passing {
		return hw.w.Write(b)
	}
	return hw.body.Write(b)
}

// FlushError passes the answer on when it is a stream: server-sent
// events, or an answer that asks not to be buffered. Other flushes are
// the proxy's for any answer without a length (most pages of a few
// kilobytes), which are held like the rest.
func (hw *holdingWriter) FlushError() error {
	if !hw.passing {
		ct, _, _ := mime.ParseMediaType(hw.header.Get("Content-Type"))
		if ct != "text/event-stream" && !strings.EqualFold(hw.header.Get("X-Accel-Buffering"), "no") {
			return nil
		}
		hw.release()
	}
	return http.NewResponseController(hw.w).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (hw *holdingWriter) Unwrap() http.ResponseWriter { return hw.w }

// release sends what is held and passes the rest on as it comes.
func (hw *holdingWriter) release() {
	if hw.passing {
		return
	}
	hw.passing = true
	h := hw.w.Header()
	for k, v := range hw.header {
		h[k] = append(h[k], v...)
	}
	hw.w.WriteHeader(hw.statusOr200())
	if hw.body.Len() > 0 {
		_, _ = hw.w.Write(hw.body.Bytes()) //nolint:gosec // G705: the application's own answer, passed on as a proxy must
	}
	hw.body = bytes.Buffer{}
}

// resolveAgainst resolves a relative Location against the path it
// answers.
func resolveAgainst(p, loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.IsAbs() || u.Host != "" || strings.HasPrefix(loc, "/") {
		return loc
	}
	return (&url.URL{Path: p}).ResolveReference(u).String()
}
