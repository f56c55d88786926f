package observe_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/elevate/observe"
	"github.com/stepgate/stepgate/internal/store"
)

// TestCountActive counts from the store, across pages: active
// elevations by role, leaving out one past its end that no sweep has
// recorded yet, pending requests and ended ones; and a count that would
// read more pages than its bound fails rather than show a part.
func TestCountActive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock.Now()
	add := func(i int, role, state string, until time.Time) {
		t.Helper()
		e := store.Elevation{ID: fmt.Sprintf("elv_%02d", i), UserID: f.alice.ID, Role: role, Duration: time.Hour, State: state,
			RequestedAt: now.Add(-time.Duration(i) * time.Minute), Deadline: now.Add(time.Hour)}
		if state == store.ElevationActive {
			e.ActivatedAt, e.Until = until.Add(-time.Hour), until
		}
		if _, err := f.st.CreateElevation(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		add(i, "bank-admin", store.ElevationActive, now.Add(30*time.Minute))
	}
	add(5, "db-admin", store.ElevationActive, now.Add(time.Minute))
	add(6, "db-admin", store.ElevationActive, now.Add(-time.Second)) // over, not yet swept
	add(7, "db-admin", store.ElevationPending, time.Time{})
	add(8, "db-admin", store.ElevationExpired, time.Time{})

	got, err := observe.CountActivePaged(f.st, f.clock.Now, 2, 10)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["bank-admin"] != 5 || got["db-admin"] != 1 {
		t.Errorf("counted %v, want bank-admin 5, db-admin 1", got)
	}
	if got, err := observe.CountActivePaged(f.st, f.clock.Now, 2, 2)(ctx); err == nil {
		t.Errorf("a count beyond its bound gave %v, want an error", got)
	}
	if got, err := observe.CountActive(f.st, f.clock.Now)(ctx); err != nil || got["bank-admin"] != 5 {
		t.Errorf("CountActive = %v, %v", got, err)
	}
}
