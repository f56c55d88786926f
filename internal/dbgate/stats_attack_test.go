//go:build cgo

package dbgate

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestAttackLabelledValuesThroughStatistics: after ANALYZE, the planner's
// statistics views show sample values of every column the reader may
// select (pg_stats' most_common_vals and histogram_bounds), and
// pg_stat_activity shows the text of the other sessions' statements,
// which all run as the gateway's one upstream role: a labelled column's
// values read without naming it. Reading them hits every label, so it
// needs what a labelled read needs; without it nothing is returned.
func TestAttackLabelledValuesThroughStatistics(t *testing.T) {
	r := newRig(t)
	r.mustDirect("INSERT INTO customers SELECT g, 'n', '333-33-' || g FROM generate_series(3, 40) g; ANALYZE customers")
	ctx := context.Background()
	conn := r.mustConnect("alice", r.token("u-alice", "bank", "password"))
	for _, sql := range []string{
		"SELECT histogram_bounds::text FROM pg_stats WHERE tablename = 'customers' AND attname = 'ssn'",
		"SELECT s.histogram_bounds::text FROM pg_catalog.pg_stats s WHERE s.attname = 'ssn'",
		"SELECT most_common_vals::text FROM PG_STATS",
		"SELECT stavalues1::text FROM pg_statistic",
		"SELECT query FROM pg_stat_activity",
		"SELECT * FROM pg_catalog.pg_stats_ext",
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			rows, err := conn.Query(ctx, sql, mode)
			var leaked []string
			if err == nil {
				for rows.Next() {
					var v any
					if rows.Scan(&v) == nil {
						if s, ok := v.(string); ok && strings.Contains(s, "333-33-") {
							leaked = append(leaked, s)
						}
					}
				}
				rows.Close()
				err = rows.Err()
			}
			if len(leaked) > 0 {
				t.Fatalf("%s returned labelled values without the proof: %v", sql, leaked)
			}
			wantState(t, err, "28000")
		}
	}
}
