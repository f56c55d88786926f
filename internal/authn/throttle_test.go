package authn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store/sqlite"
)

func TestThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	th := NewThrottle(st, clock)

	for range th.Free {
		if err := th.Check(ctx, "u1"); err != nil {
			t.Fatalf("ok/free-failures: %v", err)
		}
		_ = th.Fail(ctx, "u1")
	}
	if err := th.Check(ctx, "u1"); err != nil {
		t.Fatalf("ok/after-free-failures: %v", err)
	}
	_ = th.Fail(ctx, "u1")
	if err := th.Check(ctx, "u1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fail/locked-after-free-failures: %v", err)
	}

	// A sustained attack keeps the lock at its maximum for hours: the
	// count is not forgotten while failures keep coming.
	for i := range 12 * 4 {
		now = now.Add(th.Max)
		if err := th.Check(ctx, "u1"); err != nil {
			t.Fatalf("lock outlasted its maximum: %v", err)
		}
		_ = th.Fail(ctx, "u1")
		if i < 5 {
			continue // the lock doubles up to its maximum first
		}
		now = now.Add(th.Max - time.Second)
		if err := th.Check(ctx, "u1"); !errors.Is(err, ErrThrottled) {
			t.Fatalf("fail/sustained-attack at %s: the count was forgotten: %v", now, err)
		}
		now = now.Add(time.Second)
	}

	// A quiet spell forgets the failures.
	now = now.Add(th.Max + 2*time.Hour)
	_ = th.Fail(ctx, "u1")
	if err := th.Check(ctx, "u1"); err != nil {
		t.Fatalf("ok/forgotten-after-quiet-spell: %v", err)
	}

	_ = th.Reset(ctx, "u1")
	if err := th.Check(ctx, "u1"); err != nil {
		t.Fatalf("ok/reset: %v", err)
	}
}

// TestThrottleHardLimit: after HardLimit consecutive failures the key
// stays locked, however long one waits, until it is reset.
func TestThrottleHardLimit(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	th := NewThrottle(st, func() time.Time { return now })
	for range th.HardLimit {
		if err := th.Fail(ctx, "login:alice"); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(30 * 24 * time.Hour)
	if err := th.Check(ctx, "login:alice"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("a month after %d failures: %v, want still locked", th.HardLimit, err)
	}
	if err := th.Reset(ctx, "login:alice"); err != nil {
		t.Fatal(err)
	}
	if err := th.Check(ctx, "login:alice"); err != nil {
		t.Fatalf("after an administrator's reset: %v", err)
	}
}
