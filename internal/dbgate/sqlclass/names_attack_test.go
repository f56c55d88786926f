//go:build cgo

package sqlclass

import (
	"slices"
	"testing"
)

// TestAttackCursorNames: FETCH runs its cursor's query, so through a
// Session it is the statement the cursor was DECLAREd over, however many
// strings later, and a FETCH from a cursor the client did not declare
// (a protocol portal, which SQL fetches by name too) is unknown. A
// DECLARE or PREPARE parsed through the protocol makes its name only
// once executed (Sent): a parse alone leaves the server's statement
// under the name, which the session no longer claims to know.
func TestAttackCursorNames(t *testing.T) {
	labels := map[string][]string{"pii": {"customers.ssn"}}
	c := NewClassifier(CacheOptions{})
	check := func(t *testing.T, s *Session, sql string, class Class, wantLabels []string) {
		t.Helper()
		f, _ := s.Classify(sql)
		if got := Label(f, labels); f.Class != class || !slices.Equal(got, wantLabels) {
			t.Errorf("%s: %s %v, want %s %v", sql, f.Class, got, class, wantLabels)
		}
	}
	pii := []string{"pii"}
	t.Run("fetch-takes-the-cursor", func(t *testing.T) {
		s := c.NewSession()
		s.Classify("DECLARE c CURSOR WITH HOLD FOR SELECT ssn FROM customers")
		check(t, s, "FETCH 10 FROM c", ClassRead, pii)
		check(t, s, "FETCH ALL IN c", ClassRead, pii)
		check(t, s, "MOVE ALL IN c", ClassRead, pii)
		check(t, s, "FETCH ALL FROM other", ClassUnknown, []string{"pii"})
		s.Classify("DECLARE c CURSOR WITH HOLD FOR SELECT name FROM customers")
		check(t, s, "FETCH 10 FROM c", ClassRead, nil)
	})
	t.Run("protocol-portal", func(t *testing.T) {
		s := c.NewSession()
		s.Prepare("s", "SELECT ssn FROM customers")
		check(t, s, "FETCH ALL FROM p", ClassUnknown, pii)
	})
	t.Run("declare-through-protocol", func(t *testing.T) {
		s := c.NewSession()
		f, err := s.Prepare("", "DECLARE c CURSOR FOR SELECT ssn FROM customers")
		check(t, s, "FETCH ALL FROM c", ClassUnknown, pii)
		s.Sent(f, err) // executed
		check(t, s, "FETCH ALL FROM c", ClassRead, pii)
	})
	t.Run("prepare-parsed-never-run", func(t *testing.T) {
		s := c.NewSession()
		s.Classify("PREPARE p AS DELETE FROM orders WHERE id = 1")
		s.Prepare("rebind", "PREPARE p AS SELECT 1")
		if f, _ := s.Classify("EXECUTE p"); f.Class != ClassUnknown {
			t.Errorf("EXECUTE p after a PREPARE only parsed: %s, want unknown", f.Class)
		}
	})
	t.Run("same-string", func(t *testing.T) {
		check(t, c.NewSession(), "DECLARE c CURSOR FOR SELECT ssn FROM customers; FETCH ALL FROM c", ClassRead, pii)
	})
}
