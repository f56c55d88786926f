package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// The sign-in log's benchmarks: how fast entries are appended, and how
// fast the API's queries answer over a table of a million entries.

// SeedSignIns is how many entries the query benchmarks read from.
const SeedSignIns = 1_000_000

// The seeded log's shape: about a thousand users, twenty apps of
// Zipf-like popularity, mostly allow with some challenge and block, and
// a few policies per entry over thirty days, in write order.
const (
	seedUsers  = 1000
	seedApps   = 20
	seedSpan   = 30 * 24 * time.Hour
	seedBatch  = 10_000 // entries per transaction while seeding
	queryLimit = 100    // the API's default page
)

// seedPolicies are the policies entries name, with the share of entries
// each applied to.
var seedPolicies = []struct {
	name  string
	share float64
}{
	{"baseline-sign-in", 1},
	{"report-only-compliant-device", 0.6},
	{"mfa-on-risk", 0.2},
	{"admins-mfa", 0.1},
	{"block-legacy-auth", 0.02},
	{"break-glass-review", 0.005},
}

// LongOpener opens a fresh, empty store that outlives any one benchmark,
// so the seeded million entries are written once per process however
// often the benchmarks run; release closes it and removes what it used.
// The backend's TestMain calls ReleaseShared.
type LongOpener func() (s store.Store, release func(), err error)

// seededLog is one backend's store holding SeedSignIns entries.
type seededLog struct {
	once    sync.Once
	s       store.Store
	release func()
	err     error
}

var (
	// seededMu guards seeded, which keeps one seeded store per backend
	// for the life of the test binary.
	seededMu sync.Mutex
	seeded   = map[string]*seededLog{}
)

// ReleaseShared closes and removes every store the query benchmarks
// seeded.
func ReleaseShared() {
	seededMu.Lock()
	defer seededMu.Unlock()
	for name, l := range seeded {
		if l.release != nil {
			l.release()
		}
		delete(seeded, name)
	}
}

// seededStore returns backend's seeded store, opening and filling it on
// first use, then calling settle (when not nil) on it.
func seededStore(b *testing.B, backend string, open LongOpener, settle func(store.Store) error) store.Store {
	b.Helper()
	seededMu.Lock()
	l := seeded[backend]
	if l == nil {
		l = &seededLog{}
		seeded[backend] = l
	}
	seededMu.Unlock()
	l.once.Do(func() {
		start := time.Now()
		if l.s, l.release, l.err = open(); l.err != nil {
			return
		}
		if l.err = seed(context.Background(), l.s, SeedSignIns); l.err == nil && settle != nil {
			l.err = settle(l.s)
		}
		b.Logf("%s: seeded %d sign-in log entries in %s", backend, SeedSignIns, time.Since(start).Round(time.Second))
	})
	if l.err != nil {
		b.Fatalf("seed the %s sign-in log: %v", backend, l.err)
	}
	return l.s
}

// seedStart is when the seeded log's first entry was written.
var seedStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// seed appends n entries in large transactions.
func seed(ctx context.Context, s store.SignIns, n int) error {
	r := mrand.New(mrand.NewPCG(1, 2)) //nolint:gosec // a reproducible distribution, not a secret
	apps := zipf(seedApps)
	batch := make([]store.SignIn, 0, seedBatch)
	for i := range n {
		batch = append(batch, seedEntry(r, apps, i, n))
		if len(batch) == cap(batch) || i == n-1 {
			if err := s.AppendSignIns(ctx, batch); err != nil {
				return fmt.Errorf("entries %d to %d: %w", i+1-len(batch), i, err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// zipf returns the cumulative shares of n items whose popularity falls
// as 1/rank.
func zipf(n int) []float64 {
	cum := make([]float64, n)
	total := 0.0
	for i := range n {
		total += 1 / float64(i+1)
		cum[i] = total
	}
	for i := range cum {
		cum[i] /= total
	}
	return cum
}

// seedApp names app i (app00 is the most used).
func seedApp(i int) string { return fmt.Sprintf("app%02d", i) }

// seedUser names user i.
func seedUser(i int) string { return fmt.Sprintf("user%04d", i) }

// seedEntry is entry i of n: times spread evenly over seedSpan.
func seedEntry(r *mrand.Rand, apps []float64, i, n int) store.SignIn {
	at := seedStart.Add(time.Duration(int64(seedSpan) / int64(n) * int64(i)))
	user := seedUser(r.IntN(seedUsers))
	app, _ := slices.BinarySearch(apps, r.Float64())
	decision := "allow"
	switch p := r.Float64(); {
	case p < 0.02:
		decision = "block"
	case p < 0.10:
		decision = "challenge"
	}
	e := store.SignIn{ID: rand.Text(), Time: at, UserID: user, App: seedApp(app), Decision: decision}
	for _, p := range seedPolicies {
		if r.Float64() < p.share {
			e.Policies = append(e.Policies, p.name)
		}
	}
	e.Body = seedBody(e, r)
	return e
}

// seedBody is an entry body of the size and shape the server writes.
func seedBody(e store.SignIn, r *mrand.Rand) []byte {
	policies := ""
	for i, p := range e.Policies {
		if i > 0 {
			policies += ","
		}
		policies += seedResult(e, p)
	}
	return fmt.Appendf(nil, `{"id":%q,"time":%q,"request_id":"%016x","source":"oidc","user_id":%q,"username":%q,`+
		`"app":%q,"ip":"198.51.100.%d","country":"DE","client_app":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",`+
		`"risk_level":"none","decision":%q,"policies":[%s],"methods_completed":["pwd"],"latency_us":%d}`,
		e.ID, e.Time.Format(time.RFC3339Nano), r.Uint64(), e.UserID, e.UserID, e.App, r.IntN(256), e.Decision, policies, 100+r.IntN(900))
}

// seedResult is what policy p did to entry e, so the totals have
// policies to count: the enforced policies other than the baseline
// asked for more in every entry not allowed, and the report-only one
// would have of one user in ten.
func seedResult(e store.SignIn, p string) string {
	switch {
	case p == "report-only-compliant-device" && strings.HasSuffix(e.UserID, "7"):
		return fmt.Sprintf(`{"policy":%q,"state":"report-only","result":"report-only-user-action-required","satisfied":false}`, p)
	case p == "report-only-compliant-device":
		return fmt.Sprintf(`{"policy":%q,"state":"report-only","result":"report-only-success","satisfied":true}`, p)
	case e.Decision != "allow" && p != "baseline-sign-in":
		return fmt.Sprintf(`{"policy":%q,"state":"enabled","result":"applied","satisfied":false,"grant":"all-of"}`, p)
	}
	return fmt.Sprintf(`{"policy":%q,"state":"enabled","result":"applied","satisfied":true}`, p)
}

// signInQueries are the queries the API and the CLI make, each for the
// newest page (100 entries) unless it says otherwise.
func signInQueries(newest int64) []struct {
	name string
	q    store.SignInQuery
} {
	mid := seedStart.Add(seedSpan / 2)
	return []struct {
		name string
		q    store.SignInQuery
	}{
		{"newest", store.SignInQuery{}},
		{"user", store.SignInQuery{UserID: seedUser(500)}},
		{"app+decision", store.SignInQuery{App: seedApp(7), Decision: "block"}},
		{"policy-common", store.SignInQuery{Policy: "mfa-on-risk"}},
		{"policy-rare", store.SignInQuery{Policy: "break-glass-review"}},
		{"time-window", store.SignInQuery{Since: mid, Until: mid.Add(time.Hour)}},
		// The page 900,000 entries down: where a full export ends.
		{"deep-cursor", store.SignInQuery{Before: newest - 900_000}},
	}
}

// BenchSignInQueries measures each query over SeedSignIns entries and
// reports its median latency (p50-µs) beside the mean. settle, when not
// nil, runs once after seeding: the database's own upkeep (statistics
// for the query planner) that a table this size would have had.
func BenchSignInQueries(b *testing.B, backend string, open LongOpener, settle func(store.Store) error) {
	s := seededStore(b, backend, open, settle)
	ctx := context.Background()
	top, err := s.ListSignIns(ctx, store.SignInQuery{Limit: 1})
	if err != nil || len(top) == 0 {
		b.Fatalf("read the newest entry: %v", err)
	}
	for _, tc := range signInQueries(top[0].Seq) {
		b.Run(tc.name, func(b *testing.B) {
			q := tc.q
			q.Limit = queryLimit
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				rows, err := s.ListSignIns(ctx, q)
				took = append(took, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if len(rows) != queryLimit {
					b.Fatalf("%d rows, want a full page of %d", len(rows), queryLimit)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
		})
	}
}

// BenchSignInAppend measures AppendSignIns, one transaction per batch,
// for a single entry and for the sign-in log's batch of 256.
func BenchSignInAppend(b *testing.B, opener Opener) {
	for _, size := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := opener(b, nil)()
			defer s.Close()
			r := mrand.New(mrand.NewPCG(3, 4)) //nolint:gosec // a reproducible distribution, not a secret
			apps := zipf(seedApps)
			ctx := context.Background()
			n := 0
			for b.Loop() {
				b.StopTimer()
				batch := make([]store.SignIn, size)
				for i := range batch {
					batch[i] = seedEntry(r, apps, n, SeedSignIns)
					n++
				}
				b.StartTimer()
				if err := s.AppendSignIns(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// seedEnd is when the seeded log's newest entry was written.
var seedEnd = seedStart.Add(seedSpan)

// Overview answers the console's overview of period at now from s and
// returns how many decisions it counted: the admin service's Overview,
// which the backends' benchmarks pass in.
type Overview func(ctx context.Context, s store.Store, now time.Time, period time.Duration) (decisions int, err error)

// BenchOverview measures the console's overview and policies pages
// (the overview of a day, a week and a month) over SeedSignIns entries,
// then counting the totals again from the whole log, as an upgrade does
// once, with the peak of the heap while it runs.
func BenchOverview(b *testing.B, backend string, open LongOpener, settle func(store.Store) error, overview Overview) {
	s := seededStore(b, backend, open, settle)
	ctx := context.Background()
	for _, p := range []struct {
		name   string
		period time.Duration
	}{{"overview-24h", 24 * time.Hour}, {"policies-7d", 7 * 24 * time.Hour}, {"overview-30d", 30 * 24 * time.Hour}} {
		b.Run(p.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				n, err := overview(ctx, s, seedEnd, p.period)
				took = append(took, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if want := int(int64(SeedSignIns) * int64(p.period) / int64(seedSpan)); n < want {
					b.Fatalf("counted %d decisions, want at least %d", n, want)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
		})
	}
	b.Run("rebuild", func(b *testing.B) { benchRebuild(b, s) })
}

// benchRebuild counts the totals again from the whole log.
func benchRebuild(b *testing.B, s store.Store) {
	db, ok := s.(interface{ SQL() *sql.DB })
	if !ok {
		b.Skip("the store has no SQL handle to forget its totals with")
	}
	ctx := context.Background()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	for b.Loop() {
		if _, err := db.SQL().ExecContext(ctx, "DELETE FROM sign_in_totals_state"); err != nil {
			b.Fatal(err)
		}
		r, err := s.RebuildSignInTotals(ctx)
		if err != nil || !r.Rebuilt || r.Entries != SeedSignIns {
			b.Fatalf("rebuild: %+v %v, want all %d entries counted", r, err, SeedSignIns)
		}
	}
	close(done)
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
}
