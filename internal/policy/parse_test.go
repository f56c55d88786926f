package policy

import (
	"fmt"
	"strings"
	"testing"
)

// wantProblems checks that got holds exactly one problem per want entry,
// each matching "line:path: message-substring" in order after sorting.
func wantProblems(t *testing.T, got Problems, want []string) {
	t.Helper()
	got = got.Sorted()
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		line, rest, _ := strings.Cut(w, ":")
		path, msg, _ := strings.Cut(rest, ": ")
		p := got[i]
		if fmt.Sprint(p.Line) != line || p.Path != path || !strings.Contains(p.Message, msg) {
			t.Errorf("problem %d = %q, want line %s, path %q, message containing %q", i, p.String(), line, path, msg)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"ok/empty-file", "", nil},
		{"ok/comment-only", "# nothing yet\n", nil},
		{"ok/grant-block-shortcut", "policies:\n  - name: x\n    grant: block\n", nil},
		{"ok/control-forms", "policies:\n  - grant:\n      controls: [mfa, {strength: x}, {terms_of_use: t}]\n", nil},
		{"ok/aliases", "x: &l [a]\npolicies:\n  - users: {include: {groups: *l}}\n", []string{`1:x: unknown key`}},
		{"fail/syntax-error", "policies: [\n", []string{`1:: invalid YAML`}},
		{"fail/top-level-list", "- a\n", []string{`1:: the top level must be a mapping`}},
		{"fail/unknown-top-key", "polices: []\n", []string{`1:polices: unknown key; did you mean "policies"?`}},
		{"fail/unknown-nested-key", "policies:\n  - name: a\n    conditons: {}\n", []string{`3:policies[0].conditons: unknown key; did you mean "conditions"?`}},
		{"fail/unknown-key-lists-known", "named_locations:\n  - zzz: 1\n", []string{`2:named_locations[0].zzz: unknown key; known keys here are name, trusted`}},
		{"fail/duplicate-key", "policies:\n  - name: a\n    name: b\n", []string{`3:policies[0].name: duplicate key (first set on line 2)`}},
		{"fail/list-expected", "auth_contexts: c1\n", []string{`1:auth_contexts: must be a list`}},
		{"fail/mapping-expected", "policies:\n  - users: all\n", []string{`2:policies[0].users: must be a mapping`}},
		{"fail/scalar-expected", "policies:\n  - name: [a]\n", []string{`2:policies[0].name: must be a single value`}},
		{"fail/bool-expected", "named_locations:\n  - trusted: yes please\n", []string{`2:named_locations[0].trusted: must be true or false`}},
		{"fail/empty-list-item", "policies:\n  -\n", []string{`2:policies[0]: is empty`}},
		{"fail/bad-grant-scalar", "policies:\n  - grant: allow\n", []string{`2:policies[0].grant: "allow" is not a grant`}},
		{"fail/bad-control-key", "policies:\n  - grant:\n      controls: [{strngth: x}]\n", []string{`3:policies[0].grant.controls[0].strngth: unknown control; did you mean "strength"?`}},
		{"fail/bad-control-shape", "policies:\n  - grant:\n      controls: [[mfa]]\n", []string{`3:policies[0].grant.controls[0]: must be a control name`}},
		{"fail/merge-key", "policies:\n  - <<: {name: a}\n", []string{`2:policies[0].<<: merge keys are not supported`}},
		{"fail/second-document", "policies: []\n---\npolicies: []\n", []string{`2:: a second YAML document`}},
		{"fail/every-problem-reported", "polices: []\nnamed_locations: x\npolicies:\n  - nme: a\n", []string{
			`1:polices: unknown key`, `2:named_locations: must be a list`, `4:policies[0].nme: unknown key; did you mean "name"?`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc, probs := Parse("p.yaml", []byte(tt.yaml))
			if doc == nil {
				t.Fatal("Parse returned a nil document")
			}
			for _, p := range probs {
				if p.File != "p.yaml" {
					t.Errorf("problem %q has file %q", p, p.File)
				}
			}
			wantProblems(t, probs, tt.want)
		})
	}
}

func TestParseModel(t *testing.T) {
	t.Parallel()
	doc, probs := Parse("p.yaml", []byte(`
auth_contexts:
  - {id: c2, name: High value, description: wire transfers}
policies:
  - name: p
    state: report-only
    users:
      include: {users: [all], groups: [g]}
      exclude: {roles: [r], clients: [c]}
    target:
      apps: {include: [all], exclude: [wiki]}
    conditions:
      sign_in_risk: [high]
      device_filter: {mode: include, rule: "device.is_compliant"}
    grant:
      operator: one-of
      controls: [mfa, {strength: phishing-resistant}, {terms_of_use: tou}]
    session: {sign_in_frequency: 1h, persistent_browser: never}
    acknowledge: [admin-lockout]
`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	p := doc.Policies[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"context", doc.AuthContexts[0], AuthContext{ID: "c2", Name: "High value", Description: "wire transfers"}},
		{"state", p.State, "report-only"},
		{"include", fmt.Sprint(p.Users.Include), fmt.Sprint(Subjects{Users: []string{"all"}, Groups: []string{"g"}})},
		{"exclude", fmt.Sprint(p.Users.Exclude), fmt.Sprint(Subjects{Roles: []string{"r"}, Clients: []string{"c"}})},
		{"apps", fmt.Sprint(p.Target.Apps), "{[all] [wiki]}"},
		{"risk", fmt.Sprint(p.Conditions.SignInRisk), "[high]"},
		{"filter", p.Conditions.DeviceFilter, DeviceFilter{Mode: "include", Rule: "device.is_compliant"}},
		{"grant", fmt.Sprint(p.Grant), "{false one-of [{mfa } {strength phishing-resistant} {terms_of_use tou}]}"},
		{"session", p.Session, Session{SignInFrequency: "1h", PersistentBrowser: "never"}},
		{"ack", fmt.Sprint(p.Acknowledge), "[admin-lockout]"},
		{"line", doc.line("policies[0].grant"), 15},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseAliasBomb(t *testing.T) {
	t.Parallel()
	// A 1,000-name list named by 1,000 policies that are all one alias:
	// a 12 KB file that would expand to a million values if walked
	// naively. The walker stops at its budget with one problem.
	var b strings.Builder
	b.WriteString("x: &names [")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "g%d", i)
	}
	b.WriteString("]\ny: &p {users: {include: {groups: *names}}}\npolicies: [")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*p")
	}
	b.WriteString("]\n")
	_, probs := Parse("bomb.yaml", []byte(b.String()))
	n := 0
	for _, p := range probs {
		if strings.Contains(p.Message, "expands to more than") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("got %d expansion problems, want 1, among %d problems", n, len(probs))
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	_, probs := Parse("big.yaml", make([]byte, MaxFileSize+1))
	wantProblems(t, probs, []string{"0:: policy files are limited"})
}

func TestProblemString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "policies.yaml", Line: 12, Path: "policies[0].conditions.locations.include[1]", Message: "bad"},
			"policies.yaml:12: policies[0].conditions.locations.include[1]: bad"},
		{Problem{File: "p.yaml", Message: "bad"}, "p.yaml: bad"},
		{Problem{Line: 3, Path: "x", Message: "bad"}, "line 3: x: bad"},
		{Problem{Message: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	if (Problems{}).Err() != nil {
		t.Error("no problems should be a nil error")
	}
	if err := (Problems{{Message: "a"}, {Message: "b"}}).Err(); err == nil || !strings.HasPrefix(err.Error(), "2 policy problems:\n  a\n  b") {
		t.Errorf("Err() = %v", err)
	}
}
