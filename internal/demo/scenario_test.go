package demo

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
)

// TestPolicyScenarios runs the demo's scenario tests the way "stepgate
// policy test" does (app.TestPolicies over the configured set, the
// seeded store and the bank's routes): every scenario passes, and every
// policy and condition of the demo is exercised by one.
func TestPolicyScenarios(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	if _, err := Seed(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	set, err := app.LoadPolicies(ctx, cfg, st, app.AppSources(cfg, st))
	if err != nil {
		t.Fatal(err)
	}
	// The file gives its own now; this clock is never read.
	clock := func() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }
	rep, err := app.TestPolicies(ctx, cfg, app.ScenarioEnv(cfg, st, set, clock), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.WriteFailures(&out)
	rep.WriteSummary(&out)
	if rep.Failures() > 0 || len(rep.Gaps) > 0 || len(rep.Results) < 10 {
		t.Fatalf("demo scenarios:\n%s", out.String())
	}
}
