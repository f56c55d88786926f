//go:build cgo

package sqlclass

import (
	"strings"
	"unicode"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxDepth bounds the walk over a parse tree; a deeper tree (which the
// parser's own stack limit should never produce) is ClassUnknown.
const maxDepth = 20000

// walker collects the facts of one statement while it walks its parse
// tree. Every node is visited: the statement types it knows get their
// scope rules, and every other node is searched for the tables,
// functions and nested writes inside it, so a construct the classifier
// was not written for still shows what it touches.
type walker struct {
	st *Statement
	// top is the statement itself (or, for EXPLAIN, PREPARE, COPY and
	// CREATE TABLE AS, the query it wraps); a data-modifying statement
	// anywhere else is a hidden write.
	top proto.Message
	// trustPath is false once the string has changed search_path: an
	// unqualified function may then be the attacker's.
	trustPath bool
	// prepared finds a statement PREPAREd earlier, and a cursor DECLAREd
	// earlier under CursorKey(name).
	prepared func(name string) (Statement, bool)
	// session: prepared also knows the connection's earlier strings, so
	// a cursor it does not know was not declared by this client.
	session bool
	scopes  []*scope
	// objectWrite: the relations named here are the objects of a DDL or
	// privilege statement, so they are written and every column is hit.
	objectWrite bool
	// unqualified: a function or operator was named without a schema.
	unqualified bool
	depth       int
}

// scope is one query level's FROM list, or one WITH list's names.
type scope struct {
	entries []rangeEntry
	ctes    map[string]bool
}

// rangeEntry is one FROM item: its name in the query (alias or relation
// name) and, when it is a relation, the relation as written.
type rangeEntry struct {
	name  string
	table string
}

func classifyStatement(node *pg.Node, trustPath, session bool, prepared func(name string) (Statement, bool)) Statement {
	w := &walker{st: &Statement{}, trustPath: trustPath, session: session, prepared: prepared}
	w.statement(node)
	return w.finish()
}

func (w *walker) finish() Statement {
	st := *w.st
	st.Tables = uniqueTables(st.Tables)
	st.Columns = uniqueColumns(st.Columns)
	st.Functions = uniqueStrings(st.Functions)
	st.Modifies = uniqueStrings(st.Modifies)
	st.SearchPathDependent = w.unqualified
	for _, t := range st.Tables {
		if t.Unqualified {
			st.SearchPathDependent = true
		}
	}
	if setsSettings(st) {
		// Any setting may change, as with set_config of a name that is
		// not a constant: SET ROLE, search_path and, refused outright,
		// standard_conforming_strings or client_encoding, after which
		// the server reads later text differently from the parser.
		st.Class = maxClass(st.Class, ClassUnknown)
		st.SetRole, st.SearchPath, st.Lexing = true, true, true
	}
	return st
}

// setsSettings reports whether st may change the session's settings
// through pg_settings, whose UPDATE rule calls set_config for every row
// it updates: "UPDATE pg_settings SET setting = 'off' WHERE name =
// 'standard_conforming_strings'" is a SET that no SET statement shows.
// A write to it counts, under any schema or case, and so does any DDL
// naming it: a view over pg_settings is updatable through the same rule,
// and a rule on another table may update it on every INSERT.
func setsSettings(st Statement) bool {
	for _, t := range st.Tables {
		if strings.EqualFold(t.Name, "pg_settings") && (t.Written || st.Class >= ClassDDL) {
			return true
		}
	}
	return false
}

func (w *walker) raise(c Class) { w.st.Class = maxClass(w.st.Class, c) }

// unwrap returns the message a Node holds.
func unwrap(n *pg.Node) protoreflect.Message {
	if n == nil {
		return nil
	}
	m := n.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().Get(0))
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message()
}

// statement classifies one top-level statement by its type, then walks
// it for what the type alone does not say.
func (w *walker) statement(node *pg.Node) {
	m := unwrap(node)
	if m == nil {
		w.raise(ClassUnknown)
		w.st.Command = "UNKNOWN"
		return
	}
	w.top = m.Interface()
	w.st.Command = commandName(m)
	if destroys(m) {
		w.st.Destructive = true
	}
	if codeDefinitions[string(m.Descriptor().Name())] || enablesCode(m) {
		w.st.DefinesCode = true
	}
	switch x := m.Interface().(type) {
	case *pg.SelectStmt:
		w.raise(ClassRead)
		w.walk(m)
	case *pg.InsertStmt, *pg.UpdateStmt, *pg.DeleteStmt, *pg.MergeStmt:
		w.raise(ClassWrite)
		w.walk(m)
	case *pg.CopyStmt:
		w.copyStmt(x)
	case *pg.ExplainStmt:
		w.explain(x)
	case *pg.PrepareStmt:
		w.statement(x.Query)
		w.st.Command, w.st.Prepares = "PREPARE", x.Name
	case *pg.ExecuteStmt:
		w.execute(x)
	case *pg.DeclareCursorStmt:
		w.statement(x.Query)
		w.st.Command = "DECLARE CURSOR"
		w.st.Declares = x.Portalname
	case *pg.CreateTableAsStmt:
		w.raise(ClassDDL)
		w.target(x.Into.GetRel(), true)
		w.statement(x.Query)
		w.st.Command = commandName(m)
	case *pg.VariableSetStmt:
		w.raise(ClassSession)
		w.setting(x)
	case *pg.DiscardStmt:
		w.raise(ClassSession)
		if x.Target == pg.DiscardMode_DISCARD_ALL {
			// DISCARD ALL is SET SESSION AUTHORIZATION DEFAULT, RESET ALL
			// and DEALLOCATE ALL.
			w.st.SetRole, w.st.SearchPath, w.st.forgetsAll = true, true, true
		}
	case *pg.DeallocateStmt:
		w.raise(ClassSession)
		w.st.forgets, w.st.forgetsAll = x.Name, x.Isall
	case *pg.TransactionStmt, *pg.VariableShowStmt, *pg.ClosePortalStmt, *pg.ConstraintsSetStmt:
		w.raise(ClassSession)
	case *pg.FetchStmt:
		w.fetch(x)
	case *pg.ListenStmt, *pg.UnlistenStmt, *pg.NotifyStmt, *pg.VacuumStmt, *pg.ClusterStmt, *pg.ReindexStmt, *pg.CheckPointStmt:
		w.raise(ClassUtility)
		w.walk(m)
	case *pg.LockStmt:
		w.raise(ClassWrite)
		w.st.Locks = true
		w.walk(m)
	case *pg.TruncateStmt:
		w.raise(ClassWrite)
		w.st.NoWhere = true
		w.objectWrite = true
		w.walk(m)
	case *pg.DoStmt:
		// The block's code is a string the server compiles later: the
		// classifier cannot see what it does.
		w.raise(ClassUnknown)
		w.st.DoBlock = true
	case *pg.CallStmt:
		// A procedure may do anything, COMMIT included.
		w.raise(ClassUnknown)
		w.st.UnknownFunction = true
		w.walk(m)
	case *pg.LoadStmt:
		w.raise(ClassUnknown) // loads a shared library into the server
	case *pg.DropStmt:
		w.drop(x)
	case *pg.AlterTableStmt:
		w.raise(alterTableClass(x))
		w.objectWrite = true
		w.walk(m)
	case *pg.CreateFunctionStmt:
		w.raise(ClassDDL)
		if securityDefiner(x.Options) {
			w.raise(ClassPrivilege) // runs with its owner's privileges
		}
		w.objectWrite = true
		w.walk(m)
	case *pg.DropdbStmt, *pg.DropOwnedStmt:
		w.raise(typeClass(m))
		w.st.Tables = append(w.st.Tables, Table{Name: "*", Written: true})
		w.st.Columns = append(w.st.Columns, Column{Table: "*", Name: "*"})
		w.walk(m)
	default:
		w.raise(typeClass(m))
		w.objectWrite = true
		w.walk(m)
	}
}

// walk visits m and everything under it.
func (w *walker) walk(m protoreflect.Message) {
	if m == nil || !m.IsValid() {
		return
	}
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxDepth {
		w.raise(ClassUnknown)
		return
	}
	switch x := m.Interface().(type) {
	case *pg.Node:
		w.walk(unwrap(x))
		return
	case *pg.SelectStmt:
		w.selectStmt(x)
		return
	case *pg.InsertStmt:
		w.insert(x)
		return
	case *pg.UpdateStmt:
		w.update(x)
		return
	case *pg.DeleteStmt:
		w.delete(x)
		return
	case *pg.MergeStmt:
		w.merge(x)
		return
	case *pg.RangeVar:
		w.rangeVar(x, w.objectWrite)
		return
	case *pg.ColumnRef:
		w.columnRef(x)
		return
	case *pg.LockingClause:
		// Its relations are the query's aliases, not tables.
		w.raise(ClassWrite)
		w.st.Locks = true
		return
	case *pg.IntoClause:
		w.raise(ClassDDL)
		w.target(x.Rel, true)
		return
	case *pg.FuncCall:
		w.funcCall(x)
	case *pg.A_Expr:
		w.exprOperator(x)
	case *pg.SubLink:
		w.operator(x.OperName) // x OPERATOR(s.op) ANY (SELECT ...)
	case *pg.SortBy:
		w.operator(x.UseOp) // ORDER BY x USING op
	case *pg.JoinExpr:
		w.joinColumns(x)
	case *pg.RangeTableSample:
		w.sampleMethod(x.Method)
	case *pg.VariableSetStmt:
		// Nested: ALTER ROLE/DATABASE/FUNCTION ... SET.
		w.settingHazards(x)
	}
	w.children(m)
}

// children walks every message field of m, in the order of the message's
// fields, except those named in skip.
func (w *walker) children(m protoreflect.Message, skip ...protoreflect.Name) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		for _, s := range skip {
			if fd.Name() == s {
				return true
			}
		}
		if fd.IsList() {
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				w.walk(list.Get(i).Message())
			}
			return true
		}
		w.walk(v.Message())
		return true
	})
}

func (w *walker) walkNodes(nodes []*pg.Node) {
	for _, n := range nodes {
		w.walk(unwrap(n))
	}
}

// nested notes a data-modifying statement: unless it is the statement
// itself, it is a write hidden inside another statement.
func (w *walker) nested(m proto.Message) {
	w.raise(ClassWrite)
	w.st.Modifies = append(w.st.Modifies, modifies(m)...)
	if m != w.top {
		w.st.HiddenWrite = true
	}
}

func (w *walker) selectStmt(s *pg.SelectStmt) {
	saved := w.objectWrite
	w.objectWrite = false
	defer func() { w.objectWrite = saved }()
	popWith := w.with(s.WithClause)
	defer popWith()
	if s.IntoClause != nil {
		// SELECT ... INTO creates and fills a table.
		w.raise(ClassDDL)
		w.target(s.IntoClause.Rel, true)
	}
	if len(s.LockingClause) > 0 {
		// FOR UPDATE/SHARE needs UPDATE privilege and locks rows.
		w.raise(ClassWrite)
		w.st.Locks = true
	}
	w.push(w.fromScope(s.FromClause...))
	defer w.pop()
	w.children(s.ProtoReflect(), "with_clause", "into_clause", "locking_clause")
}

func (w *walker) insert(s *pg.InsertStmt) {
	w.nested(s)
	saved := w.objectWrite
	w.objectWrite = false
	defer func() { w.objectWrite = saved }()
	popWith := w.with(s.WithClause)
	defer popWith()
	target := w.target(s.Relation, true)
	if len(s.Cols) == 0 {
		w.column(target, "*")
	}
	w.resTargetNames(target, s.Cols)
	w.resTargetNames(target, s.GetOnConflictClause().GetTargetList())
	// ON CONFLICT DO UPDATE names the proposed row "excluded".
	excluded := rangeEntry{name: "excluded", table: targetEntry(s.Relation).table}
	w.push(&scope{entries: []rangeEntry{targetEntry(s.Relation), excluded}})
	defer w.pop()
	w.children(s.ProtoReflect(), "with_clause", "relation")
}

func (w *walker) update(s *pg.UpdateStmt) {
	w.nested(s)
	saved := w.objectWrite
	w.objectWrite = false
	defer func() { w.objectWrite = saved }()
	popWith := w.with(s.WithClause)
	defer popWith()
	target := w.target(s.Relation, true)
	w.resTargetNames(target, s.TargetList)
	if !restrictsRows(s.WhereClause, s.Relation) {
		w.st.NoWhere = true
	}
	sc := w.fromScope(s.FromClause...)
	sc.entries = append(sc.entries, targetEntry(s.Relation))
	w.push(sc)
	defer w.pop()
	w.children(s.ProtoReflect(), "with_clause", "relation")
}

func (w *walker) delete(s *pg.DeleteStmt) {
	w.nested(s)
	saved := w.objectWrite
	w.objectWrite = false
	defer func() { w.objectWrite = saved }()
	popWith := w.with(s.WithClause)
	defer popWith()
	target := w.target(s.Relation, true)
	w.column(target, "*") // every value of the rows it removes
	if !restrictsRows(s.WhereClause, s.Relation) {
		w.st.NoWhere = true
	}
	sc := w.fromScope(s.UsingClause...)
	sc.entries = append(sc.entries, targetEntry(s.Relation))
	w.push(sc)
	defer w.pop()
	w.children(s.ProtoReflect(), "with_clause", "relation")
}

func (w *walker) merge(s *pg.MergeStmt) {
	w.nested(s)
	saved := w.objectWrite
	w.objectWrite = false
	defer func() { w.objectWrite = saved }()
	popWith := w.with(s.WithClause)
	defer popWith()
	target := w.target(s.Relation, true)
	w.column(target, "*")
	sc := w.fromScope(s.SourceRelation)
	sc.entries = append(sc.entries, targetEntry(s.Relation))
	w.push(sc)
	defer w.pop()
	w.children(s.ProtoReflect(), "with_clause", "relation")
}

// restrictsRows reports whether a WHERE clause can tell the target's rows
// apart: it names a column of the target (unqualified, or qualified with
// the target's name or alias) or a cursor position. "WHERE true",
// "WHERE 1=1" and "UPDATE t ... FROM o WHERE o.id = 5" (every row of t
// when o has that row) count as no WHERE at all.
func restrictsRows(where *pg.Node, target *pg.RangeVar) bool {
	if where == nil || target == nil {
		return false
	}
	names := map[string]bool{target.Relname: true, entryName(target): true}
	found := false
	var visit func(m protoreflect.Message)
	visit = func(m protoreflect.Message) {
		if found || m == nil || !m.IsValid() {
			return
		}
		switch x := m.Interface().(type) {
		case *pg.CurrentOfExpr:
			found = true
			return
		case *pg.ColumnRef:
			parts := stringList(x.Fields)
			found = len(x.Fields) == 1 || (len(parts) >= 2 && names[parts[len(parts)-2]]) ||
				(len(parts) == 1 && names[parts[0]]) // t.* or a whole-row reference
			return
		case *pg.Node:
			visit(unwrap(x))
			return
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
			return !found
		})
	}
	visit(unwrap(where))
	return found
}

// with makes a WITH list's names visible the way PostgreSQL does: a
// plain WITH's query sees the names before it, a RECURSIVE one sees all.
// A name that is not yet visible is a real table, so
// "WITH customers AS (SELECT * FROM customers) ..." still reads the table.
func (w *walker) with(wc *pg.WithClause) (pop func()) {
	if wc == nil {
		return func() {}
	}
	sc := &scope{ctes: map[string]bool{}}
	w.push(sc)
	ctes := make([]*pg.CommonTableExpr, 0, len(wc.Ctes))
	for _, n := range wc.Ctes {
		if cte := n.GetCommonTableExpr(); cte != nil {
			ctes = append(ctes, cte)
			if wc.Recursive {
				sc.ctes[cte.Ctename] = true
			}
		}
	}
	for _, cte := range ctes {
		w.walk(unwrap(cte.Ctequery))
		sc.ctes[cte.Ctename] = true
	}
	return w.pop
}

func (w *walker) push(sc *scope) { w.scopes = append(w.scopes, sc) }
func (w *walker) pop()           { w.scopes = w.scopes[:len(w.scopes)-1] }

// fromScope lists the names a FROM list brings into a query.
func (w *walker) fromScope(items ...*pg.Node) *scope {
	sc := &scope{}
	for _, item := range items {
		w.fromEntries(item, sc)
	}
	return sc
}

func (w *walker) fromEntries(item *pg.Node, sc *scope) {
	switch {
	case item == nil:
	case item.GetRangeVar() != nil:
		sc.entries = append(sc.entries, w.entry(item.GetRangeVar()))
	case item.GetJoinExpr() != nil:
		j := item.GetJoinExpr()
		w.fromEntries(j.Larg, sc)
		w.fromEntries(j.Rarg, sc)
		if j.Alias != nil {
			sc.entries = append(sc.entries, rangeEntry{name: j.Alias.Aliasname})
		}
	case item.GetRangeTableSample() != nil:
		w.fromEntries(item.GetRangeTableSample().Relation, sc)
	case item.GetRangeSubselect() != nil:
		sc.entries = append(sc.entries, rangeEntry{name: item.GetRangeSubselect().GetAlias().GetAliasname()})
	case item.GetRangeFunction() != nil:
		sc.entries = append(sc.entries, rangeEntry{name: item.GetRangeFunction().GetAlias().GetAliasname()})
	default:
		sc.entries = append(sc.entries, rangeEntry{}) // XMLTABLE, JSON_TABLE: not a relation
	}
}

// entry is the FROM item a relation makes; a WITH name is not a relation.
func (w *walker) entry(rv *pg.RangeVar) rangeEntry {
	if rv == nil {
		return rangeEntry{}
	}
	if w.isCTE(rv) {
		return rangeEntry{name: entryName(rv)}
	}
	return rangeEntry{name: entryName(rv), table: tableKey(rv)}
}

// targetEntry is the FROM item of a statement's target relation, which
// is always a relation: "WITH t AS (...) DELETE FROM t" deletes from the
// table t.
func targetEntry(rv *pg.RangeVar) rangeEntry {
	if rv == nil {
		return rangeEntry{}
	}
	return rangeEntry{name: entryName(rv), table: tableKey(rv)}
}

func entryName(rv *pg.RangeVar) string {
	if rv.Alias != nil {
		return rv.Alias.Aliasname
	}
	return rv.Relname
}

func tableKey(rv *pg.RangeVar) string {
	if rv.Schemaname == "" {
		return rv.Relname
	}
	return rv.Schemaname + "." + rv.Relname
}

func (w *walker) isCTE(rv *pg.RangeVar) bool {
	if rv.Schemaname != "" {
		return false
	}
	for i := len(w.scopes) - 1; i >= 0; i-- {
		if w.scopes[i].ctes[rv.Relname] {
			return true
		}
	}
	return false
}

// rangeVar records a relation a FROM list names and returns it as
// written, or "" for a WITH name.
func (w *walker) rangeVar(rv *pg.RangeVar, written bool) string {
	if rv == nil || w.isCTE(rv) {
		return ""
	}
	return w.target(rv, written)
}

// target records a relation that cannot be a WITH name: the target of
// INSERT, UPDATE, DELETE, MERGE, COPY or SELECT INTO.
func (w *walker) target(rv *pg.RangeVar, written bool) string {
	if rv == nil || rv.Relname == "" {
		return ""
	}
	w.st.Tables = append(w.st.Tables, Table{Schema: rv.Schemaname, Name: rv.Relname, Unqualified: rv.Schemaname == "", Written: written})
	if showsValuesOfEveryTable(rv) {
		w.st.Tables = append(w.st.Tables, Table{Name: "*"})
		w.st.Columns = append(w.st.Columns, Column{Table: "*", Name: "*"})
	}
	key := tableKey(rv)
	if w.objectWrite {
		w.column(key, "*")
	}
	return key
}

// valuesOfEveryTable are the system views and catalogs that show values
// of other relations' columns: the planner's statistics (sample values
// and most common values of every analysed column the reader may
// select) and the text of the statements other sessions run, which
// through the gateway are other people's, under the same upstream role.
var valuesOfEveryTable = setOf("pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic", "pg_statistic_ext_data",
	"pg_stat_activity", "pg_stat_statements", "pg_largeobject")

// showsValuesOfEveryTable reports whether reading rv reads the values of
// any table's columns: "SELECT histogram_bounds FROM pg_stats WHERE
// attname = 'ssn'" lists a labelled column's values without naming the
// column. A name without a schema may be the system's; case is ignored,
// so a quoted look-alike errs towards a hit.
func showsValuesOfEveryTable(rv *pg.RangeVar) bool {
	schema := strings.ToLower(rv.Schemaname)
	return (schema == "" || schema == "pg_catalog" || schema == "public") && valuesOfEveryTable[strings.ToLower(rv.Relname)]
}

func (w *walker) column(table, name string) {
	w.st.Columns = append(w.st.Columns, Column{Table: table, Name: name})
}

// resTargetNames records the columns an INSERT list or an UPDATE SET
// names.
func (w *walker) resTargetNames(table string, targets []*pg.Node) {
	for _, n := range targets {
		if rt := n.GetResTarget(); rt != nil && rt.Name != "" {
			w.column(table, rt.Name)
		}
	}
}

// lookup finds a FROM name, innermost query first.
func (w *walker) lookup(name string) (table string, found bool) {
	for i := len(w.scopes) - 1; i >= 0; i-- {
		for _, e := range w.scopes[i].entries {
			if e.name == name {
				return e.table, true
			}
		}
	}
	return "", false
}

// soleTable is the one relation every visible FROM item is (one table,
// or the same table under several names), or "" when an unqualified
// column might belong to more than one relation, or to something that is
// not a relation (a subquery, a WITH query, a function).
func (w *walker) soleTable() string {
	sole := ""
	for _, sc := range w.scopes {
		for _, e := range sc.entries {
			if e.table == "" || (sole != "" && e.table != sole) {
				return ""
			}
			sole = e.table
		}
	}
	return sole
}

// innermostFrom is the FROM list of the query being walked.
func (w *walker) innermostFrom() []rangeEntry {
	for i := len(w.scopes) - 1; i >= 0; i-- {
		if w.scopes[i].ctes == nil {
			return w.scopes[i].entries
		}
	}
	return nil
}

func (w *walker) columnRef(cr *pg.ColumnRef) {
	var names []string
	star := false
	for _, f := range cr.Fields {
		switch {
		case f.GetAStar() != nil:
			star = true
		case f.GetString_() != nil:
			names = append(names, f.GetString_().Sval)
		}
	}
	if star {
		w.starRef(names)
		return
	}
	switch len(names) {
	case 0:
	case 1:
		w.column(w.soleTable(), names[0])
		// A FROM name used as a column is the whole row:
		// SELECT c FROM customers c, row_to_json(c).
		if table, found := w.lookup(names[0]); found && table != "" {
			w.column(table, "*")
		}
	case 2:
		table, found := w.lookup(names[0])
		if !found {
			table = names[0]
		}
		w.column(table, names[1])
	default: // schema.table.column, or database.schema.table.column
		n := len(names)
		w.column(names[n-3]+"."+names[n-2], names[n-1])
	}
}

// starRef records SELECT *, t.* and schema.t.*: every column of the
// relations it covers.
func (w *walker) starRef(qualifier []string) {
	switch len(qualifier) {
	case 0:
		for _, e := range w.innermostFrom() {
			if e.table != "" {
				w.column(e.table, "*")
			}
		}
	case 1:
		table, found := w.lookup(qualifier[0])
		if !found {
			table = qualifier[0]
		}
		if table != "" {
			w.column(table, "*")
		}
	default:
		n := len(qualifier)
		w.column(qualifier[n-2]+"."+qualifier[n-1], "*")
	}
}

func (w *walker) funcCall(fc *pg.FuncCall) {
	names := stringList(fc.Funcname)
	if len(names) == 0 {
		return
	}
	name := names[len(names)-1]
	schema := strings.Join(names[:len(names)-1], ".")
	w.st.Functions = append(w.st.Functions, strings.Join(names, "."))
	if schema == "" {
		w.unqualified = true
	}
	if name == "set_config" && (schema == "pg_catalog" || (schema == "" && w.trustPath)) {
		w.setConfig(fc.Args)
		return
	}
	w.applyEffect(functionEffect(schema, name, w.trustPath))
}

func (w *walker) applyEffect(e effect) {
	w.raise(e.class)
	if e.class == ClassUnknown {
		w.st.UnknownFunction = true
	}
	w.st.ServerFile = w.st.ServerFile || e.serverFile
	w.st.Locks = w.st.Locks || e.locks
}

// setConfig is set_config(name, value, is_local): a SET by function call.
// A name that is not a constant may be any setting.
func (w *walker) setConfig(args []*pg.Node) {
	name, ok := "", false
	if len(args) > 0 {
		name, ok = constString(args[0])
	}
	if !ok {
		w.raise(ClassUnknown)
		w.st.SetRole, w.st.SearchPath, w.st.Lexing = true, true, true
		return
	}
	w.settingNamed(name)
}

// exprOperator checks the operator of an expression. BETWEEN is named by
// its keyword but compares with the built-in <= and >=.
func (w *walker) exprOperator(x *pg.A_Expr) {
	switch x.Kind {
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		w.checkOperator(nil, "<=")
	default:
		w.operator(x.Name)
	}
}

// operator checks an operator's name: a built-in symbol is trusted like a
// built-in function; anything else runs someone's function.
func (w *walker) operator(name []*pg.Node) {
	names := stringList(name)
	if len(names) == 0 {
		return
	}
	w.checkOperator(names[:len(names)-1], names[len(names)-1])
}

func (w *walker) checkOperator(schemaParts []string, symbol string) {
	schema := strings.Join(schemaParts, ".")
	if schema == "" {
		w.unqualified = true
	}
	builtin := schema == "pg_catalog" || (schema == "" && w.trustPath)
	if !builtin || !safeOperators[symbol] {
		w.st.Functions = append(w.st.Functions, "operator("+strings.Join(append(schemaParts, symbol), ".")+")")
		w.applyEffect(effect{class: ClassUnknown})
	}
}

// joinColumns records the columns a join compares without naming them as
// column references: JOIN ... USING (ssn) compares ssn, and NATURAL JOIN
// every column the two sides share, which is enough to test whether a
// given value exists.
func (w *walker) joinColumns(j *pg.JoinExpr) {
	for _, name := range stringList(j.UsingClause) {
		w.column("", name)
	}
	if j.IsNatural {
		sc := &scope{}
		w.fromEntries(j.Larg, sc)
		w.fromEntries(j.Rarg, sc)
		for _, e := range sc.entries {
			if e.table != "" {
				w.column(e.table, "*")
			}
		}
	}
}

// builtinSampleMethods are the TABLESAMPLE methods PostgreSQL and its
// contrib modules ship; another is an extension's C code.
var builtinSampleMethods = setOf("bernoulli", "system", "system_rows", "system_time")

func (w *walker) sampleMethod(method []*pg.Node) {
	names := stringList(method)
	if len(names) == 1 && builtinSampleMethods[names[0]] && w.trustPath {
		return
	}
	w.st.Functions = append(w.st.Functions, "tablesample("+strings.Join(names, ".")+")")
	w.applyEffect(effect{class: ClassUnknown})
}

// setting classifies SET and RESET.
func (w *walker) setting(s *pg.VariableSetStmt) {
	if s.Kind == pg.VariableSetKind_VAR_RESET || s.Kind == pg.VariableSetKind_VAR_RESET_ALL {
		w.st.Command = "RESET"
	} else {
		w.st.Command = "SET"
	}
	w.settingHazards(s)
	w.walkNodes(s.Args)
}

func (w *walker) settingHazards(s *pg.VariableSetStmt) {
	if s == nil {
		return
	}
	if s.Kind == pg.VariableSetKind_VAR_RESET_ALL {
		// Back to the defaults: search_path, and the server's own
		// reading of text.
		w.st.SearchPath, w.st.Lexing = true, true
		return
	}
	w.settingNamed(s.Name)
}

// settingNamed flags the settings that change who the session is, how it
// resolves names, or how its text is read.
func (w *walker) settingNamed(name string) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "role", "session_authorization":
		w.st.SetRole = true
	case "search_path":
		w.st.SearchPath = true
	case "client_encoding", "standard_conforming_strings", "backslash_quote":
		w.st.Lexing = true
	case "session_replication_role":
		// "replica" turns off triggers and foreign keys: a superuser's switch.
		w.raise(ClassPrivilege)
	}
}

func (w *walker) copyStmt(c *pg.CopyStmt) {
	switch {
	case c.IsProgram:
		// COPY ... PROGRAM runs a shell command as the server's OS user.
		w.st.CopyProgram = true
		w.raise(ClassPrivilege)
	case c.Filename != "":
		w.st.ServerFile = true
		w.raise(ClassPrivilege)
	}
	if c.IsFrom {
		w.raise(ClassWrite)
	} else {
		w.raise(ClassRead)
	}
	if c.Query != nil {
		// COPY (query) TO: the query is the statement that runs, and
		// may itself be a DELETE ... RETURNING.
		if q := unwrap(c.Query); q != nil {
			w.top = q.Interface()
			w.raise(ClassRead)
			w.walk(q)
		}
	}
	if c.Relation == nil {
		return
	}
	target := w.target(c.Relation, c.IsFrom)
	if len(c.Attlist) == 0 {
		w.column(target, "*")
	}
	for _, name := range stringList(c.Attlist) {
		w.column(target, name)
	}
	w.push(&scope{entries: []rangeEntry{targetEntry(c.Relation)}})
	defer w.pop()
	w.walk(unwrap(c.WhereClause))
}

// explain: EXPLAIN only plans its statement, so it is a utility; EXPLAIN
// ANALYZE runs it, so it is the statement ("EXPLAIN ANALYZE DELETE"
// deletes). Planning may still evaluate a function, so an unknown one
// makes even a plain EXPLAIN unknown.
func (w *walker) explain(e *pg.ExplainStmt) {
	inner := &walker{st: &Statement{}, trustPath: w.trustPath, prepared: w.prepared}
	inner.statement(e.Query)
	got := inner.finish()
	w.st.Tables = append(w.st.Tables, got.Tables...)
	w.st.Columns = append(w.st.Columns, got.Columns...)
	w.st.Functions = append(w.st.Functions, got.Functions...)
	w.unqualified = w.unqualified || got.SearchPathDependent
	if explainAnalyze(e.Options) {
		w.st.Command = "EXPLAIN ANALYZE"
		w.raise(got.Class)
		w.st.merge(got.Hazards)
		w.st.Modifies = append(w.st.Modifies, got.Modifies...)
		return
	}
	w.raise(ClassUtility)
	if got.UnknownFunction {
		w.raise(ClassUnknown)
		w.st.UnknownFunction = true
	}
}

// explainAnalyze reads the ANALYZE option the way PostgreSQL's
// defGetBoolean does, counting anything but an explicit false as true.
func explainAnalyze(options []*pg.Node) bool {
	analyze := false
	for _, n := range options {
		d := n.GetDefElem()
		if d == nil || strings.ToLower(d.Defname) != "analyze" {
			continue
		}
		analyze = !isFalse(d.Arg)
	}
	return analyze
}

func isFalse(arg *pg.Node) bool {
	if arg == nil {
		return false
	}
	if b := arg.GetBoolean(); b != nil {
		return !b.Boolval
	}
	if i := arg.GetInteger(); i != nil {
		return i.Ival == 0
	}
	if ac := arg.GetAConst(); ac != nil {
		if ac.GetIval() != nil {
			return ac.GetIval().Ival == 0
		}
		if ac.GetBoolval() != nil {
			return !ac.GetBoolval().Boolval
		}
	}
	s, ok := constString(arg)
	if !ok {
		return false
	}
	switch strings.ToLower(s) {
	case "false", "off", "no", "0", "f", "of", "n":
		return true
	}
	return false
}

// execute: EXECUTE of a statement prepared earlier (in the same string,
// or, through a Session, by an earlier one) is that statement; any other
// is unknown.
func (w *walker) execute(x *pg.ExecuteStmt) {
	w.st.Executes = x.Name
	if p, ok := w.prepared(x.Name); ok {
		w.runs(p)
	} else {
		w.raise(ClassUnknown)
	}
	w.walkNodes(x.Params)
}

// runs gives the statement what p does: an EXECUTE of p, a FETCH from
// a cursor over p.
func (w *walker) runs(p Statement) {
	w.raise(p.Class)
	w.st.merge(p.Hazards)
	w.st.Tables = append(w.st.Tables, p.Tables...)
	w.st.Columns = append(w.st.Columns, p.Columns...)
	w.st.Functions = append(w.st.Functions, p.Functions...)
	w.st.Modifies = append(w.st.Modifies, p.Modifies...)
}

// fetch: FETCH and MOVE run the query of the cursor they name, FETCH
// returning its rows, so each is the cursor's statement: a FETCH from a
// cursor over a labelled read reads the label, however much later. SQL
// names protocol portals as it names cursors, so a Bind of "SELECT ssn
// FROM customers" under a name, fetched with FETCH and never executed,
// must not pass as a plain read. Through a Session, a cursor not
// DECLAREd by this client (a protocol portal, one a function opened) is
// unknown.
func (w *walker) fetch(x *pg.FetchStmt) {
	if x.Ismove {
		w.raise(ClassSession)
	} else {
		w.raise(ClassRead)
	}
	w.st.Fetches = x.Portalname
	if c, ok := w.prepared(CursorKey(x.Portalname)); ok {
		w.runs(c)
	} else if w.session {
		w.raise(ClassUnknown)
	}
}

func (w *walker) drop(d *pg.DropStmt) {
	w.st.Command = "DROP " + strings.ReplaceAll(strings.TrimPrefix(d.RemoveType.String(), "OBJECT_"), "_", " ")
	w.raise(ClassDDL)
	switch d.RemoveType {
	case pg.ObjectType_OBJECT_POLICY:
		w.raise(ClassPrivilege) // dropping a row-level security policy opens rows
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW,
		pg.ObjectType_OBJECT_FOREIGN_TABLE, pg.ObjectType_OBJECT_SEQUENCE, pg.ObjectType_OBJECT_INDEX:
		for _, obj := range d.Objects {
			names := stringList(obj.GetList().GetItems())
			if len(names) == 0 {
				continue
			}
			rv := &pg.RangeVar{Relname: names[len(names)-1]}
			if len(names) > 1 {
				rv.Schemaname = names[len(names)-2]
			}
			w.st.Tables = append(w.st.Tables, Table{Schema: rv.Schemaname, Name: rv.Relname, Unqualified: rv.Schemaname == "", Written: true})
			w.column(tableKey(rv), "*")
		}
	case pg.ObjectType_OBJECT_SCHEMA:
		if d.Behavior == pg.DropBehavior_DROP_CASCADE {
			// CASCADE drops every relation in the schema.
			for _, schema := range stringList(d.Objects) {
				w.st.Tables = append(w.st.Tables, Table{Schema: schema, Name: "*", Written: true})
				w.column(schema+".*", "*")
			}
		}
	}
}

// codeDefinitions are the statements that set DefinesCode, by node name.
var codeDefinitions = map[string]bool{
	"CreateFunctionStmt": true, "CreateTrigStmt": true, "CreateEventTrigStmt": true,
	"CreateExtensionStmt": true, "AlterExtensionStmt": true, "AlterExtensionContentsStmt": true,
	"CreateCastStmt": true, "DefineStmt": true, "CreateOpClassStmt": true, "CreateOpFamilyStmt": true,
	"AlterOpFamilyStmt": true, "CreatePLangStmt": true, "CreateTransformStmt": true, "CreateConversionStmt": true,
}

// modifies names the data-modifying commands one INSERT, UPDATE, DELETE
// or MERGE runs: itself, the UPDATE of an INSERT ... ON CONFLICT DO
// UPDATE, and each action of a MERGE.
func modifies(m proto.Message) []string {
	switch x := m.(type) {
	case *pg.InsertStmt:
		if x.GetOnConflictClause().GetAction() == pg.OnConflictAction_ONCONFLICT_UPDATE {
			return []string{"INSERT", "UPDATE"}
		}
		return []string{"INSERT"}
	case *pg.UpdateStmt:
		return []string{"UPDATE"}
	case *pg.DeleteStmt:
		return []string{"DELETE"}
	case *pg.MergeStmt:
		out := []string{"MERGE"}
		for _, n := range x.GetMergeWhenClauses() {
			switch n.GetMergeWhenClause().GetCommandType() {
			case pg.CmdType_CMD_INSERT:
				out = append(out, "INSERT")
			case pg.CmdType_CMD_UPDATE:
				out = append(out, "UPDATE")
			case pg.CmdType_CMD_DELETE:
				out = append(out, "DELETE")
			}
		}
		return out
	}
	return nil
}

// destroys reports a statement that drops an object (every node
// PostgreSQL names Drop...: DropStmt, DropdbStmt, DropOwnedStmt,
// DropRoleStmt, DropTableSpaceStmt, DropSubscriptionStmt, ...), drops a
// column or a constraint, rewrites a column's values by changing its
// type (its USING expression may replace every value, a narrower type
// cuts them), or truncates.
func destroys(m protoreflect.Message) bool {
	switch x := m.Interface().(type) {
	case *pg.TruncateStmt:
		return true
	case *pg.AlterTableStmt:
		for _, n := range x.Cmds {
			switch n.GetAlterTableCmd().GetSubtype() {
			case pg.AlterTableType_AT_DropColumn, pg.AlterTableType_AT_DropConstraint, pg.AlterTableType_AT_AlterColumnType:
				return true
			}
		}
		return false
	}
	return strings.HasPrefix(string(m.Descriptor().Name()), "Drop")
}

// enablesCode reports an ALTER TABLE that turns on a trigger or a rule
// already defined: code a later INSERT, UPDATE or DELETE runs out of the
// classifier's sight, as if it had just been created.
func enablesCode(m protoreflect.Message) bool {
	a, ok := m.Interface().(*pg.AlterTableStmt)
	if !ok {
		return false
	}
	for _, n := range a.Cmds {
		switch n.GetAlterTableCmd().GetSubtype() {
		case pg.AlterTableType_AT_EnableTrig, pg.AlterTableType_AT_EnableAlwaysTrig, pg.AlterTableType_AT_EnableReplicaTrig,
			pg.AlterTableType_AT_EnableTrigAll, pg.AlterTableType_AT_EnableTrigUser,
			pg.AlterTableType_AT_EnableRule, pg.AlterTableType_AT_EnableAlwaysRule, pg.AlterTableType_AT_EnableReplicaRule:
			return true
		}
	}
	return false
}

func alterTableClass(a *pg.AlterTableStmt) Class {
	for _, n := range a.Cmds {
		switch n.GetAlterTableCmd().GetSubtype() {
		case pg.AlterTableType_AT_ChangeOwner, pg.AlterTableType_AT_EnableRowSecurity, pg.AlterTableType_AT_DisableRowSecurity,
			pg.AlterTableType_AT_ForceRowSecurity, pg.AlterTableType_AT_NoForceRowSecurity:
			return ClassPrivilege
		}
	}
	return ClassDDL
}

func securityDefiner(options []*pg.Node) bool {
	for _, n := range options {
		if d := n.GetDefElem(); d != nil && d.Defname == "security" {
			return !isFalse(d.Arg)
		}
	}
	return false
}

// privilegeStatements change who may do what.
var privilegeStatements = setOf(
	"GrantStmt", "GrantRoleStmt", "AlterDefaultPrivilegesStmt", "CreateRoleStmt", "AlterRoleStmt",
	"AlterRoleSetStmt", "DropRoleStmt", "CreatePolicyStmt", "AlterPolicyStmt", "AlterOwnerStmt",
	"DropOwnedStmt", "ReassignOwnedStmt", "SecLabelStmt", "CreateUserMappingStmt", "AlterUserMappingStmt",
	"DropUserMappingStmt", "AlterSystemStmt", "AlterDatabaseSetStmt",
)

// ddlStatements change the schema.
var ddlStatements = setOf(
	"CreateSchemaStmt", "AlterTableStmt", "ReplicaIdentityStmt", "AlterCollationStmt", "AlterDomainStmt",
	"CreateStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt", "AlterTableSpaceOptionsStmt",
	"AlterTableMoveAllStmt", "CreateExtensionStmt", "AlterExtensionStmt", "AlterExtensionContentsStmt",
	"CreateFdwStmt", "AlterFdwStmt", "CreateForeignServerStmt", "AlterForeignServerStmt",
	"CreateForeignTableStmt", "ImportForeignSchemaStmt", "CreateAmStmt", "CreateTrigStmt",
	"CreateEventTrigStmt", "AlterEventTrigStmt", "CreatePLangStmt", "CreateSeqStmt", "AlterSeqStmt",
	"DefineStmt", "CreateDomainStmt", "CreateOpClassStmt", "CreateOpFamilyStmt", "AlterOpFamilyStmt",
	"DropStmt", "CommentStmt", "IndexStmt", "CreateStatsStmt", "AlterStatsStmt", "CreateFunctionStmt",
	"AlterFunctionStmt", "RenameStmt", "AlterObjectDependsStmt", "AlterObjectSchemaStmt",
	"AlterOperatorStmt", "AlterTypeStmt", "RuleStmt", "CompositeTypeStmt", "CreateEnumStmt",
	"CreateRangeStmt", "AlterEnumStmt", "ViewStmt", "CreatedbStmt", "AlterDatabaseStmt",
	"AlterDatabaseRefreshCollStmt", "DropdbStmt", "RefreshMatViewStmt", "CreateConversionStmt",
	"CreateCastStmt", "CreateTransformStmt", "AlterTSDictionaryStmt", "AlterTSConfigurationStmt",
	"CreatePublicationStmt", "AlterPublicationStmt", "CreateSubscriptionStmt", "AlterSubscriptionStmt",
	"DropSubscriptionStmt", "CreateTableAsStmt",
)

// typeClass is the class of a statement type with no rule of its own: a
// type on neither list is one this classifier does not know, so unknown.
func typeClass(m protoreflect.Message) Class {
	name := string(m.Descriptor().Name())
	switch {
	case privilegeStatements[name]:
		return ClassPrivilege
	case ddlStatements[name]:
		return ClassDDL
	}
	return ClassUnknown
}

// commandNames are the statement types whose command PostgreSQL names
// differently from their node; the rest are spelled from the node
// ("AlterTableStmt" is ALTER TABLE).
var commandNames = map[string]string{
	"SelectStmt": "SELECT", "InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE",
	"MergeStmt": "MERGE", "CreateStmt": "CREATE TABLE", "IndexStmt": "CREATE INDEX", "ViewStmt": "CREATE VIEW",
	"RuleStmt": "CREATE RULE", "CreatedbStmt": "CREATE DATABASE", "DropdbStmt": "DROP DATABASE",
	"CreateTrigStmt": "CREATE TRIGGER", "CreateEventTrigStmt": "CREATE EVENT TRIGGER", "DefineStmt": "CREATE",
	"CreateSeqStmt": "CREATE SEQUENCE", "AlterSeqStmt": "ALTER SEQUENCE", "CreatePLangStmt": "CREATE LANGUAGE",
	"CreateFunctionStmt": "CREATE FUNCTION", "AlterFunctionStmt": "ALTER FUNCTION", "CompositeTypeStmt": "CREATE TYPE",
	"CreateEnumStmt": "CREATE TYPE", "CreateRangeStmt": "CREATE TYPE", "AlterEnumStmt": "ALTER TYPE",
	"RenameStmt": "ALTER", "AlterObjectSchemaStmt": "ALTER", "AlterOwnerStmt": "ALTER", "CommentStmt": "COMMENT",
	"SecLabelStmt": "SECURITY LABEL", "CopyStmt": "COPY", "ExplainStmt": "EXPLAIN", "DoStmt": "DO", "CallStmt": "CALL",
	"VariableShowStmt": "SHOW", "DiscardStmt": "DISCARD", "DeallocateStmt": "DEALLOCATE", "ClosePortalStmt": "CLOSE",
	"ConstraintsSetStmt": "SET CONSTRAINTS", "CheckPointStmt": "CHECKPOINT", "LoadStmt": "LOAD", "LockStmt": "LOCK TABLE",
	"TruncateStmt": "TRUNCATE", "ListenStmt": "LISTEN", "UnlistenStmt": "UNLISTEN", "NotifyStmt": "NOTIFY",
	"ReindexStmt": "REINDEX", "ClusterStmt": "CLUSTER", "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
	"AlterSystemStmt": "ALTER SYSTEM", "CreateRoleStmt": "CREATE ROLE", "AlterRoleStmt": "ALTER ROLE",
	"AlterRoleSetStmt": "ALTER ROLE", "DropRoleStmt": "DROP ROLE", "AlterDatabaseSetStmt": "ALTER DATABASE",
	"CreateSchemaStmt": "CREATE SCHEMA", "AlterDefaultPrivilegesStmt": "ALTER DEFAULT PRIVILEGES",
	"ReassignOwnedStmt": "REASSIGN OWNED", "DropOwnedStmt": "DROP OWNED", "CreateExtensionStmt": "CREATE EXTENSION",
	"AlterExtensionStmt": "ALTER EXTENSION",
}

var transactionCommands = map[pg.TransactionStmtKind]string{
	pg.TransactionStmtKind_TRANS_STMT_BEGIN: "BEGIN", pg.TransactionStmtKind_TRANS_STMT_START: "START TRANSACTION",
	pg.TransactionStmtKind_TRANS_STMT_COMMIT: "COMMIT", pg.TransactionStmtKind_TRANS_STMT_ROLLBACK: "ROLLBACK",
	pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT: "SAVEPOINT", pg.TransactionStmtKind_TRANS_STMT_RELEASE: "RELEASE",
	pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO", pg.TransactionStmtKind_TRANS_STMT_PREPARE: "PREPARE TRANSACTION",
	pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED: "COMMIT PREPARED", pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
}

// commandName is the command a statement node is, as PostgreSQL names it.
func commandName(m protoreflect.Message) string {
	switch x := m.Interface().(type) {
	case *pg.TransactionStmt:
		if name, ok := transactionCommands[x.Kind]; ok {
			return name
		}
	case *pg.VacuumStmt:
		if !x.IsVacuumcmd {
			return "ANALYZE"
		}
	case *pg.GrantStmt:
		if !x.IsGrant {
			return "REVOKE"
		}
		return "GRANT"
	case *pg.GrantRoleStmt:
		if !x.IsGrant {
			return "REVOKE"
		}
		return "GRANT"
	case *pg.FetchStmt:
		if x.Ismove {
			return "MOVE"
		}
		return "FETCH"
	case *pg.CreateTableAsStmt:
		switch {
		case x.IsSelectInto:
			return "SELECT INTO"
		case x.Objtype == pg.ObjectType_OBJECT_MATVIEW:
			return "CREATE MATERIALIZED VIEW"
		}
		return "CREATE TABLE AS"
	}
	name := string(m.Descriptor().Name())
	if cmd, ok := commandNames[name]; ok {
		return cmd
	}
	return spellNode(strings.TrimSuffix(name, "Stmt"))
}

// spellNode turns "AlterTableSpaceOptions" into "ALTER TABLE SPACE OPTIONS".
func spellNode(name string) string {
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// stringList returns the String values of a list of nodes (a qualified
// name), skipping anything else.
func stringList(nodes []*pg.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

// constString is the value of a string constant, possibly cast
// ('search_path'::text).
func constString(n *pg.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		return constString(tc.Arg)
	}
	if ac := n.GetAConst(); ac != nil && ac.GetSval() != nil {
		return ac.GetSval().Sval, true
	}
	if s := n.GetString_(); s != nil {
		return s.Sval, true
	}
	return "", false
}
