package app_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/config"
)

// TestForwardAuth checks the adapters for proxies that stay in front:
// Traefik/Caddy forward-auth and nginx auth_request answer from the same
// decision as the built-in proxy.
func TestForwardAuth(t *testing.T) {
	g := startGateway(t, withForwardRoute)
	b := gatewayBrowser(t, g.server)
	host := forwardHost(g)
	cookie := g.forwardSignIn(t, b, host)
	g.enrollTOTP(t, b) // so that MFA is reachable and a step-up, not a refusal, is the answer

	ask := func(path, method, uri string, withCookie bool, extra ...string) *http.Response {
		t.Helper()
		hdr := []string{}
		if path == "/gateway/forward-auth" {
			hdr = append(hdr, "X-Forwarded-Method", method, "X-Forwarded-Proto", "http", "X-Forwarded-Host", host, "X-Forwarded-Uri", uri)
		} else {
			// nginx: proxy_set_header X-Original-URI $request_uri;
			// X-Original-Method $request_method; X-Original-Host, the
			// route's host (examples/proxies/nginx.conf).
			hdr = append(hdr, "X-Original-Method", method, "X-Original-URI", uri, "X-Original-Host", host)
		}
		if withCookie {
			hdr = append(hdr, "Cookie", cookie)
		}
		hdr = append(hdr, extra...)
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest(http.MethodGet, g.base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	for _, ep := range []string{"/gateway/forward-auth", "/gateway/auth-request"} {
		t.Run(strings.TrimPrefix(ep, "/gateway/"), func(t *testing.T) {
			// Signed in: allowed, with the identity for the proxy to copy.
			resp := ask(ep, "GET", "/accounts", true, "X-Stepgate-User", "mallory")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Stepgate-User") != testUser || resp.Header.Get("X-Stepgate-Assertion") == "" {
				t.Fatalf("signed in: %d user %q", resp.StatusCode, resp.Header.Get("X-Stepgate-User"))
			}
			// Anonymous path: allowed without identity.
			if resp := ask(ep, "GET", "/public/rates", false); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Stepgate-User") != "" {
				t.Fatalf("anonymous path: %d %q", resp.StatusCode, resp.Header.Get("X-Stepgate-User"))
			}
			// Not signed in: Traefik gets a redirect to sign in; nginx a
			// 401 naming where to send the browser.
			resp = ask(ep, "GET", "/accounts", false)
			if ep == "/gateway/forward-auth" {
				if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/gateway/start?") {
					t.Fatalf("not signed in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
				}
			} else if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("X-Stepgate-Login"), "/gateway/start?") {
				t.Fatalf("not signed in: %d %s", resp.StatusCode, resp.Header.Get("X-Stepgate-Login"))
			}
			// A step-up rule asks for one, the same way.
			resp = ask(ep, "POST", "/transfers", true)
			loc := resp.Header.Get("Location") + resp.Header.Get("X-Stepgate-Login")
			if !strings.Contains(loc, "stepup=") {
				t.Fatalf("transfer without MFA: %d %s, want a step-up", resp.StatusCode, loc)
			}
			// Path tricks are refused here too.
			if resp := ask(ep, "GET", "/admin/../accounts", true); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("dot segments: %d", resp.StatusCode)
			}
			hostHeader := "X-Forwarded-Host"
			if ep == "/gateway/auth-request" {
				hostHeader = "X-Original-Host"
			}
			// The attacks: nginx passes the client's own headers on,
			// so a client-sent copy of the other proxy's set must not choose
			// what is judged (here it is refused, and the documented
			// configurations overwrite or remove it before it gets here).
			foreign := map[string][]string{
				"/gateway/auth-request": {"X-Forwarded-Uri", "/", "X-Forwarded-Method", "GET"},
				"/gateway/forward-auth": {"X-Original-URI", "/", "X-Original-Method", "GET"},
			}[ep]
			for i := 0; i < len(foreign); i += 2 {
				if resp := ask(ep, "POST", "/transfers", true, foreign[i], foreign[i+1]); resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("POST /transfers with a client's %s: %d, want 400", foreign[i], resp.StatusCode)
				}
			}
			if resp := ask(ep, "post", "/transfers", true); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("a lower-case method: %d, want 400", resp.StatusCode)
			}
			// A host no route answers is refused.
			resp = ask(ep, "GET", "/accounts", true, hostHeader, "evil.localhost")
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("unknown host: %d", resp.StatusCode)
			}
			// A route the built-in proxy serves is refused, with no
			// identity: an end user asking here (through any proxy)
			// would otherwise get a signed assertion for its upstream.
			resp = ask(ep, "GET", "/accounts", true, hostHeader, strings.TrimPrefix(g.app, "http://"))
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Stepgate-Assertion") != "" || resp.Header.Get("X-Stepgate-User") != "" {
				t.Fatalf("a built-in proxy's route: %d, assertion %q", resp.StatusCode, resp.Header.Get("X-Stepgate-Assertion"))
			}
		})
	}
}

// withForwardRoute adds route fa, the bank's rules at
// http://fa.localhost:PORT (Stepgate's own port) without a to:, for use
// through forward-auth only.
func withForwardRoute(cfg *config.Config) {
	bank := cfg.Gateway.Routes[0]
	u, _ := url.Parse(bank.From)
	cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{Name: "fa", From: "http://fa.localhost:" + u.Port(), Rules: bank.Rules})
}

// forwardHost is the host of the route withForwardRoute adds.
func forwardHost(g *gatewayRig) string {
	u, _ := url.Parse(g.app)
	return "fa.localhost:" + u.Port()
}

// forwardSignIn signs browser b in to the forward-auth route at host as
// a proxy in front would have it: Stepgate's answer to the proxy (a
// redirect, and the hand-off's binding cookie) goes to the browser,
// which signs in and comes back to the route's callback. It returns the
// gateway cookie the browser then holds.
func (g *gatewayRig) forwardSignIn(t *testing.T, b *http.Client, host string) string {
	t.Helper()
	resp := mustDo(t, b, "GET", g.base+"/gateway/forward-auth", "",
		"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", host, "X-Forwarded-Uri", "/accounts")
	appURL, _ := url.Parse("http://" + host)
	b.Jar.SetCookies(appURL, resp.Cookies())
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	g.walk(t, b, resp, noStepUp)
	for _, c := range b.Jar.Cookies(appURL) {
		if c.Name == "stepgate_gw" {
			return c.String()
		}
	}
	t.Fatalf("no gateway cookie for %s after the hand-off", host)
	return ""
}

// TestForwardAuthUntrustedPeer: the decision endpoints answer only the
// peers in gateway.trusted_proxies, by TCP address; a header naming a
// trusted address changes nothing.
func TestForwardAuthUntrustedPeer(t *testing.T) {
	g := startGateway(t, withForwardRoute, func(cfg *config.Config) { cfg.Gateway.TrustedProxies = []string{"192.0.2.0/24"} })
	host := forwardHost(g)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/gateway/forward-auth", "/gateway/auth-request"} {
		resp := mustDo(t, c, "GET", g.base+path, "", "Accept", "application/json",
			"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", host, "X-Forwarded-Uri", "/public/rates",
			"X-Forwarded-For", "192.0.2.7", "X-Real-IP", "192.0.2.7")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "gateway.trusted_proxies") {
			t.Errorf("%s from a peer not in gateway.trusted_proxies: %d %s, want 403 naming the setting", path, resp.StatusCode, body)
		}
	}
}
