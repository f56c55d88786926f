//go:build cgo

package sqlclass

import (
	"errors"
	"testing"
)

// TestAttackSettingsThroughPgSettings: pg_settings has an UPDATE rule
// that calls set_config, so writing it is a SET that no SET statement
// shows, and so is a view or a rule made over it. Each is flagged as a
// change of any setting (role, search_path and how text is read), and
// is unknown; reading pg_settings stays a read.
func TestAttackSettingsThroughPgSettings(t *testing.T) {
	for _, sql := range []string{
		"UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
		"UPDATE pg_catalog.pg_settings SET setting = 'evil' WHERE name = 'search_path'",
		`UPDATE "pg_settings" SET setting = 'x' WHERE name = 'role'`,
		"UPDATE PG_CATALOG.PG_SETTINGS s SET setting = 'SJIS' WHERE s.name = 'client_encoding'",
		"UPDATE ONLY pg_settings SET setting = 'off' WHERE name = lower('STANDARD_CONFORMING_STRINGS')",
		"WITH x AS (SELECT 1) UPDATE pg_settings SET setting = 'off' WHERE name = 'backslash_quote'",
		"EXPLAIN ANALYZE UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
		"PREPARE p AS UPDATE pg_settings SET setting = $1 WHERE name = $2",
		"SELECT 1; UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
		"DELETE FROM pg_settings WHERE name = 'x'",
		"CREATE VIEW s AS SELECT * FROM pg_settings",
		"CREATE TEMP VIEW s AS SELECT name, setting FROM pg_catalog.pg_settings WHERE name = 'search_path'",
		"CREATE RULE r AS ON INSERT TO t DO ALSO UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
	} {
		f, _ := Classify(sql)
		if f.Class != ClassUnknown || !f.Lexing || !f.SearchPath || !f.SetRole {
			t.Errorf("%s: %s lexing=%v search_path=%v set_role=%v; want unknown with every setting hazard", sql, f.Class, f.Lexing, f.SearchPath, f.SetRole)
		}
	}
	for _, sql := range []string{"SELECT name, setting FROM pg_settings", "SELECT * FROM pg_catalog.pg_settings WHERE name = 'search_path'"} {
		if f, _ := Classify(sql); f.Class != ClassRead || f.Lexing {
			t.Errorf("%s: %s lexing=%v, want a plain read", sql, f.Class, f.Lexing)
		}
	}
}

// TestAttackUnknownMayChangeSettings: a DO block, a procedure or a user's
// function may run SET itself through dynamic SQL. Once one was sent to
// the server, the connection is read as after a change of search_path
// and of how text is read: the smuggled 'a\', $$'; … string and an
// unqualified function are unknown, so an approval of the one unknown
// statement covers nothing after it. One that was refused (never sent),
// and a syntax error, which the server refuses too, change nothing.
func TestAttackUnknownMayChangeSettings(t *testing.T) {
	const smuggled = `SELECT 'a\', $$'; SELECT ssn FROM customers; -- $$`
	const unqualified = "SELECT lower(name) FROM customers WHERE id = 1"
	c := NewClassifier(CacheOptions{})
	for _, unknown := range []string{
		"DO $$BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END$$",
		"CALL change_settings()",
		"SELECT my_func()",
		"SELECT 1\x00; SET standard_conforming_strings = off",
	} {
		s := c.NewSession()
		f, err := s.Classify(unknown)
		if f.Class != ClassUnknown {
			t.Fatalf("%q: %s, want unknown", unknown, f.Class)
		}
		if f, _ := s.Classify(unqualified); f.Class != ClassRead {
			t.Errorf("after %q was refused, an unqualified function is %s, want read", unknown, f.Class)
		}
		s.Sent(f, err)
		if f, err := s.Classify(smuggled); f.Class != ClassUnknown || !errors.Is(err, ErrUnparsable) {
			t.Errorf("after %q ran the smuggling string is %s (%v), want unknown", unknown, f.Class, err)
		}
		if f, _ := s.Classify(unqualified); f.Class != ClassUnknown {
			t.Errorf("after %q ran an unqualified function is %s, want unknown", unknown, f.Class)
		}
		if f, _ := s.Classify("SELECT pg_catalog.lower(name) FROM public.customers"); f.Class != ClassRead {
			t.Errorf("after %q ran a qualified ASCII read is %s, want read", unknown, f.Class)
		}
	}
	s := c.NewSession()
	f, err := s.Classify("SELEC 1")
	if f.Class != ClassUnknown || err == nil {
		t.Fatalf("a typo: %s %v", f.Class, err)
	}
	s.Sent(f, err)
	if f, _ := s.Classify(unqualified); f.Class != ClassRead {
		t.Errorf("after a syntax error an unqualified function is %s, want read", f.Class)
	}
	if f, _ := s.Classify("SELECT 'é'"); f.Class != ClassRead {
		t.Errorf("after a syntax error a non-ASCII string is %s, want read", f.Class)
	}
}
