// Package sqlclass says what a PostgreSQL query string does before it
// reaches the server: the class of each statement (read, write, DDL,
// privilege, session, utility or unknown), the tables, columns and
// functions it touches, and the hazards a policy may refuse outright
// (a write hidden in a read, COPY ... PROGRAM, SET ROLE, a DO block, an
// UPDATE without WHERE, a search_path change, a function that may have
// side effects).
//
// Statements are parsed with PostgreSQL's own grammar (libpg_query, through
// cgo), so the classifier reads a string exactly as the server will:
// comments, dollar quoting and string escapes cannot hide a keyword from
// it. Anything it cannot read with certainty is classed unknown, the most
// sensitive class, so a caller that fails closed on unknown is never
// talked into a weaker decision by an unusual statement.
//
// Classify reads one string; a Classifier adds a bounded cache keyed by
// the text; a Session carries what a connection's earlier strings change
// (prepared statements, search_path, how text is read); Label says which
// labelled tables and columns a string touches.
//
// A build without cgo has no parser: every string is then unknown (see
// ParserAvailable).
package sqlclass

import (
	"errors"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/errkind"
)

// ErrUnparsable is returned for a string the PostgreSQL grammar refuses,
// or that the server would read differently from the parser (a NUL byte,
// invalid UTF-8). Its Facts are ClassUnknown.
var ErrUnparsable = errkind.New(errkind.Invalid, "sql: statement does not parse")

// CursorKey is the name the cursor name is kept under beside the
// prepared statements, by a Session and by a caller that tracks them
// together (the database gateway, which notes the cycle each was made
// in): no statement name holds a NUL byte.
func CursorKey(name string) string { return "\x00cursor\x00" + name }

// errSyntax marks an ErrUnparsable that the server's own grammar refuses
// too: the text never runs, so it changes nothing on the connection. Its
// text is empty, so it adds nothing to the message it is wrapped in.
var errSyntax = errors.New("")

// ErrNoParser is returned by a build without cgo, which has no SQL parser:
// every string is ClassUnknown. Build with CGO_ENABLED=1 to classify.
var ErrNoParser = errors.New("sql: this build has no SQL parser (built without cgo); every statement is unknown — build with CGO_ENABLED=1")

// Hazards are the properties of a statement that policies may refuse or
// step up regardless of its class. Each names an attack on a database
// gateway that reads only the first keyword of a statement.
type Hazards struct {
	// MultiStatement: the string holds more than one statement
	// ("SELECT 1; DROP TABLE t"); only set on Facts.
	MultiStatement bool `json:"multi_statement,omitempty"`
	// HiddenWrite: a data-modifying statement nested inside another,
	// such as WITH d AS (DELETE ...) SELECT ...
	HiddenWrite bool `json:"hidden_write,omitempty"`
	// UnknownFunction: a function or operator not on the allow-list of
	// built-ins without side effects; it may write, so the statement is
	// ClassUnknown.
	UnknownFunction bool `json:"unknown_function,omitempty"`
	// NoWhere: UPDATE or DELETE without a WHERE clause, or with one that
	// names no column of the target (WHERE true, WHERE 1=1), and
	// TRUNCATE: every row.
	NoWhere bool `json:"no_where,omitempty"`
	// CopyProgram: COPY ... TO/FROM PROGRAM runs a shell command on the
	// database server.
	CopyProgram bool `json:"copy_program,omitempty"`
	// ServerFile: reads or writes a file on the database server (COPY to
	// or from a file name, pg_read_file, lo_import, lo_export).
	ServerFile bool `json:"server_file,omitempty"`
	// SetRole: SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE, DISCARD
	// ALL, or set_config('role', ...): the statements after it run as
	// someone else.
	SetRole bool `json:"set_role,omitempty"`
	// DoBlock: DO runs an anonymous code block the classifier cannot see
	// into.
	DoBlock bool `json:"do_block,omitempty"`
	// SearchPath: changes how unqualified names resolve (SET search_path,
	// SET SCHEMA, set_config('search_path', ...), RESET ALL, DISCARD ALL,
	// ALTER ROLE/DATABASE ... SET search_path), so a table or function
	// named later may be an attacker's object.
	SearchPath bool `json:"search_path,omitempty"`
	// Lexing: changes how the server reads the text of later query
	// strings (SET client_encoding, SET NAMES,
	// standard_conforming_strings, backslash_quote). In SJIS or GBK a
	// quote or backslash byte may fall inside a character; with
	// standard_conforming_strings off, 'a\' does not end a string. The
	// parser reads UTF-8 with standard strings, so after such a change it
	// could see a harmless string where the server sees a DROP.
	Lexing bool `json:"lexing,omitempty"`
	// Locks: takes row or table locks (SELECT ... FOR UPDATE/SHARE, LOCK
	// TABLE, advisory locks) that can stall other sessions.
	Locks bool `json:"locks,omitempty"`
	// Destructive: DROP of any object (DROP TABLE, DROP SCHEMA, DROP
	// DATABASE, DROP OWNED, DROP ROLE, ...), ALTER TABLE ... DROP COLUMN,
	// or TRUNCATE: the statement destroys data or schema a backup must
	// bring back. A string of several statements, an EXECUTE and a
	// prepared statement carry it from their parts.
	Destructive bool `json:"destructive,omitempty"`
	// DefinesCode: defines code the database runs later, out of the
	// classifier's sight: a function or procedure (its body may DROP or
	// TRUNCATE, and a trigger, a column default, a view or an index can
	// run it under an innocent INSERT or SELECT), a trigger or event
	// trigger, an extension (its scripts run SQL), a cast, an operator,
	// aggregate or base type, an operator class or family, a language, a
	// transform or a conversion.
	DefinesCode bool `json:"defines_code,omitempty"`
	// SearchPathDependent: names a table or function without a schema, so
	// what it reaches depends on the session's search_path.
	SearchPathDependent bool `json:"search_path_dependent,omitempty"`
}

func (h *Hazards) merge(o Hazards) {
	h.MultiStatement = h.MultiStatement || o.MultiStatement
	h.HiddenWrite = h.HiddenWrite || o.HiddenWrite
	h.UnknownFunction = h.UnknownFunction || o.UnknownFunction
	h.NoWhere = h.NoWhere || o.NoWhere
	h.CopyProgram = h.CopyProgram || o.CopyProgram
	h.ServerFile = h.ServerFile || o.ServerFile
	h.SetRole = h.SetRole || o.SetRole
	h.DoBlock = h.DoBlock || o.DoBlock
	h.SearchPath = h.SearchPath || o.SearchPath
	h.Lexing = h.Lexing || o.Lexing
	h.Locks = h.Locks || o.Locks
	h.SearchPathDependent = h.SearchPathDependent || o.SearchPathDependent
	h.Destructive = h.Destructive || o.Destructive
	h.DefinesCode = h.DefinesCode || o.DefinesCode
}

// Table is a relation a statement names: a table, view, sequence or index
// (the classifier cannot tell them apart without the catalog).
type Table struct {
	// Schema is empty when the statement gave none.
	Schema string `json:"schema,omitempty"`
	// Name is the relation's name, or "*" for every relation (in Schema,
	// or everywhere): DROP SCHEMA ... CASCADE, DROP OWNED, DROP DATABASE.
	Name string `json:"name"`
	// Unqualified: no schema was given, so the session's search_path
	// decides which relation this is.
	Unqualified bool `json:"unqualified,omitempty"`
	// Written: the statement changes the relation's rows or definition.
	Written bool `json:"written,omitempty"`
}

// String is schema.name, or name when no schema was given.
func (t Table) String() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Column is a column a statement reads, writes or filters on.
type Column struct {
	// Table is the relation the column belongs to, as written
	// (schema.table or table), resolved through aliases; empty when the
	// column cannot be pinned to one relation (several tables in scope, a
	// CTE or subquery column). An unresolved column is matched against
	// every table of its statement when labels are checked.
	Table string `json:"table,omitempty"`
	// Name is the column's name; "*" stands for every column (SELECT *,
	// a whole-row reference, INSERT without a column list, COPY of a
	// whole table, DELETE, DROP, TRUNCATE).
	Name string `json:"name"`
}

// String is table.column, or column when unresolved.
func (c Column) String() string {
	if c.Table == "" {
		return c.Name
	}
	return c.Table + "." + c.Name
}

// Statement is what one statement of a query string does.
type Statement struct {
	// Command is the statement's command, as PostgreSQL names it: SELECT,
	// UPDATE, DROP TABLE, SET, BEGIN, ...
	Command string `json:"command"`
	Class   Class  `json:"class"`
	Hazards
	Tables    []Table  `json:"tables,omitempty"`
	Columns   []Column `json:"columns,omitempty"`
	Functions []string `json:"functions,omitempty"`
	// Modifies are the data-modifying commands the statement runs, its
	// own and nested ones: INSERT, UPDATE, DELETE, MERGE. WITH d AS
	// (DELETE ...) SELECT runs DELETE, INSERT ... ON CONFLICT DO UPDATE
	// also UPDATE, a MERGE each of its actions, an EXECUTE what its
	// prepared statement runs. A rule or trigger on a written table is
	// not seen.
	Modifies []string `json:"modifies,omitempty"`
	// Prepares is the name PREPARE gives this statement, and Executes the
	// prepared statement EXECUTE runs: a gateway that saw the PREPARE in
	// an earlier query string classifies the EXECUTE as that statement.
	Prepares string `json:"prepares,omitempty"`
	Executes string `json:"executes,omitempty"`
	// Declares is the cursor DECLARE names, and Fetches the cursor FETCH
	// or MOVE reads: a FETCH runs its cursor's query.
	Declares string `json:"declares,omitempty"`
	Fetches  string `json:"fetches,omitempty"`
	// forgets is the prepared statement DEALLOCATE removes; forgetsAll:
	// DEALLOCATE ALL or DISCARD ALL removes them all.
	forgets    string
	forgetsAll bool
	// Fingerprint identifies the statement's shape regardless of its
	// constants (pg_query's fingerprint); Normalized is its text with
	// every constant replaced by $n. Neither carries a parameter value.
	Fingerprint string `json:"fingerprint,omitempty"`
	Normalized  string `json:"normalized,omitempty"`
}

// Facts is what a query string does: its statements, and their union.
type Facts struct {
	// Class is the most sensitive class of the statements; ClassUnknown
	// when the string does not parse.
	Class Class `json:"class"`
	Hazards
	Statements []Statement `json:"statements,omitempty"`
	Tables     []Table     `json:"tables,omitempty"`
	Columns    []Column    `json:"columns,omitempty"`
	Functions  []string    `json:"functions,omitempty"`
	Modifies   []string    `json:"modifies,omitempty"`
	// Fingerprint and Normalized cover the whole string; empty when it
	// does not parse (the text is then never repeated).
	Fingerprint string `json:"fingerprint,omitempty"`
	Normalized  string `json:"normalized,omitempty"`
}

// unknownFacts is what a string that cannot be read with certainty is:
// the most sensitive class, nothing else claimed.
func unknownFacts() Facts {
	return Facts{Class: ClassUnknown}
}

// summarize fills the string-wide facts from the statements.
func (f *Facts) summarize() {
	f.Class = ClassSession
	for _, st := range f.Statements {
		f.Class = maxClass(f.Class, st.Class)
		f.merge(st.Hazards)
		f.Tables = append(f.Tables, st.Tables...)
		f.Columns = append(f.Columns, st.Columns...)
		f.Functions = append(f.Functions, st.Functions...)
		f.Modifies = append(f.Modifies, st.Modifies...)
	}
	f.MultiStatement = len(f.Statements) > 1
	f.Modifies = uniqueStrings(f.Modifies)
	f.Tables = uniqueTables(f.Tables)
	f.Columns = uniqueColumns(f.Columns)
	f.Functions = uniqueStrings(f.Functions)
}

// clone copies every slice, so a caller that edits its Facts cannot edit
// the cached entry other callers receive. The copies of each kind share
// one allocation, each capped at its own length, so that appending to
// one reallocates it rather than writing over the next.
func (f Facts) clone() Facts {
	out := f
	// One pool per kind of slice: Functions and Modifies share the
	// strings' pool.
	nt, nc, ns := len(f.Tables), len(f.Columns), len(f.Functions)+len(f.Modifies)
	for _, st := range f.Statements {
		nt, nc, ns = nt+len(st.Tables), nc+len(st.Columns), ns+len(st.Functions)+len(st.Modifies)
	}
	tables, columns, strs := make([]Table, 0, nt), make([]Column, 0, nc), make([]string, 0, ns)
	if f.Statements != nil {
		out.Statements = make([]Statement, len(f.Statements))
		for i, st := range f.Statements {
			st.Tables = cloneInto(&tables, st.Tables)
			st.Columns = cloneInto(&columns, st.Columns)
			st.Functions = cloneInto(&strs, st.Functions)
			st.Modifies = cloneInto(&strs, st.Modifies)
			out.Statements[i] = st
		}
	}
	out.Tables = cloneInto(&tables, f.Tables)
	out.Columns = cloneInto(&columns, f.Columns)
	out.Functions = cloneInto(&strs, f.Functions)
	out.Modifies = cloneInto(&strs, f.Modifies)
	return out
}

// cloneInto copies src to the end of *buf, which has room for it, and
// returns the copy capped at its length (nil for nil, as slices.Clone).
func cloneInto[T any](buf *[]T, src []T) []T {
	if src == nil {
		return nil
	}
	start := len(*buf)
	*buf = append(*buf, src...)
	return (*buf)[start:len(*buf):len(*buf)]
}

// size estimates the bytes an entry holds, for the cache's budget.
func (f Facts) size() int {
	n := 256 + len(f.Fingerprint) + len(f.Normalized)
	for _, st := range f.Statements {
		n += 256 + len(st.Normalized) + len(st.Fingerprint) + len(st.Command)
		for _, t := range st.Tables {
			n += 48 + len(t.Schema) + len(t.Name)
		}
		for _, c := range st.Columns {
			n += 32 + len(c.Table) + len(c.Name)
		}
		for _, fn := range st.Functions {
			n += 16 + len(fn)
		}
		n += 16 * len(st.Modifies)
	}
	return 2 * n // the string-wide unions repeat the statements' lists
}

func uniqueTables(ts []Table) []Table {
	merged := map[Table]bool{} // key without Written → written
	for _, t := range ts {
		key := Table{Schema: t.Schema, Name: t.Name, Unqualified: t.Unqualified}
		merged[key] = merged[key] || t.Written
	}
	out := make([]Table, 0, len(merged))
	for t, written := range merged {
		t.Written = written
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Table) int {
		if c := strings.Compare(a.String(), b.String()); c != 0 {
			return c
		}
		return strings.Compare(a.Schema, b.Schema)
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

func uniqueColumns(cs []Column) []Column {
	slices.SortFunc(cs, func(a, b Column) int {
		if c := strings.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	cs = slices.Compact(cs)
	if len(cs) == 0 {
		return nil
	}
	return cs
}

func uniqueStrings(ss []string) []string {
	slices.Sort(ss)
	ss = slices.Compact(ss)
	if len(ss) == 0 {
		return nil
	}
	return ss
}
