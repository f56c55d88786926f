package postgres_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
	"github.com/stepgate/stepgate/internal/store/storetest"
)

func opener(t testing.TB, now func() time.Time) func() store.Store {
	dsn := pgtest.DSN(t)
	return func() store.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) { storetest.RunTests(t, opener) }

func TestNamespaces(t *testing.T) {
	storetest.RunNamespaceTests(t, func(t testing.TB, now func() time.Time) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSignInPoliciesMigration(t *testing.T) {
	dsn := pgtest.DSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.RunSignInPoliciesMigration(t, db, postgres.Dialect, os.DirFS("migrations"), func() store.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSignInStatementClassMigration(t *testing.T) {
	dsn := pgtest.DSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.RunSignInStatementClassMigration(t, db, postgres.Dialect, os.DirFS("migrations"), "0008_sign_in_statement_class.sql", func() store.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSignInTotalsMigration(t *testing.T) {
	dsn := pgtest.DSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.RunSignInTotalsMigration(t, db, postgres.Dialect, os.DirFS("migrations"), "0007_sign_in_totals.sql", func() store.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func BenchmarkSessionLookup(b *testing.B) { storetest.BenchSessionLookup(b, opener) }

func BenchmarkSignInLogAppend(b *testing.B) { storetest.BenchSignInAppend(b, opener) }

func BenchmarkSignInLogQuery(b *testing.B) {
	pgtest.Require(b)
	storetest.BenchSignInQueries(b, "postgres", longOpen, analyze)
}

// BenchmarkSignInLogOverview shares BenchmarkSignInLogQuery's million
// entries when both run in one process.
func BenchmarkSignInLogOverview(b *testing.B) {
	pgtest.Require(b)
	storetest.BenchOverview(b, "postgres", longOpen, analyze, overview)
}

// longOpen opens the store the sign-in log benchmarks seed.
func longOpen() (store.Store, func(), error) {
	dsn, drop, err := pgtest.NewSchema()
	if err != nil {
		return nil, nil, err
	}
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		drop()
		return nil, nil, err
	}
	return s, func() { _ = s.Close(); drop() }, nil
}

// overview is the console's overview, through the admin service.
func overview(ctx context.Context, s store.Store, now time.Time, period time.Duration) (int, error) {
	o, err := admin.New(admin.Deps{Store: s, Now: func() time.Time { return now }}).Overview(ctx, period)
	return o.Totals.Allow + o.Totals.Challenge + o.Totals.Block, err
}

// analyze does what autovacuum does soon after a million rows arrive:
// it gathers the planner's statistics and marks the pages all-visible.
func analyze(s store.Store) error {
	_, err := s.(*sqlstore.DB).SQL().ExecContext(context.Background(), "VACUUM ANALYZE")
	return err
}

// TestMain drops the query benchmarks' seeded schema, which outlives any
// one benchmark.
func TestMain(m *testing.M) {
	code := m.Run()
	storetest.ReleaseShared()
	os.Exit(code)
}

func TestMigrationsAreIdempotentAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	// Several nodes starting at once must agree on one schema.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent start: %v", err)
		}
	}
}

func TestUnreachableServerFailsFast(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := postgres.Open(context.Background(), "postgres://stepgate:hunter2secret@127.0.0.1:1/stepgate", postgres.Options{ConnectTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Open took %s to fail; it should give up within its connect timeout", time.Since(start))
	}
	msg := err.Error()
	for _, want := range []string{"cannot reach PostgreSQL at 127.0.0.1:1", "STEPGATE_STORAGE_DSN"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "hunter2secret") {
		t.Errorf("error %q leaks the password", msg)
	}
}

func TestInvalidDSNDoesNotEchoIt(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(context.Background(), "postgres://user:pa ss@[bad", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "pa ss") {
		t.Fatalf("Open = %v; want an error that does not echo the DSN", err)
	}
}

func TestAccessWatch(t *testing.T) { storetest.RunAccessWatchTests(t, opener) }

// TestAttackTruncateEndsCachedAccess empties, as an operator would in
// SQL, each table whose rows keep access granted. TRUNCATE fires no
// DELETE trigger, so without triggers of its own a table of elevations,
// role assignments or grants emptied this way would leave every node
// trusting the tokens it cached as verified until they expired.
func TestAttackTruncateEndsCachedAccess(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.DSN(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, table := range []string{"kv", "users", "groups", "roles", "role_assignments", "elevations"} {
		t.Run("fail/truncate-"+table, func(t *testing.T) {
			before := vouchedMark(t, s)
			if _, err := s.SQL().ExecContext(ctx, "TRUNCATE "+table+" CASCADE"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				if m, ok := s.AccessMark(ctx); !ok || m != before {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("TRUNCATE %s left the access mark at %d", table, before)
				}
				time.Sleep(10 * time.Millisecond) // between polls, not an assertion
			}
		})
	}
}

// vouchedMark waits until w vouches for its access mark.
func vouchedMark(t *testing.T, w store.AccessWatch) uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m, ok := w.AccessMark(context.Background()); ok {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatal("the store did not vouch for its access mark")
		}
		time.Sleep(10 * time.Millisecond) // between polls, not an assertion
	}
}
