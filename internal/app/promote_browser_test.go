package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/config"
)

// TestBrowserPolicyLifecycle, in Chromium with a virtual authenticator:
// the administrator steps up with a passkey, then
//  1. saves a policy enabling MFA for the web app in production, and is
//     refused: the scenario test beside the policy files (bob signs in
//     with his password alone) fails, and nothing is stored;
//  2. writes the same policy, report-only, in staging, where it stays;
//  3. reviews the promotion of staging to production (the added
//     document's diff, the replay), confirms it with a reason, and lands
//     on production's history with the promotion at the top, the policy
//     live in production;
//  4. restores production's version before the promotion from the
//     history, and the policy is gone from production again.
func TestBrowserPolicyLifecycle(t *testing.T) {
	dir := t.TempDir()
	prodFile := filepath.Join(dir, "policies.yaml")
	writePolicy(t, prodFile, testPolicies)
	if err := os.WriteFile(filepath.Join(dir, "webapp.tests.yaml"), []byte(bobAllowedTests), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBrowserRig(t, func(cfg *config.Config) {
		cfg.Policy.Files = []string{prodFile}
		cfg.Policy.Environments = map[string]config.PolicyEnvironment{"staging": {}}
		cfg.Registration.Window = 0
	})
	s := &consoleRig{oidcServer: b.s}
	ctx := context.Background()
	s.admin = addUser(t, s.app.Users, adminName, adminPassword, admin.Role)
	s.bob = addUser(t, s.app.Users, bobName, bobPassword)
	pass, _, err := s.app.Methods.Passes.Issue(ctx, s.admin.ID, "root", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	// Production has a stored document of its own, version 1, to restore later.
	s.saveDoc(t, "notes", "policies: []\n")
	b.run("set the window size", chromedp.EmulateViewport(1280, 900))
	b.adminWithPasskey(pass)
	enabled := strings.Replace(reportOnlyDoc, "state: report-only", "state: enabled", 1)

	// 1. A save the scenario tests refuse.
	b.run("write the enabled policy in production",
		chromedp.Navigate(b.base+"/admin/documents/new"),
		chromedp.WaitVisible(chromedp.ID("doc-name")),
		chromedp.SendKeys(chromedp.ID("doc-name"), "webapp"),
		chromedp.SetValue(chromedp.ID("yaml"), enabled),
	)
	b.act("save it", `document.getElementById("reason").value = "MFA now"; document.getElementById("save").click()`)
	b.waitFor("the failed scenario tests", `document.getElementById("failed-tests") !== null`)
	if text := b.text(); !strings.Contains(text, "bob signs in to the web app with his password") || !strings.Contains(text, "expected decision allow") {
		t.Errorf("the refusal does not show the failing scenario:\n%s", text)
	}
	if _, err := s.app.Documents.Get(ctx, "webapp"); err == nil {
		t.Fatal("fail/tests-refuse-save: the document was stored")
	}

	// 2. The report-only policy in staging.
	b.run("write the report-only policy in staging",
		chromedp.Navigate(b.base+"/admin/documents/new?env=staging"),
		chromedp.WaitVisible(chromedp.ID("doc-name")),
		chromedp.SendKeys(chromedp.ID("doc-name"), "webapp"),
		chromedp.SetValue(chromedp.ID("yaml"), reportOnlyDoc),
	)
	b.act("save it", `document.getElementById("reason").value = "try it on staging"; document.getElementById("save").click()`)
	b.waitFor("the saved staging document", `location.pathname === "/admin/documents/webapp" && location.search.includes("env=staging") && document.getElementById("env-badge") !== null`)
	if _, err := s.app.Documents.Get(ctx, "webapp"); err == nil {
		t.Fatal("a document saved in staging reached production")
	}

	// 3. Review and confirm the promotion.
	b.run("open the environments", chromedp.Navigate(b.base+"/admin/environments"))
	b.waitFor("the promotion form", `document.getElementById("review-promotion") !== null`)
	b.act("review staging → production", `document.getElementById("promote-from").value = "staging"; document.getElementById("promote-to").value = "production"; document.getElementById("review-promotion").click()`)
	b.waitFor("the review", `location.pathname === "/admin/environments/production/promote" && document.querySelector('.doc-change[data-document="webapp"][data-kind="added"]') !== null`)
	if text := b.text(); !strings.Contains(text, "+    state: report-only") || !strings.Contains(text, "Replayed") {
		t.Errorf("the review does not show the diff and the replay:\n%s", text)
	}
	b.screenshot("policy-promotion-review.png")
	b.act("confirm with a reason", `document.getElementById("reason").value = "CHG-42"; document.getElementById("confirm").click()`)
	b.waitFor("production's history", `location.pathname === "/admin/environments/production/history" && document.querySelector('#history tr[data-action="policy.promote"]') !== null`)
	if got := liveState(t, s, "webapp-mfa"); got != "report-only" {
		t.Fatalf("after the promotion production has webapp-mfa %q", got)
	}

	b.screenshot("policy-history.png")

	// 4. Restore the version before the promotion.
	b.act("review restoring version 1", `document.querySelector('#history tr[data-version="1"] a.rollback').click()`)
	b.waitFor("the rollback review", `location.pathname === "/admin/environments/production/rollback" && document.querySelector('.doc-change[data-document="webapp"][data-kind="removed"]') !== null`)
	b.act("confirm with a reason", `document.getElementById("reason").value = "INC-9"; document.getElementById("confirm").click()`)
	b.waitFor("the restored version on top", `location.pathname === "/admin/environments/production/history" && document.querySelector('#history tbody tr').dataset.action === "policy.rollback"`)
	for _, p := range s.app.Policies.Load().Policies() {
		if p.Name == "webapp-mfa" {
			t.Fatal("after the rollback production still has webapp-mfa")
		}
	}
}
