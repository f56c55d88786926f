package policy_test

import (
	"fmt"
	"testing"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policygen"
)

func compileGenerated(tb testing.TB, n int, opts policygen.Options) (*policygen.Set, *policy.Snapshot) {
	tb.Helper()
	set := policygen.Generate(n, opts)
	snap, probs := policy.Compile(set.Directory(), set.Doc)
	if len(probs) > 0 {
		tb.Fatalf("generated set does not compile:\n%v", probs)
	}
	return set, snap
}

// TestAllowPathDoesNotAllocate pins the design goal the benchmarks
// measure: an allowed request that meets no CEL rule costs no garbage.
func TestAllowPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, n := range []int{10, 200, 2000} {
		t.Run(fmt.Sprintf("ok/%d-policies", n), func(t *testing.T) {
			set, snap := compileGenerated(t, n, policygen.Options{Seed: 1})
			req := set.AllowRequest()
			d := snap.Evaluate(&req, policy.EvaluateOptions{})
			if d.Outcome != policy.OutcomeAllow {
				t.Fatalf("outcome = %v, want allow:\n%s", d.Outcome, policy.Explain(&d))
			}
			if allocs := testing.AllocsPerRun(200, func() { snap.Evaluate(&req, policy.EvaluateOptions{}) }); allocs != 0 {
				t.Errorf("allow path allocates %.1f times per evaluation, want 0", allocs)
			}
			// Counting report-only policies must stay as cheap: the gateway
			// asks for it on every request.
			if allocs := testing.AllocsPerRun(200, func() { snap.Evaluate(&req, policy.EvaluateOptions{ReportOnly: true}) }); allocs != 0 {
				t.Errorf("allow path with report-only policies allocates %.1f times per evaluation, want 0", allocs)
			}
			// A caller building its Request on the stack must be able to keep
			// it there: Evaluate must not make the Request escape.
			if allocs := testing.AllocsPerRun(200, func() {
				local := req
				snap.Evaluate(&local, policy.EvaluateOptions{})
			}); allocs != 0 {
				t.Errorf("a stack-allocated Request escapes: %.1f allocations per evaluation", allocs)
			}
		})
	}
}

// TestAllowRequestIsRealistic guards the benchmark against measuring a
// request that no policy looks at.
func TestAllowRequestIsRealistic(t *testing.T) {
	t.Parallel()
	set, snap := compileGenerated(t, 200, policygen.Options{Seed: 1})
	req := set.AllowRequest()
	d := snap.Evaluate(&req, policy.EvaluateOptions{Explain: true})
	applied := 0
	for _, r := range d.Policies {
		if r.Result == policy.ResultApplied {
			applied++
		}
	}
	if applied < 3 {
		t.Errorf("only %d policies apply to the benchmark request; want a realistic few", applied)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{10, 200, 2000} {
		set, snap := compileGenerated(b, n, policygen.Options{Seed: 1})
		allow := set.AllowRequest()
		b.Run(fmt.Sprintf("allow/policies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := snap.Evaluate(&allow, policy.EvaluateOptions{}); d.Outcome != policy.OutcomeAllow {
					b.Fatal("not allowed")
				}
			}
		})
		b.Run(fmt.Sprintf("allow+report-only/policies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				snap.Evaluate(&allow, policy.EvaluateOptions{ReportOnly: true})
			}
		})
		mixed := set.Requests(256, 7)
		b.Run(fmt.Sprintf("mixed/policies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				snap.Evaluate(&mixed[i%len(mixed)], policy.EvaluateOptions{})
				i++
			}
		})
		b.Run(fmt.Sprintf("explain/policies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				snap.Evaluate(&allow, policy.EvaluateOptions{Explain: true})
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	set := policygen.Generate(200, policygen.Options{Seed: 1})
	dir := set.Directory()
	b.ReportAllocs()
	for b.Loop() {
		if _, probs := policy.Compile(dir, set.Doc); len(probs) > 0 {
			b.Fatal(probs)
		}
	}
}
