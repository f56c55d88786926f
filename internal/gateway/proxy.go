package gateway

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
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

// upstream is how a route reaches its application: the direct path for
// plain reads, the standard reverse proxy for everything else.
type upstream struct {
	proxy  *httputil.ReverseProxy
	direct *connPool // nil: a TLS upstream, always through proxy
}

// newUpstream builds the reverse proxy and direct path of a route.
// Hop-by-hop headers, WebSocket upgrades and streamed request bodies are
// handled by httputil.ReverseProxy.
func (g *Gateway) newUpstream(rt *route) *upstream {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = g.Options.UpstreamTimeout
	transport.MaxIdleConnsPerHost = 256
	// The client's Accept-Encoding goes upstream as sent and the answer
	// comes back as encoded: a proxy has no business decompressing.
	transport.DisableCompression = true
	proxy := &httputil.ReverseProxy{
		Transport:  informational{rt: rt, next: transport},
		BufferPool: g.buffers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			// pr.Out is the proxy's own copy of the request: the canonical
			// path and the identity go there, so the upstream sees exactly
			// what the rules saw, without a second copy of the request.
			// Never let a client's own identity, forwarding or rewriting
			// headers through.
			g.scrubClientHeaders(pr.Out.Header)
			// Nor as request trailers, which some servers merge into
			// the headers.
			if pr.Out.Trailer != nil {
				g.scrubClientHeaders(pr.Out.Trailer)
			}
			if o, ok := pr.In.Context().Value(outboundKey{}).(*outbound); ok {
				pr.Out.URL.Path, pr.Out.URL.RawPath = o.path, escapePath(o.path)
				g.setIdentity(pr.Out.Header, rt, o.id, rt.upstreamRequest(pr.In.Method, o.path))
			}
			if c := rt.withoutOwnCookies(pr.Out.Header["Cookie"]); len(c) > 0 {
				pr.Out.Header["Cookie"] = c
			} else {
				delete(pr.Out.Header, "Cookie")
			}
			pr.SetURL(rt.upstream) // joins the upstream's path and the canonical one
			g.forwardingHeaders(pr.In, rt, pr.Out.Header.Set)
		},
		ModifyResponse: func(resp *http.Response) error {
			rt.dropOwnSetCookies(resp.Header)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.upstreamFailed(w, r, rt, err)
		},
	}
	return &upstream{proxy: proxy, direct: newConnPool(rt.upstream, transport.ResponseHeaderTimeout)}
}

// informational filters the upstream's informational answers (103
// Early Hints), which the reverse proxy passes to the client as they
// come, without ModifyResponse: a Set-Cookie there must not plant the
// gateway's cookie either.
type informational struct {
	rt   *route
	next *http.Transport
}

func (t informational) RoundTrip(r *http.Request) (*http.Response, error) {
	// Hooks added last run first: this one sees each 1xx header before
	// the reverse proxy copies it to the client.
	ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
			t.rt.dropOwnSetCookies(http.Header(h))
			return nil
		},
	})
	return t.next.RoundTrip(r.WithContext(ctx))
}

// CloseIdleConnections closes the upstream connections not in use.
func (t informational) CloseIdleConnections() { t.next.CloseIdleConnections() }

// upstreamFailed answers a request the application did not: 502, or,
// when the client went away first, 499 with no warning logged, since
// the application was not at fault.
func (g *Gateway) upstreamFailed(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	status := httpx.StatusOf(errkind.Mark(err, errkind.Upstream))
	if status != httpx.StatusClientClosedRequest {
		g.Log.WarnContext(r.Context(), "upstream failed", "route", rt.name, "err", err)
	}
	g.refuse(w, r, status, "The application behind this address is not answering. Try again in a moment.")
}

// outbound is what the decision hands the proxy: who the request is from
// and its canonical path.
type outbound struct {
	id   *identity
	path string
}

type outboundKey struct{}

// proxyTo returns the pass step that forwards to rt's upstream.
func (g *Gateway) proxyTo(rt *route) pass {
	return func(w http.ResponseWriter, r *http.Request, id *identity, p string) {
		up := g.upstreams[rt]
		switch {
		case up == nil:
			g.refuse(w, r, http.StatusNotFound, "This address is served through forward-auth only.")
		case up.direct != nil && plainRead(r):
			g.serveDirect(w, r, rt, up.direct, id, p)
		default:
			up.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), outboundKey{}, &outbound{id: id, path: p})))
		}
	}
}

// bufferPool lends the proxies their copy buffers. Without one, each
// proxied response allocates (and the collector then reclaims) 32 KiB.
// A bounded free list: at most its capacity of buffers stay allocated.
type bufferPool chan []byte

const proxyBufferSize = 32 << 10

func (p bufferPool) Get() []byte {
	select {
	case b := <-p:
		return b
	default:
		return make([]byte, proxyBufferSize)
	}
}

func (p bufferPool) Put(b []byte) {
	if cap(b) != proxyBufferSize {
		return
	}
	select {
	case p <- b[:cap(b)]:
	default:
	}
}

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
// the assertion authorizes req alone.
func (g *Gateway) setIdentity(h http.Header, rt *route, id *identity, req requestTarget) {
	g.stripIdentity(h)
	g.identityHeaders(rt, id, req, h.Set)
}

// requestTarget is the one request an assertion authorizes, as DPoP
// binds a proof (RFC 9449 section 4.2): the method (htm) and the URL
// without query or fragment (htu).
type requestTarget struct {
	method, url string
}

// upstreamRequest is the request the built-in proxy sends rt's upstream
// for method and canonical path p: the upstream's scheme and host, and
// the path joined as the upstream receives it.
func (rt *route) upstreamRequest(method, p string) requestTarget {
	return requestTarget{method: method, url: rt.upstreamOrigin + upstreamPath(rt, p)}
}

// identityHeaders sets, through set, the identity headers of id that
// the route sends (none for anonymous requests).
func (g *Gateway) identityHeaders(rt *route, id *identity, req requestTarget, set func(key, value string)) {
	if id == nil || !rt.plain && !rt.assertion {
		return
	}
	a := g.facts(rt, id)
	if rt.plain {
		plainIdentity(a, set)
	}
	if !rt.assertion {
		return
	}
	if tok, err := g.assertion(rt, id, a, req); err == nil {
		set(headerAssertion, tok)
	} else {
		g.Log.Error("sign identity assertion", "err", err)
	}
}

// plainIdentity sets the identity headers other than the assertion.
func plainIdentity(a assertionClaims, set func(key, value string)) {
	set(headerUser, a.Username)
	if a.Email != "" {
		set(headerEmail, a.Email)
	}
	if len(a.Groups) > 0 {
		set(headerGroups, strings.Join(a.Groups, ","))
	}
	set(headerAcr, a.ACR)
	set(headerAmr, strings.Join(a.AMR, " "))
	if a.AuthTime > 0 {
		set(headerAuthTime, strconv.FormatInt(a.AuthTime, 10))
	}
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

// facts gathers what the headers and the assertion say about id.
func (g *Gateway) facts(rt *route, id *identity) assertionClaims {
	a := assertionClaims{Username: id.user.Username, Email: id.user.Email, Groups: id.user.Groups, Roles: id.user.Roles, ACRs: id.acrs}
	a.Subject = id.user.ID
	switch {
	case id.token != nil:
		a.ACR, a.AMR, a.AuthTime, a.ACRs = id.token.ACR, id.token.AMR, id.token.AuthTime, id.token.ACRs
		if a.Username == "" {
			a.Username, a.Subject = id.token.Subject, id.token.Subject // a service client
		}
	case id.sess != nil:
		a.ACR = g.Policies.Load().Strengths().Strongest(access.Events(id.sess.Events), g.Now())
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
func (g *Gateway) assertion(rt *route, id *identity, a assertionClaims, req requestTarget) (string, error) {
	now := g.Now()
	reusable := safeMethod(req.method)
	var key string
	if reusable {
		key = assertionKey(rt, id, &a, req)
		g.mu.Lock()
		c, ok := g.assertions[key]
		g.mu.Unlock()
		if ok && now.Before(c.expires) {
			return c.token, nil
		}
	}
	life := rt.assertionLife
	if life <= 0 {
		life = g.Options.AssertionLifetime
	}
	a.Issuer, a.Audience = g.Issuer, jwt.Audience{rt.audience}
	a.Method, a.URL = req.method, req.url
	a.IssuedAt, a.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(life))
	a.ID = rand.Text()
	tok, err := g.Signer.SignAssertion(a)
	if err != nil || !reusable {
		return tok, err
	}
	g.mu.Lock()
	if len(g.assertions) >= maxCachedAssertions {
		clear(g.assertions) // crude but bounded: the next requests re-sign
	}
	// Reused for half its life, so an upstream never receives one about
	// to expire.
	g.assertions[key] = cachedAssertion{token: tok, expires: now.Add(life / 2)}
	g.mu.Unlock()
	return tok, nil
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
