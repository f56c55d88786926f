package authn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestThrottleParallelGuesses fires bursts of concurrent wrong guesses at
// one key, as an attacker with many connections would, spread over two
// nodes that share one database, and counts how many reach the
// comparison. Each burst must get exactly what a patient attacker gets:
// Free+1 guesses on a fresh key, then one per lapsed lock, and never more
// than the hard limit in all.
func TestThrottleParallelGuesses(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testThrottleParallelGuesses(t, backend)
		})
	}
}

func testThrottleParallelGuesses(t *testing.T, backend string) {
	ctx := context.Background()
	var now atomic.Pointer[time.Time]
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	now.Store(&start)
	clock := func() time.Time { return *now.Load() }
	nodes := [2]*Throttle{}
	open := openNode(t, backend, clock)
	for i := range nodes {
		nodes[i] = NewThrottle(open(), clock)
	}
	th := nodes[0]

	burst := func(n int) (evaluated int64) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				a, err := nodes[i%len(nodes)].Begin(ctx, "user:alice")
				if errors.Is(err, ErrThrottled) {
					return
				}
				if err != nil {
					t.Errorf("begin: %v", err)
					return
				}
				atomic.AddInt64(&evaluated, 1) // the secret is compared here, and is wrong
				a.Failed()
			})
		}
		wg.Wait()
		return evaluated
	}
	if got := burst(200); got != int64(th.Free+1) {
		t.Fatalf("fail/parallel-fresh: %d of 200 parallel guesses evaluated, want %d", got, th.Free+1)
	}
	total := int64(th.Free + 1)
	for i := range 5 {
		later := clock().Add(th.Max)
		now.Store(&later) // every lock short of the hard one has lapsed
		if got := burst(50); got != 1 {
			t.Fatalf("fail/parallel-after-lock-%d: %d of 50 parallel guesses evaluated, want 1", i, got)
		}
		total++
	}
	// Up to the hard limit and past it, the count of evaluated guesses
	// never exceeds it.
	for clock().Before(start.Add(365 * 24 * time.Hour)) {
		later := clock().Add(th.Max)
		now.Store(&later)
		total += burst(20)
		if total > int64(th.HardLimit) {
			t.Fatalf("fail/parallel-hard-limit: %d guesses evaluated, more than the hard limit %d", total, th.HardLimit)
		}
		if total == int64(th.HardLimit) {
			break
		}
	}
	later := clock().Add(30 * 24 * time.Hour)
	now.Store(&later)
	if got := burst(50); got != 0 {
		t.Fatalf("fail/parallel-hard-locked: %d guesses evaluated after %d failures, want 0", got, total)
	}
}

// openNode returns a function that opens one more handle on a single
// database of backend, as each node of a cluster holds its own.
func openNode(t *testing.T, backend string, clock func() time.Time) func() store.KV {
	t.Helper()
	dsn := ""
	if backend == "postgres" {
		dsn = pgtest.DSN(t)
	} else {
		dsn = t.TempDir() + "/t.db"
	}
	return func() store.KV {
		t.Helper()
		var (
			kv interface {
				store.KV
				Close() error
			}
			err error
		)
		if backend == "postgres" {
			kv, err = postgres.Open(context.Background(), dsn, postgres.Options{Now: clock})
		} else {
			kv, err = sqlite.Open(context.Background(), dsn, sqlite.Options{Now: clock})
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		return kv
	}
}

// TestThrottleAttemptEnds checks the three ways an attempt ends: a
// release (the secret was never compared) gives the guess back, a
// success clears the count, a failure keeps it.
func TestThrottleAttemptEnds(t *testing.T) {
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
	begin := func(name string) *Attempt {
		t.Helper()
		a, err := th.Begin(ctx, "k")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return a
	}

	for range 50 {
		if err := begin("ok/released-guesses-not-counted").Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range th.Free {
		begin("ok/free-failures").Failed()
	}
	a := begin("ok/last-before-lock")
	if _, err := th.Begin(ctx, "k"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fail/while-reserved: %v, want locked while the sixth guess is in flight", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	a = begin("ok/released-sixth-unlocks")
	if err := a.Succeeded(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for range th.Free {
		begin("ok/success-clears-count").Failed()
	}
	begin("ok/sixth-after-success").Failed()
	if _, err := th.Begin(ctx, "k"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fail/locked-after-failures: %v, want locked", err)
	}
	if err := th.Check(ctx, "k"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fail/check-agrees: %v, want locked", err)
	}
}
