package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// testProvision names a database and role of the test's own on the
// shared test server, dropped when the test ends.
func testProvision(t *testing.T, admin *pgx.Conn) BankProvision {
	t.Helper()
	suffix := strings.ToLower(rand.Text()[:8])
	p := BankProvision{Database: "demo_bank_" + suffix, Role: "demo_bank_gw_" + suffix}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(p.Database)+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+ident(p.Role))
	})
	return p
}

func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	pgtest.Require(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// gatewayConn connects straight to the upstream as the gateway's role,
// with the password Provision kept.
func gatewayConn(t *testing.T, db BankDatabase) (*pgx.Conn, error) {
	t.Helper()
	pw, err := db.Upstream.Password("upstream", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(db.Upstream.Address)
	cfg, err := pgx.ParseConfig("host=" + host + " port=" + port + " sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password, cfg.Database = db.Upstream.User, pw, db.Upstream.Database
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c, err
}

func wantSQLState(t *testing.T, what string, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Errorf("%s: %v, want SQLSTATE %s", what, err, code)
	}
}

// TestProvisionBankDatabase: the bank's rows are there for the gateway's
// role, which can read and change rows and nothing more: it cannot drop
// or create tables, change roles, or read the server's password hashes,
// so a statement the gateway let through still cannot do more than a
// clerk's. A second start brings the same rows back and a new password;
// the old one no longer signs in.
func TestProvisionBankDatabase(t *testing.T) {
	admin := adminConn(t)
	p := testProvision(t, admin)
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Provision(ctx, os.Getenv(pgtest.EnvDSN), dir, "127.0.0.1:6432", p)
	if err != nil {
		t.Fatal(err)
	}
	if db.Upstream.Database != p.Database || db.Upstream.User != p.Role || db.Upstream.PasswordFile != filepath.Join(dir, BankPasswordFile) {
		t.Fatalf("upstream %+v", db.Upstream)
	}
	if fi, err := os.Stat(db.Upstream.PasswordFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the password file: %v %v, want mode 0600", fi, err)
	}
	gw, err := gatewayConn(t, db)
	if err != nil {
		t.Fatal(err)
	}
	var customers, fakeSSNs int
	if err := gw.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE ssn LIKE '000-__-____') FROM customers").Scan(&customers, &fakeSSNs); err != nil {
		t.Fatal(err)
	}
	if customers == 0 || fakeSSNs != customers {
		t.Fatalf("%d customers, %d with a 000- number; want every number in the never-issued 000 area", customers, fakeSSNs)
	}
	if _, err := gw.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
		t.Fatalf("a clerk's update: %v", err)
	}
	if _, err := gw.Exec(ctx, "INSERT INTO transfers (from_account, to_account, amount) VALUES (1, 2, 5)"); err != nil {
		t.Fatalf("a clerk's insert: %v", err)
	}
	for _, tc := range []struct{ name, sql, code string }{
		{"fail/drop-table", "DROP TABLE customers", "42501"},
		{"fail/create-table", "CREATE TABLE loot (x text)", "42501"},
		{"fail/alter-table", "ALTER TABLE customers ADD COLUMN x int", "42501"},
		{"fail/alter-own-role", "ALTER ROLE CURRENT_USER CREATEDB", "42501"},
		{"fail/password-hashes", "SELECT rolpassword FROM pg_authid", "42501"},
		{"fail/create-role", "CREATE ROLE loot", "42501"},
		{"fail/server-file", "SELECT pg_read_file('postgresql.conf')", "42501"},
		{"fail/copy-program", "COPY customers TO PROGRAM 'cat'", "42501"},
	} {
		_, err := gw.Exec(ctx, tc.sql)
		wantSQLState(t, tc.name, err, tc.code)
	}

	if _, err := Provision(ctx, os.Getenv(pgtest.EnvDSN), dir, "127.0.0.1:6432", p); err != nil {
		t.Fatalf("provisioning again: %v", err)
	}
	if _, err := gatewayConn(t, BankDatabase{Upstream: db.Upstream}); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	var balance string
	gw2, _ := gatewayConn(t, db)
	if err := gw2.QueryRow(ctx, "SELECT balance::text FROM accounts WHERE id = 1").Scan(&balance); err != nil || balance != "1250.00" {
		t.Fatalf("account 1 after a new start: %q %v, want the seeded 1250.00", balance, err)
	}
}

// TestProvisionLeavesOthersObjects: a database or role that has the
// demo's name but that the demo did not create (someone's own, on a
// server given with --with-postgres) is never dropped or changed; the
// demo stops with an error saying so.
func TestProvisionLeavesOthersObjects(t *testing.T) {
	admin := adminConn(t)
	ctx := context.Background()
	t.Run("fail/someone-elses-database", func(t *testing.T) {
		p := testProvision(t, admin)
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(p.Database)); err != nil {
			t.Fatal(err)
		}
		_, err := Provision(ctx, os.Getenv(pgtest.EnvDSN), t.TempDir(), "127.0.0.1:6432", p)
		if err == nil || !strings.Contains(err.Error(), "did not create") {
			t.Fatalf("Provision over someone's database: %v", err)
		}
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", p.Database).Scan(&n); err != nil || n != 1 {
			t.Fatalf("the database is gone: %d %v", n, err)
		}
	})
	t.Run("fail/someone-elses-role", func(t *testing.T) {
		p := testProvision(t, admin)
		if _, err := admin.Exec(ctx, "CREATE ROLE "+ident(p.Role)+" LOGIN PASSWORD 'theirs'"); err != nil {
			t.Fatal(err)
		}
		_, err := Provision(ctx, os.Getenv(pgtest.EnvDSN), t.TempDir(), "127.0.0.1:6432", p)
		if err == nil || !strings.Contains(err.Error(), "did not create") {
			t.Fatalf("Provision over someone's role: %v", err)
		}
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", p.Database).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a database was created anyway: %d %v", n, err)
		}
	})
	t.Run("fail/unix-socket-url", func(t *testing.T) {
		_, err := Provision(ctx, "postgres:///postgres?host=/var/run/postgresql", t.TempDir(), "127.0.0.1:6432", BankProvision{})
		if err == nil || !strings.Contains(err.Error(), "host=127.0.0.1") {
			t.Fatalf("a Unix socket URL: %v", err)
		}
	})
}

// TestPrivateCluster starts the demo's own PostgreSQL from the local
// programs (as the postgres user when the test runs as root), puts the
// bank on it, and stops it: the port no longer answers and its files
// are gone. Every role needs its password (the server listens on a
// loopback address other users of the machine reach): the superuser's
// is known only to this process, and a second start changes the
// gateway's.
func TestPrivateCluster(t *testing.T) {
	bin := FindPostgres()
	if bin == "" {
		if os.Getenv(pgtest.EnvRequire) != "" {
			t.Fatalf("%s is set but no PostgreSQL programs (initdb, pg_ctl) were found", pgtest.EnvRequire)
		}
		t.Skip("no local PostgreSQL programs (Debian: postgresql)")
	}
	ctx := context.Background()
	dataDir := t.TempDir()
	c, err := StartCluster(ctx, bin, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	cfg, err := pgx.ParseConfig(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	noPassword := cfg.Copy()
	noPassword.Password = ""
	_, err = pgx.ConnectConfig(ctx, noPassword)
	if err == nil {
		t.Fatal("the private cluster's superuser signed in without a password")
	}
	db, err := Provision(ctx, c.URL(), dataDir, "127.0.0.1:6432", BankProvision{})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gatewayConn(t, db)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := gw.QueryRow(ctx, "SELECT count(*) FROM accounts").Scan(&n); err != nil || n == 0 {
		t.Fatalf("accounts: %d %v", n, err)
	}
	gw.Close(ctx)
	if _, err := Provision(ctx, c.URL(), dataDir, "127.0.0.1:6432", BankProvision{}); err != nil {
		t.Fatalf("provisioning again: %v", err)
	}
	stale := db
	stale.Upstream.PasswordFile = filepath.Join(t.TempDir(), "old")
	if err := os.WriteFile(stale.Upstream.PasswordFile, []byte("not-the-password"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = gatewayConn(t, stale)
	wantSQLState(t, "the gateway's role with a wrong password", err, "28P01")
	dir := c.Dir()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster's directory %s is still there: %v", dir, err)
	}
	if conn, err := net.DialTimeout("tcp", db.Upstream.Address, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still answers after Stop", db.Upstream.Address)
	}
}
