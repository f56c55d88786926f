package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// Key/value prefixes. Bearer values (tickets, cookies, kept-request ids)
// are stored under their SHA-256 only.
const (
	prefixTicket    = "gw/ticket/"
	prefixGWSession = "gw/session/"
	prefixKept      = "gw/kept/"
	prefixOnce      = "gw/once/"
	// prefixAsked records a forward-auth single-use challenge: the
	// proxy holds the request, so the challenge, not a kept request, is
	// what the step-up answers.
	prefixAsked = "gw/asked/"
)

const (
	// ticketLifetime bounds the hop from Stepgate back to the app.
	ticketLifetime = time.Minute
	// keptLifetime bounds how long a kept request waits for its step-up.
	keptLifetime = 10 * time.Minute
	// spentTicketLifetime is how long a redeemed ticket is remembered,
	// so that reloading its callback leads on rather than to an error.
	// One record per hand-off a signed-in user completed, as the gateway
	// session that hand-off made is.
	spentTicketLifetime = 12 * time.Hour
)

func hashKey(prefix, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return prefix + hex.EncodeToString(sum[:])
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64URL(b)
}

// localTarget accepts only a path on the route's own host, so the
// gateway's return address can never send a browser to another site
// ("//evil.example", "/\\evil.example", "https://evil.example").
func localTarget(s string) (string, bool) {
	if s == "" || len(s) > 4096 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n\t") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "", false
	}
	return s, true
}

// startURL is Stepgate's hand-off endpoint for route rt.
func (g *Gateway) startURL(rt *route, params url.Values) string {
	params.Set("route", rt.name)
	return g.Issuer + "/gateway/start?" + params.Encode()
}

// signIn sends a browser without a gateway session to Stepgate, which
// signs it in (or recognises its session) and hands it back.
func (g *Gateway) signIn(w http.ResponseWriter, r *http.Request, rt *route, p string) {
	if wantsJSON(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stepgate", error="invalid_token", error_description="sign in first"`)
		g.refuse(w, r, http.StatusUnauthorized, "Sign in first.")
		return
	}
	target := escapePath(p)
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	bind := g.binding(w, r, rt)
	params := url.Values{"target": {target}, "b": {bind}}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !forwarded(r) {
		// A POST from a browser whose gateway session lapsed: keep it,
		// so signing in does not lose the form.
		id, ok := g.keep(w, r, rt, p, nil, bind, g.startURL(rt, params))
		if !ok {
			return
		}
		params.Set("kept", id)
	}
	http.Redirect(w, r, g.startURL(rt, params), http.StatusSeeOther)
}

// challengeBrowser keeps the request when it must be replayed (a form
// post, or any single-use request) and sends the browser to step up.
func (g *Gateway) challengeBrowser(w http.ResponseWriter, r *http.Request, rt *route, ru *rule, id *identity, p string, v verdict) {
	if wantsJSON(r) {
		g.challengeAPI(w, r, rt, ru, nil, "a stronger or fresher sign-in is required")
		return
	}
	target := escapePath(p)
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	bind := g.binding(w, r, rt)
	params := url.Values{"target": {target}, "stepup": {strings.Join(v.methods, ",")}, "b": {bind}}
	if v.passwordChange {
		params.Del("stepup")
		params.Set("password", "1")
	}
	if forwarded(r) && ru.singleUse {
		if err := g.recordChallenge(r, rt, ru, id); err != nil {
			g.fail(w, r, err)
			return
		}
	}
	if !forwarded(r) && (ru.singleUse || (r.Method != http.MethodGet && r.Method != http.MethodHead)) {
		kid, ok := g.keep(w, r, rt, p, &id.user, bind, g.startURL(rt, params))
		if !ok {
			return
		}
		params.Set("kept", kid)
	}
	http.Redirect(w, r, g.startURL(rt, params), http.StatusSeeOther)
}

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
	_, err = g.Store.CreateKVWithin(r.Context(), keptKey(id), sealed, g.Now().Add(keptLifetime), g.totalQuota(), b.quota)
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
	key := keptKey(id)
	e, err := g.Store.GetKV(r.Context(), key)
	if err != nil {
		return kept{}, err
	}
	if err := g.Store.DeleteKV(r.Context(), key); err != nil {
		return kept{}, err // already taken by a concurrent request
	}
	plain, err := g.Box.Open(e.Value, []byte("gateway-kept|"+id))
	if err != nil {
		return kept{}, err
	}
	var k kept
	return k, json.Unmarshal(plain, &k)
}

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

// bindingCookie names the hand-off binding cookie of a route's host.
func (rt *route) bindingCookie() string {
	if rt.scheme == "https" {
		return "__Host-stepgate_gw_bind"
	}
	return "stepgate_gw_bind"
}

// binding returns the hash of the browser's binding cookie on rt's
// host, giving the browser one when it has none.
//
// Without it, an attacker could start a hand-off in their own browser —
// minting a ticket for their own session, or keeping a forged form
// before signing in — and send the victim the link that completes it:
// the victim would be signed in to the application as the attacker, or
// their sign-in would carry out the attacker's form.
func (g *Gateway) binding(w http.ResponseWriter, r *http.Request, rt *route) string {
	v := ""
	if c, err := r.Cookie(rt.bindingCookie()); err == nil && len(c.Value) == 43 {
		v = c.Value
	} else {
		v = newSecret()
		//nolint:gosec // Secure follows the route's scheme: http only for local development
		http.SetCookie(w, &http.Cookie{Name: rt.bindingCookie(), Value: v, Path: "/", HttpOnly: true,
			Secure: rt.scheme == "https", SameSite: http.SameSiteLaxMode})
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// boundTo reports whether r's browser holds the binding cookie bind
// hashes.
func boundTo(r *http.Request, rt *route, bind string) bool {
	c, err := r.Cookie(rt.bindingCookie())
	if err != nil || len(bind) != 64 {
		return false
	}
	sum := sha256.Sum256([]byte(c.Value))
	return hex.EncodeToString(sum[:]) == bind
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
	b, _ := json.Marshal(ticket{SessionID: s.ID, UserID: s.UserID, Route: rt.name, Binding: q.Get("b")})
	if _, err := g.Store.CreateKV(r.Context(), hashKey(prefixTicket, tok), b, g.Now().Add(ticketLifetime)); err != nil {
		g.fail(w, r, err)
		return
	}
	back := url.Values{"ticket": {tok}, "target": {target}}
	if k := q.Get("kept"); k != "" {
		back.Set("kept", k)
	}
	http.Redirect(w, r, rt.origin()+rt.prefix+callbackPath+"?"+back.Encode(), http.StatusSeeOther) //nolint:gosec // a configured route's own origin
}

// callback redeems a ticket on the application's host: it sets the
// gateway cookie, then replays the kept request or goes to the target.
func (g *Gateway) callback(w http.ResponseWriter, r *http.Request, rt *route) {
	ctx := r.Context()
	q := r.URL.Query()
	target, ok := localTarget(q.Get("target"))
	if !ok {
		target = rt.prefix + "/"
	}
	t, err := g.redeem(ctx, q.Get("ticket"), target)
	if errors.Is(err, errTicketSpent) && t.Route == rt.name && boundTo(r, rt, t.Binding) {
		// The browser that completed this hand-off loads its address
		// again (a reload, a restored tab, Back): it goes on to where the
		// hand-off led, with GET. Nothing is redeemed again: a kept form
		// is not sent a second time, and a single-use rule asks anew.
		http.Redirect(w, r, t.Target, http.StatusSeeOther) //nolint:gosec // localTarget admitted it when the ticket was spent
		return
	}
	// A ticket minted for another application is refused: tickets cannot
	// be carried between apps. A spent one in another browser is refused
	// too: it proves nothing there.
	if err != nil || t.Route != rt.name {
		g.refuseWith(w, r, http.StatusBadRequest, "This sign-in link has expired or was already used.",
			httpx.Link{Label: "Open the page you asked for", URL: rt.origin() + target})
		return
	}
	if !boundTo(r, rt, t.Binding) {
		g.refuse(w, r, http.StatusForbidden, "This sign-in link was started in another browser. Open the application and sign in from here.")
		return
	}
	cookie := newSecret()
	s, err := g.Sessions.ByID(ctx, t.SessionID)
	if err != nil {
		g.refuseWith(w, r, http.StatusBadRequest, "Your sign-in ended.",
			httpx.Link{Label: "Sign in again", URL: rt.origin() + target})
		return
	}
	b, _ := json.Marshal(gwSession{SessionID: t.SessionID, UserID: t.UserID, Route: rt.name})
	if _, err := g.Store.CreateKV(ctx, hashKey(prefixGWSession, cookie), b, s.ExpiresAt); err != nil {
		g.fail(w, r, err)
		return
	}
	//nolint:gosec // Secure follows the route's scheme: http only for local development
	http.SetCookie(w, &http.Cookie{Name: rt.cookieName(), Value: cookie, Path: "/", HttpOnly: true,
		Secure: rt.scheme == "https", SameSite: http.SameSiteLaxMode})
	if id := q.Get("kept"); id != "" {
		setRequestCookie(r, rt.cookieName(), cookie)
		g.replay(w, r, rt, id, t.Binding)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther) //nolint:gosec // localTarget admits paths on this host only
}

// errTicketSpent is a ticket presented again after its redemption.
var errTicketSpent = errors.New("gateway: ticket already redeemed")

// redeem spends ticket tok, which leads to target, and returns it. It is
// single use: of two redemptions one gets errTicketSpent (with the
// ticket, so the caller can tell the browser that spent it from another
// one). A spent ticket is kept for spentTicketLifetime, marked spent and
// with the address it led to, so that reloading the callback leads there
// again instead of to an error.
func (g *Gateway) redeem(ctx context.Context, tok, target string) (ticket, error) {
	t, err := g.spendTicket(ctx, tok, target)
	if errors.Is(err, store.ErrConflict) {
		// Spent by a concurrent load (a double click): read it again, as
		// spent, so that this load goes on too.
		t, err = g.spendTicket(ctx, tok, target)
	}
	return t, err
}

// spendTicket marks ticket tok spent, once; see redeem.
func (g *Gateway) spendTicket(ctx context.Context, tok, target string) (ticket, error) {
	var t ticket
	_, err := g.Store.RenewKV(ctx, hashKey(prefixTicket, tok), func(old []byte) ([]byte, time.Time, error) {
		t = ticket{}
		if err := json.Unmarshal(old, &t); err != nil {
			return nil, time.Time{}, err
		}
		if t.Spent {
			return nil, time.Time{}, errTicketSpent
		}
		spent := t
		spent.Spent, spent.Target = true, target
		b, err := json.Marshal(spent)
		return b, g.Now().Add(spentTicketLifetime), err
	})
	return t, err
}

// replay sends a kept request upstream, once, after the decision is
// made again for it; the browser is shown the upstream's answer at the
// original request's address (see answerOnce).
func (g *Gateway) replay(w http.ResponseWriter, r *http.Request, rt *route, id, bind string) {
	k, err := g.takeKept(r, id)
	if err != nil || k.Route != rt.name || k.Binding != bind {
		var more []httpx.Link
		if target, ok := localTarget(r.URL.Query().Get("target")); ok {
			more = append(more, httpx.Link{Label: "Open the page you asked for", URL: rt.origin() + target})
		}
		g.refuseWith(w, r, http.StatusBadRequest, "The request you sent before signing in has expired or was already sent. Send it again.", more...)
		return
	}
	who, err := g.browserIdentity(r, rt)
	if err != nil || (k.UserID != "" && k.UserID != who.user.ID) {
		// Kept for someone else: never replayed under another identity.
		g.refuse(w, r, http.StatusForbidden, "The request you sent before signing in belongs to another account.")
		return
	}
	orig := r.Clone(r.Context())
	orig.Method, orig.URL.Path, orig.URL.RawPath, orig.URL.RawQuery = k.Method, k.Path, "", k.RawQuery
	orig.Body, orig.ContentLength = io.NopCloser(strings.NewReader(string(k.Body))), int64(len(k.Body))
	orig.Header.Del("Content-Type")
	if k.ContentType != "" {
		orig.Header.Set("Content-Type", k.ContentType)
	}
	// The replay arrives on the callback's navigation, which came from
	// Stepgate's host; what is replayed is the request that was kept. A
	// form was kept only when same-origin (see crossSite), and it says
	// so, so an application's own cross-origin checks accept it. A GET
	// or HEAD may have come from anywhere: it claims no origin.
	for _, h := range []string{"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User", "Referer", "Origin"} {
		orig.Header.Del(h)
	}
	if k.Method != http.MethodGet && k.Method != http.MethodHead {
		orig.Header.Set("Origin", rt.origin())
		orig.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	ru := rt.ruleFor(k.Method, k.Path)
	asked := k.CreatedAt
	if !k.AskedAt.IsZero() {
		asked = k.AskedAt
	}
	orig = orig.WithContext(context.WithValue(orig.Context(), askedKey{}, asked))
	v, ok := g.decide(w, orig, rt, ru, who, asked)
	if !ok {
		return
	}
	switch {
	case v.block != "":
		g.refuse(w, r, http.StatusForbidden, v.block)
	case v.challenge:
		// Still not enough (the step-up was abandoned or too weak): keep
		// it again and ask again.
		g.challengeBrowser(w, orig, rt, ru, who, k.Path, v)
	default:
		who.acrs = v.acrs
		g.answerOnce(w, orig, rt, who, k)
	}
}

// askedKey marks a replayed request with when it was first challenged,
// so that keeping it again keeps that point.
type askedKey struct{}

func askedAt(r *http.Request) time.Time {
	t, _ := r.Context().Value(askedKey{}).(time.Time)
	return t
}

// setRequestCookie makes r carry cookie name=value instead of any it
// had, so the replay is judged by the session just handed over.
func setRequestCookie(r *http.Request, name, value string) {
	var keep []string
	for _, c := range r.Cookies() {
		if c.Name != name {
			keep = append(keep, c.String())
		}
	}
	// Only the request's Cookie header is built here; nothing is sent.
	keep = append(keep, (&http.Cookie{Name: name, Value: value}).String()) //nolint:gosec // G124: not a response cookie
	r.Header.Set("Cookie", strings.Join(keep, "; "))
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
