package app_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// TestBrowserDeadEnds, in Chromium: alice (password and authenticator
// app) signs in to a client, is offered a passkey, answers "Not now" and
// the client gets its code; the administrator then follows the policies
// page's link to the dead ends and reads alice as fixable and bob
// (password only, no registration window) as stuck. Signed in again,
// alice takes the offer: a step-up with her app, the passkey made, and
// on to the client with no further stop.
func TestBrowserDeadEnds(t *testing.T) {
	b := newBrowserRig(t, func(cfg *config.Config) {
		cfg.Registration.Window = 0
		cfg.Registration.Campaign.Enabled = true
	})
	s := &consoleRig{oidcServer: b.s}
	ctx := context.Background()
	s.admin = addUser(t, s.app.Users, adminName, adminPassword, admin.Role)
	s.bob = addUser(t, s.app.Users, bobName, bobPassword)
	secret, _, err := s.app.Methods.TOTP.EnrollNow(ctx, s.user, "phone")
	if err != nil {
		t.Fatal(err)
	}
	b.run("set the window size", chromedp.EmulateViewport(1280, 900))

	// alice signs in to the client: the offer comes first.
	b.authorize("")
	b.waitFor("the sign-in page", `location.pathname === "/login"`)
	b.run("sign in as alice",
		chromedp.SendKeys(chromedp.ID("username"), testUser),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
	)
	b.waitFor("the registration offer", `location.pathname === "/account/register-offer" && document.getElementById("offer-register") !== null`)
	if text := b.text(); !strings.Contains(text, "Add passkey or security key to your account") || !strings.Contains(text, "fixable by registering webauthn") {
		t.Errorf("the offer says:\n%s", text)
	}
	href, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("offer-register").getAttribute("href")`))
	if u, err := url.Parse(href); err != nil || u.Path != "/account/security/add" || u.Query().Get("method") != "webauthn" ||
		!strings.HasPrefix(u.Query().Get("return_to"), "/oauth2/authorize") {
		t.Errorf("Register now leads to %q, want the passkey's registration and back to the client's authorization", href)
	}
	b.act("click Not now", `document.querySelector('#offer-snooze button').click()`)
	claims := b.awaitCode()
	if claims["sub"] != s.user.ID {
		t.Errorf("the client's ID token is for %v, want alice", claims["sub"])
	}
	b.signOut()

	// The administrator reads the dead ends from the policies page.
	b.run("sign in to the console",
		chromedp.Navigate(b.base+"/login?return_to="+url.QueryEscape("/admin/policies")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), adminName),
		chromedp.SendKeys(chromedp.ID("password"), adminPassword),
		chromedp.Submit(chromedp.ID("password")),
	)
	b.waitFor("the policies page", `location.pathname === "/admin/policies" && document.getElementById("dead-ends") !== null`)
	b.act("click Dead ends", `document.getElementById("dead-ends").click()`)
	b.waitFor("the dead-end page", `location.pathname === "/admin/policies/deadends" && document.querySelector('section[data-policy="c3-phishing-resistant"]') !== null`)
	verdict := func(policy, user string) string {
		v, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector('section[data-policy="`+policy+`"] tr[data-user="`+user+`"] [data-verdict]'); return e ? e.dataset.verdict : "" })()`))
		return v
	}
	if got := verdict("c3-phishing-resistant", testUser); got != "fixable" {
		t.Errorf("alice on c3-phishing-resistant: %q, want fixable", got)
	}
	if got := verdict("c2-mfa", bobName); got != "stuck" {
		t.Errorf("bob on c2-mfa: %q, want stuck", got)
	}
	if got := verdict("c2-mfa", testUser); got != "" {
		t.Errorf("alice on c2-mfa: %q, want her not listed: her app meets it", got)
	}
	b.signOut()

	// alice signs in again and takes the offer: a fresh proof with her
	// app opens the registration, the rig's virtual device makes the passkey,
	// and the sign-in goes on to the client without another stop.
	b.authorize("")
	b.waitFor("the sign-in page", `location.pathname === "/login"`)
	b.run("sign in as alice",
		chromedp.SendKeys(chromedp.ID("username"), testUser),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
	)
	b.waitFor("the registration offer", `location.pathname === "/account/register-offer" && document.getElementById("offer-register") !== null`)
	b.act("click Register now", `document.getElementById("offer-register").click()`)
	b.waitFor("the step-up for the registration", `location.pathname === "/stepup" && document.getElementById("code") !== null`)
	b.run("step up with TOTP", chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now().Add(30*time.Second))), chromedp.Submit(chromedp.ID("code")))
	b.usePasskey("register the passkey")
	claims = b.awaitCode()
	if claims["sub"] != s.user.ID {
		t.Errorf("after registering, the client's ID token is for %v, want alice", claims["sub"])
	}
	creds, err := s.app.Store.ListCredentials(ctx, s.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Type == "webauthn" }) {
		t.Errorf("alice's methods after Register now: %+v, want a passkey", creds)
	}
}
