//go:build unix

package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// elevationStep walks step 8: alice, in a private window with a passkey
// device of her own, asks for bank-admin for an hour with a
// justification, gives a code from her app (a new one: lastCode, step
// 3's, was spent) and confirms; admin, in the main window, approves on
// the console; alice adds a passkey and opens the admin pages; she ends
// the role and the admin pages refuse her by the policy.
func (w *walkthrough) elevationStep(lastCode, adminURL string) {
	w.t.Helper()
	alice := w.freshContext()
	w.do(alice, "give the private window a passkey device", addAuthenticator())
	w.navigate(alice, w.url(8, "http://localhost:8080/account/roles"))
	w.waitFor(alice, "the sign-in page", `location.pathname === "/login"`)
	w.signIn(alice, "alice")
	w.notNow(alice)
	w.act(alice, "click Not now", `document.querySelector('#offer-snooze button').click()`)
	w.waitFor(alice, "alice's roles page", `location.pathname === "/account/roles" && document.getElementById("ask-bank-admin") !== null`)
	w.expectText(alice, "the roles page", "bank-admin", "1 hour", "One member of the group admins (never you) must approve")
	w.checkPage(alice, "roles")
	w.do(alice, "ask for bank-admin for an hour",
		chromedp.SetValue(chromedp.ID("duration-bank-admin"), "1h0m0s"),
		chromedp.SendKeys(chromedp.ID("justification-bank-admin"), "INC-1234: payments stuck"),
	)
	w.act(alice, "click Ask for bank-admin", `document.getElementById("ask-bank-admin").click()`)
	w.waitFor(alice, "the step-up page with a code field", `location.pathname === "/stepup" && document.getElementById("code") !== null`)
	w.checkPage(alice, "stepup-role")
	w.check("stepup-role/names-the-action", strings.Contains(w.text(alice), "Activate bank-admin"), "the step-up page does not say what the proof is for:\n%s", w.text(alice))
	code := w.runCommand(8, "go run ./cmd/stepgate user totp-code alice --demo")
	for deadline := time.Now().Add(40 * time.Second); code == lastCode && time.Now().Before(deadline); {
		// The same time step as step 3's code: that code is spent.
		time.Sleep(2 * time.Second)
		code = w.runCommand(8, "go run ./cmd/stepgate user totp-code alice --demo")
	}
	w.do(alice, "enter the code", chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Submit(chromedp.ID("code")))
	w.waitFor(alice, "the request's confirm page", `location.pathname === "/account/roles/confirm" && document.getElementById("confirm") !== null`)
	w.expectText(alice, "the confirm page", "INC-1234: payments stuck", "1 hour")
	w.checkPage(alice, "role-confirm")
	w.act(alice, "click Confirm the request", `document.getElementById("confirm").click()`)
	w.waitFor(alice, "the request waiting for approval", `location.pathname === "/account/roles" && document.body.innerText.includes("Waiting for approval by the group admins")`)
	w.checkPage(alice, "roles-waiting")

	// admin, still signed in with the passkey in the main window,
	// approves on the console.
	w.navigate(w.tab, w.url(8, "http://localhost:8080/admin/elevations"))
	w.waitFor(w.tab, "the pending request on the console", `document.querySelector('#pending-list [id^="approve-"]') !== null`)
	w.expectText(w.tab, "the console's pending request", "alice", "bank-admin", "INC-1234: payments stuck")
	w.checkPage(w.tab, "console-elevations")
	w.act(w.tab, "click Approve", `document.querySelector('#pending-list [id^="approve-"]').click()`)
	w.waitFor(w.tab, "the elevation active on the console", `document.querySelector('#active-list tr[data-elevation]') !== null`)
	w.checkPage(w.tab, "console-elevation-approved")

	// alice adds a passkey: her code of a moment ago opens the
	// registration.
	w.navigate(alice, w.url(8, "http://localhost:8080/account/security"))
	w.waitFor(alice, "the security page", `document.getElementById("add-webauthn") !== null`)
	w.act(alice, "add a passkey", `document.getElementById("add-webauthn").click()`)
	w.waitFor(alice, "the passkey registration", `document.getElementById("webauthn-start") !== null`)
	w.act(alice, "register the passkey", `document.getElementById("webauthn-start").click()`)
	w.waitFor(alice, "alice's registered passkey", `document.querySelector('#methods tr[data-type="webauthn"]') !== null`)

	w.navigate(alice, w.url(8, "http://bank.localhost:8080/admin/"))
	w.waitFor(alice, "the step-up page offering the passkey", `location.pathname === "/stepup" && document.getElementById("webauthn-start") !== null`)
	w.act(alice, "use the passkey", `document.getElementById("webauthn-start").click()`)
	w.waitFor(alice, "the admin page for alice", `document.body.innerText.includes("Welcome to the administration pages")`)
	w.expectText(alice, "the admin page", "alice")
	w.checkPage(alice, "admin-page-elevated")

	// End now: the next visit is refused by the policy, not challenged.
	w.navigate(alice, w.base+"/account/roles")
	w.waitFor(alice, "the active role", `document.getElementById("end-bank-admin") !== null`)
	w.act(alice, "click End now", `document.getElementById("end-bank-admin").click()`)
	w.waitFor(alice, "the role ended", `document.body.innerText.includes("has ended") && document.getElementById("end-bank-admin") === null`)
	w.checkPage(alice, "roles-ended")
	signIns := w.url(8, "http://localhost:8080/admin/signins") + "?user=alice&decision=block&policy=admin-pages-need-bank-admin"
	before := w.rows(w.tab, signIns)
	w.navigate(alice, adminURL)
	w.waitFor(alice, "the refusal", `document.readyState === "complete"`)
	if s := w.status(alice); s != http.StatusForbidden || strings.Contains(w.location(alice), "/stepup") || !strings.Contains(w.text(alice), "blocked by your organisation's policy") {
		w.t.Errorf("alice on the admin pages after ending the role: %d at %s, want a refusal\n%s", s, w.location(alice), w.text(alice))
	}
	w.checkPage(alice, "admin-refused-after-elevation")

	// The console's sign-in log names the policy (the page does not: a
	// risk policy named there would tell an attacker what flagged them).
	for deadline := time.Now().Add(30 * time.Second); w.rows(w.tab, signIns) <= before; {
		if time.Now().After(deadline) {
			w.fail(w.tab, "the sign-in log shows no new block of alice by admin-pages-need-bank-admin")
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.checkPage(w.tab, "console-signins-block")
}

// rows opens a console sign-in log page and counts its entries.
func (w *walkthrough) rows(ctx context.Context, u string) int {
	w.t.Helper()
	w.navigate(ctx, u)
	w.waitFor(ctx, "the sign-in log", `document.getElementById("signin-list") !== null`)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#signin-list tr[data-seq]").length`))
	if err != nil {
		w.fail(ctx, "count the sign-in log's entries: %v", err)
	}
	return n
}
