//go:build cgo

package sqlclass

import (
	"slices"
	"testing"
)

// TestLabelAttacks reads a labelled column in every way a user might try
// to hide it from the gateway; each must still hit the label. The
// "ok/" cases prove the rules are not simply "always hit".
func TestLabelAttacks(t *testing.T) {
	pii := []string{"pii"}
	tests := []struct {
		name, sql string
		want      []string
	}{
		{"ok/other-column", "SELECT name FROM customers WHERE id = 1", nil},
		{"ok/other-table", "SELECT ssn FROM employees", nil},
		{"ok/join-other-columns", "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id", nil},
		{"ok/count-star", "SELECT count(*) FROM customers", nil},
		{"ok/copy-other-columns", "COPY customers (name) TO STDOUT", nil},
		{"hit/direct", "SELECT ssn FROM customers", pii},
		{"hit/schema-qualified", "SELECT ssn FROM public.customers", pii},
		{"hit/alias", "SELECT c.ssn FROM customers AS c", pii},
		{"hit/star", "SELECT * FROM customers", pii},
		{"hit/table-command", "TABLE customers", pii},
		{"hit/alias-star", "SELECT c.* FROM customers c", pii},
		{"hit/whole-row", "SELECT c FROM customers c", pii},
		{"hit/whole-row-json", "SELECT row_to_json(c) FROM customers c", pii},
		{"hit/where-only", "SELECT count(*) FROM customers WHERE ssn LIKE '123%'", pii},
		{"hit/order-by", "SELECT id FROM customers ORDER BY email", pii},
		{"hit/unqualified-in-join", "SELECT o.id, ssn FROM orders o JOIN customers c ON c.id = o.customer_id", pii},
		{"hit/cte", "WITH x AS (SELECT ssn AS s FROM customers) SELECT s FROM x", pii},
		{"hit/cte-star", "WITH x AS (SELECT * FROM customers) SELECT ssn FROM x", pii},
		{"hit/cte-shadows-nothing", "WITH customers AS (SELECT * FROM customers) SELECT 1 FROM customers", pii},
		{"hit/subquery", "SELECT x.s FROM (SELECT ssn AS s FROM customers) x", pii},
		{"hit/correlated-subquery-outer-column", "SELECT (SELECT ssn FROM orders LIMIT 1) FROM customers", pii},
		{"hit/exists", "SELECT 1 FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.email = 'a@b')", pii},
		{"hit/union", "SELECT name FROM employees UNION SELECT ssn FROM customers", pii},
		{"hit/returning", "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING ssn", pii},
		{"hit/update-set", "UPDATE customers SET email = 'x' WHERE id = 1", pii},
		{"hit/delete", "DELETE FROM customers WHERE id = 1", pii},
		{"hit/insert-select", "INSERT INTO leak SELECT ssn FROM customers", pii},
		{"hit/copy", "COPY customers TO STDOUT", pii},
		{"hit/copy-query", "COPY (SELECT email FROM customers) TO STDOUT", pii},
		{"hit/create-table-as", "CREATE TABLE leak AS SELECT * FROM customers", pii},
		{"hit/drop", "DROP TABLE customers", pii},
		{"hit/truncate", "TRUNCATE customers", pii},
		{"hit/grant", "GRANT SELECT ON customers TO eve", pii},
		{"hit/alter", "ALTER TABLE customers DROP COLUMN ssn", pii},
		{"hit/quoted", `SELECT "ssn" FROM "customers"`, pii},
		{"hit/unicode-escape", `SELECT U&"\0073sn" FROM customers`, pii},
		{"hit/upper-case", "SELECT SSN FROM CUSTOMERS", pii},
		{"hit/comment-between", "SELECT/**/ssn/**/FROM/**/customers", pii},
		{"hit/second-statement", "SELECT 1; SELECT ssn FROM customers", pii},
		{"hit/explain-analyze", "EXPLAIN ANALYZE SELECT ssn FROM customers", pii},
		{"hit/cursor", "DECLARE c CURSOR FOR SELECT ssn FROM customers", pii},
		{"hit/do-block", "DO $$BEGIN PERFORM ssn FROM customers; END$$", pii},
		{"hit/unknown-function", "SELECT leak_ssn()", pii},
		{"hit/read-file", "SELECT pg_read_binary_file('base/16384/16385')", pii},
		{"hit/unparsable", "SELECT ssn FROM customers WHERE", pii},
		{"hit/join-using", "SELECT count(*) FROM customers JOIN (VALUES ('123-45-6789')) v(ssn) USING (ssn)", pii},
		{"hit/natural-join", "SELECT count(*) FROM customers NATURAL JOIN (VALUES ('123-45-6789')) v(ssn)", pii},
		{"hit/composite-field", "SELECT (c).ssn FROM customers c", pii},
		{"hit/cte-named-like-target", "WITH customers AS (SELECT 1) DELETE FROM customers", pii},
		{"hit/cte-named-like-update-target", "WITH customers AS (SELECT 1 AS id) UPDATE customers SET email = 'x' WHERE id = 1", pii},
		{"hit/drop-schema-cascade", "DROP SCHEMA public CASCADE", pii},
	}
	labels := map[string][]string{"pii": {"customers.ssn", "customers.email"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts, _ := Classify(tt.sql)
			if got := Label(facts, labels); !slices.Equal(got, tt.want) {
				t.Errorf("Label(%q) = %v, want %v (columns %v, tables %v)", tt.sql, got, tt.want, facts.Columns, facts.Tables)
			}
		})
	}
}
