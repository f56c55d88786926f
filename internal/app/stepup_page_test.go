package app_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// untilStepUp follows a browser's redirects from resp, signing in when
// asked, and returns the step-up page's address it arrives at.
func (g *gatewayRig) untilStepUp(t *testing.T, c *http.Client, resp *http.Response) *url.URL {
	t.Helper()
	for range 10 {
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("no step-up: status %d", resp.StatusCode)
		}
		switch loc.Path {
		case "/stepup":
			return loc
		case "/login":
			resp = g.signIn(t, c, loc.Query().Get("return_to"))
		default:
			resp = mustDo(t, c, "GET", loc.String(), "")
		}
	}
	t.Fatal("no step-up after 10 redirects")
	return nil
}

var stepUpTagRe = regexp.MustCompile(`<[^>]*>|\s+`)

// stepUpPage opens the step-up page at loc with its methods= hint
// replaced by hint (an attacker's edit) and returns its text and HTML.
func stepUpPage(t *testing.T, c *http.Client, loc *url.URL, hint string) (text, html string) {
	t.Helper()
	q := loc.Query()
	q.Set("methods", hint)
	u := *loc
	u.RawQuery = q.Encode()
	resp, body := get(t, c, u.String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("step-up page: %d\n%s", resp.StatusCode, body)
	}
	text = strings.Join(strings.Fields(stepUpTagRe.ReplaceAllString(body, " ")), " ")
	text = strings.ReplaceAll(text, "&#39;", "'")
	return text, body
}

// TestStepUpPageThroughServer walks to the step-up page through the
// gateway (a kept transfer, a single-use page, a max_age page, a page
// no method of the user's can open) and the OIDC provider (acr_values),
// with the page's methods= hint edited to offer the password, and checks
// what the page says and offers: the facts come from the server, not
// from the address.
func TestStepUpPageThroughServer(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) {
		cfg.WebAuthn.RPID = "localhost"
		cfg.WebAuthn.Origins = []string{"http://localhost"}
		cfg.Gateway.Routes[0].Rules = append(cfg.Gateway.Routes[0].Rules,
			config.GatewayRule{Path: "/vault/*", Context: "c2", Elevation: "single-use"},
			config.GatewayRule{Path: "/root/*", Context: "c3"})
	})
	b := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in through the gateway: %d", resp.StatusCode)
	}
	secret := g.enrollTOTP(t, b)
	creds, err := g.server.app.Store.ListCredentials(context.Background(), g.user.ID)
	if err != nil || len(creds) != 1 {
		t.Fatalf("credentials: %v %v", creds, err)
	}
	added := "added on " + creds[0].CreatedAt.UTC().Format("2 Jan")

	check := func(t *testing.T, text, html string, want []string, offered string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("the page does not say %q:\n%s", w, text)
			}
		}
		switch offered {
		case "totp":
			if !strings.Contains(html, `name="code"`) || strings.Contains(html, `name="password"`) || strings.Contains(html, `id="method-password"`) {
				t.Errorf("want the authenticator app's form alone:\n%s", html)
			}
		case "none":
			if strings.Contains(html, `name="password"`) || strings.Contains(html, `name="code"`) || strings.Contains(html, `id="method-`) {
				t.Errorf("want no method offered:\n%s", html)
			}
		}
	}

	t.Run("ok/gateway-c2-totp", func(t *testing.T) {
		loc := g.untilStepUp(t, b, mustDo(t, b, "POST", g.app+"/transfers", "amount=100&to=x"))
		text, html := stepUpPage(t, b, loc, "password")
		check(t, text, html, []string{"Application bank", "Action High-value transaction",
			"Your organisation asks for a second factor for this action.", "Get the code from the authenticator app you " + added + " (“My phone”)."}, "totp")
		// The step-up completes, and the kept transfer goes through.
		csrf, cer := formOf(t, html)
		resp, _ := post(t, b, g.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
			"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {loc.Query().Get("return_to")}})
		if resp, body := g.walk(t, b, resp, noStepUp); resp.StatusCode != http.StatusOK || body != "upstream: POST /transfers" {
			t.Fatalf("the transfer after the step-up: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("ok/single-use-reask", func(t *testing.T) {
		loc := g.untilStepUp(t, b, mustDo(t, b, "GET", g.app+"/vault/keys", ""))
		text, _ := stepUpPage(t, b, loc, "webauthn")
		check(t, text, "", []string{"High-value transaction", "This page needs a proof made just now (single use)", added}, "")
	})
	t.Run("ok/max-age", func(t *testing.T) {
		time.Sleep(2100 * time.Millisecond) // /statements has max_age 2s
		loc := g.untilStepUp(t, b, mustDo(t, b, "GET", g.app+"/statements", ""))
		text, _ := stepUpPage(t, b, loc, "")
		check(t, text, "", []string{"Application bank", "Your last sign-in is older than 2 seconds, the most this page accepts."}, "")
	})
	t.Run("fail/no-usable-method", func(t *testing.T) {
		// The gateway refuses on the application's host; a step-up page
		// reached for the same request says what to do.
		back := "/gateway/start?" + url.Values{"route": {"bank"}, "target": {"/root/x"}, "b": {strings.Repeat("0", 64)}}.Encode()
		loc, _ := url.Parse(g.base + "/stepup?" + url.Values{"return_to": {back}}.Encode())
		text, html := stepUpPage(t, b, loc, "password,totp")
		check(t, text, html, []string{"Admin action", "None of your sign-in methods can give this proof", "It needs a passkey or security key.",
			"You can add one now.", "Or ask your administrator"}, "none")
		const add = "/account/security/add?method=webauthn"
		if !strings.Contains(html, `href="`+add+`"`) {
			t.Fatalf("no link to add a passkey:\n%s", html)
		}
		// The link works: alice's TOTP proof is fresh, as the
		// registration rules ask, so it opens the registration.
		resp, body := get(t, b, g.base+add)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-kind="webauthn-register"`) {
			t.Fatalf("the add link answers %d, want the passkey registration:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("ok/oidc-acr-values", func(t *testing.T) {
		c := browser(t)
		resp, _ := get(t, c, g.authorizeURL(url.Values{"acr_values": {"c2"}}))
		loc := g.untilStepUp(t, c, resp)
		text, html := stepUpPage(t, c, loc, "password")
		check(t, text, html, []string{"Application Web app", "Action High-value transaction", "a second factor", added}, "totp")
	})
}
