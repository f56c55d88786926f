package scenario

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/gateway"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

const testPolicies = `auth_contexts:
  - {id: c1, name: Read PII}
  - {id: c2, name: Transfer}
policies:
  - name: pii-needs-mfa
    state: enabled
    users: {include: {users: [all]}, exclude: {groups: [breakglass]}}
    target: {auth_contexts: [c1]}
    grant: {controls: [mfa]}
  - name: transfers-fresh-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c2]}
    grant: {controls: [mfa]}
    session: {sign_in_frequency: 10m}
  - name: block-risky
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {sign_in_risk: [high]}
    grant: block
  - name: finance-device-trial
    state: report-only
    users: {include: {groups: [finance]}}
    target: {apps: {include: [bank]}}
    conditions: {platforms: {include: [android]}}
    grant: {controls: [compliant-device]}
  - name: off
    state: disabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    grant: block
`

// users is a store of users by name with their registered methods.
type users map[string][]string

func (u users) GetUserByName(_ context.Context, name string) (store.User, error) {
	if _, ok := u[name]; !ok {
		return store.User{}, store.ErrNotFound
	}
	return store.User{ID: "id-" + name, Username: name, PasswordHash: "x"}, nil
}

func testEnv(t *testing.T) Env {
	t.Helper()
	doc, probs := policy.Parse("p.yaml", []byte(testPolicies))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	snap, probs := policy.Compile(nil, doc)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	us := users{"alice": {"totp"}, "bob": nil}
	routes := []gateway.Route{{Name: "bank", From: "http://bank.example", To: "http://127.0.0.1:9", Rules: []gateway.Rule{
		{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
		{Path: "/customers/*", Context: "c1"},
		{Path: "/public/*", Anonymous: true},
	}}}
	return Env{
		Snapshot: snap, Documents: []*policy.Document{doc}, Users: us,
		Methods: func(_ context.Context, u store.User) ([]string, error) {
			return append(append([]string(nil), us[u.Username]...), "password"), nil
		},
		Resolve: func(name, method, path string) (gateway.Target, error) {
			return gateway.Resolve(routes, name, method, path)
		},
		Now: func() time.Time { return time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC) },
	}
}

func runFile(t *testing.T, env Env, yaml string) Report {
	t.Helper()
	f, probs := Parse("t.tests.yaml", []byte(yaml))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return RunAll(context.Background(), env, []*File{f})
}

// TestRunPass: scenarios about routes, stored users, inline subjects and
// methods get the answers the decision core gives the gateway.
func TestRunPass(t *testing.T) {
	t.Parallel()
	rep := runFile(t, testEnv(t), `
scenarios:
  - name: ok/challenge-offers-totp
    user: alice
    route: {name: bank, method: GET, path: /customers/7}
    proofs: [{method: password, age: 1h}]
    expect: {decision: challenge, policy: pii-needs-mfa, reason: controls-not-satisfied, methods: [totp]}
  - name: ok/no-usable-method-blocks
    user: bob
    route: {name: bank, path: /customers/7}
    proofs: [{method: password, age: 1h}]
    expect: {decision: block, policy: pii-needs-mfa, reason: no-usable-method}
  - name: ok/stale-mfa-for-transfer
    user: alice
    route: {name: bank, method: post, path: /transfers}
    proofs: [{method: password, age: 1h}, {method: totp, age: 11m}]
    expect: {decision: challenge, policy: transfers-fresh-mfa}
  - name: ok/fresh-mfa-for-transfer
    user: alice
    route: {name: bank, method: POST, path: /transfers}
    proofs: [{method: password, age: 9m}, {method: totp, age: 9m}]
    expect: {decision: allow, policy: transfers-fresh-mfa}
  - name: ok/get-transfers-is-no-transfer
    user: alice
    route: {name: bank, method: GET, path: /transfers}
    proofs: [{method: password, age: 1h}]
    expect: {decision: allow}
  - name: ok/anonymous-route
    user: bob
    route: {name: bank, path: /public/rates}
    expect: {decision: allow}
  - name: ok/high-risk-blocked
    subject: {username: carol, groups: [breakglass]}
    app: bank
    sign_in_risk: high
    expect: {decision: block, policy: block-risky, reason: blocked-by-policy}
  - name: ok/breakglass-skips-pii
    subject: {username: carol, groups: [breakglass]}
    app: bank
    contexts: [c1]
    expect: {decision: allow}
  - name: ok/methods-listed-in-scenario
    subject: {username: dan}
    app: bank
    contexts: [c1]
    proofs: [{method: password, age: 1m}]
    methods: [webauthn, otp-sms]
    expect: {decision: challenge, methods: [otp-sms, webauthn]}
  # A route's rules are matched as the gateway matches a live request, so
  # a scenario cannot pass a protected page off as an open one: case
  # and format-suffix variants are still the protected page.
  - name: ok/case-variant-still-protected
    user: alice
    route: {name: bank, method: GET, path: /CUSTOMERS/7}
    proofs: [{method: password, age: 1h}]
    expect: {decision: challenge, policy: pii-needs-mfa}
  - name: ok/format-suffix-still-protected
    user: alice
    route: {name: bank, method: GET, path: /customers.json}
    proofs: [{method: password, age: 1h}]
    expect: {decision: challenge, policy: pii-needs-mfa}
  - name: ok/scenario-now-wins
    now: 2026-01-05T09:20:00Z
    user: alice
    app: bank
    contexts: [c2]
    proofs: [{method: password, age: 1m}, {method: totp, age: 1m}]
    expect: {decision: allow}
`)
	var out bytes.Buffer
	rep.WriteFailures(&out)
	if rep.Failures() > 0 {
		t.Fatalf("failures:\n%s", out.String())
	}
}

// TestRunFailReportsDiff: a wrong expectation is a failure at the line
// of the expected key, with a diff of every field.
func TestRunFailReportsDiff(t *testing.T) {
	t.Parallel()
	rep := runFile(t, testEnv(t), `
scenarios:
  - name: fail/expects-allow
    user: alice
    route: {name: bank, path: /customers/7}
    proofs: [{method: password, age: 1h}]
    expect:
      decision: allow
      reason: controls-not-satisfied
  - name: fail/wrong-policy-and-methods
    user: alice
    app: bank
    contexts: [c1]
    expect:
      decision: challenge
      policy: transfers-fresh-mfa
      methods: [webauthn]
  - name: fail/unknown-user
    user: mallory
    app: bank
    expect: {decision: allow}
  - name: fail/path-outside-rules
    user: alice
    route: {name: bank, path: "/a/../customers/1"}
    expect: {decision: allow}
  - name: fail/unknown-route
    user: alice
    route: {name: shop, path: /}
    expect: {decision: allow}
`)
	if rep.Failures() != 5 {
		t.Fatalf("%d failures, want 5", rep.Failures())
	}
	var out bytes.Buffer
	rep.WriteFailures(&out)
	for _, want := range []string{
		`t.tests.yaml:8: scenario "fail/expects-allow": expected decision allow, got challenge`,
		"    - decision: allow\n    + decision: challenge\n      policy: [pii-needs-mfa] (not expected)\n      reason: controls-not-satisfied\n      methods: [totp] (not expected)\n",
		`t.tests.yaml:16: scenario "fail/wrong-policy-and-methods": expected policy transfers-fresh-mfa, got [pii-needs-mfa]`,
		"    - methods: [webauthn]\n    + methods: [totp, password]\n",
		`t.tests.yaml:18: scenario "fail/unknown-user": could not run: unknown user "mallory"`,
		`scenario "fail/unknown-route": could not run: no gateway route is named "shop"`,
		`scenario "fail/path-outside-rules": could not run: the gateway refuses path "/a/../customers/1" (400)`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCoverage: a policy no scenario applied, and each condition that
// never left a scenario out, is a gap; a disabled policy is not.
func TestCoverage(t *testing.T) {
	t.Parallel()
	rep := runFile(t, testEnv(t), `
scenarios:
  - name: pii
    subject: {username: dan}
    app: bank
    contexts: [c1]
    expect: {decision: challenge}
`)
	var got []string
	for _, g := range rep.Gaps {
		got = append(got, g.String())
	}
	want := []string{
		"p.yaml:7: policy pii-needs-mfa: no scenario was left out by users.exclude",
		"p.yaml:8: policy pii-needs-mfa: no scenario was left out by target.auth_contexts",
		"p.yaml:10: policy transfers-fresh-mfa: no scenario applied it",
		"p.yaml:16: policy block-risky: no scenario applied it",
		"p.yaml:22: policy finance-device-trial: no scenario applied it",
		"p.yaml:25: policy finance-device-trial: no scenario was left out by target.apps.include",
		"p.yaml:26: policy finance-device-trial: no scenario was left out by conditions.platforms",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("gaps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Scenarios that apply each policy and show each condition
	// mattering close every gap.
	rep = runFile(t, testEnv(t), `
scenarios:
  - {name: pii, subject: {username: dan}, app: bank, contexts: [c1], expect: {decision: challenge}}
  - {name: pii-breakglass, subject: {username: eve, groups: [breakglass]}, app: bank, contexts: [c1], expect: {decision: allow}}
  - {name: transfer, subject: {username: dan}, app: bank, contexts: [c2], expect: {decision: challenge}}
  - {name: risky, subject: {username: dan}, app: bank, sign_in_risk: high, expect: {decision: block}}
  - {name: finance-android, subject: {username: fay, groups: [finance]}, app: bank, platform: android, expect: {decision: allow}}
  - {name: finance-ios, subject: {username: fay, groups: [finance]}, app: bank, platform: ios, expect: {decision: allow}}
  - {name: finance-wiki, subject: {username: fay, groups: [finance]}, app: wiki, platform: android, expect: {decision: allow}}
`)
	if rep.Failures() > 0 || len(rep.Gaps) > 0 {
		var out bytes.Buffer
		rep.WriteFailures(&out)
		rep.WriteSummary(&out)
		t.Fatalf("want every scenario passing and no gap:\n%s", out.String())
	}
}
