//go:build cgo

package sqlclass

import (
	"strings"
	"testing"
	"time"
)

// TestClassifyHostileShapes: deeply nested and very long statements end
// in a bounded time, and one the parser refuses is unknown.
func TestClassifyHostileShapes(t *testing.T) {
	tests := []struct {
		name string
		sql  string
	}{
		{"nested-parentheses", "SELECT " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)},
		{"nested-subqueries", strings.Repeat("SELECT * FROM (", 5000) + "SELECT 1" + strings.Repeat(") x", 5000)},
		{"long-in-list", "SELECT * FROM t WHERE id IN (" + strings.TrimSuffix(strings.Repeat("1,", 10000), ",") + ")"},
		{"many-statements", strings.Repeat("SELECT 1;", 1000) + "DROP TABLE t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			facts, err := Classify(tt.sql)
			t.Logf("%s: class %s, %d statements, err %v, %s", tt.name, facts.Class, len(facts.Statements), err, time.Since(start))
			if err != nil && facts.Class != ClassUnknown {
				t.Errorf("error %v with class %s", err, facts.Class)
			}
			if tt.name == "many-statements" && facts.Class != ClassDDL {
				t.Errorf("the DROP at the end was missed: %s", facts.Class)
			}
		})
	}
}

// TestClassifyConcurrently: the parser is called from many goroutines
// (each client session classifies its own statements) and gives each the
// same answer it gives alone.
func TestClassifyConcurrently(t *testing.T) {
	statements := []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 1",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"SET search_path = evil; SELECT lower(a) FROM t",
		"COPY t TO PROGRAM 'x'",
	}
	want := make([]Class, len(statements))
	for i, sql := range statements {
		facts, _ := Classify(sql)
		want[i] = facts.Class
	}
	done := make(chan string, 4)
	for g := range 4 {
		go func() {
			for i := range 100 {
				k := (i + g) % len(statements)
				if facts, _ := Classify(statements[k]); facts.Class != want[k] {
					done <- statements[k] + " classed " + facts.Class.String()
					return
				}
			}
			done <- ""
		}()
	}
	for range 4 {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
