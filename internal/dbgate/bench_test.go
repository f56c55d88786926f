//go:build cgo

package dbgate

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// BenchmarkSelect compares a pgbench-style select through the gateway
// with the same select on a direct connection, in the simple and the
// extended protocol.
//
//	scripts/with-postgres.sh go test -run '^$' -bench Select -benchtime 3000x ./internal/dbgate/
func BenchmarkSelect(b *testing.B) {
	r := newRig(b)
	token := r.token("u-alice", "bank", "password")
	through, err := pgx.Connect(context.Background(), r.dsn("alice", token, "disable"))
	if err != nil {
		b.Fatal(err)
	}
	defer through.Close(context.Background())
	cfg, err := pgx.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		b.Fatal(err)
	}
	cfg.Database = r.dbname
	direct, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close(context.Background())
	for _, c := range []struct {
		name string
		conn *pgx.Conn
	}{{"direct", direct}, {"gateway", through}} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			b.Run(c.name+"/"+mode.String(), func(b *testing.B) {
				var name string
				for i := 0; b.Loop(); i++ {
					if err := c.conn.QueryRow(context.Background(), "SELECT name FROM customers WHERE id = $1", mode, 1+i%2).Scan(&name); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
