package gateway

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/stepgate/stepgate/internal/session"
)

// ticket is the one-time proof, minted on Stepgate's host, that the
// browser holds a Stepgate session.
type ticket struct {
	SessionID string `json:"sid"`
	UserID    string `json:"uid"`
	Route     string `json:"route"`
	// Binding ties the ticket to the browser that started the hand-off
	// (the hash of its binding cookie on the application's host), as
	// OAuth's state does: a ticket or kept request sent to someone else's
	// browser is refused there.
	Binding string `json:"bind"`
	// Spent marks a redeemed ticket; Target is where it led.
	Spent  bool   `json:"spent,omitempty"`
	Target string `json:"target,omitempty"`
}

// Start is Stepgate's side of the hand-off (GET /gateway/start): with
// the browser's Stepgate session (signing in first when needed, stepping
// up when asked), it mints a one-time ticket and sends the browser back
// to the application's callback with it.
func (g *Gateway) Start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var rt *route
	for _, x := range g.routes {
		if x.name == q.Get("route") {
			rt = x
		}
	}
	target, ok := localTarget(q.Get("target"))
	if rt == nil || !ok || len(q.Get("b")) != 64 {
		g.ErrorPage(w, r, http.StatusBadRequest, "This link to an application is not valid.")
		return
	}
	s, err := g.Sessions.Load(r.Context(), r)
	if errors.Is(err, session.ErrNoSession) {
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if q.Has("password") {
		// Change the password first. That ends every session (a security
		// event), so the user signs in again and comes back here.
		q.Del("password")
		http.Redirect(w, r, "/account/password?return_to="+url.QueryEscape("/gateway/start?"+q.Encode()), http.StatusSeeOther)
		return
	}
	if q.Has("stepup") {
		// Step up first, then come back here without the flag. The
		// application checks the session again when the browser returns,
		// so dropping the flag skips nothing.
		methods := q.Get("stepup")
		q.Del("stepup")
		back := "/gateway/start?" + q.Encode()
		sq := url.Values{"return_to": {back}}
		if methods != "" {
			sq.Set("methods", methods)
		}
		http.Redirect(w, r, "/stepup?"+sq.Encode(), http.StatusSeeOther)
		return
	}
	tok := newSecret()
	t := ticket{SessionID: s.ID, UserID: s.UserID, Route: rt.name, Binding: q.Get("b")}
	if err := tickets.At(tok).Create(r.Context(), g.Store, t, g.Now().Add(ticketLifetime)); err != nil {
		g.fail(w, r, err)
		return
	}
	back := url.Values{"ticket": {tok}, "target": {target}}
	if k := q.Get("kept"); k != "" {
		back.Set("kept", k)
	}
	http.Redirect(w, r, rt.origin()+rt.prefix+callbackPath+"?"+back.Encode(), http.StatusSeeOther) //nolint:gosec // a configured route's own origin
}
