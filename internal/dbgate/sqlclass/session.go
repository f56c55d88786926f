package sqlclass

import (
	"errors"
	"fmt"
	"strings"
)

// MaxPrepared bounds the prepared statements a Session remembers. A name
// past the bound is not remembered, so executing it is ClassUnknown.
const MaxPrepared = 1000

// Session classifies the query strings of one client connection,
// carrying what earlier strings change about later ones:
//
//   - a statement prepared earlier (SQL PREPARE, or the protocol's Parse
//     through Prepare) gives a later EXECUTE its class, tables and labels,
//     until DEALLOCATE, DISCARD ALL or a statement that could have
//     prepared another under the same name (ClassUnknown: DO, CALL, an
//     unknown function) makes it forgotten, and executing it unknown;
//   - after search_path was changed, an unqualified function or operator
//     may be the attacker's ("SET search_path = evil, pg_catalog", then
//     "SELECT lower(x)"), so it is unknown;
//   - after client_encoding, SET NAMES or standard_conforming_strings was
//     changed, the server may read a backslash or a non-ASCII byte
//     differently from the parser, so a string holding one is unknown.
//
// A Session belongs to one connection and is not safe for concurrent use.
type Session struct {
	classifier    *Classifier
	prepared      map[string]*preparedStatement
	pathChanged   bool
	lexingChanged bool
}

// preparedStatement is a statement prepared under a name, with the facts
// Prepared answers for it, made once.
type preparedStatement struct {
	st    Statement
	facts Facts
	// parse is set for a data statement prepared by a Parse: its text,
	// the Facts Prepare returned, and the session's state then. A client
	// of the extended protocol parses the same text under the same name
	// for every execution; while the text and the state are the same,
	// so are the facts, and they are not looked up again.
	parse *parsedText
}

type parsedText struct {
	sql                        string
	facts                      Facts
	pathChanged, lexingChanged bool
}

// NewSession starts the classification of one connection's statements.
func (c *Classifier) NewSession() *Session {
	return &Session{classifier: c, prepared: map[string]*preparedStatement{}}
}

// Classify classifies a query string sent on this connection (a simple
// query) and remembers what it prepares and changes.
func (s *Session) Classify(sql string) (Facts, error) {
	facts, err := s.classify(sql)
	s.remember(facts, true)
	return facts, err
}

// Prepare classifies the text of a statement the client prepares with the
// extended protocol (a Parse message) under name ("" is the unnamed
// statement), replacing any earlier statement of that name. The
// protocol allows one statement; more, or none, is ClassUnknown.
func (s *Session) Prepare(name, sql string) (Facts, error) {
	if p, ok := s.prepared[name]; ok && p.parse != nil && p.parse.sql == sql &&
		p.parse.pathChanged == s.pathChanged && p.parse.lexingChanged == s.lexingChanged {
		return p.parse.facts.clone(), nil
	}
	facts, err := s.classify(sql)
	// A PREPARE or DECLARE in the text runs when the statement is
	// executed, if ever: until then (Sent) the name still holds what the
	// server holds under it, and the parse alone must not give it new
	// facts ("PREPARE p AS SELECT 1" parsed and never executed, then
	// "EXECUTE p" running the DELETE prepared as p before).
	s.remember(facts, false)
	st := Statement{Class: ClassUnknown}
	if err == nil && len(facts.Statements) == 1 {
		st = facts.Statements[0]
	}
	p := s.store(name, st)
	if p != nil && err == nil && len(facts.Statements) == 1 && dataStatements(facts) && !facts.SearchPath && !facts.Lexing {
		// remember changed nothing for it: parsing it again would give
		// the same facts and change nothing either.
		p.parse = &parsedText{sql: sql, facts: facts.clone(), pathChanged: s.pathChanged, lexingChanged: s.lexingChanged}
	}
	return facts, err
}

// Prepared returns the facts of the statement prepared under name, for
// the protocol's Bind and Execute; a name never prepared, or forgotten
// past MaxPrepared, is ClassUnknown.
func (s *Session) Prepared(name string) Facts {
	p, ok := s.prepared[name]
	if !ok {
		return unknownFacts()
	}
	return p.facts.clone()
}

func (s *Session) classify(sql string) (Facts, error) {
	if s.lexingChanged && strings.ContainsFunc(sql, func(r rune) bool { return r == '\\' || r > 0x7f }) {
		return unknownFacts(), fmt.Errorf("%w: the connection changed how the server reads text (client_encoding, SET NAMES or standard_conforming_strings), and the statement holds a backslash or a non-ASCII character", ErrUnparsable)
	}
	facts, err := s.classifier.cached(sql, !s.pathChanged)
	if err != nil || !executesEarlier(facts) {
		return facts, err
	}
	// An EXECUTE of a statement an earlier string prepared: its facts
	// depend on this connection, so this string is classified again, past
	// the cache.
	return classifyText(sql, !s.pathChanged, s.lookup)
}

// executesEarlier reports whether a string EXECUTEs a statement it does
// not prepare itself.
func executesEarlier(f Facts) bool {
	own := map[string]bool{}
	for _, st := range f.Statements {
		if st.Prepares != "" {
			own[st.Prepares] = true
		}
		if st.Declares != "" {
			own[CursorKey(st.Declares)] = true
		}
		if st.Executes != "" && !own[st.Executes] {
			return true
		}
		if st.Fetches != "" && !own[CursorKey(st.Fetches)] {
			return true
		}
	}
	return false
}

func (s *Session) lookup(name string) (Statement, bool) {
	p, ok := s.prepared[name]
	if !ok {
		return Statement{}, false
	}
	return p.st, true
}

// remember keeps what f changes on the connection; names says whether
// the names its PREPAREs and DECLAREs make are taken now (a query string
// runs as it is sent) or forgotten until it is Sent (a Parse).
func (s *Session) remember(f Facts, names bool) {
	if f.Class == ClassUnknown && len(f.Statements) == 0 {
		// Not read, so not known to leave the prepared statements alone.
		clear(s.prepared)
	}
	for _, st := range f.Statements {
		switch {
		case st.Class == ClassUnknown:
			// A DO block, a procedure or an unknown function may run
			// PREPARE and DEALLOCATE itself (dynamic SQL), replacing a
			// statement remembered as a read by a DELETE of the same
			// name: what was remembered can no longer be trusted.
			clear(s.prepared)
		case st.forgetsAll:
			clear(s.prepared)
		case st.forgets != "":
			delete(s.prepared, st.forgets)
		}
		for _, name := range st.names() {
			if names {
				s.store(name, st)
			} else {
				delete(s.prepared, name)
			}
		}
	}
	s.pathChanged = s.pathChanged || f.SearchPath
	s.lexingChanged = s.lexingChanged || f.Lexing
}

// Sent tells the session that a statement it classified as f (with the
// error err) was sent to the server, not refused. A cursor it DECLAREs
// exists from now on. An unknown statement
// (a DO block, a procedure, a user's function) may itself run SET through
// dynamic SQL: "DO $$BEGIN PERFORM set_config('standard_conforming_strings',
// 'off', false); END$$", approved once, would otherwise leave every later
// string read one way by the classifier and another by the server, and
// an approval of that one statement would cover all of them. So after it
// the connection is read as after a change of search_path and of how
// text is read. Text the server's grammar refuses too (a typo) runs
// nothing and changes nothing; a refused statement is never sent.
func (s *Session) Sent(f Facts, err error) {
	for _, st := range f.Statements {
		if st.Declares != "" {
			// A DECLARE executed through the protocol makes its cursor
			// now. (A PREPARE inside a protocol statement is not kept:
			// its name holds no facts, and an EXECUTE of it is unknown.)
			s.store(CursorKey(st.Declares), st)
		}
	}
	if f.Class != ClassUnknown || errors.Is(err, errSyntax) {
		return
	}
	s.pathChanged, s.lexingChanged = true, true
}

// SearchPathChanged tells the session that its connection's search_path
// may put another schema before pg_catalog (it started that way), so an
// unqualified function may be someone's own, as after a SET search_path.
func (s *Session) SearchPathChanged() { s.pathChanged = true }

// names are the names st makes: the statement it PREPAREs, the cursor
// it DECLAREs (CursorKey).
func (st Statement) names() []string {
	var out []string
	if st.Prepares != "" {
		out = append(out, st.Prepares)
	}
	if st.Declares != "" {
		out = append(out, CursorKey(st.Declares))
	}
	return out
}

// store remembers st under name, and returns what it keeps (nil: not
// remembered).
func (s *Session) store(name string, st Statement) *preparedStatement {
	if _, ok := s.prepared[name]; !ok && len(s.prepared) >= MaxPrepared {
		return nil // not remembered: executing it is unknown
	}
	st.Prepares = name
	f := Facts{Statements: []Statement{st}, Fingerprint: st.Fingerprint, Normalized: st.Normalized}
	f.summarize()
	p := &preparedStatement{st: st, facts: f}
	s.prepared[name] = p
	return p
}
