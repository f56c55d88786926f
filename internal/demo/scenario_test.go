package demo

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// TestPolicyScenarios runs the demo's scenario tests the way "stepgate
// policy test" does (app.TestPolicies over the configured set, the
// seeded store and the bank's routes): every scenario passes, and every
// policy and condition of the demo is exercised by one; on SQLite, and
// on PostgreSQL, whose users and methods the scenarios read the same.
func TestPolicyScenarios(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { runDemoScenarios(t, testConfig(t)) })
	t.Run("postgres", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Storage.DSN = pgtest.DSN(t)
		runDemoScenarios(t, cfg)
	})
}

func runDemoScenarios(t *testing.T, cfg config.Config) {
	t.Helper()
	ctx := context.Background()
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
