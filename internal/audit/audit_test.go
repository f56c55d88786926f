package audit

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "modernc.org/sqlite" // the raw database, as an attacker with file access sees it

	"github.com/stepgate/stepgate/internal/store/kvspace"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

func open(t *testing.T) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stepgate.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, nil), path
}

func TestChainVerifies(t *testing.T) {
	l, _ := open(t)
	ctx := context.Background()
	for _, a := range []string{"user.disable", "user.mfa-reset", "user.risk-dismiss"} {
		if _, err := l.Record(ctx, "cli:root", a, "user:alice", "support ticket 42", map[string]bool{"disabled": false}, map[string]bool{"disabled": true}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := l.Verify(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Verify = %d, %v; want 3 entries, intact", n, err)
	}
}

// TestEditedRowIsDetected: one row changed in the raw database file —
// the kind of edit that hides who disabled an account — is found, and
// named.
func TestEditedRowIsDetected(t *testing.T) {
	l, path := open(t)
	ctx := context.Background()
	for _, actor := range []string{"cli:root", "cli:mallory", "cli:root"} {
		if _, err := l.Record(ctx, actor, "user.disable", "user:alice", "", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var raw []byte
	if err := db.QueryRow(`SELECT value FROM kv WHERE name = ?`, entryKey(2)).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), "cli:mallory", "cli:root", 1)
	if _, err := db.Exec(`UPDATE kv SET value = ? WHERE name = ?`, []byte(edited), entryKey(2)); err != nil {
		t.Fatal(err)
	}
	_, err = l.Verify(ctx)
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("Verify after editing entry 2 = %v, want it named as broken", err)
	}
	// Deleting a row is found too.
	if _, err := db.Exec(`DELETE FROM kv WHERE name = ?`, entryKey(2)); err != nil {
		t.Fatal(err)
	}
	if _, err = l.Verify(ctx); !errors.Is(err, ErrBroken) {
		t.Fatalf("Verify after deleting entry 2 = %v", err)
	}
}

func TestConcurrentWritersKeepOneChain(t *testing.T) {
	l, _ := open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if _, err := l.Record(ctx, "cli:root", "user.revoke", "user:bob", "", nil, nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n, err := l.Verify(ctx); err != nil || n != 40 {
		t.Fatalf("Verify = %d, %v; want 40 intact entries", n, err)
	}
}

// entryKey is where entry seq is stored, for tests that tamper with it.
func entryKey(seq int64) string {
	k, _ := kvspace.AuditEntry.Key(entryID(seq))
	return k
}
