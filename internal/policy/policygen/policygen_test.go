package policygen

import (
	"reflect"
	"testing"

	"github.com/stepgate/stepgate/internal/policy"
)

func TestGenerateIsDeterministicAndValid(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{0, 1, 2, 3} {
		a, b := Generate(120, Options{Seed: seed}), Generate(120, Options{Seed: seed})
		if !reflect.DeepEqual(a.Doc.Policies, b.Doc.Policies) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		snap, probs := policy.Compile(a.Directory(), a.Doc)
		if len(probs) > 0 {
			t.Fatalf("seed %d: %v", seed, probs)
		}
		req := a.AllowRequest()
		if d := snap.Evaluate(&req, policy.EvaluateOptions{}); d.Outcome != policy.OutcomeAllow {
			t.Errorf("seed %d: AllowRequest is not allowed:\n%s", seed, policy.Explain(&d))
		}
	}
	if reflect.DeepEqual(Generate(50, Options{Seed: 1}).Doc.Policies, Generate(50, Options{Seed: 2}).Doc.Policies) {
		t.Error("different seeds gave the same set")
	}
}

func TestNoCEL(t *testing.T) {
	t.Parallel()
	s := Generate(500, Options{Seed: 4, NoCEL: true})
	for _, p := range s.Doc.Policies {
		if p.Conditions.Expression != "" || p.Conditions.DeviceFilter.Rule != "" {
			t.Fatalf("policy %s has CEL", p.Name)
		}
	}
}
