package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyTestExamples runs the scenario tests shipped in examples/
// exactly as a user runs them, so make check keeps them passing.
func TestPolicyTestExamples(t *testing.T) {
	t.Parallel()
	r := stepgate(t, "", "policy", "test", "--policies", filepath.Join("..", "..", "examples", "policies")).mustSucceed(t)
	for _, want := range []string{"coverage: every enabled and report-only policy applied", "14 scenarios: 14 passed, 0 failed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

const scenariosGood = `now: 2026-01-05T09:00:00Z
scenarios:
  - name: alice passes c2 with a user-verified passkey
    user: alice
    app: payroll
    contexts: [c2]
    proofs: [{method: password, age: 1h}, {method: "webauthn:uv", age: 1m}, {method: totp, age: 1h}]
    expect: {decision: allow}
  - name: alice has no passkey
    user: alice
    app: payroll
    contexts: [c2]
    proofs: [{method: password, age: 1h}]
    expect: {decision: block, reason: no-usable-method, policy: c2-phishing-resistant}
`

const scenariosFailing = `now: 2026-01-05T09:00:00Z
scenarios:
  - name: staff sign in with a password alone
    user: alice
    app: payroll
    proofs: [{method: password, age: 1h}]
    expect:
      decision: allow
`

// TestPolicyTest: exit 0 when every scenario passes, 1 with a diff at
// file:line when one fails, 2 for a malformed test file or none at all;
// and a test file beside the policies is never read as policies.
func TestPolicyTest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	mkdir(t, polDir)
	write(t, polDir, "policies.yaml", lintGood)
	good := write(t, polDir, "good.tests.yaml", scenariosGood)
	data := filepath.Join(dir, "data")
	cfg := write(t, dir, "stepgate.yaml", "server:\n  data_dir: "+data+"\npolicy:\n  files: ["+polDir+"]\n")
	conf := "--config=" + cfg
	stepgate(t, "", "group", "add", "staff", conf).mustSucceed(t)
	stepgate(t, "correct horse battery", "user", "add", "alice", "--password-stdin", "--group", "staff", conf).mustSucceed(t)

	t.Run("ok/beside-the-policies", func(t *testing.T) {
		r := stepgate(t, "", "policy", "test", conf).mustSucceed(t)
		for _, want := range []string{"2 scenarios: 2 passed, 0 failed", "coverage: 2 not exercised", "policy staff-mfa: no scenario was left out by users.include"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
	})
	t.Run("ok/lint-skips-test-files", func(t *testing.T) {
		r := stepgate(t, "", "policy", "lint", polDir).mustSucceed(t)
		if !strings.Contains(r.stdout, "ok: 2 policies in 1 file") {
			t.Errorf("lint read the test file as policies: %s", r.stdout)
		}
	})
	t.Run("fail/wrong-expectation", func(t *testing.T) {
		bad := write(t, dir, "bad.tests.yaml", scenariosFailing)
		r := stepgate(t, "", "policy", "test", conf, good, bad)
		r.mustFail(t, 1, "1 scenario of 3 failed")
		for _, want := range []string{
			bad + `:8: scenario "staff sign in with a password alone": expected decision allow, got block`,
			"    - decision: allow\n    + decision: block\n      policy: [staff-mfa] (not expected)\n      reason: no-usable-method (not expected)\n",
			"3 scenarios: 2 passed, 1 failed",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
	})
	t.Run("fail/malformed-test-file", func(t *testing.T) {
		bad := write(t, dir, "typo.tests.yaml", "scenarios:\n  - name: x\n    user: alice\n    app: payroll\n    expect: {decision: alow}\n")
		r := stepgate(t, "", "policy", "test", conf, bad)
		r.mustFail(t, 2, "1 problem in the scenario test files")
		if want := bad + `:5: scenarios[0].expect.decision: "alow" is not a decision`; !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	})
	t.Run("fail/policy-file-named-as-tests", func(t *testing.T) {
		r := stepgate(t, "", "policy", "test", conf, filepath.Join(polDir, "policies.yaml"))
		r.mustFail(t, 2)
		if !strings.Contains(r.stdout, "not a scenario test file") {
			t.Errorf("stdout: %s", r.stdout)
		}
	})
	t.Run("fail/no-test-files", func(t *testing.T) {
		empty := filepath.Join(dir, "empty")
		mkdir(t, empty)
		stepgate(t, "", "policy", "test", conf, empty).mustFail(t, 2, "no scenario test files (*.tests.yaml) in "+empty)
	})
	t.Run("fail/offline-needs-inline-subjects", func(t *testing.T) {
		r := stepgate(t, "", "policy", "test", "--policies", polDir)
		r.mustFail(t, 1, "2 scenarios of 2 failed")
		if !strings.Contains(r.stdout, `user "alice" is looked up in the store, and there is none; write the subject inline`) {
			t.Errorf("stdout: %s", r.stdout)
		}
	})
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}
