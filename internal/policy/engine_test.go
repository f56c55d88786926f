package policy

import (
	"sync"
	"testing"
)

func TestEngineKeepsLastGoodSnapshot(t *testing.T) {
	t.Parallel()
	e := NewEngine(nil)
	req := &Request{Subject: Subject{Username: "alice"}, App: "crm", Now: goldenNow}
	if d := e.Evaluate(req, EvaluateOptions{}); d.Outcome != OutcomeAllow {
		t.Fatalf("empty engine: %v, want allow", d.Outcome)
	}
	good := parseOK(t, "good.yaml", policyYAML(allUsers+allApps+mfa))
	if probs := e.Reload(goldenDirectory(), good); len(probs) > 0 {
		t.Fatal(probs)
	}
	first := e.Load()
	if d := e.Evaluate(req, EvaluateOptions{}); d.Outcome != OutcomeChallenge {
		t.Fatalf("after reload: %v, want challenge", d.Outcome)
	}
	bad := parseOK(t, "bad.yaml", policyYAML(allUsers+allApps+"    grant: {controls: [mfaa]}\n"))
	probs := e.Reload(goldenDirectory(), bad)
	if len(probs) != 1 || probs[0].File != "bad.yaml" {
		t.Fatalf("bad reload problems = %v", probs)
	}
	if e.Load() != first {
		t.Error("a failed reload replaced the snapshot")
	}
	if old := e.Swap(nil); old != first || e.Load() != first {
		t.Error("Swap(nil) must keep the current snapshot")
	}
	if old := e.Swap(Empty()); old != first {
		t.Error("Swap must return the previous snapshot")
	}
	if d := e.Evaluate(req, EvaluateOptions{}); d.Outcome != OutcomeAllow {
		t.Errorf("after swapping in an empty set: %v, want allow", d.Outcome)
	}
}

// TestEngineConcurrentSwap runs evaluations while snapshots are swapped;
// with -race it proves requests never see a half-built set.
func TestEngineConcurrentSwap(t *testing.T) {
	t.Parallel()
	a := mustCompile(t, policyYAML(allUsers+allApps+mfa))
	b := mustCompile(t, policyYAML(allUsers+allApps+"    grant: block\n"))
	e := NewEngine(a)
	req := &Request{Subject: Subject{Username: "alice"}, App: "crm", Now: goldenNow}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				switch d := e.Evaluate(req, EvaluateOptions{Explain: true}); d.Outcome {
				case OutcomeChallenge, OutcomeBlock:
				default:
					t.Errorf("outcome %v from neither snapshot", d.Outcome)
					return
				}
			}
		}()
	}
	for i := range 500 {
		if i%2 == 0 {
			e.Swap(b)
		} else {
			e.Swap(a)
		}
	}
	wg.Wait()
}
