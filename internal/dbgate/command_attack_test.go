//go:build cgo

package dbgate

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// noDropExpression blocks, with a CEL expression on the command, every
// statement that drops something.
const noDropExpression = testPolicies + `
  - name: no-drop-expression
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {expression: 'statement.command.contains("DROP")'}
    grant: block
`

// TestAttackCommandListHidesDrop: a multi-statement string is named by
// its commands ("SELECT; DROP TABLE"). Naming only its first eight
// statements let nine SELECTs before a DROP TABLE hide it from a policy
// whose expression reads statement.command; every distinct command is
// named, so the DROP is blocked however many statements come before it,
// and the sign-in log names it.
func TestAttackCommandListHidesDrop(t *testing.T) {
	r := newRig(t)
	r.usePolicies(t, noDropExpression)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	for _, n := range []int{0, 8, 9, 100} {
		sql := strings.Repeat("SELECT 1; ", n) + "DROP TABLE orders"
		_, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		pe := wantState(t, err, "42501")
		if !strings.Contains(pe.Message, "no-drop-expression") {
			t.Errorf("%d statements before the DROP: %q, want the policy named", n, pe.Message)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM orders"); err != nil {
		t.Fatalf("orders is gone: %v", err)
	}
	last := r.entries()[len(r.entries())-1]
	if last.Statement == nil || last.Statement.Command != "SELECT; DROP TABLE" {
		t.Errorf("the log names the string as %+v, want SELECT; DROP TABLE", last.Statement)
	}
}
