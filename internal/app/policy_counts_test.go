package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
)

// TestConsolePolicyCountsMatchTheLog: decisions written through the
// gateway (a challenge, and a block because the user has no method that
// can give the proof a policy demands) are counted per policy in the
// console's table exactly as the sign-in log records them: a policy the
// log names for a block is counted as blocking, not as challenging.
func TestConsolePolicyCountsMatchTheLog(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) {
		rules := &cfg.Gateway.Routes[0].Rules
		*rules = append([]config.GatewayRule{{Path: "/vault/*", Context: "c3"}}, *rules...)
	})
	b := g.signedInGateway(t)
	g.enrollTOTP(t, b) // MFA is reachable: the transfer is a challenge

	// The single-use admin pages (c1, c1-fresh-sign-in): a challenge,
	// met with the password; the next request is re-asked although the
	// session's proofs meet the policy. Both are c1-fresh-sign-in's
	// challenges, in the log and in the table.
	resp, body := g.walk(t, b, mustDo(t, b, "GET", g.app+"/admin/users", ""), func(loc *url.URL) *http.Response {
		return g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
	})
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /admin/users" {
		t.Fatalf("first admin request: %d %q", resp.StatusCode, body)
	}
	resp = mustDo(t, b, "GET", g.app+"/admin/users", "")
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "stepup=") {
		t.Fatalf("second admin request: %d to %q, want a re-ask", resp.StatusCode, loc)
	}

	// A transfer asks for c2 (c2-mfa): a challenge, not answered.
	resp = mustDo(t, b, "POST", g.app+"/transfers", "amount=100")
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "stepup=") {
		t.Fatalf("transfer: %d to %q, want a step-up", resp.StatusCode, loc)
	}
	// The vault asks for c3 (phishing-resistant); without passkeys on
	// this server alice has no method that can give it: a block.
	for range 2 {
		resp = mustDo(t, b, "GET", g.app+"/vault/keys", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("vault: %d, want 403", resp.StatusCode)
		}
	}

	entries := g.gatewayEntries(t)
	fromLog := map[string]*admin.PolicyStats{}
	for _, e := range entries {
		if e.Decision != "allow" && len(e.Triggers()) == 0 {
			t.Errorf("entry %s (%s, %s) names no policy that asked: the table cannot count it", e.ID, e.Decision, e.Reason)
		}
		for _, p := range e.Policies {
			if p.Result != policy.ResultApplied || p.Satisfied {
				continue
			}
			st := fromLog[p.Policy]
			if st == nil {
				st = &admin.PolicyStats{Policy: p.Policy}
				fromLog[p.Policy] = st
			}
			// The log's own word: the entry's decision is what the
			// unmet policy did to the request.
			switch e.Decision {
			case "block":
				st.Blocked++
			case "challenge":
				st.Challenged++
			default:
				t.Errorf("entry %s decided %s with %s unmet", e.ID, e.Decision, p.Policy)
			}
		}
	}
	want := map[string]admin.PolicyStats{
		"c1-fresh-sign-in":      {Policy: "c1-fresh-sign-in", Challenged: 2},
		"c2-mfa":                {Policy: "c2-mfa", Challenged: 1},
		"c3-phishing-resistant": {Policy: "c3-phishing-resistant", Blocked: 2},
	}
	for name, w := range want {
		if got := fromLog[name]; got == nil || *got != w {
			t.Errorf("the log records %s as %+v, want %+v (entries %+v)", name, got, w, entries)
		}
	}

	o, err := g.server.app.Admin.Overview(context.Background(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]admin.PolicyStats{}
	for _, p := range o.Policies {
		table[p.Policy] = p
	}
	if len(table) != len(fromLog) {
		t.Errorf("the console counts %d policies %+v, the log names %d %+v", len(table), o.Policies, len(fromLog), fromLog)
	}
	for name, logged := range fromLog {
		if got := table[name]; got != *logged {
			t.Errorf("console counts %s as %+v; the sign-in log as %+v", name, got, *logged)
		}
	}
	// Each block counts once in the totals, as in the log.
	if o.Totals.Block != 2 || o.Totals.Challenge != 3 {
		t.Errorf("totals %+v, want 2 blocks and 3 challenges", o.Totals)
	}
}
