package sqlclass

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// labelEntry is one entry of a label's list: a whole table (column "*")
// or one column, with or without a schema.
type labelEntry struct {
	schema, table, column string
}

// parseLabelEntry reads "table", "table.column", "table.*",
// "schema.table.column" or "schema.table.*". Names are compared without
// regard to case: PostgreSQL folds unquoted names to lower case, and a
// label written "Customers.SSN" must not quietly miss customers.ssn (a
// quoted "Customers" table is then covered too, which errs towards a hit).
func parseLabelEntry(s string) (labelEntry, error) {
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p {
			return labelEntry{}, fmt.Errorf("%q: an empty or space-padded name; write table, table.column or schema.table.column", s)
		}
	}
	switch len(parts) {
	case 1:
		if parts[0] == "*" {
			return labelEntry{}, fmt.Errorf("%q: name a table, not every table", s)
		}
		return labelEntry{table: parts[0], column: "*"}, nil
	case 2:
		return labelEntry{table: parts[0], column: parts[1]}, nil
	case 3:
		return labelEntry{schema: parts[0], table: parts[1], column: parts[2]}, nil
	}
	return labelEntry{}, fmt.Errorf("%q: too many dots; write table, table.column or schema.table.column", s)
}

// ValidateLabels returns every malformed entry of a labels map, each
// naming its label, so a configuration can be fixed in one go.
func ValidateLabels(labels map[string][]string) error {
	var errs []error
	names := make([]string, 0, len(labels))
	for name := range labels {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.TrimSpace(name) == "" {
			errs = append(errs, errors.New("a label needs a name"))
		}
		for i, entry := range labels[name] {
			if _, err := parseLabelEntry(entry); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", name, i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Label returns, sorted, the labels a query string hits. labels maps a
// label to the tables and columns it covers, e.g.
// pii: [customers.ssn, customers.email] or secret: [vault] (every column
// of vault).
//
// It errs towards a hit: a column that cannot be pinned to one table
// counts against every table of its statement; a table named without a
// schema may be any schema's; SELECT * and a whole-row reference hit
// every column. A statement of ClassUnknown (a string that does not
// parse, a DO block, a function off the allow-list) or one that reads
// server files may reach any data, so it hits every label.
func Label(facts Facts, labels map[string][]string) []string {
	var hits []string
	for name, entries := range labels {
		for _, raw := range entries {
			entry, err := parseLabelEntry(raw)
			if err != nil {
				continue // refused by ValidateLabels when the configuration loads
			}
			if factsHit(facts, entry) {
				hits = append(hits, name)
				break
			}
		}
	}
	slices.Sort(hits)
	return hits
}

func factsHit(facts Facts, entry labelEntry) bool {
	if facts.Class == ClassUnknown && len(facts.Statements) == 0 {
		return true // nothing could be read: it may touch anything
	}
	for _, st := range facts.Statements {
		if statementHit(st, entry) {
			return true
		}
	}
	return false
}

func statementHit(st Statement, entry labelEntry) bool {
	if st.Class == ClassUnknown || st.ServerFile {
		return true
	}
	if entry.column == "*" {
		for _, t := range st.Tables {
			if tableMatches(entry, t) {
				return true
			}
		}
		return false
	}
	for _, c := range st.Columns {
		if !strings.EqualFold(c.Name, entry.column) && c.Name != "*" {
			continue
		}
		if columnTableMatches(entry, c, st.Tables) {
			return true
		}
	}
	return false
}

// tableMatches reports whether relation t may be the entry's table. A
// relation named without a schema may be in any schema, depending on
// search_path; "*" is every relation (of its schema, if it has one).
func tableMatches(entry labelEntry, t Table) bool {
	if t.Name == "*" {
		return t.Schema == "" || entry.schema == "" || strings.EqualFold(t.Schema, entry.schema)
	}
	if !strings.EqualFold(t.Name, entry.table) {
		return false
	}
	return entry.schema == "" || strings.EqualFold(t.Schema, entry.schema) || t.Unqualified || t.Schema == ""
}

// columnTableMatches reports whether column c may belong to the entry's
// table; an unresolved column may belong to any table of its statement.
func columnTableMatches(entry labelEntry, c Column, tables []Table) bool {
	if c.Table == "" {
		for _, t := range tables {
			if tableMatches(entry, t) {
				return true
			}
		}
		return false
	}
	schema, name := "", c.Table
	if i := strings.LastIndexByte(c.Table, '.'); i >= 0 {
		schema, name = c.Table[:i], c.Table[i+1:]
	}
	return tableMatches(entry, Table{Schema: schema, Name: name, Unqualified: schema == ""})
}
