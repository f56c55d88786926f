package scenario

import (
	"strings"
	"testing"
)

// TestParseBadFiles: every mistake is reported with its line, key path
// and the fix, all of them at once.
func TestParseBadFiles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml string
		want       []string // each must appear in one problem line
	}{
		{"fail/unknown-key", `
scenarios:
  - name: a
    subject: {username: u}
    app: wiki
    expcet: {decision: allow}
`, []string{"f.tests.yaml:6: scenarios[0].expcet: unknown key; did you mean \"expect\"?",
			"f.tests.yaml:3: scenarios[0].expect: a scenario needs expect:"}},
		{"fail/bad-age", `
scenarios:
  - name: a
    subject: {username: u}
    app: wiki
    proofs:
      - {method: totp, age: 5 minutes}
      - {method: password, age: -5m}
      - {method: password}
    expect: {decision: allow}
`, []string{`f.tests.yaml:7: scenarios[0].proofs[0].age: "5 minutes" is not an age; write how long ago`,
			`f.tests.yaml:8: scenarios[0].proofs[1].age: "-5m" is not an age`,
			`f.tests.yaml:9: scenarios[0].proofs[2].age: a proof needs an age`}},
		{"fail/unknown-method", `
scenarios:
  - name: a
    subject: {username: u}
    app: wiki
    proofs: [{method: totpp, age: 1m}]
    methods: [webauthn, fido]
    expect: {decision: challenge, methods: ["totp@-1m"]}
`, []string{`f.tests.yaml:6: scenarios[0].proofs[0].method: "totpp": unknown method "totpp"; known methods are`, `did you mean "totp"?`,
			`f.tests.yaml:7: scenarios[0].methods[1]: "fido": unknown method "fido"`,
			`scenarios[0].expect.methods[0]: "totp@-1m": give the method alone`}},
		{"fail/unknown-decision-and-reason", `
now: yesterday
scenarios:
  - name: a
    subject: {username: u}
    app: wiki
    expect:
      decision: alow
      reason: controls-not-satisfed
`, []string{`f.tests.yaml:8: scenarios[0].expect.decision: "alow" is not a decision; use one of allow, challenge, block (did you mean "allow"?)`,
			`f.tests.yaml:9: scenarios[0].expect.reason: "controls-not-satisfed" is not a reason code`, `did you mean "controls-not-satisfied"?`,
			`f.tests.yaml:2: now: "yesterday" is not an RFC 3339 time`}},
		{"fail/who-and-what", `
scenarios:
  - name: a
    user: alice
    subject: {username: u}
    expect: {decision: allow}
  - name: a
    client: svc
    route: {name: bank, path: transfers}
    app: bank
    expect: {decision: allow, methods: []}
`, []string{`f.tests.yaml:4: scenarios[0].user: give exactly one of user`,
			`scenarios[0].app: give what is being accessed`,
			`f.tests.yaml:7: scenarios[1].name: scenario "a" is already on line 3`,
			`scenarios[1].route: give a route or an app with contexts, not both`,
			`scenarios[1].route.path: "transfers" must start with /`,
			`scenarios[1].expect.methods: only a challenge offers methods`}},
		{"fail/policy-file", `
policies:
  - name: p
`, []string{`f.tests.yaml:2: policies: unknown key; this looks like a policy file`}},
		{"fail/wrong-shapes", `
scenarios:
  - name: a
    subject: {username: u}
    app: [wiki]
    device: {compliant: yes please}
    proofs: {method: totp}
    expect: {decision: allow}
`, []string{`f.tests.yaml:5: scenarios[0].app: must be a single value, not a list`,
			`f.tests.yaml:6: scenarios[0].device.compliant: must be true or false`,
			`f.tests.yaml:7: scenarios[0].proofs: must be a list`}},
		{"fail/syntax", "scenarios: [\n", []string{"f.tests.yaml:", "invalid YAML"}},
		{"fail/empty", "", []string{"the file is empty"}},
		{"fail/oversized", "scenarios: []\n#" + strings.Repeat("x", MaxFileSize), []string{"scenario test files are limited to"}},
		{"fail/no-scenarios", "now: 2026-01-05T09:00:00Z\n", []string{"scenarios: no scenarios"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, probs := Parse("f.tests.yaml", []byte(tc.yaml))
			var lines []string
			for _, p := range probs {
				lines = append(lines, p.String())
			}
			all := strings.Join(lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("no problem says %q; problems:\n%s", w, all)
				}
			}
		})
	}
}

// TestParseGood: a file with every kind of fact parses without a
// problem, and the keys written (even as empty lists) are known.
func TestParseGood(t *testing.T) {
	t.Parallel()
	f, probs := Parse("f.tests.yaml", []byte(`
now: 2026-01-05T09:00:00Z
scenarios:
  - name: everything
    now: 2026-01-06T09:00:00Z
    subject: {username: u, groups: [g], roles: [r]}
    route: {name: bank, method: POST, path: /transfers}
    ip: 203.0.113.1
    country: DE
    platform: windows
    client_app: browser
    device: {id: d1, compliant: true, trust_type: managed, attributes: {owner: corp}}
    sign_in_risk: low
    user_risk: none
    proofs: [{method: pwd, age: 2h}, {method: "webauthn:uv", age: 0s}, {method: totp, age: 1d}]
    terms: [tou]
    statement: {class: write, command: UPDATE, tables: [accounts], labels: [pii]}
    methods: []
    expect: {decision: challenge, policy: p, reason: controls-not-satisfied, methods: []}
`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	s := &f.Scenarios[0]
	if !s.Has("methods") || !s.Has("expect.methods") || s.Has("user") || s.Line != 4 || s.LineOf("expect") != 19 {
		t.Errorf("scenario keys: methods %v, expect.methods %v, user %v, line %d, expect line %d",
			s.Has("methods"), s.Has("expect.methods"), s.Has("user"), s.Line, s.LineOf("expect"))
	}
	if s.Device.Attributes["owner"] != "corp" || !s.Device.Compliant || s.SQL.Tables[0] != "accounts" {
		t.Errorf("device %+v, statement %+v", s.Device, s.SQL)
	}
}

// TestTestFileNames: the policy loader and the test loader split files
// by name, so neither reads the other's.
func TestTestFileNames(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"policies.tests.yaml": true, "dir/BANK.Tests.YML": true, "policies.yaml": false,
		"tests.yaml": false, "policies.test.yaml": false, "policies.tests.yaml.bak": false,
	} {
		if got := IsTestFile(name); got != want {
			t.Errorf("IsTestFile(%q) = %v, want %v", name, got, want)
		}
	}
}
