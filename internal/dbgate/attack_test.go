//go:build cgo

package dbgate

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestAttackSignIn: every token that is not this database's, this
// user's, current and unrevoked is refused at sign-in with 28P01, and no
// upstream session is opened for it.
func TestAttackSignIn(t *testing.T) {
	r := newRig(t)
	expired := r.token("u-alice", "bank", "password")
	r.advance(2 * time.Hour)
	revoked := r.token("u-alice", "bank", "password")
	r.tokens.revoke(revoked)
	tests := []struct {
		name, user, token, want string
	}{
		{"fail/other-audience", "alice", r.token("u-alice", "payroll", "password"), "not issued for the database bank"},
		{"fail/expired", "alice", expired, "invalid, expired or revoked"},
		{"fail/revoked", "alice", revoked, "invalid, expired or revoked"},
		{"fail/not-a-token", "alice", "hunter2", "invalid, expired or revoked"},
		{"fail/another-users-token", "bob", r.token("u-alice", "bank", "password"), "another user"},
		{"fail/unknown-subject", "alice", r.token("u-mallory", "bank", "password"), "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.connect(tt.user, tt.token)
			pe := wantState(t, err, "28P01")
			if !strings.Contains(pe.Message, tt.want) {
				t.Errorf("message %q, want it to say %q", pe.Message, tt.want)
			}
		})
	}
	t.Run("fail/other-database", func(t *testing.T) {
		dsn := strings.Replace(r.dsn("alice", r.token("u-alice", "bank", "password"), "disable"), "dbname=bank", "dbname=postgres", 1)
		_, err := pgx.Connect(context.Background(), dsn)
		wantState(t, err, "3D000")
	})
}

// TestAttackTokenRevokedMidSession: a session whose token is revoked or
// expires runs no further statement: the token is checked again at most
// a second after its last check.
func TestAttackTokenRevokedMidSession(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	tok := r.token("u-alice", "bank", "password")
	conn := r.mustConnect("alice", tok)
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	r.tokens.revoke(tok)
	r.advance(1100 * time.Millisecond)
	_, err := conn.Exec(ctx, "SELECT 1")
	pe := wantState(t, err, "28000")
	if !strings.Contains(pe.Message, "no longer valid") {
		t.Errorf("message %q", pe.Message)
	}

	conn2 := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	r.advance(time.Hour) // past the token's expiry
	_, err = conn2.Exec(ctx, "SELECT 1", pgx.QueryExecModeExec)
	pe = wantState(t, err, "28000")
	if !strings.Contains(pe.Message, "expired") {
		t.Errorf("message %q", pe.Message)
	}
}

// TestAttackMultiStatementHidesDrop: a DROP after a harmless SELECT in
// one string is judged as DDL: refused, and nothing of the string runs.
func TestAttackMultiStatementHidesDrop(t *testing.T) {
	r := newRig(t)
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	for _, sql := range []string{
		"SELECT 1; DROP TABLE customers",
		"SELECT 1 /* ; */; DROP TABLE customers",
		"SELECT $$ harmless $$; DROP TABLE customers",
		"WITH d AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM d",
		"DO $$ BEGIN EXECUTE 'DROP TABLE customers'; END $$",
		"SET ROLE postgres",
		"SET SESSION AUTHORIZATION postgres",
		"SELECT set_config('role', 'postgres', false)",
	} {
		_, err := conn.Exec(context.Background(), sql, pgx.QueryExecModeSimpleProtocol)
		if st := sqlState(err); st != "28000" && st != "42501" {
			t.Errorf("%s: error %v, want it refused (SQLSTATE 28000 or 42501)", sql, err)
		}
	}
	if n := r.countRows("customers"); n != 2 {
		t.Errorf("customers has %d rows, want 2: a hidden statement ran", n)
	}
}

// TestAttackCopyProgram: COPY ... TO PROGRAM would run a shell command as
// the database server's user; the gateway refuses it whatever the proofs.
func TestAttackCopyProgram(t *testing.T) {
	r := newRig(t)
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	marker := filepath.Join(os.TempDir(), "stepgate-copy-program-"+r.dbname)
	for _, sql := range []string{
		"COPY customers TO PROGRAM 'touch " + marker + "'",
		"COPY (SELECT 1) TO PROGRAM 'touch " + marker + "'",
		"COPY customers TO '" + marker + "'",
	} {
		_, err := conn.Exec(context.Background(), sql)
		wantState(t, err, "42501")
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Fatal("COPY TO PROGRAM ran on the server")
	}
}

// TestAttackCancelKeys: a cancel request with another session's key,
// or a forged one, cancels nothing; the session's own key cancels its
// statement.
func TestAttackCancelKeys(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	victim := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	attacker := r.mustConnect("bob", r.token("u-bob", "bank", "password"))
	sendCancel := func(pid uint32, secret []byte) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg, _ := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.Read(make([]byte, 1))
	}
	done := make(chan error, 1)
	go func() {
		_, err := victim.Exec(ctx, "SELECT pg_sleep(1.5)")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	sendCancel(attacker.PgConn().PID(), attacker.PgConn().SecretKey())        // the attacker's own, valid key
	sendCancel(victim.PgConn().PID(), make([]byte, 4))                        // the victim's pid, a guessed secret
	sendCancel(victim.PgConn().PID(), append(victim.PgConn().SecretKey(), 0)) // a longer secret
	if err := <-done; err != nil {
		t.Fatalf("the victim's statement was cancelled by another key: %v", err)
	}
	go func() {
		_, err := victim.Exec(ctx, "SELECT pg_sleep(10)")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	sendCancel(victim.PgConn().PID(), victim.PgConn().SecretKey())
	select {
	case err := <-done:
		wantState(t, err, "57014")
	case <-time.After(8 * time.Second):
		t.Fatal("the session's own key did not cancel its statement")
	}
}

// rawSession is a client speaking the protocol message by message,
// to send what a driver never would.
type rawSession struct {
	t    *testing.T
	fe   *pgproto3.Frontend
	conn net.Conn
}

func (r *rig) raw(t *testing.T, token string) *rawSession {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	s := &rawSession{t: t, fe: pgproto3.NewFrontend(c, c), conn: c}
	s.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "alice", "database": "bank"}})
	if _, ok := s.recv().(*pgproto3.AuthenticationCleartextPassword); !ok {
		t.Fatal("no password request")
	}
	s.send(&pgproto3.PasswordMessage{Password: token})
	s.until(func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.ReadyForQuery); return ok })
	return s
}

func (s *rawSession) send(msgs ...pgproto3.FrontendMessage) {
	s.t.Helper()
	for _, m := range msgs {
		s.fe.Send(m)
	}
	if err := s.fe.Flush(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *rawSession) recv() pgproto3.BackendMessage {
	s.t.Helper()
	m, err := s.fe.Receive()
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// until reads messages up to the one stop accepts, returning the error
// responses seen.
func (s *rawSession) until(stop func(pgproto3.BackendMessage) bool) []pgproto3.ErrorResponse {
	s.t.Helper()
	var errs []pgproto3.ErrorResponse
	for {
		m := s.recv()
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			errs = append(errs, *e)
		}
		if stop(m) {
			return errs
		}
	}
}

// cycle reads to the next ReadyForQuery and returns the errors.
func (s *rawSession) cycle() []pgproto3.ErrorResponse {
	return s.until(func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.ReadyForQuery); return ok })
}

// TestAttackPreparedStatementRedescribed: the unnamed statement is
// parsed again as a labelled read after an allowed Execute: the new
// Execute is judged on the new text and refused.
func TestAttackPreparedStatementRedescribed(t *testing.T) {
	r := newRig(t)
	s := r.raw(t, r.token("u-alice", "bank", "password"))
	s.send(&pgproto3.Parse{Query: "SELECT name FROM customers WHERE id = 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if errs := s.cycle(); len(errs) != 0 {
		t.Fatalf("allowed read: %v", errs)
	}
	s.send(&pgproto3.Parse{Query: "SELECT ssn FROM customers WHERE id = 1"}, &pgproto3.Describe{ObjectType: 'S'},
		&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	errs := s.cycle()
	if len(errs) != 1 || errs[0].Code != "28000" {
		t.Fatalf("re-described statement: errors %v, want one 28000", errs)
	}
	// A portal executed again is judged again.
	s.send(&pgproto3.Execute{}, &pgproto3.Sync{})
	if errs := s.cycle(); len(errs) != 1 || errs[0].Code != "28000" {
		t.Fatalf("second Execute of the portal: %v, want 28000", errs)
	}
}

// TestAttackSkippedParse: after an error the server skips messages until
// Sync, so a Parse the client sent after it never replaced the statement
// of that name; a gateway that believed the new text would judge a
// DELETE as a SELECT. Statements whose Parse or Bind came in a failed
// cycle are judged unknown, and refused here.
func TestAttackSkippedParse(t *testing.T) {
	r := newRig(t, func(d *Database) { d.Contexts = map[string]string{"class:unknown": "c7"} })
	s := r.raw(t, r.token("u-alice", "bank", "password"))
	// The unnamed statement is a DELETE: parsed, never executed.
	s.send(&pgproto3.Parse{Query: "DELETE FROM customers WHERE id = 1"}, &pgproto3.Sync{})
	s.cycle()
	// An error first, so the server skips the Parse of a harmless text.
	s.send(&pgproto3.Execute{Portal: "no-such-portal"}, &pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Sync{})
	if errs := s.cycle(); len(errs) != 1 {
		t.Fatalf("errors %v, want the missing portal's", errs)
	}
	s.send(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	errs := s.cycle()
	if len(errs) != 1 || errs[0].Code != "28000" {
		t.Errorf("errors %v, want the Execute refused with 28000", errs)
	}
	if n := r.countRows("customers"); n != 2 {
		t.Fatalf("customers has %d rows: the DELETE ran as a SELECT", n)
	}
}

// TestAttackFunctionCall: the fast-path function call runs any function
// by OID, past the classifier: refused.
func TestAttackFunctionCall(t *testing.T) {
	r := newRig(t)
	s := r.raw(t, r.token("u-alice", "bank", "password", "totp"))
	s.send(&pgproto3.FunctionCall{Function: 2171}) // pg_cancel_backend
	errs := s.cycle()
	if len(errs) != 1 || errs[0].Code != "42501" {
		t.Errorf("errors %v, want 42501", errs)
	}
}

// TestAttackStartupOptions: settings a client asks for at startup
// ("options" with -c role=..., search_path, an encoding the classifier
// does not read) are not applied upstream.
func TestAttackStartupOptions(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	tok := r.token("u-alice", "bank", "password")
	cfg, err := pgx.ParseConfig(r.dsn("alice", tok, "disable") + " options='-c search_path=evil -c statement_timeout=1'")
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["client_encoding"] = "SJIS"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var path, enc string
	if err := conn.QueryRow(ctx, "SELECT current_setting('search_path'), current_setting('client_encoding')", pgx.QueryExecModeSimpleProtocol).Scan(&path, &enc); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(path, "evil") || enc != "UTF8" {
		t.Errorf("search_path %q, client_encoding %q: the client's startup settings reached the upstream", path, enc)
	}
	_, err = conn.Exec(ctx, "SET client_encoding = 'SJIS'", pgx.QueryExecModeSimpleProtocol)
	wantState(t, err, "42501")
}

// TestAttackPlaintextToken: without TLS, off loopback exceptions, the
// gateway refuses before it asks for the token, so a client never sends
// it in the clear; with TLS the same token signs in.
func TestAttackPlaintextToken(t *testing.T) {
	r := newRig(t, func(d *Database) { d.InsecureLoopback = false })
	tok := r.token("u-alice", "bank", "password")
	_, err := pgx.Connect(context.Background(), r.dsn("alice", tok, "disable"))
	pe := wantState(t, err, "28000")
	if !strings.Contains(pe.Message, "TLS") {
		t.Errorf("message %q should ask for TLS", pe.Message)
	}
	// A raw client that sends its password unasked is not read either:
	// the refusal comes first and the connection ends.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "alice"}})
	fe.Send(&pgproto3.PasswordMessage{Password: tok})
	fe.Flush()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := fe.Receive()
	if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != "28000" {
		t.Fatalf("got %T %v", m, err)
	}

	cfg, err := pgx.ParseConfig(r.dsn("alice", tok, "verify-full") + " sslrootcert=" + r.certPEM)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	defer conn.Close(context.Background())
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Error("the connection is not TLS")
	}
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

// TestAttackConnectionBound: past max_upstream_connections a client is
// refused (53300), not queued without bound.
func TestAttackConnectionBound(t *testing.T) {
	r := newRig(t, func(d *Database) { d.MaxUpstream = 2 })
	tok := r.token("u-alice", "bank", "password")
	r.mustConnect("alice", tok)
	r.mustConnect("alice", tok)
	_, err := r.connect("alice", tok)
	wantState(t, err, "53300")
}

// TestAttackBytesInjectedBeforeTLS: bytes sent after SSLRequest but
// before the TLS handshake (a man in the middle's plaintext startup, the
// CVE-2021-23214 pattern) are never read as if they came inside TLS: the
// handshake fails and the connection ends.
func TestAttackBytesInjectedBeforeTLS(t *testing.T) {
	r := newRig(t, func(d *Database) { d.InsecureLoopback = false })
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "alice", "database": "bank"}}).Encode(nil)
	pw, _ := (&pgproto3.PasswordMessage{Password: r.token("u-alice", "bank", "password")}).Encode(nil)
	if _, err := c.Write(append(append(ssl, startup...), pw...)); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil || b[0] != 'S' {
		t.Fatalf("answer to SSLRequest: %q, %v", b, err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test only checks that the handshake fails
	if err := tc.Handshake(); err == nil {
		// Had the handshake passed, the injected startup must not have
		// been taken: the server would now ask for a password or be done.
		tc.SetReadDeadline(time.Now().Add(time.Second))
		if n, _ := tc.Read(make([]byte, 64)); n > 0 {
			t.Fatal("the server answered plaintext sent before the TLS handshake as if it came inside TLS")
		}
	}
}

// TestPolicyConditionsOnStatements: a policy targeting the database with
// a CEL condition on the statement's facts blocks DDL and a table, for
// every token, while other statements flow.
func TestPolicyConditionsOnStatements(t *testing.T) {
	r := newRig(t, func(d *Database) { d.Contexts = nil })
	r.usePolicies(t, testPolicies+`
  - name: no-ddl-on-bank
    state: enabled
    users:
      include: {users: [all]}
    target:
      apps: {include: [bank]}
    conditions:
      expression: 'statement.class in ["ddl", "privilege", "unknown"] || "orders" in statement.tables'
    grant:
      block: true
`)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	for _, sql := range []string{"DROP TABLE customers", "SELECT * FROM orders", "CREATE TABLE x (id int)"} {
		_, err := conn.Exec(ctx, sql)
		pe := wantState(t, err, "42501")
		if !strings.Contains(pe.Message, "no-ddl-on-bank") {
			t.Errorf("%s: %q should name the policy", sql, pe.Message)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n); err != nil || n != 2 {
		t.Fatalf("a read the condition does not match: %d, %v", n, err)
	}
}

// TestAttackStartupFlood: clients that connect and say nothing hold at
// most maxStartups slots; the next one is closed at once rather than
// held for the startup timeout, and signed-in sessions are unaffected.
func TestAttackStartupFlood(t *testing.T) {
	r := newRig(t)
	signedIn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	addr := fmt.Sprintf("127.0.0.1:%d", r.port)
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range maxStartups {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	time.Sleep(200 * time.Millisecond) // let the gateway accept them all
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || time.Since(start) > 4*time.Second {
		t.Fatalf("the connection past the bound was held: %v after %s", err, time.Since(start))
	}
	var one int
	if err := signedIn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("a signed-in session during the flood: %v", err)
	}
}
