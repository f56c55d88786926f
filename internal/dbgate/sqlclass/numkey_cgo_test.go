//go:build cgo

package sqlclass

import (
	"reflect"
	"testing"
)

// TestNumberKeyCacheAttacks primes a Classifier with one string, then
// asks it for another that differs only in digits, and checks that the
// answer is the second string's own facts: an attacker who gets a
// harmless statement cached cannot have a sensitive one that looks like
// it (another table, another setting, EXPLAIN ANALYZE on instead of off)
// answered with the harmless one's facts. Pairs that differ only in
// numeric constants must be answered from the cache.
func TestNumberKeyCacheAttacks(t *testing.T) {
	cases := []struct {
		name, primed, asked string
		shared              bool
	}{
		{"ok/pgbench-select", "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", "SELECT abalance FROM pgbench_accounts WHERE aid = 9;", true},
		{"ok/tpcb-update", "UPDATE pgbench_accounts SET abalance = abalance + -2477 WHERE aid = 48213;", "UPDATE pgbench_accounts SET abalance = abalance + -4000 WHERE aid = 1;", true},
		{"ok/insert", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 48213, -2477, CURRENT_TIMESTAMP);",
			"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 2, 5, -12, CURRENT_TIMESTAMP);", true},
		{"ok/delete", "DELETE FROM t WHERE id = 1", "DELETE FROM t WHERE id = 2", true},
		{"ok/privileged-function", "SELECT pg_terminate_backend(1)", "SELECT pg_terminate_backend(2)", true},
		{"ok/limit", "SELECT name FROM customers LIMIT 1", "SELECT name FROM customers LIMIT 20", true},
		// The normalized text keeps an ORDER BY position, so the log
		// would show the cached one's: not shared.
		{"fail/order-by-position", "SELECT name, ssn FROM customers ORDER BY 1", "SELECT name, ssn FROM customers ORDER BY 2", false},
		{"fail/other-table", "SELECT ssn FROM customers1 WHERE id = 1", "SELECT ssn FROM customers2 WHERE id = 1", false},
		{"fail/other-setting", "SELECT set_config('application_name', 'x', false), 1", "SELECT set_config('search_path', 'x', false), 1", false},
		{"fail/explain-analyze-on", "EXPLAIN (ANALYZE 0) DELETE FROM t WHERE id = 1", "EXPLAIN (ANALYZE 1) DELETE FROM t WHERE id = 1", false},
		{"fail/explain-analyze-off", "EXPLAIN (ANALYZE 1) SELECT 1", "EXPLAIN (ANALYZE 0) SELECT 1", false},
		{"fail/escape-string", `SELECT E'\'', 1 FROM t`, `SELECT E'\'', 1 FROM t; DROP TABLE t`, false},
		{"fail/dollar-quote", "SELECT $q1$ 1 $q1$, 1", "SELECT $q1$ 1 $q1$, 1; DELETE FROM t", false},
		{"fail/comment", "SELECT 1 /* 1 */", "SELECT 1 /* */ DELETE FROM t /* */", false},
		{"fail/prepare", "PREPARE p1 AS SELECT 1", "PREPARE p2 AS SELECT 1", false},
		{"fail/setting-number", "SET statement_timeout = 0", "SET statement_timeout = 1", false},
		{"fail/lock-limit", "SELECT * FROM t LIMIT 1", "SELECT * FROM t LIMIT 1 FOR UPDATE", false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClassifier(CacheOptions{})
			if _, err := c.Classify(tt.primed); err != nil {
				t.Fatal(err)
			}
			got, gotErr := c.Classify(tt.asked)
			want, wantErr := Classify(tt.asked)
			if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("through the cache primed with %q:\n got %+v (%v)\nwant %+v (%v)", tt.primed, got, gotErr, want, wantErr)
			}
			if hit := c.Stats().Hits == 1; hit != tt.shared {
				t.Errorf("answered from the cache: %v, want %v", hit, tt.shared)
			}
		})
	}
}
