package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// echoed is what the echo upstream saw.
type echoed struct {
	Method, Target, Host string
	Header               http.Header
}

// startEchoGateway runs a gateway whose upstream answers with what it
// received as JSON, plus some special paths; the route's upstream URL
// has a base path and a query of its own.
func startEchoGateway(t *testing.T, up http.Handler, mutate func(*config.Config)) (*gatewayRig, *http.Client, string) {
	t.Helper()
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	g, b := signedInGateway(t, srv.URL+"/base/?tenant=7", func(cfg *config.Config) {
		cfg.Gateway.StripHeaders = []string{"X-Internal-Role"}
		if mutate != nil {
			mutate(cfg)
		}
	})
	return g, b, srv.Listener.Addr().String()
}

// signedInGateway runs Stepgate with the route bank (at
// bank.localhost) in front of upstream, after mutate, and returns a
// browser already signed in to it.
func signedInGateway(t *testing.T, upstream string, mutate func(*config.Config)) (*gatewayRig, *http.Client) {
	t.Helper()
	var app string
	s := startOIDC(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		app = "http://bank.localhost:" + port
		cfg.Gateway.Routes = []config.GatewayRoute{{Name: "bank", From: app, To: upstream}}
		mutate(cfg)
	})
	g := &gatewayRig{oidcServer: s, app: app}
	b := gatewayBrowser(t, s.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", app+"/", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	return g, b
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if len(body) > 0 {
		r.Header.Set("X-Body", string(body))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "X-Upstream-Private")
	w.Header().Set("X-Upstream-Private", "hop-by-hop")
	w.Header().Set("X-Upstream", "end-to-end")
	// An application trying to plant a gateway session of its choosing,
	// beside a cookie of its own.
	w.Header().Add("Set-Cookie", "stepgate_gw=planted-by-the-app; Path=/; HttpOnly")
	w.Header().Add("Set-Cookie", "theme=dark; Path=/settings") // a path the tests do not visit, so the jar keeps it to itself
	w.Header().Add("Set-Cookie", "stepgate_gw_bind=planted; Path=/")
	_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, Target: r.RequestURI, Host: r.Host, Header: r.Header})
}

// TestGatewayProxiedRequest: what reaches the upstream for a read (GET,
// HEAD) and for any other method is the same request: the canonical
// path joined to the
// upstream's base path, both queries, the client's end-to-end headers,
// the gateway's own X-Forwarded-* and identity, and never the client's
// hop-by-hop, identity, forwarding or configured strip headers.
func TestGatewayProxiedRequest(t *testing.T) {
	g, b, upAddr := startEchoGateway(t, http.HandlerFunc(echoHandler), nil)
	for _, method := range []string{"GET", "DELETE", "PUT"} {
		t.Run(method, func(t *testing.T) {
			body := ""
			if method == "PUT" {
				body = "amount=5"
			}
			resp := mustDo(t, b, method, g.app+"/accounts/42?view=full", body,
				"X-Stepgate-User", "mallory", "X-Stepgate-Assertion", "forged",
				"X-Forwarded-For", "203.0.113.9", "X-Forwarded-Host", "evil.example", "Forwarded", "for=203.0.113.9",
				"X-Internal-Role", "admin", "Connection", "X-Secret-Hop", "X-Secret-Hop", "dropped",
				"Accept-Language", "de", "Proxy-Authorization", "Basic Zm9vOmJhcg==", "Cookie", "theme=dark")
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			var e echoed
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("%v: %s", err, raw)
			}
			if e.Method != method || e.Target != "/base/accounts/42?tenant=7&view=full" || e.Host != upAddr {
				t.Fatalf("upstream saw %s %s (Host %s), want %s /base/accounts/42?tenant=7&view=full (Host %s)", e.Method, e.Target, e.Host, method, upAddr)
			}
			want := map[string]string{
				"X-Stepgate-User": testUser, "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": strings.TrimPrefix(g.app, "http://"),
				"X-Forwarded-Proto": "http", "Accept-Language": "de", "X-Internal-Role": "", "X-Secret-Hop": "", "Forwarded": "",
				"Proxy-Authorization": "", "Connection": "",
				// The application's own cookies pass; the gateway's never do.
				"Cookie": "theme=dark",
			}
			for k, v := range want {
				if got := strings.Join(e.Header[k], ","); got != v {
					t.Errorf("upstream header %s = %q, want %q", k, got, v)
				}
			}
			if a := e.Header.Get("X-Stepgate-Assertion"); a == "" || a == "forged" {
				t.Errorf("assertion %q: want the gateway's own", a)
			}
			if got := resp.Header["Set-Cookie"]; len(got) != 1 || got[0] != "theme=dark; Path=/settings" {
				t.Errorf("Set-Cookie reaching the client: %q, want the application's own cookie only", got)
			}
			if resp.Header.Get("X-Upstream") != "end-to-end" || resp.Header.Get("X-Upstream-Private") != "" {
				t.Errorf("answer headers: X-Upstream %q (want end-to-end), X-Upstream-Private %q (want none: hop-by-hop)",
					resp.Header.Get("X-Upstream"), resp.Header.Get("X-Upstream-Private"))
			}
		})
	}
	resp := mustDo(t, b, "HEAD", g.app+"/accounts", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestGatewayForwardingHeaders: a client's own addressing, forwarding
// and rewriting headers never reach the upstream, for a read (GET) or a
// write (POST, DELETE): each arrives replaced by
// the gateway's value or not at all, in any case and with underscores
// for dashes (as CGI-style servers read them).
func TestGatewayForwardingHeaders(t *testing.T) {
	g, b, _ := startEchoGateway(t, http.HandlerFunc(echoHandler), nil)
	host := strings.TrimPrefix(g.app, "http://")
	replaced := map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Host": host, "X-Forwarded-Proto": "http",
	}
	// Method overrides and URL rewrites (X-HTTP-Method-Override,
	// X-Original-URL, ...) are not here: the gateway refuses a request
	// that carries them (TestRuleMatchingVariants).
	forged := []string{
		"X-Real-IP", "X-Client-IP", "True-Client-IP", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Prefix", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
		"X-Forwarded-Uri", "X-Forwarded-Method", "X-Original-Forwarded-For", "X-Original-URI",
		"X-Original-Host", "X-Original-Method", "Forwarded", "X-Forwarded", "Forwarded-For",
		"CF-Connecting-IP", "CF-Connecting-IPv6", "CF-Visitor", "CF-IPCountry", "Fastly-Client-IP", "X-Cluster-Client-IP",
		"X-Remote-IP", "X-Remote-Addr", "X-Originating-IP", "X-Host", "Client-IP", "X-ProxyUser-IP",
		"X-Envoy-External-Address", "X-Azure-ClientIP", "X-AppEngine-User-IP", "Akamai-Client-IP",
		"Remote-User", "Remote-Groups", "X-Remote-User", "X-Auth-Request-Email", "X-Auth-Request-User", "X-WEBAUTH-USER",
		"X-Authenticated-User", "X-Auth-User", "X-Pomerium-Jwt-Assertion", "Cf-Access-Authenticated-User-Email",
		"X-Goog-Authenticated-User-Email", "X-Goog-Iap-Jwt-Assertion", "X-Amzn-Oidc-Identity", "X-MS-CLIENT-PRINCIPAL-NAME",
		"x-real-ip", "X_Real_IP", "X_Forwarded_For", "x_forwarded_host", "X_Stepgate_User", "X_Internal_Role",
	}
	for _, method := range []string{"GET", "POST", "DELETE"} {
		t.Run(method, func(t *testing.T) {
			req, err := http.NewRequest(method, g.app+"/accounts", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range forged {
				// Set the name as written, not canonicalized, as a raw client would.
				req.Header[k] = []string{"203.0.113.66"}
			}
			// An application's own headers of similar names still pass.
			req.Header.Set("X-Client-Version", "2.1")
			req.Header.Set("X-Request-Id", "r-1")
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			var e echoed
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("%v: %s", err, raw)
			}
			for k, vv := range e.Header {
				for _, v := range vv {
					if strings.Contains(v, "203.0.113.66") {
						t.Errorf("the client's value reached the upstream in %s: %q", k, v)
					}
				}
			}
			for k, want := range replaced {
				if got := strings.Join(e.Header[k], ","); got != want {
					t.Errorf("upstream %s = %q, want the gateway's %q", k, got, want)
				}
			}
			if e.Header.Get("X-Client-Version") != "2.1" || e.Header.Get("X-Request-Id") != "r-1" {
				t.Errorf("the application's own headers were dropped: %v", e.Header)
			}
		})
	}
}

// TestGatewayEarlyHintsCookies: an upstream cannot plant the gateway's
// cookie through an informational answer (103 Early Hints), which the
// proxy passes on before the final one; its Link still passes.
func TestGatewayEarlyHintsCookies(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Link", "</style.css>; rel=preload; as=style")
		h.Add("Set-Cookie", "stepgate_gw=planted; Path=/")
		h.Add("Set-Cookie", "=stepgate_gw=planted; Path=/accounts")
		h.Add("Set-Cookie", "theme=dark; Path=/settings")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Set-Cookie")
		h.Del("Link")
		io.WriteString(w, "final")
	})
	g, b, _ := startEchoGateway(t, up, nil)
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			var hints []http.Header
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, http.Header(h).Clone())
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), method, g.app+"/accounts", nil)
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "final" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			for _, h := range hints {
				for _, c := range h["Set-Cookie"] {
					if strings.Contains(c, "stepgate_gw") {
						t.Errorf("an informational answer set the gateway's cookie: %q", c)
					}
				}
			}
			if len(hints) != 1 || hints[0].Get("Link") == "" || len(hints[0]["Set-Cookie"]) != 1 {
				t.Errorf("early hints reaching the client: %v, want the Link and the application's own cookie", hints)
			}
		})
	}
}

// TestGatewayRequestTrailers: identity and forwarding headers sent as
// request trailers (which some servers merge into the headers) do not
// reach the upstream either; other trailers do.
func TestGatewayRequestTrailers(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = json.NewEncoder(w).Encode(r.Trailer)
	})
	g, b, _ := startEchoGateway(t, up, nil)
	req, _ := http.NewRequest("POST", g.app+"/accounts", io.MultiReader(strings.NewReader("a=1")))
	req.Trailer = http.Header{"X-Real-Ip": {"203.0.113.66"}, "X-Stepgate-User": {"mallory"}, "X_Forwarded_For": {"203.0.113.66"}, "X-Checksum": {"abc"}}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got http.Header
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Only the names are compared here; the values' arrival is
	// TestProxyRequestBodies' (internal/gateway).
	if _, ok := got["X-Checksum"]; !ok || len(got) != 1 {
		t.Fatalf("trailers reaching the upstream: %v, want only X-Checksum", got)
	}
}

// TestGatewayForwardedClientAddress: behind a trusted proxy, the
// upstream's X-Forwarded-For and X-Real-IP carry the client address the
// proxy reported; a client's own claim beyond the trusted hops is not
// believed.
func TestGatewayForwardedClientAddress(t *testing.T) {
	g, b, _ := startEchoGateway(t, http.HandlerFunc(echoHandler), func(cfg *config.Config) {
		cfg.Server.TrustedProxies = []string{"127.0.0.1/32"}
	})
	for _, tc := range []struct {
		name, xff, want string
	}{
		{"ok/proxy-reports-client", "198.51.100.7", "198.51.100.7"},
		{"ok/client-claim-before-proxy", "10.9.9.9, 198.51.100.7", "198.51.100.7"},
		{"ok/no-header", "", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"GET", "POST"} {
				var kv []string
				if tc.xff != "" {
					kv = []string{"X-Forwarded-For", tc.xff}
				}
				resp := mustDo(t, b, method, g.app+"/accounts", "", kv...)
				var e echoed
				err := json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if got, realIP := strings.Join(e.Header["X-Forwarded-For"], ","), e.Header.Get("X-Real-Ip"); got != tc.want || realIP != tc.want {
					t.Errorf("%s: upstream X-Forwarded-For %q, X-Real-IP %q, want %q", method, got, realIP, tc.want)
				}
			}
		})
	}
}

// TestGatewayUpstreamConnections: kept-alive upstream connections that
// the upstream closes while idle are replaced without the client seeing
// an error; a client that goes away frees the upstream at once; trailers
// arrive.
func TestGatewayUpstreamConnections(t *testing.T) {
	var conns atomic.Int64
	cancelled := make(chan struct{}, 1)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/base/hang":
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
			case <-time.After(20 * time.Second):
			}
			return
		case "/base/trailer":
			w.Header().Set("Trailer", "X-Checksum")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "payload")
			w.Header().Set("X-Checksum", "abc123")
			return
		}
		io.WriteString(w, "ok")
	})
	g, b, srv := startCountingGateway(t, up, &conns, nil)
	get := func(path string) (int, string) {
		resp := mustDo(t, b, "GET", g.app+path, "")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}

	// Reuse, then the upstream drops every idle connection: the next
	// requests still succeed, on new connections.
	before := conns.Load()
	for range 5 {
		if code, body := get("/x"); code != http.StatusOK || body != "ok" {
			t.Fatalf("GET /x: %d %q", code, body)
		}
	}
	if n := conns.Load() - before; n > 1 {
		t.Fatalf("five sequential reads opened %d upstream connections, want at most 1 (kept alive)", n)
	}
	srv.CloseClientConnections()
	for range 3 {
		if code, body := get("/x"); code != http.StatusOK || body != "ok" {
			t.Fatalf("after the upstream closed its idle connections: %d %q", code, body)
		}
	}

	resp := mustDo(t, b, "GET", g.app+"/trailer", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "payload" || resp.Trailer.Get("X-Checksum") != "abc123" {
		t.Fatalf("trailer: body %q, X-Checksum %q", body, resp.Trailer.Get("X-Checksum"))
	}

	// A client that gives up (upstream_timeout is 30 s): the upstream's
	// request is cancelled.
	appURL, _ := url.Parse(g.app)
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	cookie := ""
	for _, c := range b.Jar.Cookies(appURL) {
		cookie = c.String()
	}
	fmt.Fprintf(conn, "GET /hang HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n\r\n", appURL.Host, cookie)
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(15 * time.Second):
		t.Fatal("the upstream request outlived the client that made it")
	}
}

// TestGatewayUpstreamTimeout: an upstream that does not answer within
// gateway.upstream_timeout gets the client a 502, for reads and writes.
func TestGatewayUpstreamTimeout(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/base/slow" {
			time.Sleep(1500 * time.Millisecond)
		}
		io.WriteString(w, "answer")
	})
	g, b, _ := startCountingGateway(t, up, nil, func(cfg *config.Config) { cfg.Gateway.UpstreamTimeout = config.Duration(time.Second) })
	for _, method := range []string{"GET", "DELETE"} {
		resp := mustDo(t, b, method, g.app+"/slow", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%s from an upstream slower than upstream_timeout: %d, want 502", method, resp.StatusCode)
		}
	}
}

// startCountingGateway runs a signed-in gateway in front of up (at base
// path /base), counting new upstream connections in conns when not nil.
func startCountingGateway(t *testing.T, up http.Handler, conns *atomic.Int64, mutate func(*config.Config)) (*gatewayRig, *http.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(up)
	if conns != nil {
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	g, b := signedInGateway(t, srv.URL+"/base", func(cfg *config.Config) {
		cfg.Gateway.UpstreamTimeout = config.Duration(30 * time.Second)
		if mutate != nil {
			mutate(cfg)
		}
	})
	return g, b, srv
}

// TestGatewayIdentityHeaderChoices: a route sends the identity its
// application asks for — all of it, only the signed assertion, only the
// plain headers, or none — for reads and writes, and whatever it sends, a
// client's own X-Stepgate-* headers never pass.
func TestGatewayIdentityHeaderChoices(t *testing.T) {
	for _, tc := range []struct {
		choice           string
		plain, assertion bool
	}{
		{config.IdentityAll, true, true},
		{config.IdentityAssertion, false, true},
		{config.IdentityPlain, true, false},
		{config.IdentityNone, false, false},
	} {
		t.Run(tc.choice, func(t *testing.T) {
			g, b, _ := startEchoGateway(t, http.HandlerFunc(echoHandler), func(cfg *config.Config) {
				cfg.Gateway.Routes[0].IdentityHeaders = tc.choice
			})
			for _, method := range []string{"GET", "PUT"} {
				resp := mustDo(t, b, method, g.app+"/accounts", "",
					"X-Stepgate-User", "mallory", "X-Stepgate-Assertion", "forged", "X-Stepgate-Groups", "admins")
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var e echoed
				if err := json.Unmarshal(raw, &e); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: status %d: %s", method, resp.StatusCode, raw)
				}
				user, groups, assertion := e.Header.Get("X-Stepgate-User"), e.Header.Get("X-Stepgate-Groups"), e.Header.Get("X-Stepgate-Assertion")
				if wantUser := map[bool]string{true: testUser}[tc.plain]; user != wantUser || groups != "" {
					t.Errorf("%s: X-Stepgate-User %q, X-Stepgate-Groups %q; want %q and none", method, user, groups, wantUser)
				}
				if got := e.Header.Get("X-Stepgate-Acr") != ""; got != tc.plain {
					t.Errorf("%s: X-Stepgate-Acr sent: %v, want %v", method, got, tc.plain)
				}
				if got := strings.Count(assertion, ".") == 2; got != tc.assertion || assertion == "forged" {
					t.Errorf("%s: assertion %q, want one signed by the gateway: %v", method, assertion, tc.assertion)
				}
			}
		})
	}
}
