//go:build cgo

package sqlclass

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

var sessionLabels = map[string][]string{"pii": {"customers.ssn"}}

// TestSessionExecuteTakesThePreparedClass: an EXECUTE in a later string is
// the statement an earlier PREPARE made, with its tables and labels; an
// EXECUTE of a name never prepared is unknown.
func TestSessionExecuteTakesThePreparedClass(t *testing.T) {
	s := NewClassifier(CacheOptions{}).NewSession()
	if _, err := s.Classify("PREPARE wipe AS DELETE FROM customers WHERE id = $1"); err != nil {
		t.Fatal(err)
	}
	facts, err := s.Classify("EXECUTE wipe(7)")
	if err != nil {
		t.Fatal(err)
	}
	if facts.Class != ClassWrite || !slices.Equal(Label(facts, sessionLabels), []string{"pii"}) {
		t.Errorf("EXECUTE wipe: %s, labels %v; want write hitting pii", facts.Class, Label(facts, sessionLabels))
	}
	if facts, _ := s.Classify("EXECUTE other(7)"); facts.Class != ClassUnknown {
		t.Errorf("EXECUTE of an unprepared name: %s, want unknown", facts.Class)
	}
	if facts, _ := NewClassifier(CacheOptions{}).NewSession().Classify("EXECUTE wipe(7)"); facts.Class != ClassUnknown {
		t.Errorf("another connection's EXECUTE wipe: %s, want unknown", facts.Class)
	}
}

// TestSessionPrepareRedescribed: a protocol-level statement name prepared
// as a read and prepared again as a write is the write.
func TestSessionPrepareRedescribed(t *testing.T) {
	s := NewClassifier(CacheOptions{}).NewSession()
	if _, err := s.Prepare("s1", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"); err != nil {
		t.Fatal(err)
	}
	if got := s.Prepared("s1").Class; got != ClassRead {
		t.Fatalf("s1 = %s, want read", got)
	}
	if _, err := s.Prepare("s1", "UPDATE pgbench_accounts SET abalance = 0"); err != nil {
		t.Fatal(err)
	}
	if got := s.Prepared("s1"); got.Class != ClassWrite || !got.NoWhere || got.Fingerprint == "" {
		t.Errorf("re-described s1 = %+v, want the write without WHERE", got)
	}
	if got := s.Prepared("never").Class; got != ClassUnknown {
		t.Errorf("unprepared name = %s, want unknown", got)
	}
	if _, err := s.Prepare("two", "SELECT 1; SELECT 2"); err != nil {
		t.Fatal(err)
	}
	if got := s.Prepared("two").Class; got != ClassUnknown {
		t.Errorf("two statements in one Parse = %s, want unknown", got)
	}
	if _, err := s.Prepare("bad", "SELEC 1"); err == nil || s.Prepared("bad").Class != ClassUnknown {
		t.Errorf("an unparsable Parse is remembered as %s (err %v), want unknown", s.Prepared("bad").Class, err)
	}
}

// TestSessionRemembersBoundedPrepared: past MaxPrepared names, a new name
// is not remembered, so executing it is unknown rather than stale.
func TestSessionRemembersBoundedPrepared(t *testing.T) {
	s := NewClassifier(CacheOptions{}).NewSession()
	for i := range MaxPrepared {
		s.Prepare(fmt.Sprintf("p%d", i), "SELECT 1")
	}
	s.Prepare("late", "SELECT 1")
	if got := s.Prepared("late").Class; got != ClassUnknown {
		t.Errorf("a name past the bound = %s, want unknown", got)
	}
	s.Prepare("p0", "DELETE FROM t")
	if got := s.Prepared("p0").Class; got != ClassWrite {
		t.Errorf("a remembered name prepared again = %s, want write", got)
	}
}

// TestSessionSearchPathTrick: after a string changes search_path, a later
// string's unqualified function is unknown on that connection, and still
// a read on another (the cache keeps them apart).
func TestSessionSearchPathTrick(t *testing.T) {
	c := NewClassifier(CacheOptions{})
	const read = "SELECT lower(name) FROM customers WHERE id = 1"
	if facts, _ := c.NewSession().Classify(read); facts.Class != ClassRead {
		t.Fatalf("before: %s", facts.Class)
	}
	s := c.NewSession()
	if facts, _ := s.Classify("SET search_path = evil, pg_catalog"); !facts.SearchPath {
		t.Fatal("SET search_path not flagged")
	}
	facts, _ := s.Classify(read)
	if facts.Class != ClassUnknown || !facts.UnknownFunction {
		t.Errorf("after SET search_path: %s unknown_function=%v, want unknown", facts.Class, facts.UnknownFunction)
	}
	if facts, _ := s.Classify("SELECT pg_catalog.lower(name) FROM public.customers"); facts.Class != ClassRead {
		t.Errorf("fully qualified after SET search_path: %s, want read", facts.Class)
	}
	if facts, _ := c.NewSession().Classify(read); facts.Class != ClassRead {
		t.Errorf("another connection after: %s, want read", facts.Class)
	}
}

// TestSessionLexingChange: after standard_conforming_strings is turned
// off, the server reads 'a\' , $$' as one string and runs the DROP the
// parser sees inside a dollar quote; such a string is unknown.
func TestSessionLexingChange(t *testing.T) {
	const smuggled = `SELECT 'a\' , $$'; DROP TABLE t; --$$`
	if facts, _ := Classify(smuggled); facts.Class != ClassRead {
		t.Fatalf("with standard strings the parser reads %s", facts.Class)
	}
	for _, change := range []string{"SET standard_conforming_strings = off", "SET client_encoding = 'SJIS'", "SET NAMES 'GBK'"} {
		t.Run(change, func(t *testing.T) {
			s := NewClassifier(CacheOptions{}).NewSession()
			s.Classify(change)
			facts, err := s.Classify(smuggled)
			if !errors.Is(err, ErrUnparsable) || facts.Class != ClassUnknown {
				t.Errorf("after %q: %s, %v; want unknown", change, facts.Class, err)
			}
			if facts, _ := s.Classify("SELECT 1"); facts.Class != ClassRead {
				t.Errorf("a plain ASCII statement after %q: %s, want read", change, facts.Class)
			}
			if facts, _ := s.Classify("SELECT 'é'"); facts.Class != ClassUnknown {
				t.Errorf("a non-ASCII statement after %q: %s, want unknown", change, facts.Class)
			}
		})
	}
}

// TestSessionForgetsWhatItCannotTrust: after DEALLOCATE, DISCARD ALL or a
// statement that may have prepared another statement under the same name
// (a DO block running PREPARE through dynamic SQL), executing the name is
// unknown, not the read it was.
func TestSessionForgetsWhatItCannotTrust(t *testing.T) {
	for _, between := range []string{
		"DEALLOCATE p",
		"DEALLOCATE ALL",
		"DISCARD ALL",
		"DO $$BEGIN EXECUTE 'DEALLOCATE p'; EXECUTE 'PREPARE p AS DELETE FROM customers'; END$$",
		"SELECT my_function()",
		"SELECT 1 FROM",
	} {
		t.Run(between, func(t *testing.T) {
			s := NewClassifier(CacheOptions{}).NewSession()
			s.Classify("PREPARE p AS SELECT 1")
			s.Prepare("q", "SELECT 2")
			if facts, _ := s.Classify("EXECUTE p"); facts.Class != ClassRead {
				t.Fatalf("EXECUTE p before: %s", facts.Class)
			}
			s.Classify(between)
			if between == "DEALLOCATE p" {
				if got := s.Prepared("q").Class; got != ClassRead {
					t.Errorf("DEALLOCATE p forgot q too: %s", got)
				}
			} else if got := s.Prepared("q").Class; got != ClassUnknown {
				t.Errorf("q after %q: %s, want unknown", between, got)
			}
			if facts, _ := s.Classify("EXECUTE p"); facts.Class != ClassUnknown {
				t.Errorf("EXECUTE p after %q: %s, want unknown", between, facts.Class)
			}
		})
	}
}

// TestSessionRepeatedParse: the same text parsed again under the same
// name (what the extended protocol does for every execution) is not
// looked up again and gives the same facts; a new text under the name, a
// change of search_path in between, or a statement that forgets the
// prepared ones, each makes it classified again, as the first time.
func TestSessionRepeatedParse(t *testing.T) {
	const read = "SELECT name FROM customers WHERE id = $1"
	c := NewClassifier(CacheOptions{})
	s := c.NewSession()
	first, err := s.Prepare("", read)
	if err != nil {
		t.Fatal(err)
	}
	lookups := func() uint64 { st := c.Stats(); return st.Hits + st.Misses }
	before := lookups()
	again, err := s.Prepare("", read)
	if err != nil || !reflect.DeepEqual(again, first) {
		t.Fatalf("repeated Parse = %+v, %v; want %+v", again, err, first)
	}
	if lookups() != before {
		t.Errorf("the repeated Parse was looked up in the cache")
	}
	steps := []struct {
		name      string
		between   func()
		wantClass Class
	}{
		{"fail/new-text", func() { _, _ = s.Prepare("", "SELECT ssn FROM customers WHERE id = $1") }, ClassRead},
		// The operator in the WHERE may now be the attacker's: unknown,
		// where the repeated text was a read.
		{"fail/search-path-changed", func() { _, _ = s.Classify("SET search_path = evil, public") }, ClassUnknown},
		{"fail/discard-all", func() { _, _ = s.Classify("DISCARD ALL") }, ClassUnknown},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.between()
			before := lookups()
			got, err := s.Prepare("", read)
			if err != nil || got.Class != step.wantClass {
				t.Fatalf("Parse after %s = %+v, %v", step.name, got, err)
			}
			if lookups() == before {
				t.Errorf("after %s the Parse was answered without classifying it again", step.name)
			}
		})
	}
}
