//go:build cgo

package sqlclass

import (
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FuzzClassify: no input panics; an error always comes with
// ClassUnknown; the string's class is at least each statement's; a
// string whose parse tree holds a data-modifying statement (outside a
// plain EXPLAIN) or a DO/CALL is never classed below write or unknown
// (checked by a search of the tree of its own, not the classifier's
// walk); and the input followed by a DELETE, when that parses, is never
// read: whatever the input opens (a comment, a string, a dollar quote),
// it either swallows the DELETE and fails to parse, or the DELETE runs.
func FuzzClassify(f *testing.F) {
	for _, seed := range []string{
		"SELECT 1; DROP TABLE t", "SELECT $$; DROP TABLE t; $$", "/* DROP */ SELECT 1",
		"/* a /* b */ DROP TABLE t; */ SELECT 1", "COPY t TO PROGRAM 'id'", "SET ROLE admin",
		"SET SESSION AUTHORIZATION postgres", "DO $$BEGIN NULL; END$$", "SELECT pg_terminate_backend(1)",
		"SELECT lo_import('/etc/passwd')", "SELECT dblink_exec('x', 'y')", "SELECT nextval('s')",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "SET search_path = evil, public; SELECT lower(a) FROM t",
		"EXPLAIN ANALYZE DELETE FROM t", "CREATE TABLE x AS SELECT 1", "SELECT * INTO x FROM t",
		"SELECT * FROM t FOR UPDATE", "PREPARE p AS DELETE FROM t; EXECUTE p", "CALL proc()", "BEGIN; COMMIT",
		"LISTEN c; NOTIFY c", "VACUUM t", "GRANT ALL ON t TO PUBLIC", "REVOKE ALL ON t FROM bob", "ALTER ROLE bob SUPERUSER",
		"MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE", "INSERT INTO t SELECT * FROM u ON CONFLICT DO NOTHING",
		"SELECT (SELECT ssn FROM o) FROM customers c JOIN LATERAL (SELECT * FROM f(c.id)) x ON true", "",
		"SELECT E'\\'; DROP TABLE t; --'", "COPY (UPDATE t SET a = 1 RETURNING *) TO STDOUT",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if withWrite, err := Classify(sql + "\n;DELETE FROM t WHERE id = 1"); err == nil && withWrite.Class < ClassWrite {
			t.Fatalf("%q followed by a DELETE classed %s", sql, withWrite.Class)
		}
		facts, err := Classify(sql)
		if err != nil {
			if facts.Class != ClassUnknown {
				t.Fatalf("error %v with class %s", err, facts.Class)
			}
			return
		}
		if facts.Class > ClassUnknown {
			t.Fatalf("class %d out of range", facts.Class)
		}
		for _, st := range facts.Statements {
			if st.Class > facts.Class {
				t.Fatalf("statement %s (%s) above the string's class %s", st.Command, st.Class, facts.Class)
			}
		}
		tree, err := pg.Parse(sql)
		if err != nil {
			t.Fatalf("Classify accepted what Parse refuses: %v", err)
		}
		for _, raw := range tree.Stmts {
			switch worst := worstNode(raw.Stmt.ProtoReflect()); {
			case worst == "write" && facts.Class < ClassWrite:
				t.Fatalf("a data-modifying statement classed %s", facts.Class)
			case worst == "unknown" && facts.Class != ClassUnknown:
				t.Fatalf("a DO or CALL classed %s", facts.Class)
			}
		}
	})
}

// worstNode searches a parse tree for a DO or CALL ("unknown") or a
// data-modifying statement ("write"), skipping EXPLAIN, whose statement
// only runs with ANALYZE.
func worstNode(m protoreflect.Message) string {
	worst := ""
	var visit func(m protoreflect.Message)
	visit = func(m protoreflect.Message) {
		if !m.IsValid() {
			return
		}
		switch m.Interface().(type) {
		case *pg.ExplainStmt:
			return
		case *pg.DoStmt, *pg.CallStmt:
			worst = "unknown"
			return
		case *pg.InsertStmt, *pg.UpdateStmt, *pg.DeleteStmt, *pg.MergeStmt:
			if worst == "" {
				worst = "write"
			}
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.Message() == nil || fd.IsMap():
			case fd.IsList():
				for i := 0; i < v.List().Len(); i++ {
					visit(v.List().Get(i).Message())
				}
			default:
				visit(v.Message())
			}
			return true
		})
	}
	visit(m)
	return worst
}
