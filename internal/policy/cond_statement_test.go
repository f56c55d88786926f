package policy

import (
	"strings"
	"testing"
)

func compileStatementCond(t *testing.T, in StatementConditions) statementCond {
	t.Helper()
	c := &compiler{}
	sc := c.statementCond(nil, "conditions.statements", in)
	if len(c.problems) > 0 {
		t.Fatalf("statementCond(%+v): %v", in, c.problems)
	}
	return sc
}

func TestStatementCond(t *testing.T) {
	t.Parallel()
	writes := compileStatementCond(t, StatementConditions{Classes: []string{"ddl", "write"}})
	drops := compileStatementCond(t, StatementConditions{Commands: []string{" drop\t table ", "TRUNCATE"}})
	anyDrop := compileStatementCond(t, StatementConditions{Commands: []string{"DROP"}})
	deletes := compileStatementCond(t, StatementConditions{Commands: []string{"DELETE"}})
	customers := compileStatementCond(t, StatementConditions{Tables: []string{"customers"}})
	accounts := compileStatementCond(t, StatementConditions{Tables: []string{"public.accounts"}})
	pii := compileStatementCond(t, StatementConditions{Labels: []string{"pii"}})
	piiWrites := compileStatementCond(t, StatementConditions{Classes: []string{"write"}, Labels: []string{"pii"}})
	tests := []struct {
		name string
		cond statementCond
		st   Statement
		want Reason
	}{
		{"ok/unset-no-statement", statementCond{}, Statement{}, ""},
		{"fail/no-statement", writes, Statement{}, ReasonNoStatement},
		{"fail/no-statement-tables", customers, Statement{}, ReasonNoStatement},

		{"ok/class-write", writes, Statement{Class: "write"}, ""},
		{"ok/class-more-sensitive", writes, Statement{Class: "privilege"}, ""},
		{"ok/class-unknown-is-most-sensitive", writes, Statement{Class: "unknown"}, ""},
		{"ok/class-from-a-newer-gateway-ranks-unknown", writes, Statement{Class: "quantum"}, ""},
		{"fail/class-read", writes, Statement{Class: "read"}, ReasonStatementClassNotIncluded},
		{"fail/class-utility", writes, Statement{Class: "utility"}, ReasonStatementClassNotIncluded},

		{"ok/command", drops, Statement{Class: "ddl", Command: "DROP TABLE"}, ""},
		{"ok/command-in-multi-statement", drops, Statement{Class: "ddl", Command: "SELECT; DROP TABLE"}, ""},
		{"ok/command-truncated-list", drops, Statement{Class: "ddl", Command: "SELECT; SELECT; SELECT; SELECT; SELECT; SELECT; SELECT; SELECT; ..."}, ""},
		{"ok/command-unknown-statement", drops, Statement{Class: "unknown", Command: "DO"}, ""},
		{"ok/command-first-word-covers", anyDrop, Statement{Class: "ddl", Command: "DROP SCHEMA"}, ""},
		{"ok/command-hidden-delete-in-cte", deletes, Statement{Class: "write", Command: "SELECT", Modifies: []string{"DELETE"}}, ""},
		{"ok/command-hidden-delete-in-execute", deletes, Statement{Class: "write", Command: "EXECUTE", Modifies: []string{"DELETE"}}, ""},
		{"ok/command-hidden-delete-in-explain", deletes, Statement{Class: "write", Command: "EXPLAIN ANALYZE", Modifies: []string{"DELETE"}}, ""},
		{"fail/command-other-dml", deletes, Statement{Class: "write", Command: "INSERT", Modifies: []string{"INSERT"}}, ReasonStatementCommandNotIncluded},
		{"fail/command-select-for-update", deletes, Statement{Class: "write", Command: "SELECT"}, ReasonStatementCommandNotIncluded},
		{"fail/command-other", drops, Statement{Class: "ddl", Command: "DROP INDEX"}, ReasonStatementCommandNotIncluded},
		{"fail/command-prefix-not-a-word", anyDrop, Statement{Class: "ddl", Command: "DROPX"}, ReasonStatementCommandNotIncluded},
		{"fail/command-plain-select", deletes, Statement{Class: "read", Command: "SELECT"}, ReasonStatementCommandNotIncluded},

		{"ok/table", customers, Statement{Class: "read", Tables: []string{"customers"}}, ""},
		{"ok/table-schema-qualified", customers, Statement{Class: "read", Tables: []string{"public.customers"}}, ""},
		{"ok/table-other-schema", customers, Statement{Class: "read", Tables: []string{"archive.customers"}}, ""},
		{"ok/table-quoted-case", customers, Statement{Class: "read", Tables: []string{"Customers"}}, ""},
		{"ok/table-quoted-schema-case", customers, Statement{Class: "read", Tables: []string{"PUBLIC.CUSTOMERS"}}, ""},
		{"ok/table-every-relation", customers, Statement{Class: "ddl", Tables: []string{"*"}}, ""},
		{"ok/table-every-relation-of-schema", accounts, Statement{Class: "ddl", Tables: []string{"public.*"}}, ""},
		{"ok/table-unqualified-may-be-policy-schema", accounts, Statement{Class: "read", Tables: []string{"accounts"}}, ""},
		{"ok/table-quoted-dotted-name", accounts, Statement{Class: "read", Tables: []string{"public.accounts", "x"}}, ""},
		{"ok/table-unknown-statement", customers, Statement{Class: "unknown"}, ""},
		{"fail/table-other-schema-of-qualified", accounts, Statement{Class: "read", Tables: []string{"archive.accounts"}}, ReasonStatementTableNotIncluded},
		{"fail/table-every-relation-of-other-schema", accounts, Statement{Class: "ddl", Tables: []string{"archive.*"}}, ReasonStatementTableNotIncluded},
		{"fail/table-other", customers, Statement{Class: "read", Tables: []string{"customers_archive", "orders"}}, ReasonStatementTableNotIncluded},
		{"fail/table-none", customers, Statement{Class: "read"}, ReasonStatementTableNotIncluded},

		{"ok/label", pii, Statement{Class: "read", Labels: []string{"secret", "pii"}}, ""},
		{"ok/label-unknown-statement", pii, Statement{Class: "unknown"}, ""},
		{"fail/label", pii, Statement{Class: "read", Labels: []string{"secret"}}, ReasonStatementLabelNotIncluded},

		{"ok/all-lists", piiWrites, Statement{Class: "write", Labels: []string{"pii"}}, ""},
		{"fail/all-lists-class", piiWrites, Statement{Class: "read", Labels: []string{"pii"}}, ReasonStatementClassNotIncluded},
		{"fail/all-lists-label", piiWrites, Statement{Class: "write"}, ReasonStatementLabelNotIncluded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.cond.match(&tt.st); got != tt.want {
				t.Errorf("match(%+v) = %q, want %q", tt.st, got, tt.want)
			}
		})
	}
}

func TestStatementCondProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   StatementConditions
		path string
		want string
	}{
		{"fail/class-typo", StatementConditions{Classes: []string{"writes"}}, "s.classes[0]", `did you mean "write"?`},
		{"fail/class-unknown-lists-valid", StatementConditions{Classes: []string{"dml"}}, "s.classes[0]", "session, read, utility, write, ddl, privilege, unknown"},
		{"fail/command-empty", StatementConditions{Commands: []string{" "}}, "s.commands[0]", "not a command"},
		{"fail/command-two", StatementConditions{Commands: []string{"DROP TABLE; TRUNCATE"}}, "s.commands[0]", "one command"},
		{"fail/table-quoted", StatementConditions{Tables: []string{`"Customers"`}}, "s.tables[0]", "without quotes"},
		{"fail/table-star", StatementConditions{Tables: []string{"public.*"}}, "s.tables[0]", "not a table name"},
		{"fail/table-empty-name", StatementConditions{Tables: []string{"public."}}, "s.tables[0]", "not a table name"},
		{"fail/label-empty", StatementConditions{Labels: []string{""}}, "s.labels[0]", "name a label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &compiler{}
			c.statementCond(nil, "s", tt.in)
			if len(c.problems) != 1 || c.problems[0].Path != tt.path || !strings.Contains(c.problems[0].Message, tt.want) {
				t.Errorf("problems = %v, want one at %s saying %q", c.problems, tt.path, tt.want)
			}
		})
	}
}

// TestStatementConditionNeverMatchesUserActions: a user action carries no
// statement, so such a policy is refused at compile time rather than
// silently never applying.
func TestStatementConditionNeverMatchesUserActions(t *testing.T) {
	t.Parallel()
	src := `policies:
  - name: odd
    state: enabled
    users: {include: {users: [all]}}
    target: {user_actions: [register-security-info]}
    conditions: {statements: {classes: [write]}}
    grant: {controls: [mfa]}
`
	doc, probs := Parse("p.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	_, probs = Compile(nil, doc)
	if len(probs) != 1 || probs[0].Path != "policies[0].conditions.statements" {
		t.Fatalf("problems = %v, want one at policies[0].conditions.statements", probs)
	}
}

// TestWhatIfStatement: the What-If takes a statement, and refuses one it
// could not evaluate (no class, an unknown class).
func TestWhatIfStatement(t *testing.T) {
	t.Parallel()
	now := goldenNow
	w := WhatIf{User: "alice", App: "bank", Statement: Statement{Class: "write", Command: "DELETE", Tables: []string{"customers"}}}
	r, err := w.Request(now, Subject{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Statement.Class != "write" || r.Statement.Tables[0] != "customers" {
		t.Errorf("statement = %+v", r.Statement)
	}
	for _, bad := range []Statement{{Class: "writes"}, {Tables: []string{"customers"}}} {
		w.Statement = bad
		if _, err := w.Request(now, Subject{Username: "alice"}); err == nil || !strings.Contains(err.Error(), "class") {
			t.Errorf("statement %+v: err = %v, want one about its class", bad, err)
		}
	}
}

// BenchmarkStatementCond is one statements condition (a class, two
// commands, two tables, a label) against a three-table write.
func BenchmarkStatementCond(b *testing.B) {
	c := &compiler{}
	sc := c.statementCond(nil, "s", StatementConditions{Classes: []string{"write"}, Commands: []string{"DELETE", "DROP TABLE"},
		Tables: []string{"customers", "public.accounts"}, Labels: []string{"pii"}})
	st := Statement{Class: "write", Command: "SELECT", Modifies: []string{"DELETE"}, Tables: []string{"orders", "public.invoices", "Customers"}, Labels: []string{"pii"}}
	b.ReportAllocs()
	for b.Loop() {
		if sc.match(&st) != "" {
			b.Fatal("no match")
		}
	}
}
