package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stepgate/stepgate/internal/audit/tally"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

// The running totals of the sign-in log must always equal a full count
// of the log: after every batch, a retried batch, retention and a
// rebuild, on every backend.

// totalsBase is an hour boundary; entries fall off it, so buckets and
// retention cuts are tested away from boundaries too.
var totalsBase = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

// totalsEntry is entry i: a mix of apps, outcomes and policy results
// that exercises every counter, a few minutes apart.
func totalsEntry(prefix string, i int) store.SignIn {
	apps := []string{"bank", "wiki", "payroll"}
	o := tally.Outcome{Source: "oidc", Decision: []string{"allow", "allow", "challenge", "block", "failure"}[i%5]}
	switch i % 7 {
	case 3:
		o.Source, o.Decision = "step-up", "success"
	case 5:
		o.Source, o.Decision = "step-up", "failure"
	}
	pol := func(name, r string, satisfied bool, grant string) {
		o.Policies = append(o.Policies, tally.PolicyResult{Policy: name, Result: r, Satisfied: satisfied, Grant: grant})
	}
	pol("baseline", tally.ResultApplied, true, "all-of")
	if i%3 == 0 {
		pol("mfa-on-risk", tally.ResultApplied, false, "all-of")
	}
	if i%4 == 0 {
		pol("no-legacy", tally.ResultApplied, false, "block")
	}
	if i%2 == 0 {
		pol("trial-device", tally.ResultReportOnlyUserActionRequired, false, "")
	}
	if i%6 == 1 {
		pol("trial-block", tally.ResultReportOnlyFailure, false, "")
	}
	body, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	at := totalsBase.Add(time.Duration(i) * 7 * time.Minute).Add(time.Duration(i%60) * time.Second)
	return store.SignIn{ID: fmt.Sprintf("%s-%05d", prefix, i), Time: at, UserID: fmt.Sprintf("u%d", i%9),
		App: apps[i%len(apps)], Decision: o.Decision, Body: body}
}

// totalsBatch is entries from to to-1.
func totalsBatch(prefix string, from, to int) []store.SignIn {
	var out []store.SignIn
	for i := from; i < to; i++ {
		out = append(out, totalsEntry(prefix, i))
	}
	return out
}

// fullCount counts the whole log (of app, when set) as the totals
// should: per hour, counter and policy.
func fullCount(t testing.TB, s store.Store, app string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	q := store.SignInQuery{App: app, Limit: 1000}
	for {
		rows, err := s.ListSignIns(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			return out
		}
		for _, r := range rows {
			for _, c := range tally.Row(r) {
				out[totalKey(r.Time.UTC().Truncate(time.Hour), c)]++
			}
		}
		q.Before = rows[len(rows)-1].Seq
	}
}

func totalKey(hour time.Time, c store.SignInCounter) string {
	return hour.Format(time.RFC3339) + " " + c.Name + " " + c.Policy
}

// storedTotals reads the totals of all time (of app, when set).
func storedTotals(t testing.TB, s store.Store, app string) map[string]int64 {
	t.Helper()
	rows, err := s.SignInTotals(context.Background(), store.SignInTotalsQuery{
		Since: totalsBase.Add(-1000 * time.Hour), Until: totalsBase.Add(10_000 * time.Hour), App: app})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		if !r.Hour.Equal(r.Hour.Truncate(time.Hour)) {
			t.Fatalf("a total's hour %s is not the start of an hour", r.Hour)
		}
		out[totalKey(r.Hour.UTC(), r.SignInCounter)] += r.N
	}
	return out
}

// checkTotals fails when the totals differ from a full count of the
// log, for all apps and for each one.
func checkTotals(t testing.TB, s store.Store, when string) {
	t.Helper()
	for _, app := range []string{"", "bank", "wiki", "payroll"} {
		want, got := fullCount(t, s, app), storedTotals(t, s, app)
		if !maps.Equal(want, got) {
			t.Fatalf("%s: the totals (app %q) disagree with the log:\n%s", when, app, diffCounts(want, got))
		}
	}
}

func diffCounts(want, got map[string]int64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if want[k] != got[k] {
			fmt.Fprintf(&b, "  %s: log %d, totals %d\n", k, want[k], got[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "  %s: log 0, totals %d\n", k, got[k])
		}
	}
	return b.String()
}

func testSignInTotals(t *testing.T, s store.Store) {
	ctx := context.Background()
	for from := 0; from < 600; from += 75 {
		if err := s.AppendSignIns(ctx, totalsBatch("e", from, from+75)); err != nil {
			t.Fatal(err)
		}
	}
	checkTotals(t, s, "after eight batches")
	if got := storedTotals(t, s, "")[totalKey(totalsBase, store.SignInCounter{Name: tally.Allow})]; got == 0 {
		t.Fatal("no allow counted in the first hour: the test's entries count nothing")
	}

	// A retried batch: the writer gave up waiting for the commit of
	// entries 500-599 and sends them again, with new ones after.
	retry := totalsBatch("e", 500, 700)
	if err := s.AppendSignIns(ctx, retry); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendSignIns(ctx, retry[:10]); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after a retried batch")

	// A query of some hours counts those hours only, rounded out to
	// whole hours.
	some, err := s.SignInTotals(ctx, store.SignInTotalsQuery{Since: totalsBase.Add(90 * time.Minute), Until: totalsBase.Add(150 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	hours := map[time.Time]bool{}
	for _, r := range some {
		hours[r.Hour.UTC()] = true
	}
	if len(hours) != 2 || !hours[totalsBase.Add(time.Hour)] || !hours[totalsBase.Add(2*time.Hour)] {
		t.Fatalf("the totals of 9:30 to 10:30 cover hours %v, want 9:00 and 10:00", slices.Collect(maps.Keys(hours)))
	}

	// Buckets of three hours sum their hours, from Since.
	checkBuckets(t, s, 3*time.Hour)

	// Retention cuts within an hour, then on an hour's boundary.
	for _, cut := range []time.Duration{5*time.Hour + 17*time.Minute, 9 * time.Hour, 9*time.Hour + 59*time.Minute} {
		n, err := s.DeleteSignInsBefore(ctx, totalsBase.Add(cut))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && cut != 9*time.Hour+59*time.Minute {
			t.Fatalf("retention at +%s removed nothing: the test cuts nothing", cut)
		}
		checkTotals(t, s, fmt.Sprintf("after retention at +%s", cut))
	}

	// Counted already: nothing to rebuild.
	if r, err := s.RebuildSignInTotals(ctx); err != nil || r.Rebuilt {
		t.Fatalf("rebuild of counted totals: %+v %v, want nothing done", r, err)
	}
	testTotalsRebuild(t, s)
}

// checkBuckets compares the totals summed per bucket by the store with
// the hourly ones summed here.
func checkBuckets(t *testing.T, s store.Store, bucket time.Duration) {
	t.Helper()
	since, until := totalsBase.Add(time.Hour), totalsBase.Add(13*time.Hour)
	hourly, err := s.SignInTotals(context.Background(), store.SignInTotalsQuery{Since: since, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, r := range hourly {
		start := since.Add(r.Hour.Sub(since) / bucket * bucket)
		want[totalKey(start, r.SignInCounter)] += r.N
	}
	grouped, err := s.SignInTotals(context.Background(), store.SignInTotalsQuery{Since: since, Until: until, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range grouped {
		got[totalKey(r.Hour.UTC(), r.SignInCounter)] += r.N
	}
	if len(want) < 8 || !maps.Equal(want, got) {
		t.Fatalf("totals in buckets of %s disagree with their hours:\n%s", bucket, diffCounts(want, got))
	}
}

// testTotalsRebuild spoils the totals the way an older version would
// have left them and has them counted again.
func testTotalsRebuild(t *testing.T, s store.Store) {
	db, ok := s.(interface{ SQL() *sql.DB })
	if !ok {
		return
	}
	ctx := context.Background()
	for _, stmt := range []string{"UPDATE sign_in_totals SET n = n + 3", "UPDATE sign_in_app_totals SET n = n - 1", "UPDATE sign_in_totals_state SET version = 0"} {
		if _, err := db.SQL().ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	want := len(fullCount(t, s, ""))
	r, err := s.RebuildSignInTotals(ctx)
	if err != nil || !r.Rebuilt || r.Entries == 0 {
		t.Fatalf("rebuild of totals of another version: %+v %v", r, err)
	}
	checkTotals(t, s, "after a rebuild")
	if got := len(storedTotals(t, s, "")); got != want {
		t.Fatalf("%d totals after a rebuild, want %d", got, want)
	}
}

// testSignInTotalsConcurrent: writers on several connections (nodes, on
// PostgreSQL) append overlapping batches, retry some, while retention
// runs; the totals still equal the log.
func testSignInTotalsConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, perWriter = 4, 300
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer's entries, then its neighbour's first batch
			// again: the same ids from two writers at once.
			for from := 0; from < perWriter; from += 50 {
				if err := s.AppendSignIns(ctx, totalsBatch(fmt.Sprintf("w%d", w), from, from+50)); err != nil {
					errs <- err
					return
				}
			}
			if err := s.AppendSignIns(ctx, totalsBatch(fmt.Sprintf("w%d", (w+1)%writers), 0, 50)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, cut := range []time.Duration{90 * time.Minute, 3*time.Hour + 10*time.Minute} {
			if _, err := s.DeleteSignInsBefore(ctx, totalsBase.Add(cut)); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkTotals(t, s, "after concurrent writers")
	if r, err := s.RebuildSignInTotals(ctx); err != nil || r.Rebuilt {
		t.Fatalf("rebuild after concurrent writers: %+v %v, want nothing to do", r, err)
	}
}

// RunSignInTotalsMigration checks that a database from before the
// totals (every migration up to before) gets them counted once, at the
// first RebuildSignInTotals, from the entries it holds. db is a fresh,
// empty database, closed once the old entries are in.
func RunSignInTotalsMigration(t *testing.T, db *sql.DB, d sqlstore.Dialect, migrations fs.FS, before string, open func() store.Store) {
	ctx := context.Background()
	old := fstest.MapFS{}
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name >= before {
			continue
		}
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		old[path.Join("migrations", name)] = &fstest.MapFile{Data: body}
	}
	if err := sqlstore.Migrate(ctx, db, d, old, "migrations"); err != nil {
		t.Fatalf("migrate to before %s: %v", before, err)
	}
	rows := totalsBatch("old", 0, 120)
	for _, r := range rows {
		if _, err := db.ExecContext(ctx, d.Rebind("INSERT INTO sign_ins (id, at, user_id, app, decision, body) VALUES (?, ?, ?, ?, ?, ?)"),
			r.ID, r.Time.UnixMicro(), r.UserID, r.App, r.Decision, string(r.Body)); err != nil {
			t.Fatalf("write an entry of the old schema: %v", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := open()
	defer s.Close()
	if got := storedTotals(t, s, ""); len(got) != 0 {
		t.Fatalf("totals before the rebuild: %v, want none (they were never counted)", got)
	}
	r, err := s.RebuildSignInTotals(ctx)
	if err != nil || !r.Rebuilt || r.Entries != len(rows) {
		t.Fatalf("first rebuild: %+v %v, want all %d entries counted", r, err, len(rows))
	}
	checkTotals(t, s, "after the upgrade's rebuild")
	if err := s.AppendSignIns(ctx, totalsBatch("new", 100, 200)); err != nil {
		t.Fatal(err)
	}
	if r, err := s.RebuildSignInTotals(ctx); err != nil || r.Rebuilt {
		t.Fatalf("second start: %+v %v, want no rebuild", r, err)
	}
	checkTotals(t, s, "after new entries")
}

// testSignInTotalsRepeatedInBatch: an entry that appears twice in one
// batch (a writer that queued it again after a retry, or a batch put
// together from two queues) is stored once, and used to be counted once
// per appearance, since the insert skips the repeat but the count went
// by the batch. The totals must equal the log, whatever the batch holds,
// retention included.
func testSignInTotalsRepeatedInBatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	batch := totalsBatch("r", 0, 40)
	// Repeats next to their first appearance, far from it, and one in
	// another hour with other counters (what a forged or corrupted
	// repeat could claim).
	other := totalsEntry("r", 3)
	other.Time = other.Time.Add(5 * time.Hour)
	batch = append(batch, batch[0], batch[0], batch[17], other)
	if err := s.AppendSignIns(ctx, batch); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after a batch with repeated entries")
	if n, err := s.DeleteSignInsBefore(ctx, totalsBase.Add(100*time.Minute)); err != nil || n == 0 {
		t.Fatalf("retention removed %d entries: %v", n, err)
	}
	checkTotals(t, s, "after retention of repeated entries")
}
