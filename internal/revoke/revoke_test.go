package revoke

import (
	"context"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

func TestRevokeUser(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 500_000_000, time.UTC)
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := New(st, nil, func() time.Time { return now })
	if _, err := st.CreateSession(ctx, store.Session{ID: "s1", UserID: "u1", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if revoked, _, _ := r.Revoked(ctx, "u1", now.Add(-time.Hour)); revoked {
		t.Fatal("a user nothing happened to has revoked tokens")
	}
	if err := r.RevokeUser(ctx, "u1", "password-changed"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, "s1"); err == nil {
		t.Fatal("the session survived the revocation")
	}
	for _, tc := range []struct {
		issued time.Time
		want   bool
	}{
		{now.Add(-time.Hour), true},
		{now.Truncate(time.Second), true}, // a whole-second iat in the event's second rounds down: revoked
		{now.Add(time.Millisecond), false},
		{now.Add(time.Second).Truncate(time.Second), false},
	} {
		if got, _, err := r.Revoked(ctx, "u1", tc.issued); err != nil || got != tc.want {
			t.Errorf("Revoked(issued %s) = %v, %v; want %v", tc.issued, got, err, tc.want)
		}
	}
	// An earlier clock never moves the time back.
	earlier := New(st, nil, func() time.Time { return now.Add(-time.Minute) })
	if err := earlier.RevokeUser(ctx, "u1", "risk-high"); err != nil {
		t.Fatal(err)
	}
	if nbf, _ := r.NotBefore(ctx, "u1"); !nbf.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("not-before moved to %s", nbf)
	}
}

// TestRevokeReplacesCorruptRecord: a not-before record that no longer
// reads (a damaged row) must not stop a revocation, or an account could
// never be cut off again; the revocation writes a fresh one. Until then
// every check fails closed.
func TestRevokeReplacesCorruptRecord(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := kvspace.RevokedBefore.Key("u1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateKV(ctx, key, []byte("not a time"), now.Add(Keep)); err != nil {
		t.Fatal(err)
	}
	r := New(st, nil, clock)
	if revoked, _, err := r.Revoked(ctx, "u1", now.Add(-time.Hour)); err == nil || revoked {
		t.Fatalf("a corrupt record read as %v, %v; want an error", revoked, err)
	}
	if err := r.RevokeUser(ctx, "u1", "admin-revoke"); err != nil {
		t.Fatalf("revoking over a corrupt record: %v", err)
	}
	nbf, err := r.NotBefore(ctx, "u1")
	if err != nil || !nbf.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("not before %v, %v; want %v", nbf, err, now)
	}
}
