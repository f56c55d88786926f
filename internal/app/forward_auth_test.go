package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestForwardAuth checks the adapters for proxies that stay in front:
// Traefik/Caddy forward-auth and nginx auth_request answer from the same
// decision as the built-in proxy.
func TestForwardAuth(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server)
	// A gateway cookie for the bank host, as a browser gets it.
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in through the gateway: %d", resp.StatusCode)
	}
	appURL, _ := url.Parse(g.app)
	var cookie string
	for _, c := range b.Jar.Cookies(appURL) {
		if c.Name == "stepgate_gw" {
			cookie = c.String()
		}
	}
	if cookie == "" {
		t.Fatal("no gateway cookie for the bank host")
	}
	host := appURL.Host
	g.enrollTOTP(t, b) // so that MFA is reachable and a step-up, not a refusal, is the answer

	ask := func(path, method, uri string, withCookie bool, extra ...string) *http.Response {
		t.Helper()
		hdr := []string{}
		if path == "/gateway/forward-auth" {
			hdr = append(hdr, "X-Forwarded-Method", method, "X-Forwarded-Proto", "http", "X-Forwarded-Host", host, "X-Forwarded-Uri", uri)
		} else {
			// nginx: proxy_set_header X-Original-URI $request_uri;
			// X-Original-Method $request_method; X-Forwarded-Host $host.
			hdr = append(hdr, "X-Original-Method", method, "X-Original-URI", uri, "X-Forwarded-Host", host)
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
			// A host no route answers is refused.
			resp = ask(ep, "GET", "/accounts", true, "X-Forwarded-Host", "evil.localhost")
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("unknown host: %d", resp.StatusCode)
			}
		})
	}
}
