package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// forwardRig is a gateway with a forward-auth route (fa.example, no
// upstream) and a route its own proxy serves (bank.example).
func forwardRig(t *testing.T) *http.ServeMux {
	t.Helper()
	cfg := Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.1.0.0/16")},
		Routes: []Route{
			{Name: "fa", From: "http://fa.example", Rules: []Rule{{Path: "/public/*", Anonymous: true}}},
			{Name: "bank", From: "http://bank.example", To: "http://127.0.0.1:9", Rules: []Rule{{Path: "/public/*", Anonymous: true}}},
		},
	}
	g, err := New(Deps{
		Issuer: "http://sso.example", Options: cfg, Log: slog.New(slog.DiscardHandler),
		ErrorPage: func(w http.ResponseWriter, _ *http.Request, status int, msg string) { http.Error(w, msg, status) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	mux := http.NewServeMux()
	g.Mount(mux)
	return mux
}

// TestForwardedHeaderSets: each decision endpoint reads exactly its
// proxy's header set, once each, with a canonical method, from a
// trusted peer; anything else is refused before any decision.
func TestForwardedHeaderSets(t *testing.T) {
	mux := forwardRig(t)
	nginx := map[string]string{"X-Original-Method": "GET", "X-Original-Uri": "/public/rates", "X-Original-Host": "fa.example"}
	traefik := map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/public/rates", "X-Forwarded-Host": "fa.example", "X-Forwarded-Proto": "http"}
	type tc struct {
		name   string
		path   string
		peer   string
		set    map[string]string // base headers, changed by edit
		edit   func(h http.Header)
		status int
		msg    string // part of the refusal
	}
	var cases []tc
	for _, ep := range []struct {
		path        string
		own, others map[string]string
	}{{"/gateway/auth-request", nginx, traefik}, {"/gateway/forward-auth", traefik, nginx}} {
		name := strings.TrimPrefix(ep.path, "/gateway/")
		first := len(cases)
		cases = append(cases,
			tc{name: name + "/ok/anonymous-path", set: ep.own, status: http.StatusOK},
			tc{name: name + "/ok/ipv6-loopback-peer", peer: "[::1]:4000", set: ep.own, status: http.StatusOK},
			tc{name: name + "/ok/ipv4-mapped-peer", peer: "[::ffff:10.1.2.3]:4000", set: ep.own, status: http.StatusOK},
			tc{name: name + "/fail/untrusted-peer", peer: "203.0.113.9:4000", set: ep.own, status: http.StatusForbidden, msg: "gateway.trusted_proxies"},
			tc{name: name + "/fail/untrusted-peer-claims-loopback", peer: "203.0.113.9:4000", set: ep.own, status: http.StatusForbidden,
				edit: func(h http.Header) { h.Set("X-Forwarded-For", "127.0.0.1"); h.Set("X-Real-Ip", "127.0.0.1") }},
			tc{name: name + "/fail/builtin-proxy-route", set: ep.own, status: http.StatusForbidden, msg: "served by Stepgate's own proxy",
				edit: func(h http.Header) { h.Set(hostHeader(h), "bank.example") }},
			tc{name: name + "/fail/absolute-uri", set: ep.own, status: http.StatusBadRequest, msg: "must start with /",
				edit: func(h http.Header) { h.Set(uriHeader(h), "http://fa.example/public/rates") }},
		)
		for _, h := range [][2]string{{"X-HTTP-Method-Override", "POST"}, {"X-HTTP-Method", "DELETE"}, {"X-Method-Override", "PUT"},
			{"X-Original-URL", "/admin/"}, {"X-Rewrite-URL", "/admin/"}} {
			cases = append(cases, tc{name: name + "/fail/override-" + h[0], set: ep.own, status: http.StatusBadRequest, msg: "another request than the one judged",
				edit: func(hd http.Header) { hd.Add(h[0], h[1]) }})
		}
		// An upgrade to a protocol that carries requests of its own:
		// the proxy in front would join the connections (Caddy does),
		// and the client would send the application requests no rule
		// judged. A WebSocket upgrade is judged as the request it is.
		cases = append(cases, tc{name: name + "/ok/websocket-upgrade", set: ep.own, status: http.StatusOK,
			edit: func(h http.Header) { h.Set("Connection", "Upgrade"); h.Set("Upgrade", "websocket") }})
		for _, up := range [][2]string{{"h2c", "h2c"}, {"upper-case", "H2C"}, {"http2-token", "HTTP/2.0"}, {"h2", "h2"},
			{"after-websocket", "websocket, h2c"}, {"tls-rfc2817", "TLS/1.2"}, {"no-connection-header", "h2c"}} {
			cases = append(cases, tc{name: name + "/fail/upgrade-" + up[0], set: ep.own, status: http.StatusBadRequest, msg: "carries requests of its own",
				edit: func(h http.Header) {
					if up[0] != "no-connection-header" {
						h.Set("Connection", "Upgrade, HTTP2-Settings")
					}
					h.Set("Upgrade", up[1])
				}})
		}
		cases = append(cases, tc{name: name + "/fail/upgrade-second-line", set: ep.own, status: http.StatusBadRequest, msg: "carries requests of its own",
			edit: func(h http.Header) { h.Set("Connection", "Upgrade"); h["Upgrade"] = []string{"websocket", "h2c"} }})
		// Even naming the same method: applications read these headers
		// differently, so none is let through.
		cases = append(cases, tc{name: name + "/fail/override-to-same-method", set: ep.own, status: http.StatusBadRequest,
			edit: func(h http.Header) { h.Set("X-HTTP-Method-Override", "get") }})
		for _, u := range [][2]string{{"fragment", "/public/rates#x"}, {"fragment-in-query", "/public/rates?a#b"}, {"space", "/public/ra tes"},
			{"tab", "/public/rates\t"}, {"delete", "/public/\x7f"}} {
			cases = append(cases, tc{name: name + "/fail/uri-" + u[0], set: ep.own, status: http.StatusBadRequest, msg: "no request target does",
				edit: func(h http.Header) { h.Set(uriHeader(h), u[1]) }})
		}
		for k := range ep.others {
			cases = append(cases, tc{name: name + "/fail/foreign-" + k, set: ep.own, status: http.StatusBadRequest, msg: k + " is for",
				edit: func(h http.Header) { h.Set(k, ep.others[k]) }})
		}
		for k, v := range ep.own {
			cases = append(cases,
				tc{name: name + "/fail/twice-" + k, set: ep.own, status: http.StatusBadRequest, msg: "sent 2 times",
					edit: func(h http.Header) { h.Add(k, v) }},
				tc{name: name + "/fail/missing-" + k, set: ep.own, status: http.StatusBadRequest, msg: k + " is missing",
					edit: func(h http.Header) { h.Del(k) }})
		}
		for _, m := range []string{"get", "Get", "post", "gET", " GET", "GET ", "G\tET", "GET,POST", ""} {
			cases = append(cases, tc{name: name + "/fail/method-" + strings.TrimSpace(m), set: ep.own, status: http.StatusBadRequest, msg: "upper-case HTTP method",
				edit: func(h http.Header) { h.Set(methodHeader(h), m) }})
		}
		if ep.own["X-Forwarded-Proto"] != "" {
			cases = append(cases,
				tc{name: name + "/fail/proto-mismatch", set: ep.own, status: http.StatusBadRequest, msg: "answers http://fa.example",
					edit: func(h http.Header) { h.Set("X-Forwarded-Proto", "https") }},
				tc{name: name + "/fail/proto-unknown", set: ep.own, status: http.StatusBadRequest, msg: "neither http nor https",
					edit: func(h http.Header) { h.Set("X-Forwarded-Proto", "ftp") }})
		}
		for i := first; i < len(cases); i++ {
			cases[i].path = ep.path
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://sso.example"+c.path, nil)
			r.RemoteAddr = "127.0.0.1:4000"
			if c.peer != "" {
				r.RemoteAddr = c.peer
			}
			r.Header.Set("Accept", "application/json")
			for k, v := range c.set {
				r.Header.Set(k, v)
			}
			if c.edit != nil {
				c.edit(r.Header)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			body, _ := io.ReadAll(w.Result().Body)
			if w.Code != c.status || !strings.Contains(string(body), c.msg) {
				t.Fatalf("%s: %d %s, want %d with %q", c.path, w.Code, body, c.status, c.msg)
			}
		})
	}
}

// headerOf returns the name, in h, of whichever set's header has suffix.
func headerOf(h http.Header, suffix string) string {
	if _, ok := h["X-Original-Uri"]; ok {
		return "X-Original-" + suffix
	}
	return "X-Forwarded-" + suffix
}

func hostHeader(h http.Header) string   { return headerOf(h, "Host") }
func uriHeader(h http.Header) string    { return headerOf(h, "Uri") }
func methodHeader(h http.Header) string { return headerOf(h, "Method") }

func TestCanonicalMethod(t *testing.T) {
	for m, want := range map[string]bool{
		"GET": true, "POST": true, "M-SEARCH": true, "VERSION_CONTROL": true,
		"": false, "get": false, "Post": false, "-GET": false, "GET1": false, "PO ST": false,
		"POſT": false, strings.Repeat("A", 33): false,
	} {
		if got := canonicalMethod(m); got != want {
			t.Errorf("canonicalMethod(%q) = %v, want %v", m, got, want)
		}
	}
}

// FuzzForwardedHeaders: whatever a proxy (or a client through it) puts
// in the headers, reading them never panics, and what is accepted is a
// canonical method and a request path without a fragment.
func FuzzForwardedHeaders(f *testing.F) {
	f.Add("GET", "/admin/", "fa.example", "http")
	f.Add("post", "/admin#x", "fa.example", "https")
	f.Add("GET", "//evil.example/a?b#c", "", "ftp")
	f.Add("M-SEARCH", "/%2e%2e/%zz", "FA.example:443", "http")
	f.Fuzz(func(t *testing.T, method, uri, host, proto string) {
		h := http.Header{"X-Forwarded-Method": {method}, "X-Forwarded-Uri": {uri}, "X-Forwarded-Host": {host}, "X-Forwarded-Proto": {proto}}
		fr, err := forwardHeaders.read(h, nginxHeaders)
		if err != nil {
			return
		}
		if !canonicalMethod(fr.method) || fr.uri == "" || fr.uri[0] != '/' || strings.ContainsAny(fr.uri, "# \t") {
			t.Fatalf("accepted %+v", fr)
		}
		o, err := original(httptest.NewRequest(http.MethodGet, "/gateway/forward-auth", nil), fr)
		if err != nil {
			return
		}
		_, _ = normalize(rawPath(o))
	})
}

// TestHeaderNamesCanonical: the forward-auth adapters read their header
// sets and the method and path overrides from the header map directly,
// which holds the names Go's server received in canonical form. A name
// written in any other form would never be found, so a client's own
// X-Original-Uri beside the proxy's, or an X-HTTP-Method-Override,
// would go unseen and unrefused.
func TestHeaderNamesCanonical(t *testing.T) {
	t.Parallel()
	names := append(append(nginxHeaders.names(), forwardHeaders.names()...), append(methodOverrides, pathOverrides...)...)
	for _, n := range names {
		if c := http.CanonicalHeaderKey(n); c != n {
			t.Errorf("header name %q is not canonical (%q): the map read would never find it", n, c)
		}
	}
}
