//go:build cgo

package sqlclass

import (
	"slices"
	"testing"
)

// TestAttackLabelsThroughStatistics: the planner's statistics views hold
// sample values of every analysed column, and pg_stat_activity the text
// of other sessions' statements; reading them hits every label, in any
// spelling. Other catalogs, which hold names and not values, hit none.
func TestAttackLabelsThroughStatistics(t *testing.T) {
	labels := map[string][]string{"pii": {"customers.ssn"}, "secret": {"vault"}, "billing": {"billing.invoices.amount"}}
	every := []string{"billing", "pii", "secret"}
	for _, tt := range []struct {
		sql  string
		want []string
	}{
		{"SELECT histogram_bounds FROM pg_stats WHERE tablename = 'customers' AND attname = 'ssn'", every},
		{"SELECT s.most_common_vals FROM pg_catalog.pg_stats s", every},
		{`SELECT * FROM "pg_stats"`, every},
		{"SELECT * FROM PG_CATALOG.PG_STATISTIC", every},
		{"SELECT * FROM pg_stats_ext_exprs", every},
		{"SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid()", every},
		{"SELECT query FROM public.pg_stat_statements", every},
		{"SELECT 1 FROM orders WHERE EXISTS (SELECT 1 FROM pg_stats)", every},
		{"SELECT relname FROM pg_class", nil},
		{"SELECT attname FROM pg_catalog.pg_attribute", nil},
		{"WITH pg_stats AS (SELECT 1) SELECT * FROM pg_stats", nil},
	} {
		f, _ := Classify(tt.sql)
		if got := Label(f, labels); !slices.Equal(got, tt.want) {
			t.Errorf("%s: labels %v, want %v", tt.sql, got, tt.want)
		}
	}
}
