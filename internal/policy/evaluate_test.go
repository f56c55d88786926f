package policy

import (
	"strings"
	"testing"
)

func TestACRsShareRequestSlice(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, "auth_contexts: [{id: c1, name: a}, {id: c2, name: b}]\npolicies: []\n")
	req := &Request{Subject: Subject{Username: "alice"}, AuthContexts: []string{"c1", "c2"}, Now: goldenNow}
	d := snap.Evaluate(req, EvaluateOptions{})
	if len(d.ACRs) != 2 || &d.ACRs[0] != &req.AuthContexts[0] {
		t.Errorf("ACRs = %v; when every context is satisfied it should be the request's own slice", d.ACRs)
	}
	req.AuthContexts = []string{"c1", "c1", "c9", "c2"}
	d = snap.Evaluate(req, EvaluateOptions{})
	if strings.Join(d.ACRs, ",") != "c1,c2" || strings.Join(d.UnknownContexts, ",") != "c9" {
		t.Errorf("ACRs = %v, unknown = %v; want c1,c2 and c9", d.ACRs, d.UnknownContexts)
	}
	if &d.ACRs[0] == &req.AuthContexts[0] {
		t.Error("a filtered ACR list must be a copy")
	}
}

func TestRequestValidate(t *testing.T) {
	t.Parallel()
	ok := Request{Subject: Subject{Username: "a"}, Now: goldenNow}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid request: %v", err)
	}
	bad := Request{Platform: "beos", ClientApp: "telnet", Action: "fly", SignInRisk: "mediun", UserRisk: "x", Country: "de"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid request passed")
	}
	for _, w := range []string{"platform", "client_app", "action", "sign_in_risk", "user_risk", "country", "subject", "now"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %s: %v", w, err)
		}
	}
}

func TestSnapshotAccessors(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, `auth_contexts: [{id: c1, name: a}, {id: c2, name: b}]
terms_of_use: [{id: t, name: T}]
policies:
  - name: p1
    state: disabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1, c2]}
    grant: {controls: [mfa]}
  - name: p2
    state: report-only
    users: {include: {users: [all]}}
    target: {auth_contexts: [c2]}
    grant: {controls: [mfa]}
`)
	if got := strings.Join(snap.ContextUsers("c2"), ","); got != "p1,p2" {
		t.Errorf("ContextUsers(c2) = %s", got)
	}
	if len(snap.ContextUsers("c3")) != 0 {
		t.Error("c3 is used by nobody")
	}
	if ps := snap.Policies(); len(ps) != 2 || ps[1] != (PolicySummary{Name: "p2", State: StateReportOnly}) {
		t.Errorf("Policies = %v", ps)
	}
	if len(snap.AuthContexts()) != 2 || len(snap.TermsOfUse()) != 1 || snap.Strengths() == nil {
		t.Error("accessors lost declarations")
	}
}

func TestExplainText(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, policyYAML(allUsers+allApps+mfa))
	d := snap.Evaluate(&Request{Subject: Subject{Username: "alice"}, App: "crm", Now: goldenNow}, EvaluateOptions{Explain: true})
	out := Explain(&d)
	lines := strings.Split(out, "\n")
	// The policy table's columns line up: the RESULT header sits where
	// each row's result starts.
	var header, row string
	for _, l := range lines {
		if strings.HasPrefix(l, "POLICY") {
			header = l
		}
		if strings.HasPrefix(l, "p ") {
			row = l
		}
	}
	if header == "" || row == "" || strings.Index(header, "RESULT") != strings.Index(row, "applied") {
		t.Errorf("table not aligned:\n%s", out)
	}
}
