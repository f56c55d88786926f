package app_test

import (
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// handOff follows redirects from resp like walk, and also returns the
// callback address the hand-off went through (empty if none) and the
// address the browser ends at: what its address bar shows.
func (g *gatewayRig) handOff(t *testing.T, c *http.Client, resp *http.Response, answer func(loc *url.URL) *http.Response) (final *http.Response, body, callback, at string) {
	t.Helper()
	for range 12 {
		if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
			final, body = g.walk(t, c, resp, answer)
			return final, body, callback, final.Request.URL.String()
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(loc.String(), g.base+"/login"):
			resp = g.signIn(t, c, loc.Query().Get("return_to"))
			continue
		case strings.HasPrefix(loc.String(), g.base+"/stepup"):
			resp = answer(loc)
			continue
		case strings.Contains(loc.Path, "/.stepgate/callback"):
			callback = loc.String()
		}
		resp = mustDo(t, c, "GET", loc.String(), "")
	}
	t.Fatal("no page after 12 redirects")
	return nil, "", "", ""
}

// upToCallback follows redirects from resp, stepping up with answer,
// up to the application's callback, and returns its address unvisited.
func (g *gatewayRig) upToCallback(t *testing.T, c *http.Client, resp *http.Response, answer func(loc *url.URL) *http.Response) string {
	t.Helper()
	for range 8 {
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("no redirect to the callback: %d", resp.StatusCode)
		}
		switch {
		case strings.Contains(loc.Path, "/.stepgate/callback"):
			return loc.String()
		case strings.HasPrefix(loc.String(), g.base+"/stepup"):
			resp = answer(loc)
		default:
			resp = mustDo(t, c, "GET", loc.String(), "")
		}
	}
	t.Fatal("no callback after 8 redirects")
	return ""
}

// totpAnswer steps up with a code from the authenticator app secret.
func (g *gatewayRig) totpAnswer(t *testing.T, b *http.Client, secret string) func(loc *url.URL) *http.Response {
	return func(loc *url.URL) *http.Response {
		t.Helper()
		_, page := get(t, b, loc.String())
		csrf, cer := formOf(t, page)
		r, _ := post(t, b, g.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
			"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {loc.Query().Get("return_to")}})
		return r
	}
}

// TestGatewayReloadAfterKeptForm: after a form kept across a step-up,
// the browser shows the upstream's answer at the form's own address,
// and reloading that address or the callback never errors and never
// sends the form again.
func TestGatewayReloadAfterKeptForm(t *testing.T) {
	g := startGateway(t)
	b := g.signedInGateway(t)
	secret := g.enrollTOTP(t, b)

	const form = "amount=100&to=DE89370400440532013000"
	resp, body, callback, at := g.handOff(t, b, mustDo(t, b, "POST", g.app+"/transfers", form), g.totpAnswer(t, b, secret))
	if resp.StatusCode != http.StatusOK || body != "upstream: POST /transfers" || callback == "" {
		t.Fatalf("transfer after step-up: %d %q (callback %q)", resp.StatusCode, body, callback)
	}
	if at != g.app+"/transfers" {
		t.Errorf("the address bar shows %s, want the form's own address %s", at, g.app+"/transfers")
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the held answer is served with Cache-Control %q, want no-store (Back must not show it again)", cc)
	}
	appURL, _ := url.Parse(g.app)
	for _, c := range b.Jar.Cookies(appURL) {
		if c.Name == "stepgate_gw_answer" {
			t.Errorf("the answer cookie outlives the answer it named")
		}
	}

	// Reload the address: a plain GET, answered by the application.
	resp, body = get(t, b, at)
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /transfers" {
		t.Errorf("ok/reload-address: %d %q, want the application's answer to GET", resp.StatusCode, body)
	}
	// Reload the callback (the address bar of an older browser, a
	// restored tab): on to the address with GET, no error.
	resp = mustDo(t, b, "GET", callback, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/transfers" {
		t.Fatalf("ok/reload-callback: %d %s, want 303 to /transfers", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = get(t, b, g.app+resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /transfers" {
		t.Errorf("ok/reload-callback: then %d %q", resp.StatusCode, body)
	}
	if n := g.upstream.count("POST", "/transfers"); n != 1 {
		t.Fatalf("fail/resend: the upstream received the transfer %d times, want once", n)
	}

	// Another browser with the spent callback link: refused, on a page
	// that leads somewhere.
	other := gatewayBrowser(t, g.server)
	resp, body = get(t, other, callback)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired or was already used") {
		t.Fatalf("fail/spent-ticket-elsewhere: %d\n%s", resp.StatusCode, body)
	}
	g.checkAppPage(t, other, resp, body)
	if n := g.upstream.count("POST", "/transfers"); n != 1 {
		t.Fatalf("fail/resend: the upstream received the transfer %d times, want once", n)
	}
}

// TestGatewayReloadAfterSingleUse: after a single-use step-up the
// browser shows the page at its own address; reloading it, or the
// callback, asks again: the proof was spent on the first request.
func TestGatewayReloadAfterSingleUse(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server)
	steps := 0
	password := func(loc *url.URL) *http.Response {
		steps++
		return g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
	}
	resp, body, callback, at := g.handOff(t, b, mustDo(t, b, "GET", g.app+"/admin/users?page=2", ""), password)
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /admin/users" || steps != 1 || callback == "" {
		t.Fatalf("admin after step-up: %d %q after %d step-ups (callback %q)", resp.StatusCode, body, steps, callback)
	}
	if at != g.app+"/admin/users?page=2" {
		t.Errorf("the address bar shows %s, want %s", at, g.app+"/admin/users?page=2")
	}
	for _, reload := range []string{at, callback} {
		resp := mustDo(t, b, "GET", reload, "")
		resp.Body.Close()
		if reload == callback {
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/users?page=2" {
				t.Fatalf("ok/reload-callback: %d %s, want 303 to the address", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp = mustDo(t, b, "GET", g.app+resp.Header.Get("Location"), "")
			resp.Body.Close()
		}
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "stepup=") {
			t.Errorf("ok/reload %s: %d %s, want a new step-up", reload, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if n := g.upstream.count("GET", "/admin/users"); n != 1 {
		t.Fatalf("fail/single-use: the upstream served /admin/users %d times on one proof", n)
	}
}

// TestGatewayHeldAnswerIsTheBrowsers: the answer to a replayed form is
// shown once, to the browser that sent the form. Its id, copied into
// another browser signed in as the same user (a leaked log line, a
// planted cookie), opens nothing, nor does presenting it twice.
func TestGatewayHeldAnswerIsTheBrowsers(t *testing.T) {
	g := startGateway(t)
	victim := g.signedInGateway(t)
	secret := g.enrollTOTP(t, victim)
	attacker := g.signedInGateway(t)
	appURL, _ := url.Parse(g.app)

	// The victim's transfer, up to the callback's answer.
	callback := g.upToCallback(t, victim, mustDo(t, victim, "POST", g.app+"/transfers", "amount=5&to=DE89370400440532013000"), g.totpAnswer(t, victim, secret))
	resp := mustDo(t, victim, "GET", callback, "")
	resp.Body.Close()
	var id string
	for _, c := range resp.Cookies() {
		if c.Name == "stepgate_gw_answer" {
			id = c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/transfers" || id == "" {
		t.Fatalf("callback: %d %s, answer cookie %q; want 303 to /transfers with the answer held", resp.StatusCode, resp.Header.Get("Location"), id)
	}

	plant := func(c *http.Client) {
		c.Jar.SetCookies(appURL, []*http.Cookie{{Name: "stepgate_gw_answer", Value: id, Path: "/"}})
	}
	plant(attacker)
	if _, body := get(t, attacker, g.app+"/transfers"); body != "upstream: GET /transfers" {
		t.Fatalf("fail/stolen-answer-id: another browser got %q", body)
	}
	if _, body := get(t, victim, g.app+"/transfers"); body != "upstream: POST /transfers" {
		t.Fatalf("ok/own-answer: the victim got %q, want the answer to their form", body)
	}
	plant(victim)
	if _, body := get(t, victim, g.app+"/transfers"); body != "upstream: GET /transfers" {
		t.Fatalf("fail/answer-twice: the answer was shown again: %q", body)
	}
	if n := g.upstream.count("POST", "/transfers"); n != 1 {
		t.Fatalf("the upstream received the transfer %d times, want once", n)
	}
}

// TestGatewayPagesOnTheAppHost: every page the gateway itself shows on
// an application's host takes its stylesheet from Stepgate (the
// application's /static/ is the application's, behind sign-in), sets
// none of Stepgate's cookies there, and has links that all lead
// somewhere.
func TestGatewayPagesOnTheAppHost(t *testing.T) {
	var dead string
	g := startGateway(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		dead = "http://dead.localhost:" + port
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{Name: "dead", From: dead, To: "http://127.0.0.1:1",
			Rules: []config.GatewayRule{{Path: "/*", Allow: "anonymous"}}})
	})
	b := g.signedInGateway(t)
	for _, tc := range []struct {
		name, url string
		status    int
		before    func()
	}{
		{name: "fail/path-trick", url: g.app + "/admin/../admin/users", status: http.StatusBadRequest},
		{name: "fail/unknown-ticket", url: g.app + "/.stepgate/callback?ticket=nope&target=%2Faccounts", status: http.StatusBadRequest},
		{name: "fail/upstream-down", url: dead + "/", status: http.StatusBadGateway},
		{name: "fail/blocked", url: g.app + "/admin/users", status: http.StatusForbidden, before: func() {
			g.usePolicies(t, `
policies:
  - name: no-bank-today
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1]}
    grant: block
`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			resp, body := get(t, b, tc.url)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: %d, want %d\n%s", tc.url, resp.StatusCode, tc.status, body)
			}
			g.checkAppPage(t, b, resp, body)
		})
	}
}

var (
	stylesheetRe = regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)"`)
	linkRe       = regexp.MustCompile(`<a href="([^"]+)"`)
)

// checkAppPage checks a page the gateway showed on an application's
// host: Stepgate's stylesheet, allowed by the page's CSP, no Stepgate
// cookie, and links that answer with a page or a redirect.
func (g *gatewayRig) checkAppPage(t *testing.T, c *http.Client, resp *http.Response, body string) {
	t.Helper()
	m := stylesheetRe.FindStringSubmatch(body)
	if m == nil || html.UnescapeString(m[1]) != g.base+"/static/style.css" {
		t.Fatalf("the page's stylesheet is %q, want Stepgate's %s:\n%s", m, g.base+"/static/style.css", body)
	}
	if css, _ := get(t, browser(t), g.base+"/static/style.css"); css.StatusCode != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("the stylesheet answers %d %s", css.StatusCode, css.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src "+g.base) || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("the page's CSP %q does not allow Stepgate's stylesheet or allows framing", csp)
	}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "stepgate_csrf") {
			t.Errorf("the page sets Stepgate's CSRF cookie on the application's host: %s", sc)
		}
	}
	links := linkRe.FindAllStringSubmatch(body, -1)
	if len(links) == 0 {
		t.Fatalf("the page has no way on:\n%s", body)
	}
	for _, l := range links {
		u := html.UnescapeString(l[1])
		if !strings.HasPrefix(u, "http://") {
			t.Errorf("link %q is relative: on the application's host it is the application's", u)
			continue
		}
		r := mustDo(t, c, "GET", u, "")
		r.Body.Close()
		if resp.StatusCode == http.StatusBadGateway && r.StatusCode == http.StatusBadGateway && strings.HasPrefix(u, "http://"+resp.Request.URL.Host+"/") {
			continue // the application is down: its link is the way to try again
		}
		if r.StatusCode >= 400 {
			t.Errorf("link %s answers %d", u, r.StatusCode)
		}
	}
}

// TestGatewayCrossSiteLinkToSingleUse: a link from another site to a
// single-use page (and a reload of one the hand-off led to, which
// Chromium sends as cross-site) asks for the step-up and opens the page
// once; a form another site posts is still refused.
func TestGatewayCrossSiteLinkToSingleUse(t *testing.T) {
	g := startGateway(t)
	b := g.signedInGateway(t)
	resp := mustDo(t, b, "GET", g.app+"/admin/users", "", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "kept=") {
		resp.Body.Close()
		t.Fatalf("ok/cross-site-link: %d %s, want the step-up with the request kept", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := g.walk(t, b, resp, func(loc *url.URL) *http.Response {
		return g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
	})
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /admin/users" {
		t.Fatalf("ok/cross-site-link: after the step-up %d %q", resp.StatusCode, body)
	}
	resp = mustDo(t, b, "POST", g.app+"/transfers", "amount=1&to=mallory", "Sec-Fetch-Site", "cross-site")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("fail/cross-site-form: %d, want 403", resp.StatusCode)
	}
}

// TestGatewayCallbackRace: the browser loads its callback several times
// at once (a double click, a reload during the redirect): the ticket is
// redeemed once, the kept form reaches the upstream once, and every
// other load goes on to the address with GET.
func TestGatewayCallbackRace(t *testing.T) {
	g := startGateway(t)
	b := g.signedInGateway(t)
	secret := g.enrollTOTP(t, b)
	callback := g.upToCallback(t, b, mustDo(t, b, "POST", g.app+"/transfers", "amount=7&to=DE89370400440532013000"), g.totpAnswer(t, b, secret))
	const n = 6
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := b.Get(callback)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusSeeOther {
			t.Errorf("a concurrent load of the callback answered %d, want 303", s)
		}
	}
	if c := g.upstream.count("POST", "/transfers"); c != 1 {
		t.Fatalf("fail/double-redemption: the upstream received the transfer %d times, want once", c)
	}
}
