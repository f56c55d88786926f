package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func celRequest() *Request {
	return &Request{
		Subject:      Subject{ID: "u1", Username: "carol", Groups: []string{"finance-emea"}, Roles: []string{"auditor"}},
		App:          "payroll",
		AuthContexts: []string{"c2"},
		Action:       ActionRegisterDevice,
		IP:           netip.MustParseAddr("::ffff:192.0.2.7"),
		Country:      "DE",
		ClientApp:    ClientBrowser,
		Device:       Device{ID: "d1", IsCompliant: true, TrustType: "managed", Attributes: map[string]string{"owner": "corp"}},
		SignInRisk:   RiskMedium,
		Statement:    Statement{Class: "read", Command: "SELECT", Tables: []string{"customers"}, Labels: []string{"pii"}},
		Now:          time.Date(2025, 6, 2, 10, 30, 0, 0, time.UTC),
	}
}

// TestCELVariables checks every declared name resolves to what the
// request says, so the documented namespace is the real one.
func TestCELVariables(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, "policies: []\n")
	env, err := newCELEnv()
	if err != nil {
		t.Fatal(err)
	}
	exprs := []string{
		`device.id == "d1"`,
		`device.is_compliant`,
		`device.trust_type == "managed"`,
		`device.attributes.owner == "corp" && !has(device.attributes.dept)`,
		`user.id == "u1"`,
		`user.username == "carol"`,
		`"finance" in user.groups && "staff" in user.groups && "finance-emea" in user.groups`,
		`user.roles == ["auditor"]`,
		`!user.is_client`,
		`request.app == "payroll"`,
		`request.auth_contexts == ["c2"]`,
		`request.action == "register-device"`,
		`request.ip == "192.0.2.7"`,
		`request.country == "DE"`,
		`request.platform == "unknown"`,
		`request.client_app == "browser"`,
		`request.sign_in_risk == "medium" && request.user_risk == "none"`,
		`request.time.getHours("UTC") == 10 && request.time.getMinutes() == 30`,
		`device.trust_type.upperAscii() == "MANAGED"`,
		`statement.class == "read"`,
		`statement.command == "SELECT"`,
		`statement.tables == ["customers"]`,
		`"pii" in statement.labels`,
	}
	if len(exprs) < len(celVars) {
		t.Fatalf("%d expressions for %d variables: test every one", len(exprs), len(celVars))
	}
	for _, v := range celVars {
		if !strings.Contains(strings.Join(exprs, " "), v.name) {
			t.Errorf("no expression uses %s", v.name)
		}
	}
	for _, src := range exprs {
		t.Run("ok/"+src, func(t *testing.T) {
			t.Parallel()
			prg, issues := compileCEL(env, src)
			if len(issues) > 0 {
				t.Fatalf("compile: %v", issues)
			}
			ctx := evalCtx{snap: snap}
			ok, err := prg.eval(ctx.activation(celRequest()))
			if err != nil || !ok {
				t.Errorf("eval = %v, %v; want true", ok, err)
			}
		})
	}
}

func TestCELCompileErrors(t *testing.T) {
	t.Parallel()
	env, err := newCELEnv()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, src, want string }{
		{"fail/syntax", `device.is_compliant &&`, "Syntax error"},
		{"fail/type", `device.is_compliant + 1`, "no matching overload for '_+_' applied to '(bool, int)'"},
		{"fail/undeclared", `device.colour == "red"`, "undeclared reference"},
		{"fail/not-bool", `request.country`, "it must give true or false"},
		{"fail/too-long", strings.Repeat("true && ", 600) + "true", "size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, issues := compileCEL(env, tt.src)
			if len(issues) == 0 || !strings.Contains(fmt.Sprint(issues), tt.want) {
				t.Errorf("issues = %v, want one mentioning %q", issues, tt.want)
			}
		})
	}
}

func TestCELFailsClosed(t *testing.T) {
	t.Parallel()
	big := map[string]string{}
	for i := range 200 {
		big[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name       string
		filter     string
		mode       string
		expr       string
		attrs      map[string]string
		want       Reason
		wantDetail string
	}{
		{"ok/include-matches", `device.trust_type == "managed"`, "include", "", nil, "", ""},
		{"fail/include-no-match", `device.trust_type == "registered"`, "include", "", nil, ReasonDeviceFilterNotMatched, ""},
		{"fail/exclude-matches", `device.is_compliant`, "exclude", "", nil, ReasonDeviceFilterExcluded, ""},
		{"ok/exclude-no-match", `!device.is_compliant`, "exclude", "", nil, "", ""},
		{"ok/missing-key-applies", `device.attributes.dept == "x"`, "include", "", nil, "", "no such key"},
		{"ok/missing-key-exclude-applies", `device.attributes.dept == "x"`, "exclude", "", nil, "", "no such key"},
		{"ok/cost-limit-applies", "", "", `device.attributes.all(a, device.attributes.all(b, a != b || a == b))`, big, "", "cost limit"},
		{"fail/expression-false", "", "", `request.country == "FR"`, nil, ReasonConditionNotMatched, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cond := "    conditions:\n"
			if tt.filter != "" {
				cond += fmt.Sprintf("      device_filter: {mode: %s, rule: '%s'}\n", tt.mode, tt.filter)
			}
			if tt.expr != "" {
				cond += fmt.Sprintf("      expression: '%s'\n", tt.expr)
			}
			snap := mustCompile(t, policyYAML(allUsers+"    target: {apps: {include: [payroll]}}\n"+cond+mfa))
			r := celRequest()
			if tt.attrs != nil {
				r.Device.Attributes = tt.attrs
			}
			reason, detail := snap.policies[0].match(&evalCtx{snap: snap}, r)
			if reason != tt.want || !strings.Contains(detail, tt.wantDetail) || (tt.wantDetail == "" && detail != "") {
				t.Errorf("match = %q, %q; want %q, detail containing %q", reason, detail, tt.want, tt.wantDetail)
			}
		})
	}
}
