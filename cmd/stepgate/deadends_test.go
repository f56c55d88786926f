package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/deadend"
)

const deadEndPolicies = `auth_contexts:
  - id: c1
    name: Read PII
policies:
  - name: pii-needs-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1]}
    grant: {controls: [mfa]}
  - name: payroll-needs-approval
    state: enabled
    users: {include: {groups: [payroll]}}
    target: {apps: {include: [all]}}
    grant: {controls: [approval]}
`

// TestPolicyDeadEnds: stepgate policy deadends lists the users each
// policy strands with counts per group and why, as a table and as JSON,
// and policy lint --strict warns about a policy nobody in scope can meet.
func TestPolicyDeadEnds(t *testing.T) {
	dir := t.TempDir()
	policies := write(t, dir, "policies.yaml", deadEndPolicies)
	cfgPath := filepath.Join(dir, "stepgate.yaml")
	if err := os.WriteFile(cfgPath, []byte("policy:\n  files: ["+policies+"]\nregistration:\n  window: 0s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--config", cfgPath, "--data-dir", filepath.Join(dir, "data")}
	sg := func(stdin string, args ...string) result {
		t.Helper()
		return stepgate(t, stdin, append(args, flags...)...)
	}
	sg("", "group", "add", "payroll").mustSucceed(t)
	sg("pat-password-123", "user", "add", "pat", "--password-stdin", "--group", "payroll").mustSucceed(t)
	sg("bob-password-123", "user", "add", "bob", "--password-stdin").mustSucceed(t)

	out := sg("", "policy", "deadends").mustSucceed(t).stdout
	for _, want := range []string{
		"pii-needs-mfa (context c1 (Read PII)): 2 of 2 in scope stranded, 0 fixable, 2 stuck (nobody in scope can meet it)",
		"by group: (no group) 1, payroll 1",
		"payroll-needs-approval (all apps): 1 of 1 in scope stranded, 0 fixable, 1 stuck",
		"needs approval; has password; no method of this deployment would meet it",
		"needs mfa; has password; registering",
		"2 users stranded",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("policy deadends does not say %q:\n%s", want, out)
		}
	}
	var rep deadend.Report
	if err := json.Unmarshal([]byte(sg("", "policy", "deadends", "--json").mustSucceed(t).stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Users != 2 || len(rep.Policies) != 2 || rep.Policies[0].Groups["payroll"] != 1 || rep.Policies[0].Stranded[0].Verdict != deadend.Stuck {
		t.Errorf("JSON report: %+v", rep)
	}

	lint := sg("", "policy", "lint", "--strict", policies).mustSucceed(t).stdout
	if !strings.Contains(lint, "warning: policy pii-needs-mfa: nobody in scope can meet it (2 users;") ||
		!strings.Contains(lint, "warning: policy payroll-needs-approval: nobody in scope can meet it (1 user; pat: needs approval") {
		t.Errorf("lint --strict does not warn:\n%s", lint)
	}
	if offline := stepgate(t, "", "policy", "lint", policies).mustSucceed(t).stdout; strings.Contains(offline, "warning") {
		t.Errorf("the offline lint knows no users and must not warn:\n%s", offline)
	}
	sg("", "policy", "deadends", "extra").mustFail(t, 2, "no arguments")
}

// demoNotNow answers "Not now" to the registration offer at loc, which
// the demo's campaign shows alice after she signs in, and returns where
// that leads: on to where the sign-in was headed.
func demoNotNow(t *testing.T, b *http.Client, base string, loc *url.URL) (*http.Response, string) {
	t.Helper()
	_, page := demoDo(t, b, "GET", loc.String(), nil)
	csrf := demoCSRFRe.FindStringSubmatch(page)
	if csrf == nil || !strings.Contains(page, `href="/account/security/add?method=webauthn&amp;return_to=`) {
		t.Fatalf("the registration offer has no form or offers no passkey:\n%s", page)
	}
	return demoDo(t, b, "POST", base+"/account/register-offer", url.Values{"csrf_token": {csrf[1]},
		"return_to": {loc.Query().Get("return_to")}})
}
