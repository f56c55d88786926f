package policy

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/stepgate/stepgate/internal/yamlnode"
)

// The statements condition narrows a policy to SQL statements through the
// database gateway. Every list that is set must match (like the other
// conditions), and a list matches when the statement has any of its
// values. Each list errs towards matching: a policy that names what
// matters must not be talked out of applying by the way a statement is
// written (a schema, quoting, case, a write hidden inside a read, an
// unreadable statement). There is deliberately no exclude form: an
// exclusion that errs the same way would let exactly those statements
// escape the policy.

// Statement classes, least sensitive first: the order of the database
// gateway's classifier (sqlclass.Class). The policy engine does not import
// the gateway, so the order is repeated here; a test in the gateway
// checks that the two agree.
const (
	StatementSession   = "session"
	StatementRead      = "read"
	StatementUtility   = "utility"
	StatementWrite     = "write"
	StatementDDL       = "ddl"
	StatementPrivilege = "privilege"
	StatementUnknown   = "unknown"
)

var statementClasses = []string{StatementSession, StatementRead, StatementUtility, StatementWrite, StatementDDL, StatementPrivilege, StatementUnknown}

// StatementClasses returns the statement classes, least sensitive first.
func StatementClasses() []string { return slices.Clone(statementClasses) }

// statementRank is the class's place in statementClasses. A class the
// engine does not know ranks as unknown, the most sensitive: a newer
// gateway's class never weakens a policy.
func statementRank(class string) int {
	if i := slices.Index(statementClasses, class); i >= 0 {
		return i
	}
	return len(statementClasses) - 1
}

// statementCond is a compiled statements condition.
type statementCond struct {
	set bool
	// minClass is the least sensitive class listed; -1 when classes is
	// not set. A class matches itself and every more sensitive one.
	minClass int
	// commands are upper case, single-spaced.
	commands []string
	tables   []tableName
	labels   []string
}

// tableName is a table as a policy or a statement names it, lower case;
// schema is empty when none was given.
type tableName struct{ schema, name string }

// parseTableName splits "schema.table" at its last dot and folds case.
// PostgreSQL folds unquoted names to lower case; a quoted name keeps its
// case and so can name another table ("Customers" beside customers), but
// a policy that names customers is meant to catch both, so names are
// compared without case.
func parseTableName(s string) tableName {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return tableName{schema: s[:i], name: s[i+1:]}
	}
	return tableName{name: s}
}

// covers reports whether the policy's table p may be the statement's
// table t. A name without a schema on either side may be any schema's
// (the statement's depends on its search_path); "*" is every relation
// (DROP SCHEMA ... CASCADE, DROP OWNED).
func (p tableName) covers(t tableName) bool {
	if t.name != "*" && t.name != p.name {
		return false
	}
	return p.schema == "" || t.schema == "" || p.schema == t.schema
}

// truncatedCommands ends a command list the gateway shortened: the
// commands past it are not known.
const truncatedCommands = "..."

// normalizeCommand is s upper case, single-spaced. The gateway's
// commands are already ("DROP TABLE"), and come back without a copy.
func normalizeCommand(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if !strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && unicode.IsSpace(r) }) && !strings.Contains(s, "  ") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func (sc *statementCond) match(st *Statement) Reason {
	if !sc.set {
		return ""
	}
	if st.Class == "" {
		return ReasonNoStatement
	}
	// An unknown statement (a DO block, a function that may write, text
	// that does not parse) may be any command on any table: it matches
	// every list, so a policy cannot be skipped by hiding what it names.
	unknown := statementRank(st.Class) == len(statementClasses)-1
	if sc.minClass >= 0 && statementRank(st.Class) < sc.minClass {
		return ReasonStatementClassNotIncluded
	}
	if len(sc.commands) > 0 && !unknown && !sc.matchCommand(st) {
		return ReasonStatementCommandNotIncluded
	}
	if len(sc.tables) > 0 && !unknown && !sc.matchTable(st.Tables) {
		return ReasonStatementTableNotIncluded
	}
	if len(sc.labels) > 0 && !unknown && !slices.ContainsFunc(st.Labels, func(l string) bool { return slices.Contains(sc.labels, l) }) {
		return ReasonStatementLabelNotIncluded
	}
	return ""
}

// matchCommand reports whether one of the statement's commands is listed,
// or may be: a listed "DROP" covers "DROP TABLE" and every other DROP; a
// data-modifying command the statement runs counts although another
// command names it (WITH d AS (DELETE ...) SELECT, EXECUTE of a prepared
// DELETE, the UPDATE of INSERT ... ON CONFLICT DO UPDATE); a list the
// gateway cut short may hold anything.
func (sc *statementCond) matchCommand(st *Statement) bool {
	listed := func(cmd string) bool {
		for _, want := range sc.commands {
			if cmd == want || strings.HasPrefix(cmd, want+" ") {
				return true
			}
		}
		return false
	}
	for part := range strings.SplitSeq(st.Command, ";") {
		cmd := normalizeCommand(part)
		if cmd == truncatedCommands || listed(cmd) {
			return true
		}
	}
	return slices.ContainsFunc(st.Modifies, func(m string) bool { return listed(normalizeCommand(m)) })
}

func (sc *statementCond) matchTable(tables []string) bool {
	for _, t := range tables {
		tn := parseTableName(t)
		for _, want := range sc.tables {
			if want.covers(tn) {
				return true
			}
		}
	}
	return false
}

func (c *compiler) statementCond(d *Document, path string, in StatementConditions) statementCond {
	sc := statementCond{minClass: -1}
	sc.set = len(in.Classes)+len(in.Commands)+len(in.Tables)+len(in.Labels) > 0
	for i, class := range in.Classes {
		rank := slices.Index(statementClasses, class)
		if rank < 0 {
			hint := ""
			if near := yamlnode.Closest(class, statementClasses); near != "" {
				hint = "; did you mean " + quote(near) + "?"
			}
			c.addf(d, fmt.Sprintf("%s.classes[%d]", path, i), "unknown statement class %q%s; the classes are %s, least sensitive first, and each covers the more sensitive ones",
				class, hint, strings.Join(statementClasses, ", "))
			continue
		}
		if sc.minClass < 0 || rank < sc.minClass {
			sc.minClass = rank
		}
	}
	for i, cmd := range in.Commands {
		n := normalizeCommand(cmd)
		if n == "" || strings.ContainsAny(n, ";") {
			c.addf(d, fmt.Sprintf("%s.commands[%d]", path, i), "%q is not a command; write one command as PostgreSQL names it, like DELETE or \"DROP TABLE\"", cmd)
			continue
		}
		sc.commands = append(sc.commands, n)
	}
	for i, t := range in.Tables {
		tn := parseTableName(t)
		if tn.name == "" || tn.name == "*" || strings.ContainsAny(t, " \"") || tn.schema == "" && strings.Contains(t, ".") {
			c.addf(d, fmt.Sprintf("%s.tables[%d]", path, i), "%q is not a table name; write table or schema.table, without quotes (names are compared without case)", t)
			continue
		}
		sc.tables = append(sc.tables, tn)
	}
	for i, l := range in.Labels {
		if strings.TrimSpace(l) == "" {
			c.addf(d, fmt.Sprintf("%s.labels[%d]", path, i), "is empty; name a label of the database's labels, like pii")
			continue
		}
		sc.labels = append(sc.labels, l)
	}
	return sc
}
