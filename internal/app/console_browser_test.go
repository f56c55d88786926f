package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// consoleFilePolicies are the browser test's policy file: the OIDC test
// policies, a block for legacy clients and a report-only trial, so the
// overview has something of each kind to show.
const consoleFilePolicies = testPolicies + `
  - name: block-legacy-clients
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {client_apps: [legacy]}
    grant: block
  - name: trial-compliant-devices
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [other]}}
    grant: {controls: [compliant-device]}
`

// TestBrowserConsole drives the admin console in a real Chromium with a
// virtual authenticator: the administrator signs in with a password,
// registers a passkey, steps up with it from the console's banner,
// creates a report-only policy "MFA for the web app" in the editor,
// watches its would-have-challenged count rise as bob signs in to the
// web app, reads the impact of enabling it (allow → challenge), enables
// it, and reads in the sign-in log why bob's next authorization was
// challenged. With STEPGATE_SCREENSHOTS=docs/img (a directory, relative
// to the repository root) it saves the overview and that sign-in detail
// as the README's screenshots.
func TestBrowserConsole(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policies.yaml")
	writePolicy(t, file, consoleFilePolicies)
	// Past the registration window, as for an administrator of a running
	// deployment: the passkey needs a temporary access pass.
	b := newBrowserRig(t, func(cfg *config.Config) {
		cfg.Policy.Files = []string{file}
		cfg.Registration.Window = 0
	})
	s := &consoleRig{oidcServer: b.s}
	ctx := context.Background()
	s.admin = addUser(t, s.app.Users, adminName, adminPassword, admin.Role)
	s.bob = addUser(t, s.app.Users, bobName, bobPassword)
	if _, _, err := s.app.Methods.TOTP.EnrollNow(ctx, s.bob, "phone"); err != nil {
		t.Fatal(err)
	}
	pass, _, err := s.app.Methods.Passes.Issue(ctx, s.admin.ID, "root", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	seedTraffic(t, s)
	b.run("set the window size", chromedp.EmulateViewport(1280, 900))

	// 1–3. Sign in, register a passkey, step up with it.
	b.adminWithPasskey(pass)

	// 4. Create the report-only policy in the editor.
	// The page may still be settling after the step-up's redirects, so
	// the link is followed by its address rather than clicked.
	b.waitFor("the new policy link", `(document.getElementById("new-document") || {}).pathname === "/admin/documents/new"`)
	b.run("write a report-only policy",
		chromedp.Navigate(b.base+"/admin/documents/new"),
		chromedp.WaitVisible(chromedp.ID("doc-name")),
		chromedp.SendKeys(chromedp.ID("doc-name"), "webapp"),
		chromedp.SetValue(chromedp.ID("yaml"), reportOnlyDoc),
		chromedp.Click(chromedp.ID("validate")),
	)
	b.waitFor("the document validated", `document.getElementById("valid") !== null`)
	b.act("save it", `document.getElementById("reason").value = "try MFA for the web app"; document.getElementById("save").click()`)
	b.waitFor("the saved document", `location.pathname === "/admin/documents/webapp" && document.querySelector(".notice-ok") !== null`)

	// 5. bob signs in to the web app three times: allowed, and counted.
	bob := s.login(t, bobName, bobPassword)
	before := b.wouldChallenge("webapp-mfa")
	for range 3 {
		if loc := s.authorizeAs(t, bob); loc.Query().Get("code") == "" {
			t.Fatalf("the report-only policy changed bob's decision: %s", loc)
		}
	}
	s.lastEntry(t, store.SignInQuery{App: rpClientID})
	if after := b.wouldChallenge("webapp-mfa"); after < before+3 {
		t.Fatalf("would challenge went from %d to %d, want at least 3 more", before, after)
	}
	b.run("open the overview", chromedp.Navigate(b.base+"/admin"))
	b.waitFor("the policy in the overview", `Number((document.querySelector('#policy-stats tr[data-policy="webapp-mfa"] .would-challenge') || {}).textContent) >= 3`)
	b.screenshot("admin-overview.png")

	// 6. The impact of enabling it.
	b.run("ask for the impact of enabling it",
		chromedp.Navigate(b.base+"/admin/documents/webapp"),
		chromedp.WaitVisible(chromedp.ID("yaml")),
		chromedp.SetValue(chromedp.ID("yaml"), strings.Replace(reportOnlyDoc, "state: report-only", "state: enabled", 1)),
		chromedp.SetValue(chromedp.ID("days"), "1"),
		chromedp.Click(chromedp.ID("show-impact")),
	)
	b.waitFor("the impact", `document.getElementById("impact") !== null`)
	changed, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.querySelector('#transitions tr[data-transition="allow-challenge"] .count') || {textContent: "0"}).textContent`))
	if n, _ := strconv.Atoi(changed); err != nil || n < 3 {
		b.fail("the impact shows %q allow → challenge decisions (%v), want at least 3", changed, err)
	}
	b.screenshot("admin-impact.png")

	// 7. Enable it on the policies page.
	b.run("enable the policy",
		chromedp.Navigate(b.base+"/admin/policies"),
	)
	b.waitFor("the policy's enable button", `document.querySelector('tr[data-policy="webapp-mfa"] button[value="enabled"]') !== null`)
	b.act("enable it", `document.getElementById("reason-webapp-mfa").value = "rollout"; document.querySelector('tr[data-policy="webapp-mfa"] button[value="enabled"]').click()`)
	b.waitFor("the policy enabled", `(document.querySelector('tr[data-policy="webapp-mfa"] .state') || {}).textContent === "enabled"`)

	// 8. bob is challenged now, and the sign-in log says why.
	if loc := s.authorizeAs(t, bob); loc.Path != "/stepup" {
		t.Fatalf("after enabling, bob goes to %s, want the step-up page", loc)
	}
	row := s.lastEntry(t, store.SignInQuery{App: rpClientID, Decision: "challenge"})
	b.run("open the sign-in log", chromedp.Navigate(b.base+"/admin/signins?decision=challenge&app="+rpClientID))
	b.waitFor("the challenged entry's link", fmt.Sprintf(`document.querySelector('tr[data-seq="%d"] a') !== null`, row.Seq))
	b.act("open the challenged entry", fmt.Sprintf(`document.querySelector('tr[data-seq="%d"] a').click()`, row.Seq))
	b.waitFor("the entry's explanation", `location.pathname === "/admin/signins/`+strconv.FormatInt(row.Seq, 10)+`" && document.getElementById("why") !== null`)
	why, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("why").innerText`))
	if !strings.Contains(why, "Policy webapp-mfa applied and was not satisfied") || !strings.Contains(why, "lacks proofs the policy requires") {
		b.fail("the entry explains %q, want the policy and its reason", why)
	}
	b.screenshot("admin-signin-detail.png")

	entries, _ := s.app.Audit.List(ctx)
	var actions []string
	for _, e := range entries {
		if e.Actor == "user:"+adminName {
			actions = append(actions, e.Action)
		}
	}
	if strings.Join(actions, ",") != "user.registration-unlock.temporary-access-pass,user.method-add.webauthn,policy.create,policy.state" {
		t.Errorf("audit trail %v, want the pass, the passkey, the creation and the state change by %s", actions, adminName)
	}
}

// wouldChallenge reads a policy's would-have-challenged count on the
// policies page.
// act runs script in the page, on elements the last waitFor saw, once
// the page has loaded. After
// a form submission, chromedp's own node lookups can race the new
// document ("could not find node"); the page's DOM cannot.
func (b *browserRig) act(what, script string) {
	b.t.Helper()
	// Scripts attach their handlers once the document has loaded.
	b.waitFor(what+" (the page loaded)", `document.readyState === "complete"`)
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(() => { `+script+`; return true })()`)); err != nil {
		b.fail("%s: %v", what, err)
	}
}

func (b *browserRig) wouldChallenge(name string) int {
	b.t.Helper()
	b.run("open the policies", chromedp.Navigate(b.base+"/admin/policies"))
	b.waitFor("the policy's row", `document.querySelector('tr[data-policy="`+name+`"]') !== null`)
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('tr[data-policy="`+name+`"] .would-challenge').innerText`))
	n, perr := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || perr != nil {
		b.fail("read would-challenge of %s: %q %v", name, s, err)
	}
	return n
}

// screenshot saves the page as a PNG in $STEPGATE_SCREENSHOTS, when set
// (make check leaves it unset, so the committed images stay as they are).
func (b *browserRig) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("STEPGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir) // the test runs in internal/app
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// seedTraffic writes a day of earlier sign-in log entries, so the
// overview's charts have a shape: allowed decisions with a working-day
// rhythm, challenges by the context policies, now and then a block or a
// failed password, step-ups completing most challenges, and a
// report-only trial's would-have counts.
func seedTraffic(t *testing.T, s *consoleRig) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	write := func(e audit.SignIn) {
		if err := s.app.SignIns.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	result := func(name string, r policy.Result, grant string) []policy.PolicyResult {
		return []policy.PolicyResult{{Policy: name, State: policy.StateEnabled, Result: r, Grant: grant, Reason: policy.ReasonControlsNotSatisfied}}
	}
	for h := 1; h < 24; h++ {
		at := now.Add(-time.Duration(h)*time.Hour + time.Duration(h*97%50)*time.Minute)
		hour := at.UTC().Hour()
		busy := 0
		if hour >= 8 && hour <= 18 {
			busy = 14
		}
		for i := range 10 + busy + (h*7)%9 {
			write(audit.SignIn{Time: at.Add(time.Duration(i) * time.Second), Source: "oidc", Username: "alice", App: rpClientID, Decision: "allow"})
		}
		challenges := 1 + (h*5)%4 + busy/7
		for i := range challenges {
			name := "c2-mfa"
			if i%3 == 2 {
				name = "c3-phishing-resistant"
			}
			write(audit.SignIn{Time: at.Add(time.Minute), Source: "oidc", Username: "carol", App: otherClientID, Decision: "challenge",
				Policies: result(name, policy.ResultApplied, "all-of")})
			if i < challenges-1 || h%3 == 0 {
				write(audit.SignIn{Time: at.Add(2 * time.Minute), Source: "step-up", Username: "carol", Decision: "success"})
			}
		}
		if h%6 == 0 {
			write(audit.SignIn{Time: at.Add(3 * time.Minute), Source: "oidc", Username: "mallory", App: rpClientID, Decision: "block",
				Policies: []policy.PolicyResult{{Policy: "block-legacy-clients", State: policy.StateEnabled, Result: policy.ResultApplied, Grant: "block", Reason: policy.ReasonBlocked}}})
		}
		if h%4 == 1 {
			write(audit.SignIn{Time: at.Add(4 * time.Minute), Source: "sign-in", Username: "dave", Decision: "failure", Reason: "invalid-credentials"})
		}
		if h%2 == 0 {
			write(audit.SignIn{Time: at.Add(5 * time.Minute), Source: "oidc", Username: "erin", App: otherClientID, Decision: "allow",
				Policies: []policy.PolicyResult{{Policy: "trial-compliant-devices", State: policy.StateReportOnly, Result: policy.ResultReportOnlyUserActionRequired, Reason: policy.ReasonControlsNotSatisfied}}})
		}
	}
	if err := s.app.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// adminWithPasskey signs the administrator in to the console with a
// password (read-only at first), registers a passkey on the security
// page after entering the temporary access pass (the password alone adds
// nothing), and steps up with it from the console's banner: the console
// then allows changes.
func (b *browserRig) adminWithPasskey(pass string) {
	b.t.Helper()
	b.run("sign in to the console",
		chromedp.Navigate(b.base+"/admin"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), adminName),
		chromedp.SendKeys(chromedp.ID("password"), adminPassword),
		chromedp.Submit(chromedp.ID("password")),
	)
	b.waitFor("the overview with the passkey banner", `location.pathname === "/admin" && document.getElementById("changes-banner") !== null`)

	// 2. Register a passkey on the security page, after entering the
	// temporary access pass: the password alone adds nothing.
	b.run("open the security page", chromedp.Navigate(b.base+"/account/security"))
	b.waitFor("the pass field", `document.getElementById("pass") !== null`)
	b.run("enter the pass", chromedp.SendKeys(chromedp.ID("pass"), pass), chromedp.Click(chromedp.ID("pass-submit")))
	b.waitFor("the registration opened", `document.body.textContent.includes("You can now add a sign-in method.")`)
	b.waitFor("the add-a-passkey button", `document.getElementById("add-webauthn") !== null`)
	b.act("add a passkey", `document.getElementById("add-webauthn").click()`)
	b.waitFor("the passkey registration page", `document.getElementById("webauthn-start") !== null`)
	b.act("register the passkey", `document.getElementById("webauthn-start").click()`)
	b.waitFor("the registered passkey", `document.querySelector('#methods tr[data-type="webauthn"]') !== null`)

	// 3. Step up with it from the console's banner.
	b.run("open the policies", chromedp.Navigate(b.base+"/admin/policies"))
	b.waitFor("the passkey button", `document.getElementById("passkey-step-up") !== null`)
	b.act("confirm with the passkey", `document.getElementById("passkey-step-up").click()`)
	b.waitFor("the step-up page", `location.pathname === "/stepup" && document.getElementById("webauthn-start") !== null`)
	b.act("use the passkey", `document.getElementById("webauthn-start").click()`)
	b.waitFor("the policies page, changes allowed", `location.pathname === "/admin/policies" && document.getElementById("changes-banner") === null`)
}
