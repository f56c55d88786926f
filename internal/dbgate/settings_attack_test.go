//go:build cgo

package dbgate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/access"
)

// smuggling is read by the classifier as one harmless SELECT of two
// constants; a server with standard_conforming_strings off reads 'a\',
// $$' as one string and runs the labelled read after it as a statement
// of its own.
const smuggling = `SELECT 'a\', $$'; SELECT ssn FROM customers WHERE id = 1; -- $$`

// TestAttackSettingsThroughPgSettings: PostgreSQL's pg_settings view has
// an UPDATE rule that calls set_config, so an UPDATE of it changes any
// setting of the session, as SET does. The gateway refuses SET
// standard_conforming_strings and SET client_encoding whatever the
// proofs; an UPDATE of pg_settings is refused the same way, in every
// spelling and through both protocols, or a user with the right to
// write turns standard_conforming_strings off and smuggles every later
// statement past the classifier: a labelled read without the MFA it
// needs, a DROP without the elevation it needs.
func TestAttackSettingsThroughPgSettings(t *testing.T) {
	r := newRig(t, func(d *Database) {
		d.Contexts = map[string]string{"label:pii": "c7"} // writes flow; pii needs MFA
		d.DestructiveNeedsElevation = "dba"
	})
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	ctx := context.Background()
	for _, sql := range []string{
		"UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
		"UPDATE pg_catalog.pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
		`UPDATE "pg_settings" SET setting = 'off' WHERE name = 'standard_conforming_strings'`,
		"UPDATE PG_CATALOG.PG_SETTINGS s SET setting = 'off' WHERE s.name = 'standard_conforming_strings'",
		"UPDATE ONLY pg_settings SET setting = 'off' WHERE name = lower('STANDARD_CONFORMING_STRINGS')",
		"EXPLAIN ANALYZE UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
		"UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'",
		"UPDATE pg_settings SET setting = 'evil, pg_catalog' WHERE name = 'search_path'",
		"UPDATE pg_settings SET setting = current_user WHERE name = 'role'",
		"CREATE TEMP VIEW s AS SELECT * FROM pg_settings",
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			_, err := conn.Exec(ctx, sql, mode)
			wantState(t, err, "42501")
		}
	}
	for name, want := range map[string]string{"standard_conforming_strings": "on", "client_encoding": "UTF8"} {
		var got string
		if err := conn.QueryRow(ctx, "SHOW "+name).Scan(&got); err != nil || got != want {
			t.Fatalf("%s is %q (%v), want %q: it was changed past the gateway", name, got, err, want)
		}
	}
	// Had the setting changed, this would return the labelled column.
	if res, err := conn.PgConn().Exec(ctx, smuggling).ReadAll(); ssnIn(res) != "" {
		t.Fatalf("a labelled column was read past the classifier (%v)", err)
	}
	if _, err := conn.Exec(ctx, `SELECT 'a\', $$'; DROP TABLE orders; -- $$`, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Logf("the smuggling string without the setting: %v", err)
	}
	var n int
	if err := r.direct.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("orders was dropped past the classifier (%d, %v)", n, err)
	}
}

// TestAttackSingleUseApprovalOfUnknownStatement: with single_use, one
// approval runs one statement. A DO block (unknown: the user sees "DO"
// and approves it once) may change settings through dynamic SQL that
// make later statements mean something other than what the classifier
// reads:
//   - search_path, so that lower() is the attacker's function reading a
//     labelled column: after the DO block an unqualified function is
//     unknown, so the next statement waits for its own approval, and a
//     denial keeps the column unread;
//   - standard_conforming_strings, so that the smuggling string runs a
//     labelled read: the server reports the change and the session ends
//     before anything else runs.
func TestAttackSingleUseApprovalOfUnknownStatement(t *testing.T) {
	tests := []struct {
		name, do, next string
		ended          bool
	}{
		{name: "search-path", do: "DO $$BEGIN PERFORM set_config('search_path', 'evil, pg_catalog', false); END$$", next: "SELECT lower('x')"},
		{name: "lexing", do: "DO $$BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END$$", next: smuggling, ended: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, f := newHoldRig(t, func(d *Database) { d.SingleUse = true })
			r.mustDirect(`CREATE SCHEMA evil;
				CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$SELECT ssn FROM public.customers WHERE id = 1$$`)
			ctx := context.Background()
			conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
			done := make(chan error, 1)
			go func() {
				_, err := conn.Exec(ctx, tt.do, pgx.QueryExecModeSimpleProtocol)
				done <- err
			}()
			ask := f.next(t)
			f.answer(ask.handle, access.HoldAnswer{State: access.HoldApproved, Proofs: r.mfaNow()})
			err := <-done
			if tt.ended {
				if pe := wantState(t, err, "42501"); pe.Severity != "FATAL" {
					t.Fatalf("the DO block that changed how text is read: %s %q, want the session ended", pe.Severity, pe.Message)
				}
			} else if err != nil {
				t.Fatalf("approved DO block: %v", err)
			}
			res := execAsync(ctx, conn, tt.next)
			select {
			case q := <-res:
				if q.ssn != "" || q.err == nil {
					t.Fatalf("%s ran without an approval of its own (read %q, %v)", tt.next, q.ssn, q.err)
				}
				if !tt.ended {
					t.Fatalf("%s was refused (%v), want it held for its own approval", tt.next, q.err)
				}
				return
			case held := <-f.held:
				if tt.ended {
					t.Fatal("the session went on after the server changed how it reads text")
				}
				if held.h.Statement.Class != "unknown" {
					t.Errorf("held as %q, want unknown", held.h.Statement.Class)
				}
				f.answer(held.handle, access.HoldAnswer{State: access.HoldDenied, Why: "denied"})
			case <-time.After(15 * time.Second):
				t.Fatal("the next statement neither ran nor waited")
			}
			q := <-res
			if q.ssn != "" || sqlState(q.err) != "28000" {
				t.Fatalf("denied %s: read %q, error %v; want 28000 and nothing read", tt.next, q.ssn, q.err)
			}
		})
	}
}

// TestAttackSettingsChangedOutOfSight: code the classifier cannot see (a
// trigger made earlier, here by the database's owner) turns
// standard_conforming_strings off under an innocent INSERT. The server
// reports the change, and the gateway ends the session before the
// client gets the INSERT's answer, so no string it sends after is read
// by the server differently from the classifier.
func TestAttackSettingsChangedOutOfSight(t *testing.T) {
	r := newRig(t)
	r.mustDirect(`CREATE FUNCTION flip() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); RETURN NEW; END$$;
		CREATE TRIGGER flip AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION flip()`)
	ctx := context.Background()
	tok := r.token("u-alice", "bank", "password", "totp")
	conn := r.mustConnect("alice", tok)
	_, err := conn.Exec(ctx, "INSERT INTO orders VALUES (1, 1)")
	pe := wantState(t, err, "42501")
	if pe.Severity != "FATAL" || !strings.Contains(pe.Message, "standard_conforming_strings") {
		t.Fatalf("the INSERT that changed the setting: %s %q, want FATAL naming the setting", pe.Severity, pe.Message)
	}
	if _, err := conn.PgConn().Exec(ctx, smuggling).ReadAll(); err == nil {
		t.Fatal("the session went on after the server changed how it reads text")
	}
	other := r.mustConnect("alice", tok)
	var scs string
	if err := other.QueryRow(ctx, "SHOW standard_conforming_strings").Scan(&scs); err != nil || scs != "on" {
		t.Fatalf("a new session: standard_conforming_strings %q (%v), want on", scs, err)
	}
}

// TestAttackSearchPathForNextSessions: "ALTER ROLE CURRENT_USER SET
// search_path = evil, pg_catalog" (or ALTER DATABASE), approved once, is
// applied to every later session when it starts, out of the sight of
// those sessions' classifiers: lower() is then the attacker's function,
// reading a labelled column under a statement judged a plain read. A
// session that starts with pg_catalog after another schema judges
// unqualified functions unknown; a qualified one stays a read.
func TestAttackSearchPathForNextSessions(t *testing.T) {
	r := newRig(t)
	r.mustDirect(`CREATE SCHEMA evil;
		CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$SELECT ssn FROM public.customers WHERE id = 1$$;
		ALTER DATABASE ` + r.dbname + ` SET search_path = evil, pg_catalog, public`)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	var got string
	err := conn.QueryRow(ctx, "SELECT lower('X')").Scan(&got)
	if got == "111-11-1111" {
		t.Fatal("the attacker's lower() read a labelled column as a plain read")
	}
	wantState(t, err, "28000")
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.lower('X')").Scan(&got); err != nil || got != "x" {
		t.Fatalf("a qualified built-in: %q %v, want x", got, err)
	}
}

// TestAttackSettingsChangedWhilePlanning: a Bind plans its statement, and
// planning evaluates an IMMUTABLE function with constant arguments,
// which may run set_config (a function made earlier, here by the
// database's owner). A Bind is not judged, and its statement need never
// be executed: the Bind of an unknown statement counts as a statement
// that ran, so lower() after it is judged unknown, not the attacker's
// lower() reading a labelled column as a plain read.
func TestAttackSettingsChangedWhilePlanning(t *testing.T) {
	r := newRig(t)
	r.mustDirect(`CREATE SCHEMA evil;
		CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$SELECT ssn FROM public.customers WHERE id = 1$$;
		CREATE FUNCTION public.shadow() RETURNS int LANGUAGE plpgsql IMMUTABLE AS
			$$BEGIN PERFORM set_config('search_path', 'evil, pg_catalog, public', false); RETURN 1; END$$`)
	s := r.raw(t, r.token("u-alice", "bank", "password"))
	s.send(&pgproto3.Parse{Query: "SELECT public.shadow()"}, &pgproto3.Bind{}, &pgproto3.Sync{})
	s.cycle()
	s.send(&pgproto3.Query{String: "SELECT lower('X')"})
	var leaked bool
	errs := s.until(func(m pgproto3.BackendMessage) bool {
		if d, ok := m.(*pgproto3.DataRow); ok && len(d.Values) == 1 && string(d.Values[0]) == "111-11-1111" {
			leaked = true
		}
		_, ok := m.(*pgproto3.ReadyForQuery)
		return ok
	})
	if leaked || len(errs) != 1 || errs[0].Code != "28000" {
		t.Fatalf("lower() after a Bind that changed search_path: labelled value read %v, errors %v; want one 28000", leaked, errs)
	}
}
