// Command policybench compares Stepgate's policy engine with Open Policy
// Agent on the same generated policy set: it checks both reach the same
// decisions on a sample of requests, times both in the same run, and
// prints them side by side.
//
//	cd bench/policy && go run . [-policies 200] [-requests 1000] [-time 1.5s]
//
// It lives in its own module so the server never links OPA.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policygen"
)

func main() {
	n := flag.Int("policies", 200, "number of generated policies")
	samples := flag.Int("requests", 1000, "number of sample requests")
	budget := flag.Duration("time", 1500*time.Millisecond, "how long to time each engine")
	seed := flag.Uint64("seed", 1, "generator seed")
	flag.Parse()
	if err := run(*n, *samples, *budget, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "policybench:", err)
		os.Exit(1)
	}
}

func run(n, samples int, budget time.Duration, seed uint64) error {
	ctx := context.Background()
	set := policygen.Generate(n, policygen.Options{Seed: seed})
	snap, probs := policy.Compile(set.Directory(), set.Doc)
	if len(probs) > 0 {
		return probs
	}
	module, err := regoModule(set.Doc, snap.Strengths())
	if err != nil {
		return err
	}
	pq, err := rego.New(rego.Query("data.stepgate.decision"), rego.Module("stepgate.rego", module)).PrepareForEval(ctx)
	if err != nil {
		return fmt.Errorf("prepare rego: %w", err)
	}
	reqs := append([]policy.Request{set.AllowRequest()}, set.Requests(samples-1, seed+1)...)
	inputs := make([]ast.Value, len(reqs))
	for i := range reqs {
		if inputs[i], err = ast.InterfaceToValue(regoInput(&reqs[i], set.Groups)); err != nil {
			return err
		}
	}
	counts, err := checkParity(ctx, snap, pq, reqs, inputs)
	if err != nil {
		return err
	}
	evalOurs := func(i int) { snap.Evaluate(&reqs[i], policy.EvaluateOptions{}) }
	evalOPA := func(i int) {
		if _, err := pq.Eval(ctx, rego.EvalParsedInput(inputs[i])); err != nil {
			panic(err)
		}
	}
	// The mixed sample first, then the allow-path request alone (index 0):
	// the common case of a signed-in user who already meets every policy.
	mixed := [2]timing{measure(budget, len(reqs), evalOurs), measure(budget, len(reqs), evalOPA)}
	allow := [2]timing{measure(budget/2, 1, evalOurs), measure(budget/2, 1, evalOPA)}
	report(n, len(reqs), counts, mixed, allow)
	return nil
}

// outcomeOf is what both engines must agree on: the outcome, the
// blocking policies, and the applied policies left unsatisfied.
type outcomeOf struct {
	outcome              string
	blocked, unsatisfied []string
}

func (o outcomeOf) String() string {
	return fmt.Sprintf("%s blocked=%v unsatisfied=%v", o.outcome, o.blocked, o.unsatisfied)
}

func ours(snap *policy.Snapshot, r *policy.Request) outcomeOf {
	d := snap.Evaluate(r, policy.EvaluateOptions{Explain: true})
	o := outcomeOf{outcome: d.Outcome.String()}
	for _, p := range d.Policies {
		switch {
		case p.Result != policy.ResultApplied:
		case p.Grant == "block":
			o.blocked = append(o.blocked, p.Policy)
		case !p.Satisfied:
			o.unsatisfied = append(o.unsatisfied, p.Policy)
		}
	}
	return o
}

func theirs(ctx context.Context, pq rego.PreparedEvalQuery, input ast.Value) (outcomeOf, error) {
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return outcomeOf{}, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return outcomeOf{}, fmt.Errorf("unexpected OPA result %v", rs)
	}
	m := rs[0].Expressions[0].Value.(map[string]any)
	o := outcomeOf{outcome: m["outcome"].(string), blocked: strs(m["blocked"]), unsatisfied: strs(m["unsatisfied"])}
	return o, nil
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	sort.Strings(out)
	return out
}

// checkParity evaluates every request in both engines and fails on the
// first disagreement.
func checkParity(ctx context.Context, snap *policy.Snapshot, pq rego.PreparedEvalQuery, reqs []policy.Request, inputs []ast.Value) (map[string]int, error) {
	counts := map[string]int{}
	for i := range reqs {
		a := ours(snap, &reqs[i])
		slices.Sort(a.blocked)
		slices.Sort(a.unsatisfied)
		b, err := theirs(ctx, pq, inputs[i])
		if err != nil {
			return nil, err
		}
		if a.String() != b.String() {
			return nil, fmt.Errorf("request %d: stepgate says %v, OPA says %v", i, a, b)
		}
		counts[a.outcome]++
	}
	return counts, nil
}

// timing is one engine's measurements.
type timing struct {
	calls         int
	mean          time.Duration
	p50, p99      time.Duration
	allocsPerCall float64
}

// measure calls f round-robin over the requests for about budget,
// timing every call for percentiles.
func measure(budget time.Duration, n int, f func(int)) timing {
	for i := range min(n, 200) { // warm caches and lazy initialisation
		f(i)
	}
	var lat []time.Duration
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 0; time.Since(start) < budget; i++ {
		t0 := time.Now()
		f(i % n)
		lat = append(lat, time.Since(t0))
	}
	total := time.Since(start)
	runtime.ReadMemStats(&after)
	slices.Sort(lat)
	return timing{
		calls:         len(lat),
		mean:          total / time.Duration(len(lat)),
		p50:           lat[len(lat)/2],
		p99:           lat[len(lat)*99/100],
		allocsPerCall: float64(after.Mallocs-before.Mallocs) / float64(len(lat)),
	}
}

func report(n, reqs int, counts map[string]int, mixed, allow [2]timing) {
	fmt.Printf("%d policies, %d sample requests; both engines agree on every decision (allow %d, challenge %d, block %d)\n\n",
		n, reqs, counts["allow"], counts["challenge"], counts["block"])
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tengine\tcalls\tmean\tp50\tp99\tallocs/op\tOPA/stepgate (mean)\t")
	for _, w := range []struct {
		name string
		t    [2]timing
	}{{"mixed sample", mixed}, {"allow path", allow}} {
		for i, engine := range []string{"stepgate", "opa (prepared query)"} {
			t := w.t[i]
			ratio := ""
			if i == 1 {
				ratio = fmt.Sprintf("%.0fx", float64(w.t[1].mean)/float64(w.t[0].mean))
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%.1f\t%s\t\n", w.name, engine, t.calls, t.mean, t.p50, t.p99, t.allocsPerCall, ratio)
		}
	}
	tw.Flush()
	fmt.Printf("\n%s, GOMAXPROCS=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
}
