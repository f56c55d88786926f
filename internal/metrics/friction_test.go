package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFriction: prompts per user today, by quantile, reset at midnight
// UTC.
func TestFriction(t *testing.T) {
	now := time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC)
	f := newFriction(func() time.Time { return now })
	for u, n := range map[string]int{"a": 1, "b": 1, "c": 2, "d": 3, "e": 9} {
		for range n {
			f.prompted(u)
		}
	}
	f.prompted("") // a prompt without a user counts for no one
	want := `
# HELP stepgate_stepup_prompted_users_today Users prompted to step up at least once today (UTC).
# TYPE stepgate_stepup_prompted_users_today gauge
stepgate_stepup_prompted_users_today 5
# HELP stepgate_stepup_prompts_per_user_today Step-up prompts per user prompted so far today (UTC), at the given quantile (1 is the most prompted user).
# TYPE stepgate_stepup_prompts_per_user_today gauge
stepgate_stepup_prompts_per_user_today{quantile="0.5"} 2
stepgate_stepup_prompts_per_user_today{quantile="0.9"} 9
stepgate_stepup_prompts_per_user_today{quantile="0.99"} 9
stepgate_stepup_prompts_per_user_today{quantile="1"} 9
`
	if err := testutil.CollectAndCompare(f, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute) // the next day
	f.prompted("a")
	next := `
# HELP stepgate_stepup_prompted_users_today Users prompted to step up at least once today (UTC).
# TYPE stepgate_stepup_prompted_users_today gauge
stepgate_stepup_prompted_users_today 1
`
	if err := testutil.CollectAndCompare(f, strings.NewReader(next), "stepgate_stepup_prompted_users_today"); err != nil {
		t.Fatalf("after midnight: %v", err)
	}
}
