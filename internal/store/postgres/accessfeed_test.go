package postgres

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// vouched polls f until it vouches for its mark, within bound.
func vouched(t *testing.T, f *accessFeed, bound time.Duration) uint64 {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		if n, ok := f.Mark(); ok {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed did not vouch for its mark within %s", bound)
		}
		time.Sleep(5 * time.Millisecond) // between polls, not an assertion
	}
}

// TestAccessFeedDropIsNeverTrustedAcross: when the listening connection
// is killed (a failover, an administrator, a network cut), whatever was
// notified while nobody listened is lost; the feed must not vouch again
// for a mark from before the drop, or a node would keep trusting tokens
// revoked in the gap. It raises the mark before vouching again.
func TestAccessFeedDropIsNeverTrustedAcross(t *testing.T) {
	dsn := pgtest.DSN(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	f := newAccessFeed(cfg, 100*time.Millisecond, 300*time.Millisecond)
	t.Cleanup(func() { _ = f.Close() })
	before := vouched(t, f, 10*time.Second)

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var killed int
	if err := db.QueryRowContext(context.Background(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
		accessFeedApp).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no listening connection to kill")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, ok := f.Mark()
		if ok && n != before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the drop the feed vouches for %d (ok %v), the mark from before it, or never again", n, ok)
		}
		time.Sleep(5 * time.Millisecond) // between polls, not an assertion
	}
}

// TestAccessFeedWithoutServerVouchesForNothing: a node that cannot
// listen (the server unreachable) never vouches for its mark, so it
// trusts no cached verification and checks every token in full.
func TestAccessFeedWithoutServerVouchesForNothing(t *testing.T) {
	t.Parallel()
	cfg, err := pgx.ParseConfig("postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	f := newAccessFeed(cfg, 50*time.Millisecond, 100*time.Millisecond)
	t.Cleanup(func() { _ = f.Close() })
	for range 20 {
		if _, ok := f.Mark(); ok {
			t.Fatal("the feed vouches for its mark without a listening connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAttackListenLostBehindTheFeed: a session whose LISTEN is gone (an
// UNLISTEN or DISCARD ALL, a transaction-mode pooler that hands the
// client another server connection) still answers a ping, but hears no
// revocation; the heartbeat's check must tell it from a listening one.
func TestAttackListenLostBehindTheFeed(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, step := range []struct {
		name, sql string
		want      bool
	}{
		{"fail/never-listened", "SELECT 1", false},
		{"ok/listening", "LISTEN " + accessChannel, true},
		{"fail/unlisten", "UNLISTEN *", false},
		{"ok/listening-again", "LISTEN " + accessChannel, true},
		{"fail/discard-all", "DISCARD ALL", false},
		{"fail/another-channel", "LISTEN something_else", false},
	} {
		if _, err := conn.Exec(ctx, step.sql); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got, err := stillListening(ctx, conn); err != nil || got != step.want {
			t.Errorf("%s: still listening = %v (%v), want %v", step.name, got, err, step.want)
		}
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("%s: the session stopped answering pings: %v", step.name, err)
		}
	}
}
