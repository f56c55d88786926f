package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Mount registers the gateway's endpoints on Stepgate's own host: the
// hand-off, and the forward-auth adapters for proxies that stay in front.
func (g *Gateway) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /gateway/start", g.Start)
	mux.HandleFunc("GET /gateway/forward-auth", g.forwardAuth)
	mux.HandleFunc("GET /gateway/auth-request", g.authRequest)
}

type forwardKey struct{}

// forwarded reports whether r is a forward-auth check: the proxy in front
// holds the request, so its body cannot be kept and replayed here.
func forwarded(r *http.Request) bool { return r.Context().Value(forwardKey{}) != nil }

// headerSet is the one set of headers a decision endpoint reads to learn
// which request its proxy asks about.
//
// Each endpoint reads exactly one set, and a request that also carries
// the other endpoint's set is refused. Reading both (the first one
// present winning) let a client choose what was judged: nginx passes the
// client's own headers on to the auth subrequest, so a client-sent
// X-Forwarded-Uri: / had /admin/ judged as /, and X-Forwarded-Method: GET
// had a POST judged as a GET.
type headerSet struct {
	proxy                    string // for messages
	method, uri, host, proto string // canonical header names; proto "" when the proxy sends none
}

var (
	// nginxHeaders are what the documented nginx auth_request location
	// sets with proxy_set_header (docs/gateway.md).
	nginxHeaders = headerSet{proxy: "nginx auth_request", method: "X-Original-Method", uri: "X-Original-Uri", host: "X-Original-Host"}
	// forwardHeaders are what Traefik's forwardAuth and Caddy's
	// forward_auth send.
	forwardHeaders = headerSet{proxy: "Traefik and Caddy forward-auth", method: "X-Forwarded-Method", uri: "X-Forwarded-Uri", host: "X-Forwarded-Host", proto: "X-Forwarded-Proto"}
)

func (s headerSet) names() []string {
	if s.proto == "" {
		return []string{s.method, s.uri, s.host}
	}
	return []string{s.method, s.uri, s.host, s.proto}
}

// badForwarded describes a request a decision endpoint cannot judge:
// what is wrong, and how the proxy's configuration fixes it.
func badForwarded(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// forwardedRequest is the request a proxy asks about, as its headers
// describe it.
type forwardedRequest struct {
	method, uri, host, proto string
}

// read takes the request the proxy asks about from exactly this set's
// headers. Every header must be there once: two values mean a client's
// copy travelled beside the proxy's, and either could be the one judged.
// The names are canonical (TestHeaderNamesCanonical), so the header map
// is read directly: every request of a forward-auth proxy comes here.
func (s headerSet) read(h http.Header, other headerSet) (forwardedRequest, error) {
	for _, name := range [...]string{other.method, other.uri, other.host, other.proto} {
		if name != "" && len(h[name]) > 0 {
			return forwardedRequest{}, badForwarded("%s is for %s, not for this endpoint, which reads only %s; the proxy in front must overwrite or remove it (see docs/gateway.md)",
				name, other.proxy, strings.Join(s.names(), ", "))
		}
	}
	var f forwardedRequest
	var err error
	if f.method, err = s.one(h, s.method); err != nil {
		return forwardedRequest{}, err
	}
	if f.uri, err = s.one(h, s.uri); err != nil {
		return forwardedRequest{}, err
	}
	if f.host, err = s.one(h, s.host); err != nil {
		return forwardedRequest{}, err
	}
	if s.proto != "" {
		if f.proto, err = s.one(h, s.proto); err != nil {
			return forwardedRequest{}, err
		}
	}
	if !canonicalMethod(f.method) {
		// An upstream that upper-cases methods (Werkzeug does) would run
		// "post" as POST, while a rule for POST does not match "post".
		return forwardedRequest{}, badForwarded("%s %q is not an upper-case HTTP method like GET or POST", s.method, f.method)
	}
	if f.uri == "" || f.uri[0] != '/' {
		return forwardedRequest{}, badForwarded("%s %q is not a request path; it must start with /", s.uri, f.uri)
	}
	if i := strings.IndexFunc(f.uri, func(c rune) bool { return c <= ' ' || c == 0x7f || c == '#' }); i >= 0 {
		// nginx passes "/admin#x" on as it came, which would be judged as
		// a path of its own while Werkzeug and Express drop the "#x" and
		// serve /admin. A request target never holds '#', spaces or
		// control characters.
		return forwardedRequest{}, badForwarded("%s %q holds %q, which no request target does", s.uri, f.uri, f.uri[i])
	}
	if f.host == "" {
		return forwardedRequest{}, badForwarded("%s is empty; it must name the application's host", s.host)
	}
	if s.proto != "" && f.proto != "http" && f.proto != "https" {
		return forwardedRequest{}, badForwarded("%s %q is neither http nor https", s.proto, f.proto)
	}
	return f, nil
}

// one is the single value of header name, which the set requires.
func (s headerSet) one(h http.Header, name string) (string, error) {
	switch v := h[name]; len(v) {
	case 0:
		return "", badForwarded("%s is missing; %s must send %s (see docs/gateway.md)", name, s.proxy, strings.Join(s.names(), ", "))
	case 1:
		return v[0], nil
	default:
		return "", badForwarded("%s is sent %d times; the proxy in front must set it once, overwriting any copy the client sent", name, len(v))
	}
}

// Method and path overrides make common frameworks read a request as
// another method or path than its request line says: Express's
// method-override, Spring's and Symfony's method overrides, and the
// X-Original-URL/X-Rewrite-URL of IIS-style rewriting that Symfony and
// Zend honoured. The proxy in front passes them on to the application,
// so a request carrying one would be judged as one request and run as
// another.
var (
	methodOverrides = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}
	pathOverrides   = []string{"X-Original-Url", "X-Rewrite-Url"}
)

// rereadBy returns the header, if any, with which the application could
// read the request as another method or path than the one judged.
func rereadBy(h http.Header, method string) string {
	// Canonical names (TestHeaderNamesCanonical), read from the map
	// directly.
	for _, k := range pathOverrides {
		if len(h[k]) > 0 {
			return k
		}
	}
	for _, k := range methodOverrides {
		for _, v := range h[k] {
			if !strings.EqualFold(strings.TrimSpace(v), method) { // the method itself changes nothing
				return k
			}
		}
	}
	return ""
}

// canonicalMethod reports whether m is a method token in its canonical,
// upper-case form (letters, '-' and '_', as nginx accepts).
func canonicalMethod(m string) bool {
	if m == "" || len(m) > 32 || m[0] < 'A' || m[0] > 'Z' {
		return false
	}
	for i := range len(m) {
		if c := m[i]; (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// original rebuilds the request a proxy asks about.
func original(r *http.Request, f forwardedRequest) (*http.Request, error) {
	u, err := url.ParseRequestURI(f.uri)
	if err != nil {
		return nil, badForwarded("the request path %q cannot be parsed: %v", f.uri, err)
	}
	// A shallow copy: the decision only reads the headers, which stay
	// those of the proxy's request (a callback clones them first).
	o := r.WithContext(context.WithValue(r.Context(), forwardKey{}, true))
	o.Method, o.Host, o.URL, o.RequestURI = f.method, f.host, u, f.uri
	o.Body, o.ContentLength = http.NoBody, 0
	return o, nil
}

// trustedPeer reports whether the TCP peer (never a header, which anyone
// can send) is one of gateway.trusted_proxies. Anyone else could ask
// what any request would get and collect the identity headers.
func (g *Gateway) trustedPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardAuth answers Traefik's forwardAuth and Caddy's forward_auth:
// 200 with identity headers to let the request through, a redirect to
// sign in or step up, or 401/403.
func (g *Gateway) forwardAuth(w http.ResponseWriter, r *http.Request) {
	g.checkForwarded(w, r, forwardHeaders, nginxHeaders, false)
}

// authRequest answers nginx's auth_request, which understands only 2xx
// (allow), 401 and 403: a browser that must sign in or step up gets 401,
// and nginx's error_page sends it to the X-Stepgate-Login location this
// response names.
func (g *Gateway) authRequest(w http.ResponseWriter, r *http.Request) {
	g.checkForwarded(w, r, nginxHeaders, forwardHeaders, true)
}

func (g *Gateway) checkForwarded(w http.ResponseWriter, r *http.Request, set, other headerSet, nginx bool) {
	if !g.trustedPeer(r) {
		g.refuse(w, r, http.StatusForbidden, "This address answers only the proxies listed in gateway.trusted_proxies.")
		return
	}
	f, err := set.read(r.Header, other)
	if err != nil {
		g.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if up := smugglingUpgrade(r.Header); up != "" {
		// Were the application to switch, the client would send it
		// requests for any path over the joined connections, none of
		// them judged here (h2c smuggling).
		g.refuse(w, r, http.StatusBadRequest, "The request asks to upgrade to "+up+", which carries requests of its own that no rule would judge; send it without the upgrade (curl: --http1.1), or have the proxy in front drop Upgrade: "+up+" (see docs/gateway.md).")
		return
	}
	if k := rereadBy(r.Header, f.method); k != "" {
		g.refuse(w, r, http.StatusBadRequest, "The request carries "+k+", with which the application could read it as another request than the one judged.")
		return
	}
	o, err := original(r, f)
	if err != nil {
		g.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p, err := normalize(rawPath(o))
	if err != nil {
		g.refuse(w, r, http.StatusBadRequest, "The address of this request is not in a form the gateway accepts.")
		return
	}
	rt := find(g.routes, o.Host, p)
	switch {
	case rt == nil:
		g.refuse(w, r, http.StatusForbidden, "No application is configured at this address.")
		return
	case rt.upstream != nil:
		// The built-in proxy serves this route and hands its upstream the
		// identity itself. Answering here would give the signed assertion
		// to whoever asks (an end user, through any proxy that forwards
		// it), who could then present it to the upstream directly.
		g.refuse(w, r, http.StatusForbidden, "Route "+rt.name+" is served by Stepgate's own proxy (it has a to:), not through forward-auth; leave its to: empty to put it behind your own proxy.")
		return
	case f.proto != "" && f.proto != rt.scheme:
		g.refuse(w, r, http.StatusBadRequest, set.proto+" is "+f.proto+" but route "+rt.name+" answers "+rt.origin()+"; make the route's from match the address users reach.")
		return
	}
	out := w
	if nginx {
		out = &redirectTo401{ResponseWriter: w}
	}
	if p == rt.prefix+callbackPath {
		o.Header = o.Header.Clone() // a replay sets the request's cookie
		g.callback(out, o, rt)
		return
	}
	g.handle(out, o, rt, p, func(w http.ResponseWriter, o *http.Request, id *identity, p string) {
		// The identity goes back in the response for the proxy to copy
		// onto the upstream request (Traefik authResponseHeaders, Caddy
		// copy_headers, nginx auth_request_set). The assertion authorizes
		// the original request, as the proxy in front received it.
		g.setIdentity(w.Header(), rt, id, requestKey{method: o.Method, path: p, public: true})
		nameEveryIdentityHeader(w.Header())
		w.WriteHeader(http.StatusOK)
	})
}

// identityHeaderNames are the identity headers the documented proxy
// configurations copy onto the upstream request.
var identityHeaderNames = []string{headerUser, headerEmail, headerGroups, headerAcr, headerAmr, headerAuthTime, headerAssertion}

// nameEveryIdentityHeader gives each identity header the answer lacks an
// empty value. Caddy 2.6's copy_headers otherwise sends the application
// the unexpanded variable ("{http.reverse_proxy.header.X-Stepgate-User}")
// as the value of a header the answer lacks, which an application could
// take for a user name.
func nameEveryIdentityHeader(h http.Header) {
	for _, k := range identityHeaderNames {
		if _, ok := h[k]; !ok {
			h[k] = emptyHeaderValue
		}
	}
}

// emptyHeaderValue is one empty value, shared by every answer: its length
// is its capacity, so an Add copies it rather than write into it.
var emptyHeaderValue = []string{""}[:1:1]

// redirectTo401 turns redirects into 401 with the target in
// X-Stepgate-Login, for nginx's auth_request.
type redirectTo401 struct {
	http.ResponseWriter
}

func (w *redirectTo401) WriteHeader(status int) {
	if status == http.StatusSeeOther || status == http.StatusFound {
		w.Header().Set("X-Stepgate-Login", w.Header().Get("Location"))
		w.Header().Del("Location")
		status = http.StatusUnauthorized
	}
	w.ResponseWriter.WriteHeader(status)
}
