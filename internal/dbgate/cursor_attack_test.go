//go:build cgo

package dbgate

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/access"
)

// TestAttackFetchOfProtocolPortal: a Bind makes a named portal without
// running it, and SQL's FETCH reads any portal by its name, protocol
// portals included. A labelled read bound under a name and fetched with
// FETCH (never Executed) is judged as the read it is: it needs its
// context, and without the proof nothing of it is returned.
func TestAttackFetchOfProtocolPortal(t *testing.T) {
	r := newRig(t)
	tok := r.token("u-alice", "bank", "password")
	rows := func(s *rawSession) (n int, errs []pgproto3.ErrorResponse) {
		errs = s.until(func(m pgproto3.BackendMessage) bool {
			if d, ok := m.(*pgproto3.DataRow); ok {
				for _, v := range d.Values {
					if string(v) == "111-11-1111" {
						n++
					}
				}
			}
			_, ok := m.(*pgproto3.ReadyForQuery)
			return ok
		})
		return n, errs
	}
	t.Run("same-pipeline", func(t *testing.T) {
		s := r.raw(t, tok)
		s.send(&pgproto3.Parse{Name: "s", Query: "SELECT ssn FROM customers"}, &pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s"},
			&pgproto3.Parse{Query: "FETCH ALL FROM p"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if n, errs := rows(s); n != 0 || len(errs) == 0 {
			t.Fatalf("FETCH of a bound labelled read: %d labelled values returned, errors %v", n, errs)
		}
	})
	t.Run("simple-query-in-transaction", func(t *testing.T) {
		s := r.raw(t, tok)
		s.send(&pgproto3.Query{String: "BEGIN"})
		s.cycle()
		s.send(&pgproto3.Parse{Name: "s", Query: "SELECT ssn FROM customers"}, &pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s"}, &pgproto3.Sync{})
		s.cycle()
		s.send(&pgproto3.Query{String: "FETCH ALL FROM p"})
		if n, errs := rows(s); n != 0 || len(errs) == 0 {
			t.Fatalf("FETCH of a bound labelled read: %d labelled values returned, errors %v", n, errs)
		}
	})
}

// TestAttackNamesReuseApproval: with single_use, an approval runs the one
// statement it was given for. A name made by an approved statement (a
// cursor, a prepared statement) must not carry it to later statements
// that run what the name holds:
//   - FETCH from a cursor over a labelled read reads the label: it waits
//     for its own approval;
//   - a DECLARE of the same name that the server refuses (the cursor
//     exists) leaves the old cursor in place: a FETCH after it is judged
//     unknown, not as the refused DECLARE's SELECT 1;
//   - "PREPARE p AS SELECT 1" parsed through the protocol and never
//     executed leaves p the DELETE approved before: EXECUTE p is judged
//     unknown, not as SELECT 1.
//
// Each later statement is held, denied, and runs nothing.
func TestAttackNamesReuseApproval(t *testing.T) {
	r, f := newHoldRig(t, func(d *Database) { d.SingleUse = true })
	r.mustDirect("INSERT INTO orders VALUES (1, 10), (2, 20)")
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	simple := pgx.QueryExecModeSimpleProtocol
	run := func(sql string) <-chan queryResult { return execAsync(ctx, conn, sql) }
	approved := func(sql string) {
		t.Helper()
		res := run(sql)
		ask := f.next(t)
		f.answer(ask.handle, access.HoldAnswer{State: access.HoldApproved, Proofs: r.mfaNow()})
		if q := <-res; q.err != nil {
			t.Fatalf("approved %s: %v", sql, q.err)
		}
	}
	heldAndDenied := func(sql string) {
		t.Helper()
		res := run(sql)
		select {
		case q := <-res:
			t.Fatalf("%s ran without an approval of its own (read %q, %v)", sql, q.ssn, q.err)
		case held := <-f.held:
			f.answer(held.handle, access.HoldAnswer{State: access.HoldDenied, Why: "denied"})
		case <-time.After(15 * time.Second):
			t.Fatalf("%s neither ran nor waited", sql)
		}
		if q := <-res; q.ssn != "" || sqlState(q.err) != "28000" {
			t.Fatalf("denied %s: read %q, error %v; want 28000 and nothing read", sql, q.ssn, q.err)
		}
	}

	approved("DECLARE c CURSOR WITH HOLD FOR SELECT ssn FROM customers")
	heldAndDenied("FETCH ALL FROM c")
	if _, err := conn.Exec(ctx, "DECLARE c CURSOR WITH HOLD FOR SELECT 1", simple); sqlState(err) != "42P03" {
		t.Fatalf("DECLARE of an existing cursor: %v, want 42P03 from the server", err)
	}
	heldAndDenied("FETCH ALL FROM c")
	heldAndDenied("MOVE ALL IN c")

	approved("PREPARE p AS DELETE FROM orders WHERE id > 0")
	if _, err := conn.Prepare(ctx, "rebind", "PREPARE p AS SELECT 1"); err != nil {
		t.Fatalf("parse of a PREPARE: %v", err)
	}
	heldAndDenied("EXECUTE p")
	if n := r.countRows("orders"); n != 2 {
		t.Fatalf("orders has %d rows, want 2: the approved DELETE ran again", n)
	}
}
