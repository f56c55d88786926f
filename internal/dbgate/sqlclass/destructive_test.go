//go:build cgo

package sqlclass

import (
	"slices"
	"testing"
)

// TestDestructive: every way to drop an object, drop a column or
// truncate is flagged Destructive, alone or among other statements, so a
// guardrail that refuses it cannot be passed by a rarer spelling.
func TestDestructive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, sql string
		want      bool
	}{
		{"ok/drop-table", "DROP TABLE customers", true},
		{"ok/drop-table-quoted-schema", `DROP TABLE IF EXISTS "Public"."Customers" CASCADE`, true},
		{"ok/drop-view", "DROP VIEW v", true},
		{"ok/drop-index", "DROP INDEX CONCURRENTLY i", true},
		{"ok/drop-function", "DROP FUNCTION f(int)", true},
		{"ok/drop-schema", "DROP SCHEMA app CASCADE", true},
		{"ok/drop-database", "DROP DATABASE prod", true},
		{"ok/drop-owned", "DROP OWNED BY bob", true},
		{"ok/drop-role", "DROP ROLE bob", true},
		{"ok/drop-tablespace", "DROP TABLESPACE ts", true},
		{"ok/drop-policy", "DROP POLICY p ON t", true},
		{"ok/drop-column", "ALTER TABLE customers ADD COLUMN x int, DROP COLUMN ssn", true},
		{"ok/drop-constraint", "ALTER TABLE accounts DROP CONSTRAINT balance_positive", true},
		{"ok/type-change-using-null", "ALTER TABLE customers ALTER COLUMN ssn TYPE text USING NULL", true},
		{"ok/set-data-type", "ALTER TABLE accounts ALTER balance SET DATA TYPE smallint", true},
		{"ok/type-change-among-others", "ALTER TABLE customers ADD COLUMN x int, ALTER COLUMN ssn TYPE int USING 0", true},
		{"ok/truncate", "TRUNCATE customers, orders RESTART IDENTITY", true},
		{"ok/truncate-only", "TRUNCATE ONLY customers", true},
		{"ok/multi-statement", "SELECT 1; DROP TABLE customers", true},
		{"ok/comment-hides-nothing", "SELECT 1 /* ; */; TRUNCATE customers", true},
		{"ok/in-transaction", "BEGIN; TRUNCATE customers; COMMIT", true},
		{"fail/select", "SELECT * FROM customers", false},
		{"fail/delete", "DELETE FROM customers WHERE id = 1", false},
		{"fail/add-column", "ALTER TABLE customers ADD COLUMN x int", false},
		{"fail/set-default", "ALTER TABLE customers ALTER COLUMN x SET DEFAULT 0", false},
		{"fail/rename-column", "ALTER TABLE customers RENAME COLUMN x TO y", false},
		{"fail/create", "CREATE TABLE t (id int)", false},
		{"fail/dollar-quoted-text", "SELECT $$ DROP TABLE customers $$", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Classify(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if f.Destructive != tt.want {
				t.Errorf("Classify(%q).Destructive = %v, want %v", tt.sql, f.Destructive, tt.want)
			}
		})
	}
}

// TestDestructivePrepared: a statement prepared through the protocol
// keeps the flag for its Bind and Execute.
func TestDestructivePrepared(t *testing.T) {
	t.Parallel()
	s := NewClassifier(CacheOptions{}).NewSession()
	if _, err := s.Prepare("wipe", "TRUNCATE customers"); err != nil {
		t.Fatal(err)
	}
	if f := s.Prepared("wipe"); !f.Destructive {
		t.Errorf("Prepared(wipe) = %+v, want Destructive", f)
	}
}

// TestModifies: the data-modifying commands a string runs are named
// however they are nested, so a policy on DELETE sees the DELETE inside
// a SELECT.
func TestModifies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, sql string
		want      []string
	}{
		{"ok/select", "SELECT * FROM t", nil},
		{"ok/delete", "DELETE FROM t WHERE id = 1", []string{"DELETE"}},
		{"ok/cte-delete", "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d", []string{"DELETE"}},
		{"ok/cte-update-in-delete", "WITH u AS (UPDATE t SET a = 1 WHERE id = 2 RETURNING id) DELETE FROM o WHERE id IN (SELECT id FROM u)", []string{"DELETE", "UPDATE"}},
		{"ok/upsert", "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2", []string{"INSERT", "UPDATE"}},
		{"ok/upsert-nothing", "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", []string{"INSERT"}},
		{"ok/merge", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id)", []string{"DELETE", "INSERT", "MERGE"}},
		{"ok/explain-analyze", "EXPLAIN ANALYZE DELETE FROM t", []string{"DELETE"}},
		{"ok/explain-runs-nothing", "EXPLAIN DELETE FROM t", nil},
		{"ok/copy-returning", "COPY (DELETE FROM t RETURNING *) TO STDOUT", []string{"DELETE"}},
		{"ok/prepare-execute", "PREPARE d AS DELETE FROM t; EXECUTE d", []string{"DELETE"}},
		{"ok/multi", "SELECT 1; UPDATE t SET a = 1 WHERE id = 1", []string{"UPDATE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Classify(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Modifies, tt.want) {
				t.Errorf("Classify(%q).Modifies = %v, want %v", tt.sql, f.Modifies, tt.want)
			}
		})
	}
	s := NewClassifier(CacheOptions{}).NewSession()
	if _, err := s.Classify("PREPARE d AS DELETE FROM t"); err != nil {
		t.Fatal(err)
	}
	if f, err := s.Classify("EXECUTE d"); err != nil || !slices.Equal(f.Modifies, []string{"DELETE"}) {
		t.Errorf("EXECUTE of an earlier PREPARE: %v, %v", f.Modifies, err)
	}
	if _, err := s.Prepare("p", "UPDATE t SET a = 1 WHERE id = $1"); err != nil {
		t.Fatal(err)
	}
	if f := s.Prepared("p"); !slices.Equal(f.Modifies, []string{"UPDATE"}) {
		t.Errorf("Prepared(p).Modifies = %v", f.Modifies)
	}
}

// TestDefinesCode: every statement that leaves code for a later statement
// to run out of sight (a trigger, a default, a cast) is flagged.
func TestDefinesCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, sql string
		want      bool
	}{
		{"ok/function", "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'TRUNCATE t'", true},
		{"ok/or-replace", "CREATE OR REPLACE FUNCTION lower(text) RETURNS text LANGUAGE sql AS 'SELECT 1'", true},
		{"ok/procedure", "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN DROP TABLE t; END $$", true},
		{"ok/trigger", "CREATE TRIGGER tr AFTER INSERT ON t EXECUTE FUNCTION f()", true},
		{"ok/event-trigger", "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()", true},
		{"ok/extension", "CREATE EXTENSION dblink", true},
		{"ok/extension-update", "ALTER EXTENSION dblink UPDATE", true},
		{"ok/cast", "CREATE CAST (int AS mytype) WITH FUNCTION f(int)", true},
		{"ok/operator", "CREATE OPERATOR === (FUNCTION = f, LEFTARG = int, RIGHTARG = int)", true},
		{"ok/aggregate", "CREATE AGGREGATE a(int) (SFUNC = f, STYPE = int)", true},
		{"ok/in-multi", "SELECT 1; CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", true},
		{"ok/enable-trigger", "ALTER TABLE accounts ENABLE TRIGGER wipe", true},
		{"ok/enable-always-trigger", "ALTER TABLE accounts ENABLE ALWAYS TRIGGER wipe", true},
		{"ok/enable-replica-trigger", "ALTER TABLE accounts ENABLE REPLICA TRIGGER wipe", true},
		{"ok/enable-all-triggers", "ALTER TABLE accounts ENABLE TRIGGER ALL", true},
		{"ok/enable-user-triggers", "ALTER TABLE accounts ENABLE TRIGGER USER", true},
		{"ok/enable-rule", "ALTER TABLE accounts ENABLE RULE r", true},
		{"ok/enable-always-rule", "ALTER TABLE accounts ENABLE ALWAYS RULE r", true},
		{"ok/enable-among-others", "ALTER TABLE accounts ADD COLUMN x int, ENABLE TRIGGER wipe", true},
		{"fail/disable-trigger", "ALTER TABLE accounts DISABLE TRIGGER wipe", false},
		{"fail/table", "CREATE TABLE t (id int)", false},
		{"fail/index", "CREATE INDEX ON t (id)", false},
		{"fail/enum", "CREATE TYPE mood AS ENUM ('ok')", false},
		{"fail/select", "SELECT 1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Classify(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if f.DefinesCode != tt.want {
				t.Errorf("Classify(%q).DefinesCode = %v, want %v", tt.sql, f.DefinesCode, tt.want)
			}
		})
	}
}
