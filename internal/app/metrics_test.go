package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestMetrics: decisions, step-up prompts and completions, and sign-ins
// are counted at /metrics, which answers only this machine (or the API
// token), never a forwarded client.
func TestMetrics(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server)
	password := func(loc *url.URL) *http.Response { return g.stepUp(t, b, loc.Query().Get("return_to"), testPassword) }
	// A sign-in, an allowed request, and a single-use admin request that
	// prompts for a password.
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), password); resp.StatusCode != http.StatusOK {
		t.Fatalf("accounts: %d", resp.StatusCode)
	}
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/admin/x", ""), password); resp.StatusCode != http.StatusOK {
		t.Fatalf("admin: %d", resp.StatusCode)
	}
	resp, body := get(t, http.DefaultClient, g.base+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`stepgate_decisions_total{app="bank",outcome="allow",source="gateway"}`,
		`stepgate_decisions_total{app="bank",outcome="challenge",source="gateway"}`,
		`stepgate_stepup_prompts_total{method="password"} 1`,
		`stepgate_stepup_completions_total{method="password"} 1`,
		`stepgate_sign_ins_total{result="success"} 1`,
		`stepgate_decision_seconds_bucket`,
		`stepgate_stepup_prompted_users_today 1`,
		`stepgate_stepup_prompts_per_user_today{quantile="1"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Through a proxy (a forwarded request), the metrics are refused.
	req, _ := http.NewRequest("GET", g.base+"/metrics", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusForbidden {
		t.Fatalf("/metrics for a forwarded request: %d, want 403", r2.StatusCode)
	}
}

// TestMetricsPolicyTriggers: what each policy did to decisions, enforced
// or in report-only mode, is counted by policy.
func TestMetricsPolicyTriggers(t *testing.T) {
	s := startOIDC(t, nil)
	s.usePolicies(t, `policies:
  - name: webapp-mfa-trial
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [webapp]}}
    grant: {controls: [mfa]}
`)
	b := browser(t)
	// Two sign-ins to the web app (the report-only policy would have
	// asked for MFA each time), then one asking for c2, which needs MFA
	// alice cannot give: refused, and counted as a block by the enforced
	// c2-mfa policy, as the sign-in log records it.
	for _, acr := range []string{"", "", "c2"} {
		_, challenge := pkce()
		params := url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		if acr != "" {
			params.Set("acr_values", acr)
		}
		s.follow(t, b, s.authorizeURL(params))
	}
	flushSignIns(t, s.server)
	_, body := get(t, http.DefaultClient, s.base+"/metrics")
	for _, want := range []string{
		`stepgate_policy_triggers_total{effect="challenge",mode="report-only",policy="webapp-mfa-trial"} 3`,
		`stepgate_policy_triggers_total{effect="block",mode="enforced",policy="c2-mfa"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(body, "\n") {
			if strings.Contains(l, "triggers_total{") {
				t.Log(l)
			}
		}
	}
}
