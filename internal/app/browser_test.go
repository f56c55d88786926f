package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/config"
)

// chromiumPath is Debian's Chromium, which make browser-deps installs.
const chromiumPath = "/usr/bin/chromium"

// TestBrowserPasskeys drives a real Chromium with a CDP virtual
// authenticator (CTAP2, built in, resident keys, user verification)
// through the whole passkey life: password sign-in, enrolling a passkey,
// a phishing-resistant step-up for an OIDC client, sign-out, and a
// passwordless sign-in that alone satisfies phishing-resistant.
//
// WebAuthn needs a host name as relying party id, and browsers allow it
// over plain http only on localhost, so the server's issuer is
// http://localhost:PORT.
func TestBrowserPasskeys(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("STEPGATE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("%s is missing and STEPGATE_REQUIRE_BROWSER=1: run make browser-deps", chromiumPath)
		}
		t.Skipf("%s is missing: run make browser-deps (Debian's chromium) to run the browser test", chromiumPath)
	}

	// The client's redirect URI: records the code the flow ends with.
	codes := make(chan url.Values, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r) // the browser asks for /favicon.ico too
			return
		}
		select {
		case codes <- r.URL.Query():
		default:
		}
		fmt.Fprint(w, "<!doctype html><title>client</title><p id=client-done>done</p>")
	}))
	t.Cleanup(cb.Close)
	callback := cb.URL + "/callback"

	var base string
	s := startOIDC(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		base = "http://localhost:" + port
		cfg.Server.Issuer = base
		cfg.WebAuthn.RPID = "localhost"
		cfg.WebAuthn.Origins = []string{base}
		for i := range cfg.OIDC.Clients {
			if cfg.OIDC.Clients[i].ID == otherClientID {
				cfg.OIDC.Clients[i].RedirectURIs = []string{callback}
			}
		}
	})

	ctx := newBrowser(t)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
		}
	}
	// waitFor polls expr until it is true. A page that navigates away
	// mid-evaluation fails that one evaluation, so errors are retried
	// until the deadline.
	waitFor := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		var last error
		for time.Now().Before(deadline) {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
			if err == nil && ok {
				return
			}
			last = err
			time.Sleep(100 * time.Millisecond)
		}
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %s never became true (last error %v)\nat %s:\n%s", what, expr, last, loc, body)
	}
	signInWithPassword := func() {
		t.Helper()
		run("sign in with a password",
			chromedp.Navigate(base+"/login"),
			chromedp.SendKeys(chromedp.ID("username"), testUser),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.Submit(chromedp.ID("password")),
		)
		waitFor("the account page after password sign-in", `location.pathname === "/account"`)
	}
	signOut := func() {
		t.Helper()
		run("sign out", chromedp.Navigate(base+"/logout"), chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
		waitFor("the sign-in page after sign-out", `location.pathname === "/login"`)
	}
	authorize := func() {
		t.Helper()
		q := url.Values{
			"client_id": {otherClientID}, "redirect_uri": {callback}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"st-1"}, "nonce": {"n-1"}, "acr_values": {"phishing-resistant"},
		}
		run("open the authorization request", chromedp.Navigate(base+"/oauth2/authorize?"+q.Encode()))
	}
	awaitCode := func() map[string]any {
		t.Helper()
		select {
		case q := <-codes:
			if q.Get("code") == "" {
				t.Fatalf("the client got no code: %v", q)
			}
			status, tok := s.tokenRequest(t, url.Values{
				"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {callback},
			}, otherClientID, otherSecret)
			if status != http.StatusOK {
				t.Fatalf("code exchange: %d %s %s", status, tok.Error, tok.ErrorDescription)
			}
			return jwtClaims(t, tok.IDToken)
		case <-time.After(20 * time.Second):
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("no code reached the client; the browser is at %s:\n%s", loc, body)
		}
		return nil
	}

	// 1. Password sign-in, then enroll a passkey on the security page.
	signInWithPassword()
	run("enroll a passkey",
		chromedp.Navigate(base+"/account/security"),
		chromedp.Click(chromedp.ID("add-webauthn")),
		chromedp.WaitVisible(chromedp.ID("webauthn-start")),
		chromedp.Click(chromedp.ID("webauthn-start")),
	)
	waitFor("the enrolled passkey on the security page", `document.querySelector('#methods tr[data-type="webauthn"]') !== null`)
	creds, err := s.app.Store.ListCredentials(context.Background(), s.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 1 || creds[0].Type != "webauthn" || creds[0].Name != "Passkey" {
		t.Fatalf("stored credentials: %+v", creds)
	}

	// 2. The password session is not phishing-resistant: the client's
	// request sends the user to a step-up, answered with the passkey.
	authorize()
	waitFor("the step-up page", `location.pathname === "/stepup"`)
	run("step up with the passkey", chromedp.WaitVisible(chromedp.ID("webauthn-start")), chromedp.Click(chromedp.ID("webauthn-start")))
	claims := awaitCode()
	if claims["acr"] != "phishing-resistant" {
		t.Errorf("acr after step-up = %v, want phishing-resistant", claims["acr"])
	}
	if amr := fmt.Sprint(claims["amr"]); !strings.Contains(amr, "hwk") || !strings.Contains(amr, "pwd") {
		t.Errorf("amr after step-up = %v, want pwd and hwk", amr)
	}

	// 3. Sign out, then sign in without a password: the authenticator
	// names the account.
	signOut()
	run("sign in with the passkey", chromedp.WaitVisible(chromedp.ID("webauthn-start")), chromedp.Click(chromedp.ID("webauthn-start")))
	waitFor("the account page after passkey sign-in", `location.pathname === "/account"`)
	events, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("events")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(events, "webauthn") || !strings.Contains(events, "hwk user") || strings.Contains(events, "pwd") {
		t.Errorf("session proofs after passkey sign-in:\n%s\nwant one webauthn proof with hwk user", events)
	}

	// 4. A user-verified passkey is phishing-resistant on its own: the
	// same request now completes without any page.
	authorize()
	claims = awaitCode()
	if claims["acr"] != "phishing-resistant" {
		t.Errorf("acr after passkey sign-in = %v, want phishing-resistant", claims["acr"])
	}

	// The counter moved with every use and was recorded.
	creds, _ = s.app.Store.ListCredentials(context.Background(), s.user.ID)
	if len(creds) != 1 || creds[0].LastUsedAt.IsZero() {
		t.Errorf("after two assertions: %+v", creds)
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
