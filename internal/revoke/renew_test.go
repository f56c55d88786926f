package revoke

import (
	"context"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestRevocationOutlivesLatestEvent revokes a user twice, the second time
// shortly before the first record would have lapsed, and checks that a
// grant issued between the two stays revoked for the full Keep after the
// second: the record is renewed, not left to expire on the first one's
// schedule and bring the grant back.
func TestRevocationOutlivesLatestEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := New(st, nil, clock)
	if err := r.RevokeUser(ctx, "u1", "password-changed"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(Keep - 24*time.Hour)
	issued := now.Add(-time.Hour) // a grant from after the first event
	if err := r.RevokeUser(ctx, "u1", "risk-high"); err != nil {
		t.Fatal(err)
	}
	second := now
	for _, later := range []time.Duration{2 * 24 * time.Hour, Keep - time.Minute} {
		now = second.Add(later)
		if _, err := st.DeleteExpiredKV(ctx, now); err != nil {
			t.Fatal(err)
		}
		if revoked, nbf, err := r.Revoked(ctx, "u1", issued); err != nil || !revoked {
			t.Fatalf("fail/revocation-lapsed: %s after the second event, a grant it ended is %v (not before %s, %v)", later, revoked, nbf, err)
		}
	}
}
