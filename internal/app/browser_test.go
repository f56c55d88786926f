package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/config"
)

// chromiumPath is Debian's Chromium, which make browser-deps installs.
const chromiumPath = "/usr/bin/chromium"

// skipWithoutChromium skips a browser test on a machine without
// Chromium, unless STEPGATE_REQUIRE_BROWSER=1 (as make test sets it) makes
// that a failure.
func skipWithoutChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("STEPGATE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("%s is missing and STEPGATE_REQUIRE_BROWSER=1: run make browser-deps", chromiumPath)
		}
		t.Skipf("%s is missing: run make browser-deps (Debian's chromium) to run the browser test", chromiumPath)
	}
}

// browserRig is a real Chromium driving a server whose issuer is
// http://localhost:PORT (WebAuthn needs a host name as relying party id,
// and browsers allow it over plain http only on localhost), with an OIDC
// client whose redirect URI records the codes it receives.
type browserRig struct {
	t        *testing.T
	s        *oidcServer
	ctx      context.Context
	base     string
	callback string
	codes    chan url.Values
}

func newBrowserRig(t *testing.T, extra ...func(*config.Config)) *browserRig {
	t.Helper()
	skipWithoutChromium(t)
	b := &browserRig{t: t, codes: make(chan url.Values, 1)}
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r) // the browser asks for /favicon.ico too
			return
		}
		select {
		case b.codes <- r.URL.Query():
		default:
		}
		fmt.Fprint(w, "<!doctype html><title>client</title><p id=client-done>done</p>")
	}))
	t.Cleanup(cb.Close)
	b.callback = cb.URL + "/callback"
	b.s = startOIDC(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		b.base = "http://localhost:" + port
		cfg.Server.Issuer = b.base
		cfg.WebAuthn.RPID = "localhost"
		cfg.WebAuthn.Origins = []string{b.base}
		for i := range cfg.OIDC.Clients {
			if cfg.OIDC.Clients[i].ID == otherClientID {
				cfg.OIDC.Clients[i].RedirectURIs = []string{b.callback}
			}
		}
		for _, f := range extra {
			f(cfg)
		}
	})
	b.ctx = newBrowser(t)
	return b
}

// fail reports what went wrong with where the browser is and what it shows.
func (b *browserRig) fail(format string, args ...any) {
	b.t.Helper()
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
	b.t.Fatalf("%s\nat %s:\n%s", fmt.Sprintf(format, args...), loc, body)
}

func (b *browserRig) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// waitFor polls expr until it is true. A page that navigates away
// mid-evaluation fails that one evaluation, so errors are retried until
// the deadline.
func (b *browserRig) waitFor(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	b.fail("%s: %s never became true (last error %v)", what, expr, last)
}

func (b *browserRig) signInWithPassword() {
	b.t.Helper()
	b.run("sign in with a password",
		chromedp.Navigate(b.base+"/login"),
		chromedp.SendKeys(chromedp.ID("username"), testUser),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
	)
	b.waitFor("the account page after password sign-in", `location.pathname === "/account"`)
}

func (b *browserRig) signOut() {
	b.t.Helper()
	b.run("sign out", chromedp.Navigate(b.base+"/logout"), chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	b.waitFor("the sign-in page after sign-out", `location.pathname === "/login"`)
}

// authorize opens the client's authorization request for acr.
func (b *browserRig) authorize(acr string) {
	b.t.Helper()
	q := url.Values{
		"client_id": {otherClientID}, "redirect_uri": {b.callback}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st-1"}, "nonce": {"n-1"}, "acr_values": {acr},
	}
	b.run("open the authorization request", chromedp.Navigate(b.base+"/oauth2/authorize?"+q.Encode()))
}

// awaitCode waits for the client to receive a code, redeems it and
// returns the ID token's claims.
func (b *browserRig) awaitCode() map[string]any {
	b.t.Helper()
	select {
	case q := <-b.codes:
		if q.Get("code") == "" {
			b.t.Fatalf("the client got no code: %v", q)
		}
		status, tok := b.s.tokenRequest(b.t, url.Values{
			"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {b.callback},
		}, otherClientID, otherSecret)
		if status != http.StatusOK {
			b.t.Fatalf("code exchange: %d %s %s", status, tok.Error, tok.ErrorDescription)
		}
		// The code reaches the client before the browser has finished
		// loading its page; a navigation started now could be aborted
		// by that load, so the next step waits for the page.
		b.waitFor("the client's page", `document.getElementById("client-done") !== null`)
		return jwtClaims(b.t, tok.IDToken)
	case <-time.After(20 * time.Second):
		b.fail("no code reached the client")
	}
	return nil
}

// TestBrowserPasskeys drives a real Chromium with a CDP virtual
// authenticator (CTAP2, built in, resident keys, user verification)
// through the whole passkey life: password sign-in, enrolling a passkey,
// a phishing-resistant step-up for an OIDC client, sign-out, and a
// passwordless sign-in that alone satisfies phishing-resistant.
func TestBrowserPasskeys(t *testing.T) {
	b := newBrowserRig(t)
	s := b.s

	// 1. Password sign-in, then enroll a passkey on the security page.
	b.signInWithPassword()
	b.run("enroll a passkey",
		chromedp.Navigate(b.base+"/account/security"),
		chromedp.Click(chromedp.ID("add-webauthn")),
		chromedp.WaitVisible(chromedp.ID("webauthn-start")),
		chromedp.Click(chromedp.ID("webauthn-start")),
	)
	b.waitFor("the enrolled passkey on the security page", `document.querySelector('#methods tr[data-type="webauthn"]') !== null`)
	creds, err := s.app.Store.ListCredentials(context.Background(), s.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 1 || creds[0].Type != "webauthn" || creds[0].Name != "Passkey" {
		t.Fatalf("stored credentials: %+v", creds)
	}

	// 2. The password session is not phishing-resistant: the client's
	// request sends the user to a step-up, answered with the passkey.
	b.authorize("phishing-resistant")
	b.waitFor("the step-up page", `location.pathname === "/stepup"`)
	b.run("step up with the passkey", chromedp.WaitVisible(chromedp.ID("webauthn-start")), chromedp.Click(chromedp.ID("webauthn-start")))
	claims := b.awaitCode()
	if claims["acr"] != "phishing-resistant" {
		t.Errorf("acr after step-up = %v, want phishing-resistant", claims["acr"])
	}
	if amr := fmt.Sprint(claims["amr"]); !strings.Contains(amr, "hwk") || !strings.Contains(amr, "pwd") {
		t.Errorf("amr after step-up = %v, want pwd and hwk", amr)
	}

	// 3. Sign out, then sign in without a password: the authenticator
	// names the account.
	b.signOut()
	b.run("sign in with the passkey", chromedp.WaitVisible(chromedp.ID("webauthn-start")), chromedp.Click(chromedp.ID("webauthn-start")))
	b.waitFor("the account page after passkey sign-in", `location.pathname === "/account"`)
	events, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("events")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(events, "webauthn") || !strings.Contains(events, "hwk user") || strings.Contains(events, "pwd") {
		t.Errorf("session proofs after passkey sign-in:\n%s\nwant one webauthn proof with hwk user", events)
	}

	// 4. A user-verified passkey is phishing-resistant on its own: the
	// same request now completes without any page.
	b.authorize("phishing-resistant")
	claims = b.awaitCode()
	if claims["acr"] != "phishing-resistant" {
		t.Errorf("acr after passkey sign-in = %v, want phishing-resistant", claims["acr"])
	}

	// The counter moved with every use and was recorded.
	creds, _ = s.app.Store.ListCredentials(context.Background(), s.user.ID)
	if len(creds) != 1 || creds[0].LastUsedAt.IsZero() {
		t.Errorf("after two assertions: %+v", creds)
	}
}

// TestBrowserGateway drives the gateway as a person would: open the
// bank's transfer form (signing in on the way), submit it, step up with
// TOTP, and the bank receives the original POST exactly once; then the
// admin pages, which need a passkey, step up with one.
func TestBrowserGateway(t *testing.T) {
	var mu sync.Mutex
	var transfers []string
	bank := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/transfers/new":
			fmt.Fprint(w, `<!doctype html><title>bank</title><form method="post" action="/transfers">`+
				`<input id="amount" name="amount"><input id="to" name="to"><button id="send" type="submit">Send</button></form>`)
		case r.Method == http.MethodGet && r.URL.Path == "/transfers":
			fmt.Fprint(w, `<!doctype html><title>bank</title><p id="list">your transfers</p>`)
		case r.Method == http.MethodPost && r.URL.Path == "/transfers":
			_ = r.ParseForm()
			mu.Lock()
			transfers = append(transfers, r.PostForm.Encode())
			mu.Unlock()
			// Longer than Go's server buffers: sent without a length, which
			// the proxy flushes piece by piece, as most pages are.
			fmt.Fprintf(w, `<!doctype html><title>bank</title><p id="done">sent %s to %s for %s</p><!-- %s -->`,
				template.HTMLEscapeString(r.PostForm.Get("amount")), template.HTMLEscapeString(r.PostForm.Get("to")),
				template.HTMLEscapeString(r.Header.Get("X-Stepgate-User")), strings.Repeat("padding ", 2048))
		case strings.HasPrefix(r.URL.Path, "/admin"):
			fmt.Fprintf(w, `<!doctype html><title>bank</title><p id="admin">admin for %s (%s)</p>`,
				template.HTMLEscapeString(r.Header.Get("X-Stepgate-User")), template.HTMLEscapeString(r.Header.Get("X-Stepgate-Amr")))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(bank.Close)
	var bankURL string
	b := newBrowserRig(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		bankURL = "http://bank.localhost:" + port
		cfg.Gateway.Routes = []config.GatewayRoute{{Name: "bank", From: bankURL, To: bank.URL, Rules: []config.GatewayRule{
			{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
			{Path: "/admin/*", Context: "c3", Elevation: "single-use"},
		}}}
	})
	secret, _, err := b.s.app.Methods.TOTP.EnrollNow(context.Background(), b.s.user, "phone")
	if err != nil {
		t.Fatal(err)
	}

	// Open the form: the gateway sends the browser to sign in and back.
	b.run("open the bank's transfer form", chromedp.Navigate(bankURL+"/transfers/new"))
	b.waitFor("the sign-in page", `location.pathname === "/login"`)
	b.run("sign in", chromedp.SendKeys(chromedp.ID("username"), testUser), chromedp.SendKeys(chromedp.ID("password"), testPassword), chromedp.Submit(chromedp.ID("password")))
	b.waitFor("the transfer form on the bank", `location.host.startsWith("bank.localhost") && document.getElementById("send") !== null`)

	// Submit it: c2 needs MFA, the step-up asks for a code, the form
	// arrives at the bank afterwards.
	b.run("submit the transfer", chromedp.SendKeys(chromedp.ID("amount"), "250"), chromedp.SendKeys(chromedp.ID("to"), "DE89 3704"), chromedp.Click(chromedp.ID("send")))
	b.waitFor("the step-up page with a code field", `location.pathname === "/stepup" && document.getElementById("code") !== null`)
	b.run("step up with TOTP", chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now().Add(30*time.Second))), chromedp.Submit(chromedp.ID("code")))
	b.waitFor("the bank's confirmation", `document.getElementById("done") !== null`)
	done, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("done")))
	if done != "sent 250 to DE89 3704 for "+testUser {
		t.Errorf("the bank says %q", done)
	}
	// The address bar shows the bank's address, not the hand-off's, and
	// reloading it is a plain GET: the form is not sent again.
	b.waitFor("the form's own address", `location.pathname === "/transfers" && location.search === ""`)
	b.run("reload the confirmation", chromedp.Reload())
	b.waitFor("the bank's answer to a GET of the address", `document.getElementById("list") !== null`)
	mu.Lock()
	if len(transfers) != 1 || transfers[0] != "amount=250&to=DE89+3704" {
		t.Errorf("the bank received %q, want the original form exactly once", transfers)
	}
	mu.Unlock()

	// A page the gateway shows on the bank's host is styled by Stepgate's
	// stylesheet (the bank's /static/ is not Stepgate's).
	b.run("open a spent sign-in link", chromedp.Navigate(bankURL+"/.stepgate/callback?ticket=spent&target=%2Ftransfers%2Fnew"))
	b.waitFor("the styled error page with a way back", `document.querySelector("#ways-on a") !== null && getComputedStyle(document.body).backgroundColor === "rgb(245, 246, 250)"`)

	// The admin pages need a passkey: enroll one, then step up with it.
	b.run("enroll a passkey",
		chromedp.Navigate(b.base+"/account/security"),
		chromedp.Click(chromedp.ID("add-webauthn")),
		chromedp.WaitVisible(chromedp.ID("webauthn-start")),
		chromedp.Click(chromedp.ID("webauthn-start")),
	)
	b.waitFor("the enrolled passkey", `document.querySelector('#methods tr[data-type="webauthn"]') !== null`)
	b.run("open the admin page", chromedp.Navigate(bankURL+"/admin/"))
	b.waitFor("the step-up page offering the passkey", `location.pathname === "/stepup" && document.getElementById("webauthn-start") !== null`)
	b.run("step up with the passkey", chromedp.Click(chromedp.ID("webauthn-start")))
	b.waitFor("the admin page", `document.getElementById("admin") !== null`)
	admin, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("admin")))
	if !strings.Contains(admin, "admin for "+testUser) || !strings.Contains(admin, "hwk") {
		t.Errorf("the admin page says %q, want alice with a passkey proof", admin)
	}
	// Single use: reloading it asks for the passkey again, and the
	// page offers the passkey alone, never the password.
	b.waitFor("the admin page's own address", `location.pathname === "/admin/"`)
	b.run("reload the admin page", chromedp.Reload())
	b.waitFor("the step-up page offering the passkey again", `location.pathname === "/stepup" && document.getElementById("webauthn-start") !== null`)
	b.waitFor("no password on the passkey rule's step-up page",
		`document.querySelector('input[name="password"]') === null && document.querySelector('a[href*="method=password"]') === null`)
}

// TestBrowserTOTP enrolls an authenticator app through the real pages
// (the test reads the key off the page and computes codes as an app
// would) and steps up with it to MFA for an OIDC client.
func TestBrowserTOTP(t *testing.T) {
	b := newBrowserRig(t)
	b.signInWithPassword()
	b.run("open the authenticator app enrollment",
		chromedp.Navigate(b.base+"/account/security"),
		chromedp.Click(chromedp.ID("add-totp")),
		chromedp.WaitVisible(chromedp.ID("totp-secret")),
	)
	secret, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("totp-secret")))
	if err != nil || len(secret) < 32 {
		b.fail("read the key: %q %v", secret, err)
	}
	b.waitFor("the QR code image", `document.querySelector('img[alt^="QR code"]').naturalWidth > 0`)
	b.run("confirm the first code",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now())),
		chromedp.Submit(chromedp.ID("code")),
	)
	b.waitFor("the enrolled app on the security page", `document.querySelector('#methods tr[data-type="totp"]') !== null`)

	// MFA needs a second factor: the step-up page asks for a code.
	b.authorize("mfa")
	b.waitFor("the step-up page with a code field", `location.pathname === "/stepup" && document.getElementById("code") !== null`)
	b.run("step up with the next code",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now().Add(30*time.Second))),
		chromedp.Submit(chromedp.ID("code")),
	)
	claims := b.awaitCode()
	if claims["acr"] != "mfa" {
		t.Errorf("acr after the TOTP step-up = %v, want mfa", claims["acr"])
	}
	if amr := fmt.Sprint(claims["amr"]); !strings.Contains(amr, "otp") || !strings.Contains(amr, "pwd") || !strings.Contains(amr, "mfa") {
		t.Errorf("amr after the TOTP step-up = %v, want pwd, otp and mfa", amr)
	}
}

// newBrowser starts Chromium with a fresh profile and a virtual
// authenticator on its tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("no-sandbox", true), // root in a container has no user namespace for the sandbox
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
			return fmt.Errorf("enable WebAuthn: %w", err)
		}
		_, err := cdp.Call(ctx, tg, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
			Options: &cdpwebauthn.VirtualAuthenticatorOptions{
				Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
				Transport:                   cdpwebauthn.AuthenticatorTransportInternal,
				HasResidentKey:              true,
				HasUserVerification:         true,
				IsUserVerified:              true,
				AutomaticPresenceSimulation: true,
			},
		})
		if err != nil {
			return fmt.Errorf("add a virtual authenticator: %w", err)
		}
		return nil
	}))
	if err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// jwtClaims decodes the payload of a JWT the test got straight from the
// token endpoint (its signature is checked by the OIDC tests).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
