package gateway

import (
	"crypto/sha256"
	"errors"
	"net/http"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// identity is who a request comes from.
type identity struct {
	user store.User
	// sess is the browser's Stepgate session; nil for a bearer token. It
	// may be the identity cache's own, shared with other requests: read only.
	sess *store.Session
	// token is the verified bearer token; nil for a browser.
	token *oauth.AccessClaims
	acrs  []string
	// memo is the identity headers worked out for the cached lookup
	// this identity came from (see identityMemo); nil computes them anew.
	memo *identityMemo
}

// gwSession binds a gateway cookie on an application's host to the
// browser's Stepgate session.
type gwSession struct {
	SessionID string `json:"sid"` // the Stepgate session's storage id
	UserID    string `json:"uid"`
	Route     string `json:"route"`
}

// cookieName is the gateway cookie of a route's host. Under https it
// takes the __Host- prefix: bound to this host, so a sibling subdomain
// cannot plant or overwrite it.
func (rt *route) cookieName() string {
	if rt.scheme == "https" {
		return "__Host-stepgate_gw"
	}
	return "stepgate_gw"
}

// browserIdentity follows the gateway cookie to the Stepgate session and
// its user. The lookups are reused for identityTTL, so sign-out or
// disabling the user take effect within that bound; the session's expiry
// is checked on every request, and a step-up elsewhere gives the browser
// a new session and cookie through the hand-off.
func (g *Gateway) browserIdentity(r *http.Request, rt *route) (*identity, error) {
	c, err := r.Cookie(rt.cookieName())
	if err != nil || len(c.Value) != 43 {
		return nil, session.ErrNoSession
	}
	sum := sha256.Sum256([]byte(c.Value))
	if e, ok := g.browsers.get(sum, g.Now()); ok {
		// A cookie minted for one application is worthless on another.
		if e.route != rt.name || !g.Sessions.Live(*e.sess) {
			return nil, session.ErrNoSession
		}
		return &identity{user: e.user, sess: e.sess, memo: e.memo}, nil
	}
	gs, err := gwSessions.AtDigest(sum).Get(r.Context(), g.Store)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, session.ErrNoSession
		}
		return nil, err
	}
	if gs.Route != rt.name {
		return nil, session.ErrNoSession
	}
	s, err := g.Sessions.ByID(r.Context(), gs.SessionID)
	if err != nil {
		return nil, err // ErrNoSession after sign-out or a rotation: sign in again (silently when still signed in)
	}
	u, err := g.Store.GetUser(r.Context(), s.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) || s.UserID != gs.UserID {
		return nil, session.ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	memo := &identityMemo{}
	g.browsers.put(sum, browserEntry{route: gs.Route, sess: &s, user: u, memo: memo}, g.Now())
	return &identity{user: u, sess: &s, memo: memo}, nil
}
