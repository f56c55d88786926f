package app_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/config"
)

// pathVariant is one way of writing a request, and what the gateway must
// do with it for a signed-in user with a password only: refuse it (400)
// or ask for the rule's step-up. "pass" is a routine request that goes
// through under the default rule.
type pathVariant struct {
	name, method, path, want string
	header                   []string
}

// bankVariants are the bypasses and their relatives on a route
// with the demo bank's rules (see docs/gateway.md's table).
var bankVariants = []pathVariant{
	{name: "ok/transfer", method: "POST", path: "/transfers", want: "stepup"},
	{name: "ok/transfer-slash", method: "POST", path: "/transfers/", want: "stepup"},
	{name: "ok/transfer-format", method: "POST", path: "/transfers.json", want: "stepup"},
	{name: "ok/transfer-case", method: "POST", path: "/TRANSFERS", want: "stepup"},
	{name: "ok/admin", method: "GET", path: "/admin/", want: "stepup"},
	{name: "ok/admin-no-slash", method: "GET", path: "/admin", want: "stepup"},
	{name: "ok/customers-format", method: "GET", path: "/customers.json", want: "stepup"},
	{name: "ok/customers-head", method: "HEAD", path: "/customers", want: "stepup"},
	{name: "ok/admin-trailing-space", method: "GET", path: "/admin%20", want: "stepup"},
	{name: "ok/routine", method: "GET", path: "/accounts", want: "pass"},
	{name: "fail/transfer-parameter", method: "POST", path: "/transfers;x=1", want: "400"},
	{name: "fail/transfer-encoded-parameter", method: "POST", path: "/transfers%3Bx=1", want: "400"},
	{name: "fail/transfer-long-s", method: "POST", path: "/tran%C5%BFfers", want: "400"},
	{name: "fail/method-lower", method: "post", path: "/transfers", want: "400"},
	{name: "fail/method-mixed", method: "Post", path: "/transfers", want: "400"},
	{name: "fail/method-override", method: "POST", path: "/accounts", header: []string{"X-HTTP-Method-Override", "DELETE"}, want: "400"},
	{name: "fail/method-override-query", method: "POST", path: "/accounts?_method=DELETE", want: "400"},
	{name: "fail/method-override-query-php-dot", method: "POST", path: "/accounts?.method=DELETE", want: "400"},
	{name: "fail/method-override-query-php-nul", method: "POST", path: "/accounts?_method%00=DELETE", want: "400"},
	{name: "fail/original-url", method: "GET", path: "/accounts", header: []string{"X-Original-URL", "/admin/"}, want: "400"},
	{name: "fail/admin-jsessionid", method: "GET", path: "/admin;jsessionid=x", want: "400"},
	{name: "fail/admin-dot-dot-parameter", method: "GET", path: "/x/..;/admin/", want: "400"},
	{name: "fail/admin-dotless-i", method: "GET", path: "/adm%C4%B1n/", want: "400"},
	{name: "fail/admin-fullwidth", method: "GET", path: "/%EF%BD%81dmin/", want: "400"},
}

// openVariants are the same on a route that opts in to ';' parameters
// and non-ASCII paths: they meet the rule they are read as.
var openVariants = []pathVariant{
	{name: "ok/opt-in/transfer-parameter", method: "POST", path: "/transfers;x=1", want: "stepup"},
	{name: "ok/opt-in/transfer-long-s", method: "POST", path: "/tran%C5%BFfers", want: "stepup"},
	{name: "ok/opt-in/admin-jsessionid", method: "GET", path: "/admin;jsessionid=x", want: "stepup"},
	{name: "ok/opt-in/admin-dotless-i", method: "GET", path: "/adm%C4%B1n/", want: "stepup"},
	{name: "ok/opt-in/customers-fullwidth", method: "GET", path: "/%EF%BD%83ustomers", want: "stepup"},
	{name: "ok/opt-in/routine-parameter", method: "GET", path: "/accounts;v=1", want: "pass"},
	{name: "fail/opt-in/admin-dot-dot-parameter", method: "GET", path: "/x/..;/admin/", want: "400"},
	{name: "fail/opt-in/method-lower", method: "post", path: "/transfers", want: "400"},
}

// variantRules are the demo bank's rules, with contexts the test
// policies make a user signed in with a password step up for (c1
// single-use: a new proof every time; c2: a second factor).
var variantRules = []config.GatewayRule{
	{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
	{Path: "/admin/*", Context: "c1", Elevation: "single-use"},
	{Path: "/customers/*", Methods: []string{"GET"}, Context: "c2"},
	{Path: "/public/*", Allow: "anonymous"},
}

// startVariantGateway runs the gateway with the bank route (defaults)
// and an "open" route that opts in, both in front of upstream (the
// recording one when empty); it returns the two public origins.
func startVariantGateway(t *testing.T, upstream string) (g *gatewayRig, bank, open string) {
	t.Helper()
	g = startGateway(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		open = "http://open.localhost:" + port
		to := cfg.Gateway.Routes[0].To
		if upstream != "" {
			to = upstream
		}
		cfg.Gateway.Routes[0].To, cfg.Gateway.Routes[0].Rules = to, variantRules
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{Name: "open", App: "bank", From: open, To: to,
			Rules: variantRules, AllowPathParameters: true, AllowNonASCIIPaths: true})
	})
	return g, g.app, open
}

// signedInAt signs browser b in through the gateway at origin with a
// routine read.
func (g *gatewayRig) signedInAt(t *testing.T, b *http.Client, origin string) {
	t.Helper()
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, body := g.walk(t, b, mustDo(t, b, "GET", origin+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in through the gateway at %s: %d %q", origin, resp.StatusCode, body)
	}
}

// tryVariant sends v as signed-in browser b and reports what happened:
// "400", "stepup" (a redirect to the step-up page), "pass" (another
// answer than a redirect or 400) or the unexpected status.
func tryVariant(t *testing.T, b *http.Client, origin string, v pathVariant) string {
	t.Helper()
	// A form posted from the application's own pages, as a browser
	// marks it.
	header := append([]string{"Origin", origin, "Sec-Fetch-Site", "same-origin"}, v.header...)
	resp := mustDo(t, b, v.method, origin+v.path, "", header...)
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		return "400"
	case resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "stepup="):
		return "stepup"
	case resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound:
		return "pass"
	}
	return resp.Status + " to " + resp.Header.Get("Location")
}

// TestGatewayRuleVariants: with alice's password alone, no way of
// writing a protected request gets past its rule through the gateway:
// each is refused or asks for the step-up, and none reaches the
// upstream. Routine requests still pass, and the opted-in route forwards
// ';' parameters as sent.
func TestGatewayRuleVariants(t *testing.T) {
	g, bank, open := startVariantGateway(t, "")
	b := gatewayBrowser(t, g.server)
	g.signedInAt(t, b, bank)
	g.signedInAt(t, b, open)
	g.enrollTOTP(t, b) // so that c2 asks for it rather than refusing outright
	for _, set := range []struct {
		origin   string
		variants []pathVariant
	}{{bank, bankVariants}, {open, openVariants}} {
		for _, v := range set.variants {
			t.Run(v.name, func(t *testing.T) {
				before := len(g.upstream.all())
				got := tryVariant(t, b, set.origin, v)
				if got != v.want {
					t.Fatalf("%s %s: %s, want %s", v.method, v.path, got, v.want)
				}
				reached := len(g.upstream.all()) - before
				if want := map[bool]int{true: 1, false: 0}[v.want == "pass"]; reached != want {
					t.Fatalf("%s %s reached the upstream %d times, want %d", v.method, v.path, reached, want)
				}
			})
		}
	}
	if n := g.upstream.count("GET", "/accounts;v=1"); n != 1 {
		t.Errorf("the opted-in route forwarded /accounts;v=1 %d times, want once as sent", n)
	}
}

// TestForwardAuthRuleVariants: nginx's auth_request asks about the same
// variants, on a route used only through forward-auth, and gets the same
// answers: 400, or 401 naming the step-up.
func TestForwardAuthRuleVariants(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{Name: "fa", App: "bank", From: "http://fa.localhost:" + port, Rules: variantRules})
	})
	b := gatewayBrowser(t, g.server)
	host := forwardHost(g)
	cookie := g.forwardSignIn(t, b, host)
	g.enrollTOTP(t, b)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ask := func(v pathVariant) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.base+"/gateway/auth-request", nil)
		// As docs/gateway.md's nginx configuration sets them.
		req.Header.Set("X-Original-Method", v.method)
		req.Header.Set("X-Original-URI", v.path)
		req.Header.Set("X-Original-Host", host)
		req.Header.Set("Cookie", cookie)
		for i := 0; i+1 < len(v.header); i += 2 {
			req.Header.Set(v.header[i], v.header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, v := range bankVariants {
		t.Run(v.name, func(t *testing.T) {
			resp := ask(v)
			got := resp.Status
			switch {
			case resp.StatusCode == http.StatusBadRequest:
				got = "400"
			case resp.StatusCode == http.StatusUnauthorized && strings.Contains(resp.Header.Get("X-Stepgate-Login"), "stepup="):
				got = "stepup"
			case resp.StatusCode == http.StatusOK:
				got = "pass"
			}
			if got != v.want {
				t.Fatalf("auth_request for %s %s: %s, want %s", v.method, v.path, got, v.want)
			}
		})
	}
}

// TestGatewayRequestTargetAndHost: which route judges a request is the
// host Go's server gives it, the same one the request is proxied under,
// however the client writes it: an absolute-form target naming the bank
// with Stepgate's own Host header is judged by the bank's rules; one
// naming Stepgate with the bank's Host header, a host with a trailing
// dot, or no Host at all never reaches the bank. The host's case does
// not matter.
func TestGatewayRequestTargetAndHost(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server)
	g.signedInAt(t, b, g.app)
	appURL, _ := url.Parse(g.app)
	own, _ := url.Parse(g.base)
	var cookies []string
	for _, c := range b.Jar.Cookies(appURL) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	cookie := "Cookie: " + strings.Join(cookies, "; ") + "\r\n"
	send := func(head string) *http.Response {
		t.Helper()
		conn, err := net.Dial("tcp", own.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, head+cookie+"Connection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	bankHost, port := appURL.Host, appURL.Port()
	for _, tc := range []struct{ name, head, want string }{
		{"ok/absolute-form-names-the-bank", "GET http://" + bankHost + "/admin/ HTTP/1.1\r\nHost: " + own.Host + "\r\n", "stepup"},
		{"ok/host-in-upper-case", "GET /admin/ HTTP/1.1\r\nHost: " + strings.ToUpper(bankHost) + "\r\n", "stepup"},
		{"fail/absolute-form-names-stepgate", "GET http://" + own.Host + "/admin/ HTTP/1.1\r\nHost: " + bankHost + "\r\n", "not the bank"},
		{"fail/host-trailing-dot", "GET /admin/ HTTP/1.1\r\nHost: bank.localhost.:" + port + "\r\n", "not the bank"},
		{"fail/http-1.0-without-host", "GET /admin/ HTTP/1.0\r\n", "not the bank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(g.upstream.all())
			resp := send(tc.head)
			got := "not the bank"
			switch {
			case resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "stepup="):
				got = "stepup"
			case len(g.upstream.all()) > before:
				got = "reached the bank"
			}
			if got != tc.want {
				t.Fatalf("%q: %s (%d %s), want %s", tc.head, got, resp.StatusCode, resp.Header.Get("Location"), tc.want)
			}
		})
	}
}
