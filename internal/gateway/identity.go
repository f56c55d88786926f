package gateway

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/textproto"
	"strings"
	"time"

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
	// now is when the request was identified: the one reading of the
	// clock that its decision, identity headers and assertion share, so
	// that they speak of the same instant (zero: the clock is read).
	now time.Time
}

// instant is the time id's request is decided at (identity.now).
func (g *Gateway) instant(id *identity) time.Time {
	if id == nil || id.now.IsZero() {
		return g.Now()
	}
	return id.now
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

// gatewayCookieLen is the length of a gateway cookie's value: 32
// random bytes in unpadded base64url.
const gatewayCookieLen = 43

// maxRequestCookies is how many cookies net/http reads from a request at
// most (its default; more and Request.Cookie finds none).
const maxRequestCookies = 3000

// requestCookie returns the value of the first cookie named name in
// the Cookie headers h, read exactly as net/http's Request.Cookie reads
// it — the same trimming, quotes and byte checks, and no cookie at all
// beyond maxRequestCookies — without building every cookie the request
// carries: a browser sends it on every request through the gateway.
func requestCookie(h http.Header, name string) (string, bool) {
	lines := h["Cookie"]
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxRequestCookies {
		return "", false
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(pair), "=")
			// name is a token, so a match is one too (net/http skips
			// names that are not).
			if textproto.TrimString(k) != name {
				continue
			}
			if v, ok := cookieValue(v); ok {
				return v, true
			}
		}
	}
	return "", false
}

// cookieValue is a cookie's value as net/http reads it: without one
// pair of surrounding double quotes, and refused when any byte is not
// allowed in a cookie value.
func cookieValue(v string) (string, bool) {
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", false
		}
	}
	return v, true
}

// browserIdentity follows the gateway cookie to the Stepgate session and
// its user. The lookups are reused for identityTTL, so sign-out or
// disabling the user take effect within that bound; the session's expiry
// is checked on every request, and a step-up elsewhere gives the browser
// a new session and cookie through the hand-off.
func (g *Gateway) browserIdentity(r *http.Request, rt *route) (*identity, error) {
	value, ok := requestCookie(r.Header, rt.cookieName())
	if !ok || len(value) != gatewayCookieLen {
		return nil, session.ErrNoSession
	}
	// Hashed from a copy on the stack: converting the string would put
	// a copy of the secret on the heap on every request.
	var secret [gatewayCookieLen]byte
	copy(secret[:], value)
	sum := sha256.Sum256(secret[:])
	now := g.Now()
	if e, ok := g.browsers.get(sum, now); ok {
		// A cookie minted for one application is worthless on another.
		if e.route != rt.name || !g.Sessions.Live(*e.sess) {
			return nil, session.ErrNoSession
		}
		return &identity{user: e.user, sess: e.sess, memo: e.memo, now: now}, nil
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
	now = g.Now() // after the store's answers
	g.browsers.put(sum, &browserEntry{route: gs.Route, sess: &s, user: u, memo: memo}, now)
	return &identity{user: u, sess: &s, memo: memo, now: now}, nil
}
