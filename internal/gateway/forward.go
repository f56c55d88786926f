package gateway

import (
	"context"
	"net/http"
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

// original rebuilds the request a proxy asks about from its forwarded
// headers. Traefik and Caddy send X-Forwarded-Method/-Proto/-Host/-Uri;
// for nginx's auth_request the configuration sets X-Original-Method,
// X-Original-URI and X-Forwarded-Host (see docs/gateway.md).
func original(r *http.Request) (*http.Request, bool) {
	h := r.Header
	method := firstOf(h.Get("X-Forwarded-Method"), h.Get("X-Original-Method"), http.MethodGet)
	uri := firstOf(h.Get("X-Forwarded-Uri"), h.Get("X-Original-Uri"))
	host := firstOf(h.Get("X-Forwarded-Host"), r.Host)
	if uri == "" || uri[0] != '/' {
		return nil, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, false
	}
	// A shallow copy: the decision only reads the headers, which stay
	// those of the proxy's request (a callback clones them first).
	o := r.WithContext(context.WithValue(r.Context(), forwardKey{}, true))
	o.Method, o.Host, o.URL, o.RequestURI = strings.ToUpper(method), host, u, uri
	o.Body, o.ContentLength = http.NoBody, 0
	return o, true
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// forwardAuth answers Traefik's forwardAuth and Caddy's forward_auth:
// 200 with identity headers to let the request through, a redirect to
// sign in or step up, or 401/403.
func (g *Gateway) forwardAuth(w http.ResponseWriter, r *http.Request) {
	g.checkForwarded(w, r, false)
}

// authRequest answers nginx's auth_request, which understands only 2xx
// (allow), 401 and 403: a browser that must sign in or step up gets 401,
// and nginx's error_page sends it to the X-Stepgate-Login location this
// response names.
func (g *Gateway) authRequest(w http.ResponseWriter, r *http.Request) {
	g.checkForwarded(w, r, true)
}

func (g *Gateway) checkForwarded(w http.ResponseWriter, r *http.Request, nginx bool) {
	o, ok := original(r)
	if !ok {
		g.refuse(w, r, http.StatusBadRequest, "forward-auth needs X-Forwarded-Uri (or X-Original-URI) with the original request path")
		return
	}
	p, err := normalize(rawPath(o))
	if err != nil {
		g.refuse(w, r, http.StatusBadRequest, "The address of this request is not in a form the gateway accepts.")
		return
	}
	rt := find(g.routes, o.Host, p)
	if rt == nil {
		g.refuse(w, r, http.StatusForbidden, "No application is configured at this address.")
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
		g.setIdentity(w.Header(), rt, id, requestTarget{method: o.Method, url: rt.origin() + escapePath(p)})
		w.WriteHeader(http.StatusOK)
	})
}

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
