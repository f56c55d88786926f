package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/demo"
	"github.com/stepgate/stepgate/internal/store"
)

// demoRig is "stepgate demo" in the test's process: the demo's
// configuration and seed, the bank behind the gateway, and a clock
// offset for the elevation service, so an hour can pass at once.
type demoRig struct {
	app    *app.App
	base   string
	bank   string
	seeded demo.Seeded
	// offset is added to the real time on the elevation service's clock.
	offset atomic.Int64
}

func startDemoRig(t *testing.T) *demoRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bankLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := demo.Config(demo.Params{Listen: ln.Addr().String(), DataDir: t.TempDir(), BankUpstream: "http://" + bankLn.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1}
	log := slog.New(slog.DiscardHandler)
	r := &demoRig{base: cfg.Server.Issuer, bank: demo.BankURL(cfg.Server.Port())}
	if r.seeded, err = demo.Seed(ctx, cfg, log); err != nil {
		t.Fatal(err)
	}
	if r.app, err = app.New(ctx, cfg, log); err != nil {
		t.Fatal(err)
	}
	r.app.Elevation.Now = func() time.Time { return time.Now().Add(time.Duration(r.offset.Load())) }
	bank, err := demo.NewBank(demo.BankOptions{Issuer: cfg.Server.Issuer, JWKSURL: "http://" + ln.Addr().String() + "/oauth2/jwks",
		Upstream: "http://" + bankLn.Addr().String(), PublicURL: r.bank, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	bankSrv := &http.Server{Handler: bank, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = bankSrv.Serve(bankLn) }()
	served := make(chan error, 1)
	go func() { served <- r.app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
		_ = bankSrv.Close()
		_ = r.app.Close()
	})
	return r
}

// TestBrowserElevation is the demo's elevation story in Chromium: alice,
// eligible for bank-admin, asks for it for an hour with a
// justification; steps up with her authenticator app; admin approves
// on the console; she adds a passkey (her app's fresh code opens the
// registration) and opens the bank's admin pages with it; the hour
// passes, the role ends,
// and the next request is refused by the policy, with no step-up that
// could open it.
func TestBrowserElevation(t *testing.T) {
	skipWithoutChromium(t)
	r := startDemoRig(t)
	b := &browserRig{t: t, ctx: newBrowser(t), base: r.base}
	ctx := context.Background()

	// alice asks for bank-admin on her roles page.
	b.run("open the roles page", chromedp.Navigate(r.base+"/account/roles"))
	b.waitFor("the sign-in page", `location.pathname === "/login"`)
	b.run("sign in as alice",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-demo-password"),
		chromedp.Submit(chromedp.ID("password")),
	)
	// The demo's registration campaign offers her a passkey first.
	b.waitFor("the registration offer", `location.pathname === "/account/register-offer" && document.getElementById("offer-snooze") !== null`)
	b.act("click Not now", `document.querySelector('#offer-snooze button').click()`)
	b.waitFor("alice's roles page with bank-admin", `location.pathname === "/account/roles" && document.getElementById("ask-bank-admin") !== null`)
	page := b.text()
	for _, want := range []string{"bank-admin", "1 hour", "One member of the group admins (never you) must approve", "A second factor from the last 10 minutes"} {
		if !strings.Contains(page, want) {
			t.Errorf("the roles page does not say %q:\n%s", want, page)
		}
	}
	b.run("ask for bank-admin for an hour",
		chromedp.SetValue(chromedp.ID("duration-bank-admin"), "1h0m0s"),
		chromedp.SendKeys(chromedp.ID("justification-bank-admin"), "INC-1234: payments stuck"),
		chromedp.Click(chromedp.ID("ask-bank-admin")),
	)

	// Her password session has no second factor: the step-up page says
	// what the proof is for and asks for her app's code.
	b.waitFor("the step-up page with a code field", `location.pathname === "/stepup" && document.getElementById("code") !== null`)
	if page := b.text(); !strings.Contains(page, "Activate bank-admin") || !strings.Contains(page, "a second factor from the last 10 minutes") {
		t.Errorf("the step-up page does not say what it is for:\n%s", page)
	}
	b.run("step up with TOTP",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, r.seeded.AliceTOTPSecret, time.Now().Add(30*time.Second))),
		chromedp.Submit(chromedp.ID("code")),
	)
	b.waitFor("the request's confirm page", `location.pathname === "/account/roles/confirm" && document.getElementById("confirm") !== null`)
	alice, err := r.app.Store.GetUserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	e := onlyElevation(t, r.app, alice)
	if e.State != store.ElevationPending || !e.ProvenAt.IsZero() || e.Duration != time.Hour || e.Justification != "INC-1234: payments stuck" {
		t.Fatalf("before the confirmation: %+v, want pending, unproven, 1h with the justification", e)
	}
	b.run("confirm the request", chromedp.Click(chromedp.ID("confirm")))
	b.waitFor("the roles page, waiting for approval", `location.pathname === "/account/roles" && document.body.innerText.includes("Waiting for approval by the group admins")`)
	if e = onlyElevation(t, r.app, alice); e.ProvenAt.IsZero() || e.State != store.ElevationPending {
		t.Fatalf("after the confirmation: %+v, want proven and pending", e)
	}

	// admin, in a browser of their own, approves on the console.
	r.approveOnConsole(t, b, e.ID)
	b.run("reload the roles page", chromedp.Navigate(r.base+"/account/roles"))
	b.waitFor("bank-admin active", `document.getElementById("end-bank-admin") !== null`)

	// The admin pages need a passkey too. alice adds one: her app's code
	// of a moment ago opens the registration.
	b.run("open the security page", chromedp.Navigate(r.base+"/account/security"))
	b.usePasskey("add a passkey", chromedp.Click(chromedp.ID("add-webauthn")))
	b.waitFor("the registered passkey", `document.querySelector('#methods tr[data-type="webauthn"]') !== null`)
	b.run("open the bank's admin page", chromedp.Navigate(r.bank+"/admin/"))
	b.waitFor("the step-up page offering the passkey", `location.pathname === "/stepup"`)
	b.usePasskey("step up with the passkey")
	b.waitFor("the bank's admin page", `document.body.innerText.includes("Welcome to the administration pages")`)

	// The hour passes: the elevation ends at its time, and the next
	// request is refused by the policy that asks for the role — a block
	// page naming it, not a step-up.
	r.offset.Store(int64(time.Hour + time.Second))
	if _, err := r.app.Elevation.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if e = onlyElevation(t, r.app, alice); e.State != store.ElevationExpired {
		t.Fatalf("after the hour: %s, want expired", e.State)
	}
	blocksBefore := policyBlocks(t, r.app, alice, "admin-pages-need-bank-admin")
	b.run("open the admin page again", chromedp.Navigate(r.bank+"/admin/"))
	b.waitFor("the refusal", `document.readyState === "complete"`)
	status, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`performance.getEntriesByType("navigation")[0].responseStatus`))
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	if page := b.text(); status != http.StatusForbidden || strings.Contains(loc, "/stepup") || !strings.Contains(page, "blocked by your organisation's policy") || strings.Contains(page, "Welcome to the administration") {
		t.Fatalf("the admin page after the elevation ended: %d at %s, want a 403 block\n%s", status, loc, page)
	}
	// The page does not name the policy (a risk policy named there would
	// tell an attacker what flagged them); the sign-in log does.
	deadline := time.Now().Add(10 * time.Second)
	for policyBlocks(t, r.app, alice, "admin-pages-need-bank-admin") <= blocksBefore {
		if time.Now().After(deadline) {
			t.Fatal("the sign-in log has no block of alice by admin-pages-need-bank-admin after the elevation ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.run("reload the roles page", chromedp.Navigate(r.base+"/account/roles"))
	b.waitFor("the ended elevation in the history", `document.querySelector("#roles-history") !== null && document.body.innerText.includes("Ended at its time")`)
}

// approveOnConsole signs admin in, in a private window with a passkey
// device of its own, adds admin's passkey through the registration
// campaign's offer with the demo's temporary access pass (the console's
// changes need a passkey), and approves the
// request id on the console's elevation page.
func (r *demoRig) approveOnConsole(t *testing.T, alice *browserRig, id string) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(alice.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	b := &browserRig{t: t, ctx: ctx, base: r.base}
	b.run("give admin's window a passkey device", chromedp.Func(addVirtualAuthenticator))
	b.run("open the security page", chromedp.Navigate(r.base+"/account/security"))
	b.waitFor("the sign-in page", `location.pathname === "/login"`)
	b.run("sign in as admin",
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "admin-demo-password"),
		chromedp.Submit(chromedp.ID("password")),
	)
	// admin holds a pass, so the registration campaign offers the
	// passkey; Register now asks for the pass (a password alone adds
	// nothing), then goes straight on to the passkey's registration.
	b.waitFor("the registration offer", `location.pathname === "/account/register-offer" && document.getElementById("offer-register") !== null`)
	b.act("click Register now", `document.getElementById("offer-register").click()`)
	b.waitFor("the pass field", `location.pathname === "/account/security/add" && document.getElementById("pass") !== null &&
		document.body.innerText.includes("enter the temporary access pass your administrator gave you")`)
	b.run("enter the pass", chromedp.SendKeys(chromedp.ID("pass"), r.seeded.AdminPass), chromedp.Click(chromedp.ID("pass-submit")))
	b.usePasskey("add a passkey")
	b.waitFor("admin's passkey", `location.pathname === "/account/security" && document.querySelector('#methods tr[data-type="webauthn"]') !== null`)

	approve := `document.getElementById("approve-` + id + `")`
	b.run("open the console's elevations", chromedp.Navigate(r.base+"/admin/elevations"))
	b.waitFor("the pending request", approve+` !== null`)
	// Changes on the console need a passkey used within the hour: the
	// page offers the step-up, which comes back here.
	b.run("confirm with the passkey", chromedp.Click(chromedp.ID("passkey-step-up")))
	b.waitFor("the step-up page offering the passkey", `location.pathname === "/stepup"`)
	b.usePasskey("step up with the passkey")
	b.waitFor("back on the console", `location.pathname === "/admin/elevations"`)
	b.waitFor("the enabled Approve button", approve+` !== null && !`+approve+`.closest("fieldset").disabled`)
	if page := b.text(); !strings.Contains(page, "INC-1234: payments stuck") || !strings.Contains(page, "alice") {
		t.Errorf("the console's pending request does not show alice's justification:\n%s", page)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](approve+`.click() === undefined`)); err != nil {
		b.fail("click Approve: %v", err)
	}
	b.waitFor("the elevation active on the console", `document.querySelector('#active-list tr[data-elevation="`+id+`"]') !== null`)
}

// usePasskey runs open, which leads to a page with the passkey button,
// and presses the button once the page and its script have loaded (a
// press before the script is there does nothing).
func (b *browserRig) usePasskey(what string, open ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.run(what, open...)
	b.waitFor(what+": the passkey button, loaded", `document.readyState === "complete" && document.getElementById("webauthn-start") !== null`)
	b.run(what, chromedp.Click(chromedp.ID("webauthn-start")))
}

// addVirtualAuthenticator gives the tab a virtual passkey device.
func addVirtualAuthenticator(ctx context.Context, tg *chromedp.Target) error {
	if _, err := cdp.Call(ctx, tg, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		return err
	}
	_, err := cdp.Call(ctx, tg, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Transport: cdpwebauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	})
	return err
}

// policyBlocks counts the sign-in log's blocks of u in which policy
// applied.
func policyBlocks(t *testing.T, a *app.App, u store.User, policy string) int {
	t.Helper()
	rows, err := a.Store.ListSignIns(context.Background(), store.SignInQuery{UserID: u.ID, Decision: "block", Policy: policy, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// text is the page's visible text.
func (b *browserRig) text() string {
	s, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

func onlyElevation(t *testing.T, a *app.App, u store.User) store.Elevation {
	t.Helper()
	es, err := a.Store.ListElevations(context.Background(), store.ElevationQuery{UserID: u.ID})
	if err != nil || len(es) != 1 {
		t.Fatalf("elevations of %s: %+v (%v), want one", u.Username, es, err)
	}
	return es[0]
}
