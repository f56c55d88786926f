package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/store/storetest"
)

func opener(t testing.TB, now func() time.Time) func() store.Store {
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	return func() store.Store {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) { storetest.RunTests(t, opener) }

func TestNamespaces(t *testing.T) {
	storetest.RunNamespaceTests(t, func(t testing.TB, now func() time.Time) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), sqlite.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSignInPoliciesMigration(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.RunSignInPoliciesMigration(t, db, sqlite.Dialect, os.DirFS("migrations"), func() store.Store {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSignInTotalsMigration(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.RunSignInTotalsMigration(t, db, sqlite.Dialect, os.DirFS("migrations"), "0006_sign_in_totals.sql", func() store.Store {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSignInStatementClassMigration(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.RunSignInStatementClassMigration(t, db, sqlite.Dialect, os.DirFS("migrations"), "0007_sign_in_statement_class.sql", func() store.Store {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func BenchmarkSessionLookup(b *testing.B) { storetest.BenchSessionLookup(b, opener) }

func BenchmarkSignInLogAppend(b *testing.B) { storetest.BenchSignInAppend(b, opener) }

func BenchmarkSignInLogQuery(b *testing.B) {
	storetest.BenchSignInQueries(b, "sqlite", longOpen, nil) // Stepgate never runs ANALYZE: SQLite plans without statistics
}

// BenchmarkSignInLogOverview shares BenchmarkSignInLogQuery's million
// entries when both run in one process.
func BenchmarkSignInLogOverview(b *testing.B) {
	storetest.BenchOverview(b, "sqlite", longOpen, nil, overview)
}

// longOpen opens the store the sign-in log benchmarks seed.
func longOpen() (store.Store, func(), error) {
	dir, err := os.MkdirTemp("", "stepgate-bench-")
	if err != nil {
		return nil, nil, err
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName), sqlite.Options{})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() { _ = s.Close(); _ = os.RemoveAll(dir) }, nil
}

// overview is the console's overview, through the admin service.
func overview(ctx context.Context, s store.Store, now time.Time, period time.Duration) (int, error) {
	o, err := admin.New(admin.Deps{Store: s, Now: func() time.Time { return now }}).Overview(ctx, period)
	return o.Totals.Allow + o.Totals.Challenge + o.Totals.Block, err
}

// TestMain removes the query benchmarks' seeded database, which outlives
// any one benchmark.
func TestMain(m *testing.M) {
	code := m.Run()
	storetest.ReleaseShared()
	os.Exit(code)
}

func TestCorruptFileIsRefusedAndUntouched(t *testing.T) {
	t.Parallel()
	for name, content := range map[string][]byte{
		"text":             []byte("this is my shopping list, not a database\n"),
		"truncated-header": []byte("SQLite for"),
		"bad-pages":        append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xAB}, 8192)...),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), sqlite.FileName)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if !errors.Is(err, sqlite.ErrNotDatabase) {
				t.Fatalf("Open = %v, want ErrNotDatabase", err)
			}
			if !strings.Contains(err.Error(), "restore it from a backup") {
				t.Errorf("error %q does not say how to fix it", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, content) {
				t.Fatal("the corrupt file was modified")
			}
			for _, side := range []string{"-wal", "-shm", "-journal"} {
				if _, err := os.Stat(path + side); err == nil {
					t.Errorf("Open left a %s file beside the corrupt database", side)
				}
			}
		})
	}
}

func TestLockedDatabaseGivesClearError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Another process (here: another connection) holds an exclusive lock.
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; CREATE TABLE hold(x)"); err != nil {
		t.Fatal(err)
	}

	_, err = sqlite.Open(context.Background(), path, sqlite.Options{BusyTimeout: 100 * time.Millisecond})
	if !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("Open on a locked database = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "another process") {
		t.Errorf("error %q does not name the cause", err)
	}
}

// Concurrent readers reuse their connections instead of closing all but
// two after each query and opening them again (which re-reads the
// schema every time).
func TestConcurrentReadsKeepTheirConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateKV(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := s.GetKV(ctx, "k"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if st := s.SQL().Stats(); st.MaxIdleClosed > 0 {
		t.Fatalf("%d connections were closed for want of idle room (%d opened in all)", st.MaxIdleClosed, st.OpenConnections)
	}
}

// fileSize is the size of the database file and its write-ahead log.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	return total
}

func autoVacuum(t *testing.T, s interface{ SQL() *sql.DB }) int {
	t.Helper()
	var mode int
	if err := s.SQL().QueryRow("PRAGMA auto_vacuum").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	return mode
}

// TestFreedSpaceIsReclaimed: the space of expired entries goes back to
// the file system when they are swept, in a new data directory and in
// one created before Stepgate turned on incremental auto-vacuum (which
// Open converts, keeping its data).
func TestFreedSpaceIsReclaimed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		legacy bool
	}{{"ok/new-file", false}, {"ok/converted-file", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), sqlite.FileName)
			if tc.legacy {
				// A database as earlier versions made it: auto_vacuum NONE.
				old, err := sqlite.Open(ctx, path, sqlite.Options{})
				if err != nil {
					t.Fatal(err)
				}
				conn := old.SQL()
				for _, q := range []string{"PRAGMA auto_vacuum = NONE", "VACUUM"} {
					if _, err := conn.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
				if autoVacuum(t, old) != 0 {
					t.Fatal("could not make a legacy file")
				}
				if _, err := old.CreateKV(ctx, "secrets/kept", []byte("still here"), time.Time{}); err != nil {
					t.Fatal(err)
				}
				old.Close()
			}
			s, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if mode := autoVacuum(t, s); mode != 2 {
				t.Fatalf("auto_vacuum = %d, want 2 (incremental)", mode)
			}
			if tc.legacy {
				if e, err := s.GetKV(ctx, "secrets/kept"); err != nil || string(e.Value) != "still here" {
					t.Fatalf("conversion lost data: %q, %v", e.Value, err)
				}
			}
			checkpoint(t, s)
			before := fileSize(t, path)
			soon := time.Now().Add(time.Minute)
			for i := range 40 {
				if _, err := s.CreateKV(ctx, fmt.Sprintf("gw/kept/%d", i), bytes.Repeat([]byte{byte(i)}, 256<<10), soon); err != nil {
					t.Fatal(err)
				}
			}
			checkpoint(t, s)
			grown := fileSize(t, path)
			if n, err := s.DeleteExpiredKV(ctx, soon.Add(time.Second)); err != nil || n != 40 {
				t.Fatalf("DeleteExpiredKV = %d, %v", n, err)
			}
			checkpoint(t, s)
			after := fileSize(t, path)
			t.Logf("before %d, with 10 MiB of entries %d, after the sweep %d bytes", before, grown, after)
			if grown < before+(10<<20) || after > before+(1<<20) {
				t.Fatalf("file: %d before, %d with 10 MiB of entries, %d after they were swept; want it back near %d", before, grown, after, before)
			}
		})
	}
}

// checkpoint writes the log into the database file and truncates it,
// so the file sizes measure the database itself.
func checkpoint(t *testing.T, s interface{ SQL() *sql.DB }) {
	t.Helper()
	if _, err := s.SQL().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
}

func TestAccessWatch(t *testing.T) { storetest.RunAccessWatchTests(t, opener) }

// TestAttackSymlinkedFileHidesRevocations opens the database through a
// symbolic link in one directory to a file in another, as a data
// directory on a separate disk is often set up. SQLite keeps the
// write-ahead log beside the real file, so a watch of the link's
// directory would never see a commit: another process's revocation (the
// command line's, another node's on the same file) would leave the
// access mark, and every verified token cached under it, unchanged.
func TestAttackSymlinkedFileHidesRevocations(t *testing.T) {
	realDir, linkDir := t.TempDir(), t.TempDir()
	realPath := filepath.Join(realDir, sqlite.FileName)
	linkPath := filepath.Join(linkDir, sqlite.FileName)
	ctx := context.Background()
	writer, err := sqlite.Open(ctx, realPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = writer.Close() })
	if err := os.Symlink(realPath, linkPath); err != nil {
		t.Skipf("symbolic links unavailable: %v", err)
	}
	watcher, err := sqlite.Open(ctx, linkPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watcher.Close() })
	before, ok := watcher.AccessMark(ctx)
	if !ok {
		t.Fatal("the store did not vouch for its access mark")
	}
	// Read again so the counter read is remembered under the watch.
	if again, _ := watcher.AccessMark(ctx); again != before {
		t.Fatalf("mark moved without a write: %d then %d", before, again)
	}
	if _, err := writer.CreateKV(ctx, "oidc/revoked/jti-1", []byte(`{}`), time.Time{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if m, ok := watcher.AccessMark(ctx); !ok || m != before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a revocation committed through the real path left the symlinked handle's access mark unchanged")
		}
		time.Sleep(5 * time.Millisecond) // between polls, not an assertion
	}
}

// TestAttackReadBetweenLogWriteAndCommitHidesRevocation races the access
// mark of one handle against commits of another (the command line, a
// second process on the file). A commit writes the write-ahead log
// (the event the watch counts) before it publishes the new frames in
// the shared-memory index, which the kernel does not report. A counter
// read between the two sees the old value and is remembered as covering
// the event, so the revocation stays unseen until some later write in
// the directory: cached tokens stay trusted.
func TestAttackReadBetweenLogWriteAndCommitHidesRevocation(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	ctx := context.Background()
	writer, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = writer.Close() })
	watcher, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watcher.Close() })
	// A resource server introspecting all the time: the mark is read
	// while the writer commits.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				watcher.AccessMark(ctx)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	const writes = 1000
	for i := range writes {
		before, _ := watcher.AccessMark(ctx)
		if _, err := writer.CreateKV(ctx, fmt.Sprintf("oidc/revoked/jti-%d", i), []byte(`{}`), time.Time{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // past the commit, not an assertion
		if after, ok := watcher.AccessMark(ctx); ok && after == before {
			t.Fatalf("revocation %d committed, yet the other handle still vouches for its old mark %d", i, before)
		}
	}
}
