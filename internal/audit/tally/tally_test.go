package tally

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stepgate/stepgate/internal/store"
)

func TestCounters(t *testing.T) {
	t.Parallel()
	applied := func(name, grant string, ok bool) PolicyResult {
		return PolicyResult{Policy: name, Result: ResultApplied, Grant: grant, Satisfied: ok}
	}
	c := func(name, policy string) store.SignInCounter { return store.SignInCounter{Name: name, Policy: policy} }
	for _, tc := range []struct {
		name string
		o    Outcome
		want []store.SignInCounter
	}{
		{"ok/allow-satisfied", Outcome{Source: "oidc", Decision: "allow", Policies: []PolicyResult{applied("base", "all-of", true)}},
			[]store.SignInCounter{c(Allow, "")}},
		{"ok/challenge-by-policy", Outcome{Source: "gateway", Decision: "challenge", Policies: []PolicyResult{applied("mfa", "all-of", false)}},
			[]store.SignInCounter{c(Challenge, ""), c(Challenged, "mfa")}},
		{"ok/block-of-unmeetable-grant", Outcome{Source: "oidc", Decision: "block", Policies: []PolicyResult{applied("mfa", "all-of", false)}},
			[]store.SignInCounter{c(Block, ""), c(Blocked, "mfa")}},
		{"ok/report-only", Outcome{Source: "oidc", Decision: "allow", Policies: []PolicyResult{
			{Policy: "trial", Result: ResultReportOnlyUserActionRequired},
			{Policy: "trial-block", Result: ResultReportOnlyFailure},
			{Policy: "quiet", Result: "report-only-success"},
		}}, []store.SignInCounter{c(Allow, ""), c(WouldChallenge, "trial"), c(WouldBlock, "trial-block")}},
		{"ok/sign-in-failure", Outcome{Source: "sign-in", Decision: "throttled"}, []store.SignInCounter{c(Failure, "")}},
		{"ok/step-up-success", Outcome{Source: "step-up", Decision: "success"}, []store.SignInCounter{c(StepUpSuccess, "")}},
		{"ok/step-up-failure-is-no-sign-in-failure", Outcome{Source: "step-up", Decision: "failure"}, []store.SignInCounter{c(StepUpFailure, "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.o.Counters(); !slices.Equal(got, tc.want) {
				t.Fatalf("counters %v, want %v", got, tc.want)
			}
			body, err := json.Marshal(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if got := Row(store.SignIn{Body: body}); !slices.Equal(got, tc.want) {
				t.Fatalf("counters of the stored row %v, want %v", got, tc.want)
			}
		})
	}
	if got := Row(store.SignIn{Body: []byte("{not json")}); got != nil {
		t.Fatalf("an unreadable row counts %v, want nothing", got)
	}
}

// BenchmarkRow is what counting costs the writer per entry: reading back
// the outcome of a body of the size the server writes.
func BenchmarkRow(b *testing.B) {
	body := []byte(`{"id":"KQ3FZ4RZ6XW5JXZ3Q2NBV5UO2A","time":"2026-10-14T10:11:12.123456Z","request_id":"00a1b2c3d4e5f607","source":"oidc",` +
		`"user_id":"user0427","username":"user0427","app":"app03","ip":"198.51.100.7","country":"DE",` +
		`"client_app":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0","risk_level":"none","decision":"challenge",` +
		`"policies":[{"policy":"baseline-sign-in","state":"enabled","result":"applied","satisfied":true},` +
		`{"policy":"mfa-on-risk","state":"enabled","result":"applied","satisfied":false,"grant":"all-of"}],"methods_completed":["pwd"],"latency_us":412}`)
	for b.Loop() {
		if len(Row(store.SignIn{Body: body})) != 2 {
			b.Fatal("miscounted")
		}
	}
}
