//go:build cgo

package dbgate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
	"github.com/stepgate/stepgate/internal/store"
)

// destructiveRig is a gateway whose DROP and TRUNCATE need the role dba
// through an elevation. No context is asked for and no WHERE is
// demanded, so the elevation rule is the only thing in the way; alice
// holds dba all the time, as a standing role and through an active
// assignment, neither of which counts.
func destructiveRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t, func(d *Database) {
		d.Contexts, d.RefuseNoWhere, d.DestructiveNeedsElevation = nil, false, "dba"
	})
	r.mustDirect(`INSERT INTO orders VALUES (1, 10), (2, 20);
		CREATE FUNCTION wipe() RETURNS void LANGUAGE plpgsql AS $$ BEGIN TRUNCATE orders; END $$;
		CREATE PROCEDURE wipe_p() LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$;
		CREATE FUNCTION wipe_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN TRUNCATE orders; RETURN NULL; END $$;
		CREATE FUNCTION wipe_text() RETURNS text LANGUAGE plpgsql AS $$ BEGIN TRUNCATE orders; RETURN 'x'; END $$`)
	r.users.set(store.User{ID: "u-alice", Username: "alice", Roles: []string{"dba"},
		Grants: []store.Grant{{Role: "dba"}}})
	return r
}

func (r *rig) gatewayNow() time.Time { return time.Unix(0, r.now.Load()).UTC() }

// elevate gives alice an active elevation of role for app scope (empty:
// everywhere) from now for d, keeping her standing role.
func (r *rig) elevate(role string, d time.Duration, scope ...string) {
	now := r.gatewayNow()
	r.users.set(store.User{ID: "u-alice", Username: "alice", Roles: []string{role}, Grants: []store.Grant{
		{Role: role},
		{Role: role, Scope: scope, Elevation: "el-1", Since: now.Add(-time.Second), Until: now.Add(d)},
	}})
	// The session reads the user again once a second has passed.
	r.advance(2 * time.Second)
}

// destructiveAttacks are ways to DROP or TRUNCATE, each in a simple
// query string.
var destructiveAttacks = []string{
	"DROP TABLE orders",
	"drop table public.orders",
	`DROP TABLE "orders" CASCADE`,
	"SELECT 1; DROP TABLE orders",
	"SELECT 1 /* ; */; TRUNCATE orders",
	"SELECT $$ harmless $$; TRUNCATE orders",
	"BEGIN; TRUNCATE orders; COMMIT",
	"TRUNCATE ONLY orders RESTART IDENTITY",
	"ALTER TABLE orders DROP COLUMN amount",
	"DROP SCHEMA public CASCADE",
	"DROP OWNED BY CURRENT_USER",
	"DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$",
	"DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE orders'; END $$",
	"SELECT wipe()",
	"WITH w AS (SELECT wipe()) SELECT * FROM w",
	"SELECT count(*) FROM orders WHERE wipe() IS NULL",
	"CALL wipe_p()",
	"PREPARE w AS SELECT wipe(); EXECUTE w",
	// Code that a later, innocent statement would run.
	"CREATE FUNCTION wipe2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN TRUNCATE orders; RETURN NULL; END $$",
	"CREATE OR REPLACE FUNCTION wipe() RETURNS void LANGUAGE sql AS 'DROP TABLE orders'",
	"CREATE TRIGGER t AFTER INSERT ON customers FOR EACH STATEMENT EXECUTE FUNCTION wipe_trigger()",
	"ALTER TABLE customers ALTER COLUMN name SET DEFAULT wipe_text()",
	"CREATE VIEW innocent AS SELECT wipe()",
	"CREATE EXTENSION IF NOT EXISTS plpgsql",
}

// TestAttackDestructiveWithoutElevation: with destructive_needs_elevation,
// every way to DROP or TRUNCATE (in a multi-statement string, behind a
// comment or dollar quotes, in a DO block, a function, a procedure, a CTE,
// a prepared statement of either protocol) is refused for a user who
// holds the role only as a standing role and an active assignment; other
// statements flow.
func TestAttackDestructiveWithoutElevation(t *testing.T) {
	r := destructiveRig(t)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	for _, sql := range destructiveAttacks {
		_, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		pe := wantState(t, err, "42501")
		if !strings.Contains(pe.Message, "stepgate role activate dba") || !strings.Contains(pe.Message, "the role dba") {
			t.Errorf("%s: message %q should name the role and how to activate it", sql, pe.Message)
		}
	}
	// The extended protocol: pgx prepares the statement, then executes it.
	for _, sql := range []string{"TRUNCATE orders", "DROP TABLE orders", "SELECT wipe()"} {
		_, err := conn.Exec(ctx, sql)
		wantState(t, err, "42501")
	}
	// A statement parsed under a name, bound and executed later.
	s := r.raw(t, r.token("u-alice", "bank", "password", "totp"))
	s.send(&pgproto3.Parse{Name: "w", Query: "TRUNCATE orders"}, &pgproto3.Sync{})
	s.cycle()
	s.send(&pgproto3.Bind{PreparedStatement: "w"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if errs := s.cycle(); len(errs) != 1 || errs[0].Code != "42501" {
		t.Errorf("Execute of a prepared TRUNCATE: errors %v, want one 42501", errs)
	}
	if n := r.countRows("orders"); n != 2 {
		t.Fatalf("orders has %d rows, want 2: a destructive statement ran", n)
	}
	// Nothing was planted for a later statement to run: an INSERT into
	// customers fires no trigger and fills no default.
	if _, err := conn.Exec(ctx, "INSERT INTO customers (id) VALUES (3)"); err != nil {
		t.Fatalf("an INSERT: %v", err)
	}
	if n := r.countRows("orders"); n != 2 {
		t.Fatalf("orders has %d rows after an INSERT into customers, want 2: planted code ran", n)
	}
	// Everything else is untouched by the rule.
	if _, err := conn.Exec(ctx, "DELETE FROM orders WHERE id = 2"); err != nil {
		t.Errorf("a DELETE with WHERE: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 1 {
		t.Errorf("a read: %d, %v", n, err)
	}
	last := r.entries()[len(r.entries())-1]
	if last.Decision != "block" || last.Statement == nil || !strings.Contains(last.Statement.Guardrail, "dba") {
		t.Errorf("the sign-in log's last refusal = %+v, want a block naming the guardrail", last)
	}
}

// TestDestructiveWithElevation: an active elevation of the role lets
// DROP and TRUNCATE through, in the same session; once it ends (its
// time, or taken away) they are refused again within a second; an
// elevation scoped to another app does not count.
func TestDestructiveWithElevation(t *testing.T) {
	r := destructiveRig(t)
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password", "totp"))
	exec := func(sql string) error {
		_, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		return err
	}
	r.elevate("dba", 10*time.Minute, "payroll")
	wantState(t, exec("TRUNCATE orders"), "42501")

	r.elevate("dba", 10*time.Minute)
	if err := exec("TRUNCATE orders"); err != nil {
		t.Fatalf("TRUNCATE with the elevation: %v", err)
	}
	if err := exec("DO $$ BEGIN EXECUTE 'ALTER TABLE orders DROP COLUMN amount'; END $$"); err != nil {
		t.Fatalf("DO block with the elevation: %v", err)
	}
	if r.countRows("orders") != 0 {
		t.Fatal("the TRUNCATE did not run")
	}

	r.advance(10 * time.Minute) // the elevation's end
	wantState(t, exec("DROP TABLE orders"), "42501")

	r.elevate("dba", 10*time.Minute)
	r.users.set(store.User{ID: "u-alice", Username: "alice", Roles: []string{"dba"}}) // deactivated
	r.advance(2 * time.Second)
	wantState(t, exec("DROP TABLE orders"), "42501")
	var exists bool
	if err := r.direct.QueryRow(ctx, "SELECT to_regclass('orders') IS NOT NULL").Scan(&exists); err != nil || !exists {
		t.Fatalf("orders was dropped after the elevation ended (%v)", err)
	}
}

// TestNeedsElevation covers the rule without a database: which facts
// need the role, and which grants count.
func TestNeedsElevation(t *testing.T) {
	t.Parallel()
	now := testStart
	s := &Server{db: Database{Name: "bank", DestructiveNeedsElevation: "dba"}}
	elevation := store.Grant{Role: "dba", Elevation: "e1", Since: now.Add(-time.Minute), Until: now.Add(time.Hour)}
	tests := []struct {
		name  string
		facts sqlclass.Facts
		user  store.User
		want  bool
	}{
		{"ok/read", sqlclass.Facts{Class: sqlclass.ClassRead}, store.User{}, false},
		{"ok/ddl-not-destructive", sqlclass.Facts{Class: sqlclass.ClassDDL}, store.User{}, false},
		{"ok/elevated", sqlclass.Facts{Class: sqlclass.ClassDDL, Hazards: sqlclass.Hazards{Destructive: true}}, store.User{Grants: []store.Grant{elevation}}, false},
		{"ok/elevated-role-case", sqlclass.Facts{Class: sqlclass.ClassUnknown}, store.User{Grants: []store.Grant{{Role: "DBA", Elevation: "e1", Until: now.Add(time.Hour)}}}, false},
		{"fail/destructive", sqlclass.Facts{Class: sqlclass.ClassWrite, Hazards: sqlclass.Hazards{Destructive: true}}, store.User{}, true},
		{"fail/unknown", sqlclass.Facts{Class: sqlclass.ClassUnknown}, store.User{}, true},
		{"fail/defines-code", sqlclass.Facts{Class: sqlclass.ClassDDL, Hazards: sqlclass.Hazards{DefinesCode: true}}, store.User{}, true},
		{"fail/standing-role", sqlclass.Facts{Class: sqlclass.ClassUnknown}, store.User{Roles: []string{"dba"}}, true},
		{"fail/assignment", sqlclass.Facts{Class: sqlclass.ClassUnknown}, store.User{Grants: []store.Grant{{Role: "dba"}}}, true},
		{"fail/other-role", sqlclass.Facts{Class: sqlclass.ClassUnknown}, store.User{Grants: []store.Grant{{Role: "admin", Elevation: "e1", Until: now.Add(time.Hour)}}}, true},
		{"fail/ended", sqlclass.Facts{Class: sqlclass.ClassUnknown}, store.User{Grants: []store.Grant{{Role: "dba", Elevation: "e1", Until: now}}}, true},
		{"fail/not-yet", sqlclass.Facts{Class: sqlclass.ClassUnknown}, store.User{Grants: []store.Grant{{Role: "dba", Elevation: "e1", Since: now.Add(time.Second), Until: now.Add(time.Hour)}}}, true},
		{"fail/other-scope", sqlclass.Facts{Class: sqlclass.ClassUnknown}, store.User{Grants: []store.Grant{{Role: "dba", Scope: []string{"payroll"}, Elevation: "e1", Until: now.Add(time.Hour)}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := s.needsElevation(tt.user, tt.facts, now) != ""; got != tt.want {
				t.Errorf("needsElevation = %v, want %v", got, tt.want)
			}
		})
	}
	off := &Server{db: Database{Name: "bank"}}
	if why := off.needsElevation(store.User{}, sqlclass.Facts{Class: sqlclass.ClassUnknown, Hazards: sqlclass.Hazards{Destructive: true}}, now); why != "" {
		t.Errorf("without destructive_needs_elevation: %q", why)
	}
}
