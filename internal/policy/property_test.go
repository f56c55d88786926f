package policy_test

import (
	"reflect"
	"testing"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policygen"
)

// TestFastPathAgreesWithExplain: the indexed path (which visits only
// policies targeting the request) and the explain path (which visits
// every policy) must reach the same decision on any request, and count
// the same report-only policies that would have blocked or challenged.
func TestFastPathAgreesWithExplain(t *testing.T) {
	t.Parallel()
	outcomes := map[policy.Outcome]int{}
	reportOnlyUnmet := 0
	for seed := range uint64(4) {
		set, snap := compileGenerated(t, 300, policygen.Options{Seed: seed})
		for i, req := range set.Requests(500, seed) {
			fast := snap.Evaluate(&req, policy.EvaluateOptions{ReportOnly: true})
			explained := snap.Evaluate(&req, policy.EvaluateOptions{Explain: true})
			explained.Policies = nil
			if !reflect.DeepEqual(fast, explained) {
				t.Fatalf("seed %d request %d: fast %+v, explain %+v", seed, i, fast, explained)
			}
			outcomes[fast.Outcome]++
			reportOnlyUnmet += fast.ReportOnlyUnmet
		}
	}
	if reportOnlyUnmet == 0 {
		t.Error("no report-only policy would have blocked or challenged a sampled request: the sample is too narrow to mean much")
	}
	for _, o := range []policy.Outcome{policy.OutcomeAllow, policy.OutcomeBlock, policy.OutcomeChallenge} {
		if outcomes[o] == 0 {
			t.Errorf("no %v among the sampled decisions: the sample is too narrow to mean much", o)
		}
	}
}

// TestReportOnlyNeverChangesOutcome removes every report-only and
// disabled policy and checks that no decision changes.
func TestReportOnlyNeverChangesOutcome(t *testing.T) {
	t.Parallel()
	set, snap := compileGenerated(t, 300, policygen.Options{Seed: 9})
	trimmed := *set.Doc
	trimmed.Policies = nil
	for _, p := range set.Doc.Policies {
		if p.State == string(policy.StateEnabled) {
			trimmed.Policies = append(trimmed.Policies, p)
		}
	}
	if len(trimmed.Policies) == len(set.Doc.Policies) {
		t.Fatal("the generated set has no report-only or disabled policies")
	}
	enabledOnly, probs := policy.Compile(set.Directory(), &trimmed)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	for i, req := range set.Requests(500, 3) {
		a := snap.Evaluate(&req, policy.EvaluateOptions{})
		b := enabledOnly.Evaluate(&req, policy.EvaluateOptions{})
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("request %d: with report-only %+v, without %+v", i, a, b)
		}
	}
}
