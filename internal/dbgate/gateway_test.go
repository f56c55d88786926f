//go:build cgo

package dbgate

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestReadsFlow: a routine read flows through the simple and the
// extended protocol, with and without a prepared statement.
func TestReadsFlow(t *testing.T) {
	r := newRig(t)
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		var name string
		if err := conn.QueryRow(ctx, "SELECT name FROM customers WHERE id = $1", mode, 2).Scan(&name); err != nil || name != "Bob" {
			t.Fatalf("mode %v: name = %q, %v", mode, name, err)
		}
	}
	if _, err := conn.Prepare(ctx, "by_id", "SELECT name FROM customers WHERE id = $1"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := conn.QueryRow(ctx, "by_id", 1).Scan(&name); err != nil || name != "Ada" {
		t.Fatalf("prepared: %q, %v", name, err)
	}
	// A routine read is not written to the sign-in log.
	if n := len(r.entries()); n != 0 {
		t.Errorf("%d sign-in log entries for routine reads, want 0", n)
	}
}

// TestLabelledReadNeedsItsContext: SELECT ssn hits the pii label, whose
// context asks for MFA: refused with 28000 naming the context for a
// password-only token, through both protocols, and run for a token
// proven with TOTP.
func TestLabelledReadNeedsItsContext(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	weak := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		var ssn string
		err := weak.QueryRow(ctx, "SELECT ssn FROM customers WHERE name = 'secret-name-42'", mode).Scan(&ssn)
		pe := wantState(t, err, "28000")
		if !strings.Contains(pe.Message, "c7") || !strings.Contains(pe.Message, "mfa") || !strings.Contains(pe.Hint, "acr_values=c7") {
			t.Errorf("mode %v: refusal %q (hint %q) should name the context, the missing proof and how to get a token that has it", mode, pe.Message, pe.Hint)
		}
	}
	// The session goes on after a refusal.
	var one int
	if err := weak.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after refusal: %v", err)
	}
	strong := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	var ssn string
	if err := strong.QueryRow(ctx, "SELECT ssn FROM customers WHERE id = 1").Scan(&ssn); err != nil || ssn != "111-11-1111" {
		t.Fatalf("with MFA: %q, %v", ssn, err)
	}

	entries := r.entries()
	var challenged, allowed int
	for _, e := range entries {
		if e.Source != "database" || e.App != "bank" || e.Statement == nil || e.Statement.Fingerprint == "" ||
			e.Statement.Class != "read" || len(e.Statement.Labels) != 1 || e.Statement.Labels[0] != "pii" {
			t.Errorf("entry %+v lacks the statement's facts", e)
		}
		switch e.Decision {
		case "challenge":
			challenged++
		case "allow":
			allowed++
		}
		if strings.Contains(mustJSON(t, e), "secret-name-42") {
			t.Error("the sign-in log holds a value from the statement")
		}
	}
	if challenged != 2 || allowed != 1 {
		t.Errorf("log has %d challenges and %d allows, want 2 and 1", challenged, allowed)
	}
}

// TestRefusalKeepsTransactionState: a refused statement inside a
// transaction block aborts it, as an error from PostgreSQL would; the
// transaction is never left half-applied.
func TestRefusalKeepsTransactionState(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	_, err := conn.Exec(ctx, "SELECT ssn FROM customers")
	wantState(t, err, "28000")
	if st := conn.PgConn().TxStatus(); st != 'E' {
		t.Errorf("transaction status after a refusal = %q, want E (failed)", st)
	}
	_, err = conn.Exec(ctx, "SELECT 1")
	wantState(t, err, "25P02")
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if st := conn.PgConn().TxStatus(); st != 'I' {
		t.Errorf("after ROLLBACK status = %q, want I", st)
	}
}

// TestWritesAndGuardrails: a write asks for the write context; UPDATE
// and DELETE without WHERE are refused outright, even with MFA.
func TestWritesAndGuardrails(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	strong := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	weak := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	tests := []struct {
		name string
		conn *pgx.Conn
		sql  string
		want string
	}{
		{"fail/write-without-mfa", weak, "UPDATE customers SET name = 'x' WHERE id = 1", "28000"},
		{"fail/update-without-where", strong, "UPDATE customers SET name = 'x'", "42501"},
		{"fail/delete-where-true", strong, "DELETE FROM customers WHERE true", "42501"},
		{"fail/truncate", strong, "TRUNCATE customers", "42501"},
		{"ok/write-with-mfa", strong, "UPDATE customers SET name = 'Ada L' WHERE id = 1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.conn.Exec(ctx, tt.sql)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantState(t, err, tt.want)
		})
	}
	var names []string
	rows, _ := r.direct.Query(ctx, "SELECT name FROM customers ORDER BY id")
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(names, ",") != "Ada L,Bob" {
		t.Errorf("customers now %v (%v); only the allowed update may have run", names, err)
	}
}

// TestCopyPassthrough: COPY FROM STDIN and COPY TO STDOUT flow once
// the COPY statement is allowed.
func TestCopyPassthrough(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"id", "amount"}, pgx.CopyFromRows([][]any{{1, 10}, {2, 20}, {3, 30}}))
	if err != nil || n != 3 {
		t.Fatalf("CopyFrom = %d, %v", n, err)
	}
	var out bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &out, "COPY orders TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "1\t10\n2\t20\n3\t30\n" {
		t.Errorf("COPY TO gave %q", out.String())
	}
	// Without MFA, COPY FROM is a write: refused before any data moves.
	weak := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	_, err = weak.PgConn().CopyFrom(ctx, strings.NewReader("4\t40\n"), "COPY orders FROM STDIN")
	wantState(t, err, "28000")
	if got := r.countRows("orders"); got != 3 {
		t.Errorf("orders has %d rows, want 3", got)
	}
	var one int
	if err := weak.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("session after refused COPY: %v", err)
	}
}

// TestNoticesRelayed: the server's notices reach the client.
func TestNoticesRelayed(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	token := r.token("u-alice", "bank", "password", "totp")
	cfg, err := pgx.ParseConfig(r.dsn("alice", token, "disable"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { got <- n.Message }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// DROP TABLE IF EXISTS of a missing table notices that it skipped it.
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS nothing_here"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if !strings.Contains(m, "nothing_here") {
			t.Errorf("notice %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notice relayed")
	}
}
