package gateway

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/policy"
)

// Identity headers sent upstream. Every incoming X-Stepgate-* header is
// removed first, so a client can never supply its own.
const (
	headerPrefix    = "X-Stepgate-"
	headerUser      = "X-Stepgate-User"
	headerEmail     = "X-Stepgate-Email"
	headerGroups    = "X-Stepgate-Groups"
	headerAcr       = "X-Stepgate-Acr"
	headerAmr       = "X-Stepgate-Amr"
	headerAuthTime  = "X-Stepgate-Auth-Time"
	headerAssertion = "X-Stepgate-Assertion"
)

// stripIdentity removes every header a client could use to pose as
// someone: X-Stepgate-* and the configured extra headers.
func (g *Gateway) stripIdentity(h http.Header) {
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), headerPrefix) {
			delete(h, k)
		}
	}
	for k := range g.strip {
		delete(h, k)
	}
}

// setIdentity replaces identity headers with the verified identity;
// the assertion authorizes the request k names alone.
func (g *Gateway) setIdentity(h http.Header, rt *route, id *identity, k requestKey) {
	g.stripIdentity(h)
	g.identityHeaders(rt, id, k, h.Set)
}

// requestTarget is the one request an assertion authorizes, as DPoP
// binds a proof (RFC 9449 section 4.2): the method (htm) and the URL
// without query or fragment (htu).
type requestTarget struct {
	method, url string
}

// requestKey names the request an assertion authorizes without
// building its URL, which a route derives from the canonical path
// alone: the method and the path, sent upstream by the built-in proxy,
// or, through forward-auth (public), as the proxy in front received it
// on the route's public origin.
type requestKey struct {
	method, path string
	public       bool
}

// upstreamKey is the request the built-in proxy sends a route's
// upstream for method and canonical path p.
func upstreamKey(method, p string) requestKey { return requestKey{method: method, path: p} }

// target is the request k names on rt: for the built-in proxy, the
// upstream's scheme and host with the path joined as the upstream
// receives it; for forward-auth, the route's public origin and path.
func (rt *route) target(k requestKey) requestTarget {
	if k.public {
		return requestTarget{method: k.method, url: rt.origin() + escapePath(k.path)}
	}
	return requestTarget{method: k.method, url: rt.upstreamOrigin + upstreamPath(rt, k.path)}
}

// identityHeaders sets, through set, the identity headers of id that
// the route sends (none for anonymous requests).
func (g *Gateway) identityHeaders(rt *route, id *identity, k requestKey, set func(key, value string)) {
	v, assertion := g.identityOf(rt, id, k)
	if v == nil {
		return
	}
	if rt.plain {
		for _, h := range v.plain {
			set(h.key, h.value)
		}
	}
	if assertion != "" {
		set(headerAssertion, assertion)
	}
}

// writeIdentity writes the identity headers of id that the route sends
// into the head of the request going upstream: the plain ones as the
// lines the memo keeps written out, then the assertion.
func (g *Gateway) writeIdentity(bw *bufio.Writer, rt *route, id *identity, k requestKey) {
	v, assertion := g.identityOf(rt, id, k)
	if v == nil {
		return
	}
	if rt.plain {
		_, _ = bw.WriteString(v.lines)
	}
	if assertion != "" {
		writeHeader(bw, headerAssertion, assertion)
	}
}

// identityOf is what the route sends upstream about id for the request
// k: the plain headers (nil when it sends nothing: no identity, or a
// route with identity_headers none) and the assertion ("" when the route
// sends none, or it could not be signed, which is logged).
func (g *Gateway) identityOf(rt *route, id *identity, k requestKey) (*identityView, string) {
	if id == nil || !rt.plain && !rt.assertion {
		return nil, ""
	}
	v := id.memo.view(g, rt, id)
	if !rt.assertion {
		return v, ""
	}
	tok, err := g.memoAssertion(rt, id, v, k)
	if err != nil {
		g.Log.Error("sign identity assertion", "err", err)
		return v, ""
	}
	return v, tok
}

// identityMemo holds what identityHeaders works out for one cached
// identity lookup (a gateway cookie's or a bearer token's), so that the
// requests that reuse the lookup reuse it too: the headers' values, and
// the assertions signed for them. It lives in the lookup's cache entry —
// never longer than identityTTL (nor a token's expiry), and dropped with
// it by Forget (sign-out, a disabled user, revoked sessions or tokens) —
// and is reached only through the SHA-256 of that browser's own cookie
// or that client's own token, so one user's identity is never sent for
// another's request. It holds nothing the lookup did not already: the
// user, the session and its proofs, the token's claims are the entry's,
// fixed while it lives. A token serves every route of its app, so what
// the memo holds is kept per route.
type identityMemo struct {
	current atomic.Pointer[identityView]
	// allowed is the last routine allow (see allowMemo).
	allowed atomic.Pointer[allowMemo]
	// last is the assertion last served from signed, read without the
	// lock: a browser mostly repeats requests, and every connection of
	// it shares this memo.
	last atomic.Pointer[memoAssertion]
	// mu guards signed.
	mu     sync.Mutex
	signed map[memoKey]*memoAssertion
}

// memoKey names an assertion in the memo: the route (its audience) and
// the request it authorizes.
type memoKey struct {
	rt  *route
	req requestKey
}

// identityView is the identity headers of one identity on one route
// under one policy snapshot.
type identityView struct {
	rt    *route
	snap  *policy.Snapshot
	facts assertionClaims // without ACRs, which each decision sets
	plain []headerValue
	// lines is plain written out as header lines, as writeHeader writes
	// them.
	lines string
	// until, when set, is when an elevated role in facts ends: the view,
	// and any assertion signed from it, is not used from then on.
	until time.Time
}

// stale reports whether v names a role that no longer counts at now.
func (v *identityView) stale(now time.Time) bool {
	return !v.until.IsZero() && !now.Before(v.until)
}

type headerValue struct{ key, value string }

// memoAssertion is a signed assertion for a read, the request it
// authorizes and the contexts it names (the decision's, which may
// change while the memo lives: a context's sign-in frequency runs out).
type memoAssertion struct {
	key     memoKey
	acrs    []string
	token   string
	expires time.Time
}

// serves reports whether c is the assertion for key, naming exactly
// acrs, and still fresh at now.
func (c *memoAssertion) serves(key memoKey, acrs []string, now time.Time) bool {
	return c != nil && c.key == key && now.Before(c.expires) && slices.Equal(c.acrs, acrs)
}

// maxMemoAssertions bounds one identity's memo of assertions.
const maxMemoAssertions = 64

// view returns the identity headers of id on rt, from the memo when it
// holds them for rt and the current policies (which name the strengths
// of X-Stepgate-Acr). A nil memo (an identity not from the cache)
// computes them each time.
func (m *identityMemo) view(g *Gateway, rt *route, id *identity) *identityView {
	var snap *policy.Snapshot
	if id.sess != nil {
		snap = g.snapshot(rt) // a token's acr is its own
	}
	now := g.instant(id)
	if m != nil {
		if v := m.current.Load(); v != nil && v.rt == rt && v.snap == snap && !v.stale(now) {
			return v
		}
	}
	// An elevated role is sent upstream only until its end: a view
	// kept past it would hand the upstream a role the user no longer
	// holds for as long as the lookup is reused.
	v := &identityView{rt: rt, snap: snap, facts: g.facts(rt, id, now), until: id.user.GrantsEndAt(now, rt.app)}
	v.facts.ACRs = nil
	v.plain = plainIdentity(v.facts)
	v.lines = headerLines(v.plain)
	if m != nil {
		m.current.Store(v)
	}
	return v
}

// headerLines writes hs out as header lines, as writeHeader does.
func headerLines(hs []headerValue) string {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	for _, h := range hs {
		writeHeader(bw, h.key, h.value)
	}
	_ = bw.Flush()
	return b.String()
}

// memoAssertion returns the assertion for the request k: for a read,
// the one the memo holds when it names the same contexts and is still
// fresh; else through assertion, which keeps the longer-lived cache and
// signs.
func (g *Gateway) memoAssertion(rt *route, id *identity, v *identityView, k requestKey) (string, error) {
	m := id.memo
	now := g.instant(id)
	key := memoKey{rt, k}
	if m != nil && safeMethod(k.method) {
		if c := m.last.Load(); c.serves(key, id.acrs, now) {
			return c.token, nil
		}
		m.mu.Lock()
		c := m.signed[key]
		m.mu.Unlock()
		if c.serves(key, id.acrs, now) {
			m.last.Store(c)
			return c.token, nil
		}
	}
	a := v.facts
	a.ACRs = id.acrs
	tok, expires, err := g.assertion(rt, id, a, rt.target(k), v.until)
	if err != nil || m == nil || expires.IsZero() {
		return tok, err
	}
	c := &memoAssertion{key: key, acrs: id.acrs, token: tok, expires: expires}
	m.mu.Lock()
	if m.signed == nil || len(m.signed) >= maxMemoAssertions {
		m.signed = map[memoKey]*memoAssertion{}
	}
	m.signed[key] = c
	m.mu.Unlock()
	m.last.Store(c)
	return tok, nil
}

// plainIdentity is the identity headers other than the assertion.
func plainIdentity(a assertionClaims) []headerValue {
	h := []headerValue{{headerUser, a.Username}}
	if a.Email != "" {
		h = append(h, headerValue{headerEmail, a.Email})
	}
	if len(a.Groups) > 0 {
		h = append(h, headerValue{headerGroups, strings.Join(a.Groups, ",")})
	}
	h = append(h, headerValue{headerAcr, a.ACR}, headerValue{headerAmr, strings.Join(a.AMR, " ")})
	if a.AuthTime > 0 {
		h = append(h, headerValue{headerAuthTime, strconv.FormatInt(a.AuthTime, 10)})
	}
	return h
}

// assertionClaims are the claims of X-Stepgate-Assertion, a short-lived
// JWT signed with Stepgate's token keys (verifiable with its JWKS), so
// an upstream need not trust the network between it and the gateway.
// Its own typ keeps ID and access tokens from passing for it; aud, htm
// and htu keep it from authorizing anything but the one request to the
// one upstream it was made for, when someone who saw it replays it at
// the upstream's own port.
type assertionClaims struct {
	jwt.Claims
	Method   string   `json:"htm"`
	URL      string   `json:"htu"`
	Username string   `json:"preferred_username"`
	Email    string   `json:"email,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	ACRs     []string `json:"acrs,omitempty"`
}

// facts gathers what the headers and the assertion say about id at now:
// the roles are those the user holds for the route's app then, standing
// and elevated.
func (g *Gateway) facts(rt *route, id *identity, now time.Time) assertionClaims {
	a := assertionClaims{Username: id.user.Username, Email: id.user.Email, Groups: id.user.Groups,
		Roles: id.user.RolesAt(now, rt.app), ACRs: id.acrs}
	a.Subject = id.user.ID
	switch {
	case id.token != nil:
		a.ACR, a.AMR, a.AuthTime, a.ACRs = id.token.ACR, id.token.AMR, id.token.AuthTime, id.token.ACRs
		if a.Username == "" {
			a.Username, a.Subject = id.token.Subject, id.token.Subject // a service client
		}
	case id.sess != nil:
		a.ACR = g.snapshot(rt).Strengths().Strongest(access.Events(id.sess.Events), now)
		for _, e := range id.sess.Events {
			for _, v := range e.AMR {
				if !contains(a.AMR, v) {
					a.AMR = append(a.AMR, v)
				}
			}
		}
		a.AuthTime = lastProof(id.sess).Unix()
	}
	return a
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// cachedAssertion is a signed assertion reused while fresh: signing is
// the most expensive step of a proxied request, and an assertion stays
// true while the session's proofs and the user do not change.
type cachedAssertion struct {
	token   string
	expires time.Time
}

const maxCachedAssertions = 10000

// assertion returns the signed assertion of a for req. A read's is
// cached by everything it says — the route (so the audience), the
// identity and its proofs, and the request (method and URL) — so one
// request's assertion is never handed to another. Any other method gets
// an assertion of its own, with a jti an upstream can spend once: a
// POST /transfers seen on the network cannot be sent again with another
// body while its assertion lives.
//
// For a read it also returns until when the assertion may be reused
// (zero for any other method). roleEnd, when set, is when an elevated
// role in a ends: the assertion expires by then and is not reused after,
// so an upstream never sees the role past its end.
func (g *Gateway) assertion(rt *route, id *identity, a assertionClaims, req requestTarget, roleEnd time.Time) (string, time.Time, error) {
	now := g.instant(id)
	reusable := safeMethod(req.method)
	var key string
	if reusable {
		key = assertionKey(rt, id, &a, req)
		g.mu.Lock()
		c, ok := g.assertions[key]
		g.mu.Unlock()
		if ok && now.Before(c.expires) {
			return c.token, c.expires, nil
		}
	}
	life := rt.assertionLife
	if life <= 0 {
		life = g.Options.AssertionLifetime
	}
	expiry := now.Add(life)
	if !roleEnd.IsZero() && roleEnd.Before(expiry) {
		expiry, life = roleEnd, roleEnd.Sub(now)
	}
	a.Issuer, a.Audience = g.Issuer, jwt.Audience{rt.audience}
	a.Method, a.URL = req.method, req.url
	a.IssuedAt, a.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(expiry)
	a.ID = rand.Text()
	tok, err := g.Signer.SignAssertion(a)
	if err != nil || !reusable {
		return tok, time.Time{}, err
	}
	g.mu.Lock()
	if len(g.assertions) >= maxCachedAssertions {
		clear(g.assertions) // crude but bounded: the next requests re-sign
	}
	// Reused for half its life, so an upstream never receives one about
	// to expire.
	expires := now.Add(life / 2)
	g.assertions[key] = cachedAssertion{token: tok, expires: expires}
	g.mu.Unlock()
	return tok, expires, nil
}

// safeMethod reports whether method only reads (RFC 9110 section 9.2.1):
// its assertion may be reused for the same request.
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// assertionKey names an assertion by every input that goes into it.
// Fields are separated by a byte no method, URL, id or claim value
// below can contain unescaped (a URL path is escaped; ids are opaque).
func assertionKey(rt *route, id *identity, a *assertionClaims, req requestTarget) string {
	var b strings.Builder
	b.Grow(192 + len(req.url))
	for _, s := range [...]string{rt.name, req.method, req.url, a.Subject, a.Username, a.Email, a.ACR} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	for _, list := range [...][]string{a.AMR, a.ACRs, a.Groups, a.Roles} {
		for _, s := range list {
			b.WriteString(s)
			b.WriteByte(1)
		}
		b.WriteByte(0)
	}
	b.WriteString(strconv.FormatInt(a.AuthTime, 10))
	b.WriteByte(0)
	if id.sess != nil {
		b.WriteString(id.sess.ID)
		b.WriteByte(0)
		b.WriteString(strconv.Itoa(len(id.sess.Events)))
	} else if id.token != nil {
		b.WriteString(id.token.ID)
	}
	return b.String()
}
