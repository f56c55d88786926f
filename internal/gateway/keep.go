package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// kept is a request held across a sign-in or step-up: method, canonical
// path, query, the headers that give the body its meaning, and the body.
// It is encrypted (it holds form data), bound to its route and user, and
// replayed at most once.
type kept struct {
	Route       string    `json:"route"`
	UserID      string    `json:"uid,omitempty"`
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	RawQuery    string    `json:"query,omitempty"`
	ContentType string    `json:"ctype,omitempty"`
	Body        []byte    `json:"body,omitempty"`
	CreatedAt   time.Time `json:"created"`
	// AskedAt, for a request kept again because its step-up is not yet
	// complete, is when it was first challenged: the point its re-ask
	// counts proofs from. Moving it to the new keep would leave out the
	// proof just made, and a re-ask needing two (password and TOTP)
	// could never be met.
	AskedAt time.Time `json:"asked,omitzero"`
	// Binding is the hand-off binding of the browser that sent it: only
	// that browser's hand-off can replay it.
	Binding string `json:"bind"`
}

// keep stores r for replay and returns its id. A request that cannot
// be kept (too large, too many from its address, the store's quota
// full) is refused with a page that says so and links to next, the
// sign-in without it: never silently truncated, never stored. u is the
// signed-in user the request is kept for; nil for a client with no
// session, which gets the smaller budget (keeplimit.go).
func (g *Gateway) keep(w http.ResponseWriter, r *http.Request, rt *route, p string, u *store.User, bind, next string) (string, bool) {
	// A request another site made the browser send must never be kept:
	// replayed after the user signs in or steps up, it would be carried
	// out with the user's identity — cross-site request forgery with the
	// gateway's help. (The gateway cookie is SameSite=Lax, so such a POST
	// arrives without a session and would otherwise be kept for after the
	// sign-in.)
	if crossSite(r, rt) {
		g.refuse(w, r, http.StatusForbidden, "This form was sent from another site. Open the page on this site and send it from there.")
		return "", false
	}
	b := g.budget(u == nil)
	if b.disabled() {
		g.refuseKeep(w, r, refusedOff(b.anonymous), next)
		return "", false
	}
	// The announced size is refused before anything is counted or read.
	if r.ContentLength > b.bodyLimit {
		g.refuseKeep(w, r, refusedTooLarge(b.anonymous), next)
		return "", false
	}
	// Counted before the body is read, so one address cannot make the
	// gateway buffer more than its budget of bodies at once.
	allowed, wait, count, err := g.allowKeep(r.Context(), r, b)
	if err != nil {
		g.fail(w, r, err)
		return "", false
	}
	if !allowed {
		g.refuseKeep(w, r, refusedRate(wait), next)
		return "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, b.bodyLimit+1))
	if err != nil {
		g.refuse(w, r, http.StatusBadRequest, "The request body could not be read.")
		return "", false
	}
	if int64(len(body)) > b.bodyLimit {
		g.refuseKeep(w, r, refusedTooLarge(b.anonymous), next)
		return "", false
	}
	k := kept{Route: rt.name, Method: r.Method, Path: p, RawQuery: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"),
		Body: body, CreatedAt: g.Now().UTC(), AskedAt: askedAt(r), Binding: bind}
	id := newSecret()
	if u != nil {
		k.UserID = u.ID
	} else {
		id = anonKeptID + id
	}
	plain, _ := json.Marshal(k)
	sealed := g.Box.Seal(plain, []byte("gateway-kept|"+id))
	err = keptAt(id).CreateWithin(r.Context(), g.Store, sealed, g.Now().Add(keptLifetime), g.totalQuota(), b.quota)
	if errors.Is(err, store.ErrQuota) {
		g.warnQuotaFull(r, rt, b, err)
		g.refuseKeep(w, r, refusedFull(), next)
		return "", false
	}
	if err == nil {
		err = g.record(r.Context(), count)
	}
	if err != nil {
		g.fail(w, r, err)
		return "", false
	}
	return id, true
}

// crossSite reports whether a browser sent r, a request that changes
// something, on another origin's behalf: by Fetch metadata where the
// browser sends it, else by Origin. Requests with neither (curl,
// scripts) are not a browser's.
//
// A GET or HEAD is never refused as one: it is kept only for a
// single-use rule, and a link from another site (a mail, a chat) is how
// users arrive there. So is a reload of a page the hand-off led to,
// which Chromium sends as cross-site, as the redirects from Stepgate's
// host began it. The browser sends such a navigation with the gateway's
// Lax cookie anyway, so keeping it gives another site nothing; the
// replay does not claim it was same-origin (see replay).
func crossSite(r *http.Request, rt *route) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "cross-site", "same-site":
		return true
	}
	o := r.Header.Get("Origin")
	return o != "" && !strings.EqualFold(o, rt.origin())
}

// takeKept removes and returns a kept request: single use, so a replayed
// link cannot submit the form twice.
func (g *Gateway) takeKept(r *http.Request, id string) (kept, error) {
	at := keptAt(id)
	sealed, err := at.Get(r.Context(), g.Store)
	if err != nil {
		return kept{}, err
	}
	if err := at.Delete(r.Context(), g.Store); err != nil {
		return kept{}, err // already taken by a concurrent request
	}
	plain, err := g.Box.Open(sealed, []byte("gateway-kept|"+id))
	if err != nil {
		return kept{}, err
	}
	var k kept
	return k, json.Unmarshal(plain, &k)
}

// askedKey marks a replayed request with when it was first challenged,
// so that keeping it again keeps that point.
type askedKey struct{}

func askedAt(r *http.Request) time.Time {
	t, _ := r.Context().Value(askedKey{}).(time.Time)
	return t
}
