package sqlclass

import (
	"strings"
	"testing"
)

// TestNumberKey: strings that differ only in the values of numeric
// constants share a number key; a digit anywhere else (an identifier, a
// string, a comment, a dollar-quote tag, a parameter) keeps strings apart,
// and text the scanner is not sure of gets no number key.
func TestNumberKey(t *testing.T) {
	same := []struct{ name, a, b string }{
		{"ok/integer", "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", "SELECT abalance FROM pgbench_accounts WHERE aid = 7;"},
		{"ok/negative-and-decimal", "UPDATE t SET a = a + -2477 WHERE id = 1.5", "UPDATE t SET a = a + -3 WHERE id = 20.25"},
		{"ok/exponent", "SELECT * FROM t WHERE x < 1e10", "SELECT * FROM t WHERE x < 2.5E-3"},
		{"ok/leading-point", "SELECT .5 FROM t", "SELECT 7 FROM t"},
		{"ok/after-string", "SELECT 'a1', 5", "SELECT 'a1', 6"},
		{"ok/after-comment", "SELECT /* 1 */ 5 -- 2\n, 6", "SELECT /* 1 */ 9 -- 2\n, 10"},
		{"ok/in-parens", "INSERT INTO h VALUES (1,2,3)", "INSERT INTO h VALUES (10,20,30)"},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			ka, oka := numberKey(tt.a, true)
			kb, okb := numberKey(tt.b, true)
			if !oka || !okb || ka != kb {
				t.Errorf("numberKey(%q) = %q, %v; numberKey(%q) = %q, %v: want one key", tt.a, ka, oka, tt.b, kb, okb)
			}
			if ku, _ := numberKey(tt.a, false); ku == ka {
				t.Errorf("the key with search_path distrusted equals the trusted one: %q", ku)
			}
		})
	}
	apart := []struct{ name, a, b string }{
		{"fail/identifier-digit", "SELECT ssn FROM customers1 WHERE id = 1", "SELECT ssn FROM customers2 WHERE id = 1"},
		{"fail/quoted-identifier-digit", `SELECT "col1" FROM t WHERE id = 1`, `SELECT "col2" FROM t WHERE id = 1`},
		{"fail/quoted-identifier-doubled-quote", `SELECT "a""1" FROM t WHERE id = 1`, `SELECT "a""2" FROM t WHERE id = 1`},
		{"fail/string-digit", "SELECT set_config('x1', 'y', false), 1", "SELECT set_config('x2', 'y', false), 1"},
		{"fail/escape-string", `SELECT E'\'1', 1`, `SELECT E'\'2', 1`},
		{"fail/doubled-quote", "SELECT 'it''s 1', 1", "SELECT 'it''s 2', 1"},
		{"fail/dollar-tag-digit", "SELECT $a1$ x $a1$, 1", "SELECT $a2$ x $a2$, 1"},
		{"fail/dollar-body-digit", "SELECT $$ 1 $$, 1", "SELECT $$ 2 $$, 1"},
		{"fail/parameter", "SELECT * FROM t WHERE a = $1 AND b = 5", "SELECT * FROM t WHERE a = $2 AND b = 5"},
		{"fail/line-comment", "SELECT 1 -- 1\n", "SELECT 1 -- 2\n"},
		{"fail/nested-comment", "SELECT /* /* 1 */ 1 */ 1", "SELECT /* /* 1 */ 2 */ 1"},
		{"fail/identifier-dollar-digit", "SELECT a$1 FROM t WHERE id = 1", "SELECT a$2 FROM t WHERE id = 1"},
		{"fail/non-ascii-identifier", "SELECT é1 FROM t WHERE id = 1", "SELECT é2 FROM t WHERE id = 1"},
	}
	for _, tt := range apart {
		t.Run(tt.name, func(t *testing.T) {
			ka, oka := numberKey(tt.a, true)
			kb, okb := numberKey(tt.b, true)
			if oka && okb && ka == kb {
				t.Errorf("numberKey(%q) = numberKey(%q) = %q: the digits that differ are not numeric constants", tt.a, tt.b, ka)
			}
		})
	}
	none := []struct{ name, sql string }{
		{"none/no-number", "SELECT a FROM t"},
		{"none/hex", "SELECT 0x1F FROM t"},
		{"none/digit-separator", "SELECT 1_000 FROM t"},
		{"none/trailing-letters", "SELECT 1abc FROM t"},
		{"none/qualified-number", "SELECT t.5 FROM t"},
		{"none/two-points", "SELECT 1..2"},
		{"none/dangling-exponent", "SELECT 1e FROM t"},
		{"none/open-string", "SELECT 'abc, 1"},
		{"none/open-escape-string", `SELECT E'abc\', 1`},
		{"none/open-comment", "SELECT 1 /* abc"},
		{"none/open-dollar", "SELECT $a$ abc, 1"},
		{"none/lone-dollar", "SELECT $ 1"},
		{"none/parameter-with-letters", "SELECT $1abc, 1"},
		{"none/nul", "SELECT 1\x00; DROP TABLE t"},
	}
	for _, tt := range none {
		t.Run(tt.name, func(t *testing.T) {
			if k, ok := numberKey(tt.sql, true); ok {
				t.Errorf("numberKey(%q) = %q, want none", tt.sql, k)
			}
		})
	}
}

// TestNumberKeyNeverSpellsAnotherKey: a number key starts with two NUL
// bytes; an exact key holds none, and a distrusted one starts with one
// followed by text.
func TestNumberKeyNeverSpellsAnotherKey(t *testing.T) {
	k, ok := numberKey("SELECT 1", false)
	if !ok || !strings.HasPrefix(k, numberKeyPrefix) {
		t.Fatalf("numberKey = %q, %v", k, ok)
	}
	c, calls := countingClassifier(CacheOptions{})
	if _, err := c.Classify("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	// A text spelling the number key (it holds NUL bytes) is never looked
	// up: it goes to the parser, which refuses it.
	if _, err := c.Classify(strings.TrimPrefix(k, "\x00")); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Errorf("parsed %d times, want 2: a text holding a NUL byte was answered from the cache", calls.Load())
	}
}

// TestNumberKeyOnlyForDataStatements: a statement other than SELECT,
// INSERT, UPDATE or DELETE (whose numbers the classifier may read, as in
// EXPLAIN (ANALYZE 0)) is cached under its exact text only.
func TestNumberKeyOnlyForDataStatements(t *testing.T) {
	c, calls := countingClassifier(CacheOptions{})
	c.classify = func(sql string, _ bool) (Facts, error) {
		calls.Add(1)
		f := Facts{Statements: []Statement{{Command: "EXPLAIN", Class: ClassUtility}}}
		f.summarize()
		return f, nil
	}
	for _, sql := range []string{"EXPLAIN (ANALYZE 0) DELETE FROM t", "EXPLAIN (ANALYZE 1) DELETE FROM t"} {
		if _, err := c.Classify(sql); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("parsed %d times, want 2: EXPLAIN's number was set aside", calls.Load())
	}
}

// FuzzNumberKey: two strings with the same number key are equal once
// the numeric constants the scanner found are taken out of both, and
// the key is never made for a string holding a NUL byte.
func FuzzNumberKey(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT 'a1', 1e5 FROM t1 WHERE x = $1", "SELECT $a$1$a$, E'\\'1'", "SELECT /* 1 /* 2 */ */ 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		k, ok := numberKey(sql, true)
		if !ok {
			return
		}
		if strings.IndexByte(sql, 0) >= 0 {
			t.Fatalf("a number key for a string holding NUL: %q", sql)
		}
		body := strings.TrimPrefix(k, numberKeyPrefix+"t")
		// Putting the digits back where the markers are gives the string.
		rest := sql
		parts := strings.Split(body, "\x00")
		for i, part := range parts {
			if !strings.HasPrefix(rest, part) {
				t.Fatalf("key %q does not follow %q", k, sql)
			}
			rest = rest[len(part):]
			if i < len(parts)-1 {
				end, ok := scanNumber(rest, 0)
				if !ok || end == 0 {
					t.Fatalf("key %q marks no number at %q of %q", k, rest, sql)
				}
				rest = rest[end:]
			}
		}
		if rest != "" {
			t.Fatalf("key %q leaves %q of %q", k, rest, sql)
		}
	})
}
