package app_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// liveState is the state the live set has for the policy name.
func liveState(t *testing.T, s *consoleRig, name string) string {
	t.Helper()
	for _, p := range s.app.Policies.Load().Policies() {
		if p.Name == name {
			return string(p.State)
		}
	}
	t.Fatalf("no live policy %s", name)
	return ""
}

// bobAllowedTests say that bob signs in to the web app with his password
// alone; enabling an MFA policy for the web app breaks them.
const bobAllowedTests = `now: 2026-01-05T09:00:00Z
scenarios:
  - name: bob signs in to the web app with his password
    user: bob
    app: webapp
    proofs: [{method: password, age: 1m}]
    expect: {decision: allow}
`

// TestConsoleScenarioTestsGuardSaves: a save that makes the scenario
// tests beside the policy files fail is refused with the failures shown
// and nothing stored; a blank override is no override; an override with
// a reason saves, and the audit trail records the override, its reason
// and the failures it overrode. A change the tests accept saves as
// before.
func TestConsoleScenarioTestsGuardSaves(t *testing.T) {
	s := startConsole(t)
	ctx := context.Background()
	dir := filepath.Dir(s.app.Config.Policy.Files[0])
	if err := os.WriteFile(filepath.Join(dir, "webapp.tests.yaml"), []byte(bobAllowedTests), 0o600); err != nil {
		t.Fatal(err)
	}
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)

	// Report-only changes no decision: the tests pass, the save goes through.
	resp, body := s.postForm(t, c, "/admin/documents", url.Values{"action": {"save"}, "name": {"trial"}, "version": {"0"},
		"yaml": {strings.Replace(reportOnlyDoc, "webapp-mfa", "webapp-mfa-trial", 1)}, "reason": {"watch first"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a change the tests accept: status %d\n%s", resp.StatusCode, body)
	}

	// Scenarios are hypothetical: running them writes nothing to the
	// sign-in log (which the overview counts and risk detectors read).
	logged := func() int {
		t.Helper()
		// Entries are written through a queue: count what is written.
		if err := s.app.SignIns.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		entries, err := s.app.Store.ListSignIns(ctx, store.SignInQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	before := logged()
	defer func() {
		if after := logged(); after != before {
			t.Errorf("running scenarios wrote %d sign-in log entries", after-before)
		}
	}()

	enabled := strings.Replace(reportOnlyDoc, "state: report-only", "state: enabled", 1)
	save := url.Values{"action": {"save"}, "name": {"webapp"}, "version": {"0"}, "yaml": {enabled}, "reason": {"MFA for everyone"}}
	for _, override := range []string{"", "   "} {
		form := cloneValues(save)
		form.Set("override_tests", override)
		resp, body = s.postForm(t, c, "/admin/documents", form)
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("override %q: status %d, want 409\n%s", override, resp.StatusCode, body)
		}
		for _, want := range []string{"1 scenario test fails with this change", `webapp.tests.yaml:7: scenario &#34;bob signs in to the web app with his password&#34;: expected decision allow, got`,
			"- decision: allow", `name="override_tests"`, "state: enabled"} {
			if !strings.Contains(body, want) {
				t.Errorf("override %q: the refusal lacks %q:\n%s", override, want, body)
			}
		}
		if _, err := s.app.Documents.Get(ctx, "webapp"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("override %q: a refused change was stored (%v)", override, err)
		}
	}

	save.Set("override_tests", "the tests predate the MFA rollout")
	resp, body = s.postForm(t, c, "/admin/documents", save)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save with an override: status %d\n%s", resp.StatusCode, body)
	}
	if _, err := s.app.Documents.Get(ctx, "webapp"); err != nil {
		t.Fatalf("the overridden change was not stored: %v", err)
	}
	// Switching a policy's state and deleting a document pass the same
	// guard: neither is a way around it.
	resp, body = s.postForm(t, c, "/admin/policies/webapp-mfa-trial/state", url.Values{"state": {"enabled"}, "reason": {"rollout"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "Switching webapp-mfa-trial to enabled fails 1 scenario test") ||
		!strings.Contains(body, `id="override-form"`) || !strings.Contains(body, `name="reason" value="rollout"`) {
		t.Fatalf("a state switch that fails the tests: status %d\n%s", resp.StatusCode, body)
	}
	if st := liveState(t, s, "webapp-mfa-trial"); st != "report-only" {
		t.Fatalf("a refused switch changed the state to %s", st)
	}
	resp, _ = s.postForm(t, c, "/admin/policies/webapp-mfa-trial/state", url.Values{"state": {"enabled"}, "reason": {"rollout"}, "override_tests": {"bob gets MFA now"}})
	if resp.StatusCode != http.StatusSeeOther || liveState(t, s, "webapp-mfa-trial") != "enabled" {
		t.Fatalf("a state switch with an override: status %d", resp.StatusCode)
	}
	doc, err := s.app.Documents.Get(ctx, "webapp")
	if err != nil {
		t.Fatal(err)
	}
	del := url.Values{"version": {strconv.FormatInt(doc.Version, 10)}, "confirm": {"yes"}, "reason": {"merged into trial"}}
	resp, body = s.postForm(t, c, "/admin/documents/webapp/delete", del)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `id="delete-override-tests"`) || !strings.Contains(body, "bob signs in to the web app") {
		t.Fatalf("a delete that fails the tests: status %d\n%s", resp.StatusCode, body)
	}
	del.Set("override_tests", "trial covers it")
	if resp, _ = s.postForm(t, c, "/admin/documents/webapp/delete", del); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a delete with an override: status %d", resp.StatusCode)
	}

	entries, err := s.app.Audit.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	var overrideAfter string
	for _, e := range entries {
		if e.Actor == "user:"+adminName {
			trail = append(trail, e.Action+" "+e.Target+" "+e.Reason)
			if e.Action == "policy.tests-overridden" {
				overrideAfter = string(e.After)
			}
		}
	}
	want := []string{"policy.create store:trial watch first", "policy.tests-overridden store:webapp the tests predate the MFA rollout", "policy.create store:webapp MFA for everyone",
		"policy.tests-overridden policy:webapp-mfa-trial bob gets MFA now", "policy.state policy:webapp-mfa-trial rollout",
		"policy.tests-overridden store:webapp trial covers it", "policy.delete store:webapp merged into trial"}
	if !slices.Equal(trail, want) {
		t.Errorf("audit trail %q, want %q", trail, want)
	}
	if !strings.Contains(overrideAfter, "bob signs in to the web app with his password") {
		t.Errorf("the override's audit entry does not list the failed scenario: %s", overrideAfter)
	}

	// A broken test file cannot wave a change through: its problems fail
	// the run like failed scenarios.
	if err := os.WriteFile(filepath.Join(dir, "webapp.tests.yaml"), []byte("scenarios:\n  - name: x\n    expect: {decision: alow}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, body = s.postForm(t, c, "/admin/documents", url.Values{"action": {"save"}, "name": {"other"}, "version": {"0"},
		"yaml": {strings.Replace(reportOnlyDoc, "webapp-mfa", "other-trial", 1)}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "webapp.tests.yaml:3: scenarios[0].expect.decision") {
		t.Errorf("a save with a broken test file: status %d\n%s", resp.StatusCode, body)
	}
}
