//go:build cgo

package sqlclass

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
)

// ParserAvailable reports whether this build can parse SQL. A build
// without cgo cannot, and classifies every string as ClassUnknown.
const ParserAvailable = true

// Classify parses sql, one query string that may hold several
// statements, and says what it does. It does not cache; a Classifier
// does.
//
// When the string cannot be read with certainty the error wraps
// ErrUnparsable and the Facts are still usable: ClassUnknown, the most
// sensitive class, so a caller that looks only at the Facts fails closed.
func Classify(sql string) (Facts, error) {
	return classifyText(sql, true, nil)
}

// classifyText is Classify with what a client's earlier query strings
// changed: trustPath is false once search_path was changed, and earlier
// looks up a statement prepared by an earlier string (nil: none).
func classifyText(sql string, trustPath bool, earlier func(name string) (Statement, bool)) (Facts, error) {
	if err := checkText(sql); err != nil {
		return unknownFacts(), err
	}
	tree, err := pg.Parse(sql)
	if err != nil {
		return unknownFacts(), parseError(err)
	}
	facts := Facts{}
	prepared := map[string]Statement{}
	lookup := func(name string) (Statement, bool) {
		if st, ok := prepared[name]; ok {
			return st, true
		}
		if earlier != nil {
			return earlier(name)
		}
		return Statement{}, false
	}
	for _, raw := range tree.Stmts {
		st := classifyStatement(raw.Stmt, trustPath, earlier != nil, lookup)
		if st.SearchPath {
			trustPath = false
		}
		if st.Prepares != "" {
			prepared[st.Prepares] = st
		}
		if st.Declares != "" {
			prepared[CursorKey(st.Declares)] = st
		}
		if len(tree.Stmts) > 1 {
			if err := describe(&st, statementText(sql, raw)); err != nil {
				return unknownFacts(), err
			}
		}
		facts.Statements = append(facts.Statements, st)
	}
	facts.summarize()
	if len(tree.Stmts) == 0 {
		return facts, nil // only blanks, comments and semicolons: nothing runs
	}
	var whole Statement
	if err := describe(&whole, sql); err != nil {
		return unknownFacts(), err
	}
	facts.Fingerprint, facts.Normalized = whole.Fingerprint, whole.Normalized
	if len(facts.Statements) == 1 {
		facts.Statements[0].Fingerprint, facts.Statements[0].Normalized = whole.Fingerprint, whole.Normalized
	}
	return facts, nil
}

// checkText refuses text the server would read differently from the
// parser. libpg_query takes a C string, so a NUL byte would end the
// statement early for it ("SELECT 1\x00; DROP TABLE t"); the server
// refuses invalid UTF-8 in a UTF8 database, and bytes that are not UTF-8
// mean a client encoding in which quotes and backslashes may fall inside
// multi-byte characters.
func checkText(sql string) error {
	if strings.IndexByte(sql, 0) >= 0 {
		return fmt.Errorf("%w: it holds a NUL byte; send the statement without it", ErrUnparsable)
	}
	if !utf8.ValidString(sql) {
		return fmt.Errorf("%w: it is not valid UTF-8; connect with client_encoding UTF8", ErrUnparsable)
	}
	return nil
}

// parseError keeps the parser's reason and position but not the text
// near the error, which may be a parameter value.
func parseError(err error) error {
	var pgErr *pgparser.Error
	if errors.As(err, &pgErr) {
		msg, _, _ := strings.Cut(pgErr.Message, " at or near")
		return fmt.Errorf("%w: %s at offset %d%w", ErrUnparsable, msg, pgErr.Cursorpos, errSyntax)
	}
	return fmt.Errorf("%w: %s%w", ErrUnparsable, "the parser refused it", errSyntax)
}

// statementText is the slice of sql one parsed statement came from.
func statementText(sql string, raw *pg.RawStmt) string {
	start := int(raw.StmtLocation)
	if start < 0 || start > len(sql) {
		return sql
	}
	if raw.StmtLen == 0 || start+int(raw.StmtLen) > len(sql) {
		return sql[start:]
	}
	return sql[start : start+int(raw.StmtLen)]
}

// describe fills the fingerprint and the normalized text of sql: the
// text with each constant replaced by $n (pg_query's normalization),
// then without comments (which may hold anything) and with every string
// constant normalization leaves in place (a COPY file name or shell
// command) replaced by '?'.
func describe(st *Statement, sql string) error {
	fp, err := pg.Fingerprint(sql)
	if err != nil {
		return parseError(err)
	}
	normalized, err := pg.Normalize(sql)
	if err != nil {
		return parseError(err)
	}
	st.Fingerprint = fp
	st.Normalized = redact(normalized)
	return nil
}

// redact drops the comments and string constants of sql, found by
// PostgreSQL's own scanner, and folds runs of blanks.
func redact(sql string) string {
	scan, err := pg.Scan(sql)
	if err != nil {
		return ""
	}
	var b strings.Builder
	last := 0
	for _, tok := range scan.Tokens {
		start, end := int(tok.Start), int(tok.End)
		if start < last || end > len(sql) || start > end {
			return "" // offsets out of order: keep nothing rather than a value
		}
		switch tok.Token {
		case pg.Token_SQL_COMMENT, pg.Token_C_COMMENT:
			b.WriteString(sql[last:start])
			b.WriteByte(' ')
		case pg.Token_SCONST, pg.Token_USCONST, pg.Token_BCONST, pg.Token_XCONST:
			b.WriteString(sql[last:start])
			b.WriteString("'?'")
		default:
			continue
		}
		last = end
	}
	b.WriteString(sql[last:])
	return strings.Join(strings.Fields(b.String()), " ")
}
