package authn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
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
// stays locked, however long one waits, until it is reset. The store
// judges its records' expiry by the throttle's clock, as in production
// where both read the same clock.
func TestThrottleHardLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	th := NewThrottle(st, clock)
	for range th.HardLimit {
		if err := th.Fail(ctx, "login:alice"); err != nil {
			t.Fatal(err)
		}
	}
	for _, wait := range []time.Duration{30 * 24 * time.Hour, 5 * 365 * 24 * time.Hour} {
		now = now.Add(wait)
		if err := th.Check(ctx, "login:alice"); !errors.Is(err, ErrThrottled) {
			t.Fatalf("fail/hard-lock-lapsed: %s after %d failures: %v, want still locked", wait, th.HardLimit, err)
		}
		if _, err := st.DeleteExpiredKV(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := th.Reset(ctx, "login:alice"); err != nil {
		t.Fatal(err)
	}
	if err := th.Check(ctx, "login:alice"); err != nil {
		t.Fatalf("ok/reset-by-administrator: %v", err)
	}
}

// TestThrottleSlowAttack guesses as slowly as the throttle allows without
// being forgotten (one failure per longest lock plus the quiet hour), so
// that the hundred failures span far longer than a throttle record lives.
// The count must survive: a record that lapsed at a time fixed by the
// first failure would hand the attacker a fresh count every week.
func TestThrottleSlowAttack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	th := NewThrottle(st, clock)
	th.Max = 3 * time.Hour // a deployment's longer lock: 100 guesses take 16 days
	start := now
	for i := range th.HardLimit {
		if err := th.Check(ctx, "login:alice"); err != nil {
			t.Fatalf("failure %d at %s: the throttle refused a guess it allows: %v", i+1, now.Sub(start), err)
		}
		if err := th.Fail(ctx, "login:alice"); err != nil {
			t.Fatal(err)
		}
		now = now.Add(th.Max + time.Hour)
	}
	if took := now.Sub(start); took <= throttleRecordLife {
		t.Fatalf("the attack took %s, not longer than a record's life %s: it proves nothing", took, throttleRecordLife)
	}
	if err := th.Check(ctx, "login:alice"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fail/slow-attack: %d failures over %s: %v, want locked for good", th.HardLimit, now.Sub(start), err)
	}
}

// racingKV runs guess after each write the throttle makes while armed,
// as a second sign-in attempt racing the one being recorded would.
type racingKV struct {
	store.KV
	armed, guessing bool
	guess           func()
}

func (k *racingKV) race() {
	if k.armed && !k.guessing {
		k.guessing = true
		k.guess()
		k.guessing = false
	}
}

func (k *racingKV) CreateKV(ctx context.Context, key string, v []byte, exp time.Time) (store.KVEntry, error) {
	defer k.race()
	return k.KV.CreateKV(ctx, key, v, exp)
}

func (k *racingKV) UpdateKV(ctx context.Context, key string, fn func([]byte) ([]byte, error)) (store.KVEntry, error) {
	defer k.race()
	return k.KV.UpdateKV(ctx, key, fn)
}

func (k *racingKV) RenewKV(ctx context.Context, key string, fn func([]byte) ([]byte, time.Time, error)) (store.KVEntry, error) {
	defer k.race()
	return k.KV.RenewKV(ctx, key, fn)
}

func (k *racingKV) DeleteKV(ctx context.Context, key string) error {
	defer k.race()
	return k.KV.DeleteKV(ctx, key)
}

// TestThrottleHardLockRace races a guess into every step of recording the
// hundredth failure. No step may show the key unlocked, or let the racing
// failure restart the count.
func TestThrottleHardLockRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kv := &racingKV{KV: st}
	th := NewThrottle(kv, clock)
	passed := 0
	kv.guess = func() {
		if th.Check(ctx, "login:alice") == nil {
			passed++
			_ = th.Fail(ctx, "login:alice")
		}
	}
	for i := range th.HardLimit {
		kv.armed = i == th.HardLimit-1
		if err := th.Fail(ctx, "login:alice"); err != nil {
			t.Fatal(err)
		}
		now = now.Add(th.Max) // past every lock short of the hard one
	}
	if passed > 0 {
		t.Errorf("fail/race-hundredth-failure: %d racing guesses passed Check while the hundredth failure was recorded", passed)
	}
	now = now.Add(30 * 24 * time.Hour)
	if err := th.Check(ctx, "login:alice"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fail/race-hundredth-failure: a month later: %v, want locked for good", err)
	}
}

// TestThrottleKeysThatMakeNoID: a typed name an anonymous client chooses
// may hold what no key of the throttle namespace can (a control
// character, an empty segment, a segment too long). Such a guess is still
// admitted and counted, under the name's hash, and locks like any other;
// and names that differ keep apart counts, so one cannot lock another.
func TestThrottleKeysThatMakeNoID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	th := NewThrottle(st, clock)
	for _, tc := range []struct{ name, key, neighbour string }{
		{"fail/nul", "login:alice\x00", "login:alice"},
		{"fail/empty-segment", "login:a//b", "login:a/b"},
		{"fail/trailing-separator", "login:alice/", "login:alice"},
		{"fail/invalid-utf8", "login:\xff", "login:\xfe"},
		{"fail/too-long", "login:" + strings.Repeat("a", 600), "login:" + strings.Repeat("a", 601)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range th.Free + 1 {
				a, err := th.Begin(ctx, tc.key)
				if err != nil {
					t.Fatalf("a guess at %q was not admitted: %v", tc.key, err)
				}
				a.Failed()
			}
			if _, err := th.Begin(ctx, tc.key); !errors.Is(err, ErrThrottled) {
				t.Fatalf("%q is not locked after %d failures: %v", tc.key, th.Free+1, err)
			}
			if err := th.Check(ctx, tc.neighbour); err != nil {
				t.Fatalf("locking %q locked %q too: %v", tc.key, tc.neighbour, err)
			}
			if err := th.Reset(ctx, tc.key); err != nil {
				t.Fatal(err)
			}
			if err := th.Check(ctx, tc.key); err != nil {
				t.Fatalf("reset did not unlock %q: %v", tc.key, err)
			}
		})
	}
}
