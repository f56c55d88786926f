package policy

import (
	"strconv"
	"strings"
	"testing"
)

// parseOK parses src and fails the test on any parse problem.
func parseOK(t *testing.T, name, src string) *Document {
	t.Helper()
	doc, probs := Parse(name, []byte(src))
	if len(probs) > 0 {
		t.Fatalf("parse %s:\n%v", name, probs)
	}
	return doc
}

// mustCompile compiles YAML against the golden directory.
func mustCompile(t *testing.T, src string) *Snapshot {
	t.Helper()
	snap, probs := Compile(goldenDirectory(), parseOK(t, "p.yaml", src))
	if len(probs) > 0 {
		t.Fatalf("compile:\n%v", probs)
	}
	return snap
}

// policyYAML wraps the lines of one policy's body (indented four spaces)
// into a document with a name and a state.
func policyYAML(body string) string {
	return "policies:\n  - name: p\n    state: enabled\n" + body
}

const (
	allUsers = "    users: {include: {users: [all]}}\n"
	allApps  = "    target: {apps: {include: [crm]}}\n"
	mfa      = "    grant: {controls: [mfa]}\n"
)

func TestCompileProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"ok/minimal", policyYAML(allUsers + allApps + mfa), nil},
		{"fail/missing-everything", "policies:\n  - description: x\n", []string{
			"2:policies[0].name: is required", "2:policies[0].state: is required",
			"2:policies[0].users.include: is required", "2:policies[0].target: is required", "2:policies[0].grant: is required"}},
		{"fail/bad-state", "policies:\n  - name: p\n    state: on\n" + allUsers + allApps + mfa, []string{`3:policies[0].state: "on" is not a state`}},
		{"fail/unknown-user", policyYAML("    users: {include: {users: [zed]}}\n" + allApps + mfa), []string{`4:policies[0].users.include.users[0]: unknown user "zed"`}},
		{"fail/unknown-group", policyYAML("    users: {include: {groups: [finanse]}}\n" + allApps + mfa), []string{`4:policies[0].users.include.groups[0]: unknown group "finanse"; did you mean "finance"?`}},
		{"fail/unknown-role", policyYAML("    users: {include: {roles: [root]}}\n" + allApps + mfa), []string{`4:policies[0].users.include.roles[0]: unknown role "root"`}},
		{"fail/unknown-client", policyYAML("    users: {include: {clients: [bot]}}\n" + allApps + "    grant: block\n"), []string{`4:policies[0].users.include.clients[0]: unknown client "bot"`}},
		{"fail/exclude-all-users", policyYAML("    users: {include: {groups: [staff]}, exclude: {users: [all]}}\n" + allApps + mfa), []string{`4:policies[0].users.exclude.users[0]: excluding all users`}},
		{"fail/client-with-mfa", policyYAML("    users: {include: {clients: [ci-bot]}}\n" + allApps + mfa), []string{`6:policies[0].grant: a policy that includes service clients can only block`}},
		{"fail/unknown-app", policyYAML(allUsers + "    target: {apps: {include: [nope]}}\n" + mfa), []string{`5:policies[0].target.apps.include[0]: unknown app "nope"`}},
		{"fail/exclude-only-apps", policyYAML(allUsers + "    target: {apps: {exclude: [crm]}}\n" + mfa), []string{`5:policies[0].target.apps.include: is required`}},
		{"fail/two-target-kinds", policyYAML(allUsers + "    target: {apps: {include: [crm]}, user_actions: [register-device]}\n" + mfa), []string{`5:policies[0].target: sets more than one`}},
		{"fail/undeclared-context", policyYAML(allUsers + "    target: {auth_contexts: [c7]}\n" + mfa), []string{`5:policies[0].target.auth_contexts[0]: unknown auth context "c7"`}},
		{"fail/bad-action", policyYAML(allUsers + "    target: {user_actions: [register-securityinfo]}\n" + mfa), []string{`did you mean "register-security-info"?`}},
		{"fail/bad-risk", policyYAML(allUsers + allApps + "    conditions: {sign_in_risk: [severe]}\n" + mfa), []string{`6:policies[0].conditions.sign_in_risk[0]: unknown risk level "severe"`}},
		{"fail/bad-platform", policyYAML(allUsers + allApps + "    conditions: {platforms: {include: [macOS]}}\n" + mfa), []string{`unknown platform "macOS"; did you mean "macos"?`}},
		{"fail/exclude-all-platforms", policyYAML(allUsers + allApps + "    conditions: {platforms: {exclude: [all]}}\n" + mfa), []string{`excluding all platforms`}},
		{"fail/bad-client-app", policyYAML(allUsers + allApps + "    conditions: {client_apps: [browsr]}\n" + mfa), []string{`did you mean "browser"?`}},
		{"fail/unknown-location", policyYAML(allUsers + allApps + "    conditions: {locations: {include: [hq]}}\n" + mfa), []string{`unknown named location "hq"`}},
		{"fail/exclude-all-locations", policyYAML(allUsers + allApps + "    conditions: {locations: {exclude: [all]}}\n" + mfa), []string{`excluding all locations`}},
		{"fail/device-filter-no-mode", policyYAML(allUsers + allApps + "    conditions: {device_filter: {rule: device.is_compliant}}\n" + mfa), []string{`6:policies[0].conditions.device_filter.mode: is required`}},
		{"fail/cel-not-bool", policyYAML(allUsers + allApps + "    conditions: {expression: device.trust_type}\n" + mfa), []string{`it must give true or false`}},
		{"fail/cel-undeclared", policyYAML(allUsers + allApps + "    conditions: {expression: device.color == \"red\"}\n" + mfa), []string{`undeclared reference to 'device'`}},
		{"fail/operator", policyYAML(allUsers + allApps + "    grant: {operator: any-of, controls: [mfa]}\n"), []string{`"any-of" is not an operator; did you mean "all-of"?`}},
		{"fail/block-and-controls", policyYAML(allUsers + allApps + "    grant: {block: true, controls: [mfa]}\n"), []string{`block cannot be combined`}},
		{"fail/unknown-control", policyYAML(allUsers + allApps + "    grant: {controls: [mfaa]}\n"), []string{`unknown control "mfaa"; did you mean "mfa"?`}},
		{"fail/block-as-control", policyYAML(allUsers + allApps + "    grant: {controls: [block]}\n"), []string{`block is not a control; write grant: block`}},
		{"fail/unknown-strength", policyYAML(allUsers + allApps + "    grant: {controls: [{strength: phishing-resistnt}]}\n"), []string{`unknown strength "phishing-resistnt"; did you mean "phishing-resistant"?`}},
		{"fail/duplicate-control", policyYAML(allUsers + allApps + "    grant: {controls: [mfa, {strength: mfa}]}\n"), []string{`mfa is listed twice`}},
		{"fail/unknown-terms", policyYAML(allUsers + allApps + "    grant: {controls: [{terms_of_use: tou}]}\n"), []string{`unknown terms of use "tou"`}},
		{"fail/frequency", policyYAML(allUsers + allApps + mfa + "    session: {sign_in_frequency: hourly}\n"), []string{`"hourly" is neither every-time nor a duration`}},
		{"fail/frequency-too-short", policyYAML(allUsers + allApps + mfa + "    session: {sign_in_frequency: 10s}\n"), []string{`10s is outside 1m..365d`}},
		{"fail/persistent-browser", policyYAML(allUsers + allApps + mfa + "    session: {persistent_browser: sometimes}\n"), []string{`"sometimes" is not a mode`}},
		{"fail/unknown-acknowledgement", policyYAML(allUsers + allApps + mfa + "    acknowledge: [lockout]\n"), []string{`unknown check "lockout"`}},
		{"fail/context-id", "auth_contexts: [{id: c100, name: x}, {id: c1}]\n", []string{
			`1:auth_contexts[0].id: "c100" is not a context id`, `1:auth_contexts[1].name: is required`}},
		{"fail/duplicate-context", "auth_contexts: [{id: c1, name: a}, {id: c1, name: b}]\n", []string{`auth context "c1" is already declared at p.yaml:1`}},
		{"fail/location-shapes", `named_locations:
  - {name: all, ip_ranges: [10.0.0.0/8]}
  - {name: empty}
  - {name: trusted-country, trusted: true, countries: [DE]}
  - {name: lower, countries: [de]}
  - {name: v6, ip_ranges: ["2001:db8::1/32", "fe80::1%eth0"]}
`, []string{
			`2:named_locations[0].name: "all" is a reserved shortcut`,
			`3:named_locations[1]: defines no addresses`,
			`4:named_locations[2].trusted: only a location with ip_ranges can be trusted`,
			`5:named_locations[3].countries[0]: "de" is not an ISO 3166-1 alpha-2 country code`,
			`6:named_locations[4].ip_ranges[0]: "2001:db8::1/32" has bits set after the /32 prefix; did you mean 2001:db8::/32?`,
			`6:named_locations[4].ip_ranges[1]: "fe80::1%eth0" is not a valid IP address or CIDR`}},
		{"fail/strength-defs", `strengths:
  - {name: mfa, combinations: [webauthn]}
  - {name: keys}
  - {name: codes, combinations: [password+totpp]}
policies:
  - name: p
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [crm]}}
    grant: {controls: [{strength: codes}]}
`, []string{
			`2:strengths[0].name: strength "mfa" is built in`,
			`3:strengths[1].combinations: is required`,
			`4:strengths[2].combinations[0]: invalid combination: unknown method "totpp"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(tt.src, "auth_contexts:") {
				tt.src += "auth_contexts: [{id: c2, name: x}]\n" // after the policies, so lines stay put
			}
			snap, probs := Compile(goldenDirectory(), parseOK(t, "p.yaml", tt.src))
			if len(tt.want) == 0 {
				if len(probs) > 0 || snap == nil {
					t.Fatalf("compile: %v", probs)
				}
				return
			}
			if snap != nil {
				t.Error("a set with problems must not compile to a snapshot")
			}
			if len(probs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(tt.want), probs)
			}
			for i, w := range tt.want {
				if !matchesProblem(probs.Sorted()[i], w) {
					t.Errorf("problem %q does not match %q", probs.Sorted()[i], w)
				}
			}
		})
	}
}

// matchesProblem checks "N:path: msg" (line, path, message substring) or,
// without the prefix, a message substring alone.
func matchesProblem(p Problem, w string) bool {
	line, rest, ok := strings.Cut(w, ":")
	if ok && line != "" && strings.Trim(line, "0123456789") == "" {
		path, msg, _ := strings.Cut(rest, ": ")
		return strconv.Itoa(p.Line) == line && p.Path == path && strings.Contains(p.Message, msg)
	}
	return strings.Contains(p.Message, w)
}

const crossFilePolicies = `policies:
  - name: p
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1]}
    conditions: {locations: {include: [office]}}
    grant: {controls: [mfa]}
`

func TestCompileAcrossFiles(t *testing.T) {
	t.Parallel()
	a := parseOK(t, "a.yaml", "auth_contexts: [{id: c1, name: A}]\nnamed_locations: [{name: office, ip_ranges: [10.0.0.0/8]}]\n")
	// Declarations in one file serve policies in another.
	if _, probs := Compile(nil, a, parseOK(t, "b.yaml", crossFilePolicies)); len(probs) > 0 {
		t.Fatalf("cross-file references: %v", probs)
	}
	// Names are unique across files, and the problem points at both.
	b := parseOK(t, "b.yaml", "auth_contexts: [{id: c1, name: B}]\n"+crossFilePolicies)
	_, probs := Compile(nil, a, b)
	if len(probs) != 1 || probs[0].File != "b.yaml" || probs[0].Line != 1 || !strings.Contains(probs[0].Message, "already declared at a.yaml:1") {
		t.Fatalf("want one duplicate problem at b.yaml:1 pointing at a.yaml:1, got %v", probs)
	}
}

func TestCompileWithoutDirectory(t *testing.T) {
	t.Parallel()
	// Offline lint: names cannot be checked, everything else is.
	doc := parseOK(t, "p.yaml", policyYAML("    users: {include: {groups: [anything], users: [someone]}}\n    target: {apps: {include: [whatever]}}\n    grant: {controls: [mfaa]}\n"))
	_, probs := Compile(nil, doc)
	if len(probs) != 1 || !strings.Contains(probs[0].Message, `unknown control "mfaa"`) {
		t.Fatalf("want only the control problem, got %v", probs)
	}
}

func TestCompileCELLines(t *testing.T) {
	t.Parallel()
	doc := parseOK(t, "p.yaml", policyYAML(allUsers+allApps+`    conditions:
      expression: |
        device.is_compliant &&
        device.trust_type + 1 == 2
`+mfa))
	_, probs := Compile(nil, doc)
	if len(probs) != 1 {
		t.Fatalf("want one problem, got %v", probs)
	}
	// The error is on the expression's second line, which is line 9 of
	// the file; the column counts from the start of that line.
	if p := probs[0]; p.Line != 9 || !strings.Contains(p.Message, "(column 19)") {
		t.Errorf("problem = %q, want line 9, column 19", p)
	}
}

func TestGroupCycleIsCut(t *testing.T) {
	t.Parallel()
	dir := NewDirectory([]string{"u"}, nil, []string{"app"}, map[string][]string{"a": {"b"}, "b": {"a"}, "c": {"b"}})
	doc := parseOK(t, "p.yaml", policyYAML("    users: {include: {groups: [a]}}\n    target: {apps: {include: [app]}}\n"+mfa))
	snap, probs := Compile(dir, doc)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	req := &Request{Subject: Subject{Username: "u", Groups: []string{"c"}}, App: "app", Now: goldenNow}
	if d := snap.Evaluate(req, EvaluateOptions{}); d.Outcome != OutcomeChallenge {
		t.Errorf("member of c (nested in b, nested in a) should be covered by a policy on a; outcome %v", d.Outcome)
	}
}
