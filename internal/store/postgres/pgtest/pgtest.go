// Package pgtest gives tests an isolated PostgreSQL schema on the server
// named by STEPGATE_TEST_POSTGRES_DSN (make check starts a throwaway
// cluster and sets it).
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
)

// EnvDSN names the variable that points tests at a PostgreSQL server.
const EnvDSN = "STEPGATE_TEST_POSTGRES_DSN"

// EnvRequire, when set, turns a missing DSN into a failure: make check sets
// it so the PostgreSQL run can never be skipped silently.
const EnvRequire = "STEPGATE_REQUIRE_POSTGRES"

// DSN returns a connection string whose search_path is a new, empty schema
// that is dropped when the test ends. It skips the test when no server is
// configured (unless EnvRequire is set).
func DSN(t testing.TB) string {
	t.Helper()
	Require(t)
	dsn, drop, err := NewSchema()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return dsn
}

// Require skips the test when no server is configured, or fails it when
// EnvRequire says one must be.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvDSN) != "" {
		return
	}
	if os.Getenv(EnvRequire) != "" {
		t.Fatalf("%s is set but %s is empty: no PostgreSQL server to test against", EnvRequire, EnvDSN)
	}
	t.Skipf("PostgreSQL tests skipped: set %s (make check starts a throwaway server and sets it)", EnvDSN)
}

// NewSchema creates a new, empty schema on the server named by EnvDSN and
// returns a connection string that uses it, and drop, which removes it.
// Unlike DSN, the schema outlives the test that made it: benchmarks that
// share one seeded database across runs drop it themselves.
func NewSchema() (dsn string, drop func(), err error) {
	base := os.Getenv(EnvDSN)
	u, err := url.Parse(base)
	if err != nil || base == "" {
		return "", nil, fmt.Errorf("%s must be a postgres:// URL (got %q)", EnvDSN, base)
	}
	schema := "t_" + strings.ToLower(rand.Text())
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create test schema: %w", err)
	}
	drop = func() {
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

var _ = stdlib.GetDefaultDriver // registers the "pgx" database/sql driver
