//go:build cgo

package dbgate

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
	"github.com/stepgate/stepgate/internal/policy"
)

// statementPolicies block, on the database bank, each thing a statements
// condition can name.
const statementPolicies = `
policies:
  - name: no-customers
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {statements: {tables: [customers]}}
    grant: block
  - name: no-deletes
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {statements: {commands: [DELETE]}}
    grant: block
  - name: no-updates
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {statements: {commands: [update]}}
    grant: block
  - name: no-drop-table
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {statements: {commands: [DROP TABLE]}}
    grant: block
  - name: no-privilege
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {statements: {classes: [privilege]}}
    grant: block
  - name: no-pii
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {statements: {labels: [pii]}}
    grant: block
`

func compileForTest(t *testing.T, src string) *policy.Snapshot {
	t.Helper()
	doc, probs := policy.Parse("test.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	snap, probs := policy.Compile(nil, doc)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return snap
}

// TestAttackStatementConditionBypass: each statement is written to slip
// past the policy that names what it touches (a schema, quoting, case, a
// CTE, a write hidden in a read, a prepared statement, a DO block, a
// truncated command list, a role change) and is classified by the real
// parser, then decided as the gateway decides it. Every one must be
// blocked by the policy it tries to avoid.
func TestAttackStatementConditionBypass(t *testing.T) {
	t.Parallel()
	if !sqlclass.ParserAvailable {
		t.Skip("no SQL parser in this build")
	}
	snap := compileForTest(t, statementPolicies)
	labels := map[string][]string{"pii": {"customers.ssn"}}
	many := strings.Repeat("SELECT 1; ", 9) + "DROP TABLE orders"
	tests := []struct {
		name    string
		earlier []string // strings the same connection ran before
		sql     string
		policy  string
	}{
		{"tables/plain", nil, "SELECT name FROM customers", "no-customers"},
		{"tables/schema", nil, "SELECT name FROM public.customers", "no-customers"},
		{"tables/quoted", nil, `SELECT name FROM "customers"`, "no-customers"},
		{"tables/quoted-case", nil, `SELECT name FROM "Customers"`, "no-customers"},
		{"tables/upper-case", nil, "SELECT name FROM PUBLIC.CUSTOMERS", "no-customers"},
		{"tables/quoted-schema", nil, `SELECT name FROM "public"."customers"`, "no-customers"},
		{"tables/alias", nil, "SELECT c.name FROM customers AS c", "no-customers"},
		{"tables/cte-same-name", nil, "WITH customers AS (SELECT * FROM customers) SELECT name FROM customers", "no-customers"},
		{"tables/subquery", nil, "SELECT (SELECT count(*) FROM customers)", "no-customers"},
		{"tables/table-command", nil, "TABLE customers", "no-customers"},
		{"tables/copy", nil, "COPY customers TO STDOUT", "no-customers"},
		{"tables/drop-schema-cascade", nil, "DROP SCHEMA public CASCADE", "no-customers"},
		{"tables/do-block", nil, "DO $$ BEGIN PERFORM * FROM customers; END $$", "no-customers"},
		{"tables/function", nil, "SELECT read_everything()", "no-customers"},
		{"tables/unparsable", nil, "SELECT FROM WHERE customers", "no-customers"},
		{"commands/plain", nil, "delete from orders where id = 1", "no-deletes"},
		{"commands/cte", nil, "WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d", "no-deletes"},
		{"commands/explain-analyze", nil, "EXPLAIN ANALYZE DELETE FROM orders", "no-deletes"},
		{"commands/copy-returning", nil, "COPY (DELETE FROM orders RETURNING *) TO STDOUT", "no-deletes"},
		{"commands/multi", nil, "SELECT 1; DELETE FROM orders WHERE id = 1", "no-deletes"},
		{"commands/prepare-execute", nil, "PREPARE d AS DELETE FROM orders; EXECUTE d", "no-deletes"},
		{"commands/execute-later", []string{"PREPARE d AS DELETE FROM orders"}, "EXECUTE d", "no-deletes"},
		{"commands/merge-delete", nil, "MERGE INTO orders o USING (SELECT 1 AS id) s ON o.id = s.id WHEN MATCHED THEN DELETE", "no-deletes"},
		{"commands/upsert-updates", nil, "INSERT INTO orders VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET amount = 2", "no-updates"},
		{"commands/update-in-delete-cte", nil, "WITH u AS (UPDATE orders SET amount = 0 WHERE id = 1 RETURNING id) DELETE FROM orders WHERE id = 2", "no-updates"},
		{"commands/drop-lower", nil, "drop table orders", "no-drop-table"},
		{"commands/drop-behind-comment", nil, "SELECT 1 /* ; */; DROP TABLE orders", "no-drop-table"},
		{"commands/drop-past-the-eighth", nil, many, "no-drop-table"},
		{"commands/drop-in-do", nil, "DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$", "no-drop-table"},
		{"classes/set-role", nil, "SET ROLE postgres", "no-privilege"},
		{"classes/session-authorization", nil, "SET SESSION AUTHORIZATION postgres", "no-privilege"},
		{"classes/set-config-role", nil, "SELECT set_config('role', 'postgres', false)", "no-privilege"},
		{"classes/grant", nil, "GRANT ALL ON orders TO PUBLIC", "no-privilege"},
		{"labels/column", nil, "SELECT ssn FROM orders, customers", "no-pii"},
		{"labels/star", nil, "SELECT o.* , c.* FROM orders o JOIN customers c ON true", "no-pii"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sess := sqlclass.NewClassifier(sqlclass.CacheOptions{}).NewSession()
			for _, sql := range tt.earlier {
				if _, err := sess.Classify(sql); err != nil {
					t.Fatal(err)
				}
			}
			f, _ := sess.Classify(tt.sql)
			req := &policy.Request{Subject: policy.Subject{ID: "u-alice", Username: "alice"}, App: "bank",
				IP: netip.MustParseAddr("127.0.0.1"), Now: testStart,
				Statement: policyStatement(f, sqlclass.Label(f, labels))}
			d := snap.Evaluate(req, policy.EvaluateOptions{Explain: true})
			if d.Outcome != policy.OutcomeBlock {
				t.Fatalf("%s: %s (statement %+v), want blocked", tt.sql, d.Outcome, req.Statement)
			}
			for _, res := range d.Policies {
				if res.Policy == tt.policy && res.Result != policy.ResultApplied {
					t.Errorf("%s: policy %s %s (%s), want applied; statement %+v", tt.sql, tt.policy, res.Result, res.Reason, req.Statement)
				}
			}
		})
	}
}

// TestStatementConditionNotOverBroad: what a policy does not name flows;
// erring towards a match does not make every write a DELETE.
func TestStatementConditionNotOverBroad(t *testing.T) {
	t.Parallel()
	if !sqlclass.ParserAvailable {
		t.Skip("no SQL parser in this build")
	}
	snap := compileForTest(t, statementPolicies)
	labels := map[string][]string{"pii": {"customers.ssn"}}
	for _, sql := range []string{
		"SELECT amount FROM orders WHERE id = 1",
		"INSERT INTO orders VALUES (1, 1)",
		"INSERT INTO orders VALUES (1, 1) ON CONFLICT DO NOTHING",
		"SELECT * FROM orders FOR UPDATE",
		"CREATE INDEX ON orders (id)",
		"SELECT name FROM customers_archive",
	} {
		f, _ := sqlclass.Classify(sql)
		req := &policy.Request{Subject: policy.Subject{ID: "u-alice", Username: "alice"}, App: "bank", Now: testStart,
			Statement: policyStatement(f, sqlclass.Label(f, labels))}
		if d := snap.Evaluate(req, policy.EvaluateOptions{}); d.Outcome != policy.OutcomeAllow {
			t.Errorf("%s: %s by %s, want allowed (statement %+v)", sql, d.Outcome, d.BlockedBy, req.Statement)
		}
	}
}

// TestPolicyStatementsCondition: through the real gateway, a statements
// condition blocks what it names, however the table is spelled, and
// lets the rest through.
func TestPolicyStatementsCondition(t *testing.T) {
	r := newRig(t, func(d *Database) { d.Contexts = nil })
	r.usePolicies(t, `
policies:
  - name: customers-read-only
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions:
      statements: {classes: [write], tables: [public.customers]}
    grant: block
`)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	for _, sql := range []string{
		"UPDATE customers SET name = 'x' WHERE id = 1",
		`UPDATE "public"."customers" SET name = 'x' WHERE id = 1`,
		"WITH d AS (UPDATE Customers SET name = 'x' WHERE id = 1 RETURNING *) SELECT * FROM d",
		"ALTER TABLE customers ADD COLUMN x int",
	} {
		_, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		pe := wantState(t, err, "42501")
		if !strings.Contains(pe.Message, "customers-read-only") {
			t.Errorf("%s: %q should name the policy", sql, pe.Message)
		}
	}
	var name string
	if err := conn.QueryRow(ctx, "SELECT name FROM customers WHERE id = 1").Scan(&name); err != nil || name != "Ada" {
		t.Fatalf("a read of customers: %q, %v", name, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO orders VALUES (1, 1)"); err != nil {
		t.Fatalf("a write to another table: %v", err)
	}
}
