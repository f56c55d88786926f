//go:build cgo

package dbgate

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/reason"
)

// fakeStepUps holds statements as the OpenID Provider does, and lets the
// test answer each as the user would in the browser.
type fakeStepUps struct {
	held chan heldAsk

	mu       sync.Mutex // guards the fields below
	n        int
	answers  map[string]access.HoldAnswer
	released []string
}

type heldAsk struct {
	handle string
	h      access.HeldStatement
}

func newFakeStepUps() *fakeStepUps {
	return &fakeStepUps{held: make(chan heldAsk, 16), answers: map[string]access.HoldAnswer{}}
}

func (f *fakeStepUps) HoldStatement(_ context.Context, h access.HeldStatement, lifetime time.Duration) (access.HoldTicket, error) {
	f.mu.Lock()
	f.n++
	handle := fmt.Sprint("held-", f.n)
	f.answers[handle] = access.HoldAnswer{State: access.HoldPending}
	f.mu.Unlock()
	f.held <- heldAsk{handle: handle, h: h}
	return access.HoldTicket{Handle: handle, UserCode: "BCDF-GHJK", Link: "https://sso.example.test/device?user_code=BCDF-GHJK",
		Expires: time.Now().Add(lifetime)}, nil
}

// HeldAnswer hands an approval over once, as the provider does.
func (f *fakeStepUps) HeldAnswer(_ context.Context, handle string) (access.HoldAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.answers[handle]
	if !ok {
		return access.HoldAnswer{State: access.HoldGone}, nil
	}
	if a.State == access.HoldApproved {
		f.answers[handle] = access.HoldAnswer{State: access.HoldGone}
	}
	return a, nil
}

func (f *fakeStepUps) ReleaseHeld(_ context.Context, t access.HoldTicket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.answers, t.Handle)
	f.released = append(f.released, t.Handle)
}

func (f *fakeStepUps) answer(handle string, a access.HoldAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[handle] = a
}

// next waits for the next held statement.
func (f *fakeStepUps) next(t *testing.T) heldAsk {
	t.Helper()
	select {
	case a := <-f.held:
		return a
	case <-time.After(15 * time.Second):
		t.Fatal("no statement was held")
	}
	return heldAsk{}
}

func (f *fakeStepUps) asked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *fakeStepUps) releasedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.released)
}

func newHoldRig(t *testing.T, edit ...func(*Database)) (*rig, *fakeStepUps) {
	t.Helper()
	f := newFakeStepUps()
	r := newRigWith(t, func(d *Deps) { d.StepUps = f }, edit...)
	return r, f
}

// totpNow is a TOTP proof made at the gateway's clock now.
func (r *rig) totpNow() []oauth.Proof {
	return []oauth.Proof{{Method: "totp", Time: time.Unix(0, r.now.Load()).Unix(), AMR: []string{"otp"}}}
}

// mfaNow is a password and a TOTP proof made at the gateway's clock now:
// what a single-use MFA step-up needs, since earlier proofs do not count.
func (r *rig) mfaNow() []oauth.Proof {
	now := time.Unix(0, r.now.Load()).Unix()
	return []oauth.Proof{{Method: "password", Time: now, AMR: []string{"pwd"}}, {Method: "totp", Time: now, AMR: []string{"otp"}}}
}

// connectNotices connects like mustConnect and passes the notices the
// client gets to the returned channel.
func (r *rig) connectNotices(t *testing.T, token string) (*pgx.Conn, <-chan *pgconn.Notice) {
	t.Helper()
	cfg, err := pgx.ParseConfig(r.dsn("alice", token, "disable"))
	if err != nil {
		t.Fatal(err)
	}
	notices := make(chan *pgconn.Notice, 16)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n }
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, notices
}

type queryResult struct {
	ssn string
	err error
}

// execAsync runs sql on conn in the simple protocol, in the background,
// and sends what came back: the error, and the labelled SSN if a row
// held it.
func execAsync(ctx context.Context, conn *pgx.Conn, sql string) <-chan queryResult {
	res := make(chan queryResult, 1)
	go func() {
		rs, err := conn.PgConn().Exec(ctx, sql).ReadAll()
		res <- queryResult{ssn: ssnIn(rs), err: err}
	}()
	return res
}

// ssnIn is the labelled SSN when a row of rs holds it, and "" when none
// does.
func ssnIn(rs []*pgconn.Result) string {
	for _, rr := range rs {
		for _, row := range rr.Rows {
			for _, v := range row {
				if string(v) == "111-11-1111" {
					return string(v)
				}
			}
		}
	}
	return ""
}

// TestHeldStatementRunsOnApproval: a labelled read that needs MFA is
// held, not refused: the client gets a NOTICE with the link and the
// code at once and waits; the moment the user approves with a TOTP
// proof, the statement runs and its rows come back, through the simple
// and the extended protocol. The approval's proofs stay with the
// session, so the next such read flows without another wait.
func TestHeldStatementRunsOnApproval(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			r, f := newHoldRig(t)
			conn, notices := r.connectNotices(t, r.token("u-alice", "bank", "password"))
			res := make(chan queryResult, 1)
			go func() {
				var q queryResult
				q.err = conn.QueryRow(context.Background(), "SELECT ssn FROM customers WHERE id = 1", mode).Scan(&q.ssn)
				res <- q
			}()
			ask := f.next(t)
			if ask.h.UserID != "u-alice" || ask.h.Database != "bank" || strings.Join(ask.h.Contexts, ",") != "c7" ||
				strings.Join(ask.h.Statement.Labels, ",") != "pii" || ask.h.Statement.Class != "read" || !ask.h.ProofsAfter.IsZero() {
				t.Errorf("held %+v", ask.h)
			}
			var n *pgconn.Notice
			select {
			case n = <-notices:
			case <-time.After(10 * time.Second):
				t.Fatal("no notice while the statement waits")
			}
			if !strings.Contains(n.Message, "https://sso.example.test/device?user_code=BCDF-GHJK") || !strings.Contains(n.Detail, "BCDF-GHJK") {
				t.Errorf("notice %q / %q lacks the link or the code", n.Message, n.Detail)
			}
			select {
			case q := <-res:
				t.Fatalf("answered before the approval: %+v", q)
			default:
			}
			f.answer(ask.handle, access.HoldAnswer{State: access.HoldApproved, Proofs: r.totpNow()})
			q := <-res
			if q.err != nil || q.ssn != "111-11-1111" {
				t.Fatalf("after approval: %q, %v", q.ssn, q.err)
			}
			var ssn string
			if err := conn.QueryRow(context.Background(), "SELECT ssn FROM customers WHERE id = 2", mode).Scan(&ssn); err != nil || ssn != "222-22-2222" {
				t.Fatalf("second read: %q, %v", ssn, err)
			}
			if f.asked() != 1 || f.releasedCount() != 1 {
				t.Errorf("held %d statements, released %d; want 1 and 1", f.asked(), f.releasedCount())
			}
			var decisions []string
			for _, e := range r.entries() {
				decisions = append(decisions, e.Decision)
			}
			if got := strings.Join(decisions, ","); got != "challenge,allow,allow" {
				t.Errorf("sign-in log decisions %s, want challenge,allow,allow", got)
			}
		})
	}
}

// TestHeldStatementRefusals: a held statement that is denied in the
// browser, whose wait runs out, or that its client cancels never runs;
// the error comes in its place with a clear SQLSTATE, and the
// transaction is left as after any error.
func TestHeldStatementRefusals(t *testing.T) {
	r, f := newHoldRig(t, func(d *Database) { d.StepUpWait = 2 * time.Second })
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))

	t.Run("fail/denied-in-a-transaction", func(t *testing.T) {
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { _, err := conn.Exec(ctx, "UPDATE customers SET name = 'X' WHERE id = 1"); errc <- err }()
		ask := f.next(t)
		f.answer(ask.handle, access.HoldAnswer{State: access.HoldDenied, Why: "you denied the statement in the browser"})
		pe := wantState(t, <-errc, "28000")
		if !strings.Contains(pe.Message, "denied") {
			t.Errorf("message %q", pe.Message)
		}
		_, err := conn.Exec(ctx, "SELECT 1")
		wantState(t, err, "25P02") // the transaction is aborted, as after any error
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fail/timed-out", func(t *testing.T) {
		_, err := conn.Exec(ctx, "UPDATE customers SET name = 'X' WHERE id = 1")
		f.next(t)
		pe := wantState(t, err, "28000")
		if !strings.Contains(pe.Message, "no proof came within 2s") {
			t.Errorf("message %q", pe.Message)
		}
	})
	t.Run("fail/cancelled", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { _, err := conn.Exec(ctx, "UPDATE customers SET name = 'X' WHERE id = 1"); errc <- err }()
		f.next(t)
		if err := conn.PgConn().CancelRequest(ctx); err != nil {
			t.Fatal(err)
		}
		wantState(t, <-errc, "57014")
	})
	var name string
	if err := r.direct.QueryRow(ctx, "SELECT name FROM customers WHERE id = 1").Scan(&name); err != nil || name != "Ada" {
		t.Fatalf("name = %q, %v: a refused statement ran", name, err)
	}
	if f.releasedCount() != 3 {
		t.Errorf("released %d held statements, want 3", f.releasedCount())
	}
	var reasons []string
	for _, e := range r.entries() {
		if e.Decision != "challenge" || e.Reason != reason.ControlsNotSatisfied {
			reasons = append(reasons, string(e.Reason))
		}
	}
	if got := strings.Join(reasons, ","); got != "step-up-refused,step-up-timed-out,step-up-cancelled" {
		t.Errorf("final reasons %s", got)
	}
}

// TestAttackSingleUseProof: on a single-use database a proof is good for
// the one statement it was given for. A token proven with TOTP a minute
// ago does not run a labelled read; an approval runs exactly one
// statement, the next waits again; an approval whose proofs were made
// before the statement arrived is refused; and a portal executed twice
// needs a proof for each Execute.
func TestAttackSingleUseProof(t *testing.T) {
	r, f := newHoldRig(t, func(d *Database) { d.SingleUse = true })
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	read := func() <-chan queryResult {
		res := make(chan queryResult, 1)
		go func() {
			var q queryResult
			q.err = conn.QueryRow(ctx, "SELECT ssn FROM customers WHERE id = 1").Scan(&q.ssn)
			res <- q
		}()
		return res
	}
	res := read()
	ask := f.next(t)
	if ask.h.ProofsAfter.IsZero() {
		t.Error("a single-use hold must say from when proofs count")
	}
	f.answer(ask.handle, access.HoldAnswer{State: access.HoldApproved, Proofs: r.mfaNow()})
	if q := <-res; q.err != nil || q.ssn != "111-11-1111" {
		if q.err != nil {
			t.Fatalf("approved read: %v", q.err)
		}
		t.Fatalf("approved read: %+v", q)
	}
	res = read()
	ask = f.next(t) // the next statement waits again
	r.advance(5 * time.Second)
	before := time.Unix(0, r.now.Load()).Add(-time.Minute).Unix()
	stale := []oauth.Proof{{Method: "password", Time: before, AMR: []string{"pwd"}}, {Method: "totp", Time: before, AMR: []string{"otp"}}}
	f.answer(ask.handle, access.HoldAnswer{State: access.HoldApproved, Proofs: stale})
	q := <-res
	pe := wantState(t, q.err, "28000")
	if !strings.Contains(pe.Message, "does not meet") {
		t.Errorf("stale proof: %q", pe.Message)
	}

	s := r.raw(t, r.token("u-alice", "bank", "password", "totp"))
	s.send(&pgproto3.Parse{Query: "SELECT ssn FROM customers"}, &pgproto3.Bind{}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Sync{})
	first := f.next(t)
	f.answer(first.handle, access.HoldAnswer{State: access.HoldApproved, Proofs: r.mfaNow()})
	second := f.next(t)
	f.answer(second.handle, access.HoldAnswer{State: access.HoldDenied, Why: "denied"})
	var rows int
	errs := s.until(func(m pgproto3.BackendMessage) bool {
		if _, ok := m.(*pgproto3.DataRow); ok {
			rows++
		}
		_, ok := m.(*pgproto3.ReadyForQuery)
		return ok
	})
	if rows != 1 || len(errs) != 1 || errs[0].Code != "28000" {
		t.Fatalf("portal executed twice on one proof: %d rows, errors %v; want 1 row and one 28000", rows, errs)
	}
}

// TestAttackIdleSessionOutlivesRevocation: a session that sends nothing
// after its token is revoked is ended by the gateway within about a
// second (its token is checked again every second), with a FATAL error
// saying why.
func TestAttackIdleSessionOutlivesRevocation(t *testing.T) {
	r := newRig(t)
	tok := r.token("u-alice", "bank", "password")
	s := r.raw(t, tok)
	r.tokens.revoke(tok)
	revoked := time.Now()
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := s.fe.Receive()
	if err != nil {
		t.Fatalf("no FATAL before the connection ended: %v", err)
	}
	e, ok := m.(*pgproto3.ErrorResponse)
	if !ok || e.Severity != "FATAL" || e.Code != "28000" || !strings.Contains(e.Message, "no longer valid") {
		t.Fatalf("got %#v, want a FATAL 28000", m)
	}
	if _, err := s.fe.Receive(); err == nil {
		t.Fatal("the connection stayed open after the FATAL")
	}
	t.Logf("session ended %s after the revocation", time.Since(revoked).Round(time.Millisecond))
}

// TestOutcomeInTheLog: a logged statement's entry gets what happened
// once it ran: the rows it changed, the time the database took, or the
// SQLSTATE that stopped it. Pipelined Executes each get their own
// answer, however many routine statements run between them, and one
// skipped after an earlier error says so.
func TestOutcomeInTheLog(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	if _, err := conn.Exec(ctx, "UPDATE customers SET name = name WHERE id IN (1, 2)", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("UPDATE customers SET name = name WHERE id = 1")
	b.Queue("SELECT name FROM customers WHERE id = 2")
	b.Queue("DELETE FROM orders WHERE id = 999")
	b.Queue("UPDATE customers SET name = (1/0)::text WHERE id = 1")
	b.Queue("UPDATE customers SET name = name WHERE id = 2")
	_ = conn.SendBatch(ctx, b).Close()

	got := map[string]string{}
	var order []string
	for _, e := range r.amended(5) {
		st := e.Statement
		key := fmt.Sprintf("%s/%v/%d/%s", st.Command, st.Ran, st.Rows, st.SQLState)
		order = append(order, key)
		got[e.ID] = key
		if st.Ran && st.DurationMicros <= 0 {
			t.Errorf("%s: no duration", key)
		}
	}
	want := "UPDATE/true/2/,UPDATE/true/1/,DELETE/true/0/,UPDATE/false/0/22012,UPDATE/false/0/skipped"
	if strings.Join(order, ",") != want {
		t.Fatalf("outcomes %v, want %s", order, want)
	}
	for _, e := range r.entries() {
		if e.Statement != nil && e.Statement.Class == "write" {
			if _, ok := got[e.ID]; !ok {
				t.Errorf("entry %s (%s) got no outcome", e.ID, e.Statement.Command)
			}
		}
	}
}

// TestHeldStatementClientHangsUp: a client that goes away while its
// statement waits for a step-up (psql killed, a laptop lid closed on a
// connection that then resets) ends the wait at once, not when the
// database's wait runs out: the hold is released so the browser's link
// dies with it, the log says it was cancelled, and an approval that
// comes afterwards runs nothing.
func TestHeldStatementClientHangsUp(t *testing.T) {
	r, f := newHoldRig(t, func(d *Database) { d.StepUpWait = 10 * time.Minute })
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		hangUp func(net.Conn)
	}{
		{"fail/closed", func(c net.Conn) { c.Close() }},
		{"fail/reset", func(c net.Conn) {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // closes with a reset, not a goodbye
			}
			c.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.releasedCount()
			// The connection is taken from pgx so that nothing but the
			// hang-up (no cancel request of the driver's) reaches the
			// gateway.
			hc, err := r.mustConnect("alice", r.token("u-alice", "bank", "password")).PgConn().Hijack()
			if err != nil {
				t.Fatal(err)
			}
			hc.Frontend.Send(&pgproto3.Query{String: "UPDATE customers SET name = 'X' WHERE id = 1"})
			if err := hc.Frontend.Flush(); err != nil {
				t.Fatal(err)
			}
			ask := f.next(t)
			tc.hangUp(hc.Conn)
			// Within a fraction of the ten minutes' wait; the bound only
			// keeps a broken gateway from hanging the test.
			deadline := time.Now().Add(30 * time.Second)
			for f.releasedCount() == before {
				if time.Now().After(deadline) {
					t.Fatal("the held statement of a client that hung up is still held")
				}
				time.Sleep(20 * time.Millisecond)
			}
			f.answer(ask.handle, access.HoldAnswer{State: access.HoldApproved, Proofs: r.totpNow()})
		})
	}
	var name string
	if err := r.direct.QueryRow(ctx, "SELECT name FROM customers WHERE id = 1").Scan(&name); err != nil || name != "Ada" {
		t.Fatalf("name = %q, %v: the statement of a client that hung up ran", name, err)
	}
	cancelled := 0
	for _, e := range r.entries() {
		if e.Reason == reason.StepUpCancelled {
			cancelled++
		}
	}
	if cancelled != 2 {
		t.Errorf("%d waits logged as cancelled, want 2", cancelled)
	}
}
