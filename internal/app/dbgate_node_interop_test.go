package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// TestInteropNodePgExtendedProtocol runs test/interop/pg.mjs: node-postgres
// (npm pg) through the database gateway with the extended query protocol
// (parameters, a named statement executed twice, a refused UPDATE without
// WHERE surfacing with its SQLSTATE, the connection used afterwards, a
// refusal inside a transaction). The token comes from the device flow
// with resource urn:stepgate:database:bank, approved on the device page,
// and the address and certificate from GET /api/v1/databases/bank with
// that token. Like the other Node interop tests, it skips without node
// and test/interop/node_modules unless STEPGATE_REQUIRE_INTEROP is set.
func TestInteropNodePgExtendedProtocol(t *testing.T) {
	node := nodeWith(t, "pg")
	pgtest.Require(t)
	dbname, direct := newGatewayDatabase(t)
	base, err := pgconn.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "upstream-password")
	if err := os.WriteFile(pwFile, []byte(base.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	s := startOIDC(t, func(cfg *config.Config) {
		cfg.OIDC.Device.Interval = config.Duration(time.Second)
		cfg.OIDC.Clients = append(cfg.OIDC.Clients,
			config.OIDCClient{ID: cliClientID, Name: "Command line", Public: true, GrantTypes: []string{deviceGrant}})
		cfg.Databases = []config.Database{{
			Name: "bank", Listen: listen, RefuseNoWhere: true,
			Upstream: config.DatabaseUpstream{Address: net.JoinHostPort(base.Host, fmt.Sprint(base.Port)), Database: dbname,
				User: base.User, PasswordFile: pwFile},
			StatementWait: config.Duration(time.Minute), StepUpWait: config.Duration(time.Minute), MaxUpstreamConnections: 4,
		}}
	})
	token := s.databaseToken(t, "bank")
	info := s.connectionInfo(t, "bank", token)
	caFile := filepath.Join(t.TempDir(), "bank-ca.crt")
	if err := os.WriteFile(caFile, []byte(info.CACertificate), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "pg.mjs")
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(),
		"STEPGATE_PG_HOST="+info.Host, "STEPGATE_PG_PORT="+strconv.Itoa(info.Port), "STEPGATE_PG_DATABASE="+info.DBName,
		"STEPGATE_PG_USER="+testUser, "STEPGATE_PG_PASSWORD="+token, "STEPGATE_PG_CA="+caFile)
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("pg.mjs did not finish in 60s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("node-postgres through the gateway failed (%v):\n%s", err, out)
	}
	t.Logf("node-postgres through the gateway:\n%s", out)
	if !strings.Contains(string(out), "SQLSTATE 42501: refused by Stepgate") {
		t.Fatalf("the refusal did not reach node-postgres as SQLSTATE 42501:\n%s", out)
	}
	var changed int
	if err := direct.QueryRow(context.Background(), "SELECT count(*) FROM customers WHERE name NOT IN ('Ada', 'Bob')").Scan(&changed); err != nil || changed != 0 {
		t.Fatalf("the upstream's rows changed: %d %v", changed, err)
	}
}

// nodeWith finds node and the interop package pkg, or skips (fails with
// STEPGATE_REQUIRE_INTEROP).
func nodeWith(t *testing.T, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(interopDir, "node_modules", pkg, "package.json"))
	}
	if err != nil {
		msg := pkg + " interop needs node and test/interop/node_modules (run `make interop-deps`): " + err.Error()
		if os.Getenv("STEPGATE_REQUIRE_INTEROP") != "" {
			t.Fatal(msg + "; STEPGATE_REQUIRE_INTEROP is set, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}
	return node
}

// newGatewayDatabase creates a fresh database on the test PostgreSQL
// holding customers (id, name): 1 Ada, 2 Bob. It returns its name and a
// connection straight to it.
func newGatewayDatabase(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	base, err := pgconn.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	name := "dbgate_" + strings.ToLower(rand.Text())[:12]
	admin, err := pgconn.ConnectConfig(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Exec(ctx, "CREATE DATABASE "+name).Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)").Close()
		admin.Close(context.Background())
	})
	cfg, err := pgx.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = name
	delete(cfg.RuntimeParams, "search_path")
	direct, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close(context.Background()) })
	if _, err := direct.Exec(ctx, "CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'Ada'), (2, 'Bob')"); err != nil {
		t.Fatal(err)
	}
	return name, direct
}

// databaseToken runs the device flow of the command line client for the
// database name, approved by the test user on the device page, which
// names the database.
func (s *oidcServer) databaseToken(t *testing.T, name string) string {
	t.Helper()
	resp, body := post(t, http.DefaultClient, s.base+"/oauth2/device_authorization",
		url.Values{"client_id": {cliClientID}, "scope": {"openid"}, "resource": {"urn:stepgate:database:" + name}})
	var start struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	if err := json.Unmarshal([]byte(body), &start); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("device authorization: %d %s", resp.StatusCode, body)
	}
	b := browser(t)
	s.signIn(t, b, "/account")
	_, page := get(t, b, s.base+"/device?user_code="+url.QueryEscape(start.UserCode))
	if !strings.Contains(page, "asks for access to the database "+name) {
		t.Fatalf("the device page does not name the database:\n%s", page)
	}
	if resp, body := s.deviceAnswer(t, b, s.deviceForm(t, b, start.UserCode), start.UserCode, "approve"); resp.StatusCode != http.StatusOK {
		t.Fatalf("approval: %d\n%s", resp.StatusCode, body)
	}
	status, tok := s.devicePoll(t, start.DeviceCode)
	if status != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("device token: %d %s", status, tok.ErrorDescription)
	}
	return tok.AccessToken
}

// connectionInfo reads GET /api/v1/databases/NAME with token.
func (s *oidcServer) connectionInfo(t *testing.T, name, token string) api.Database {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+"/api/v1/databases/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info api.Database
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK || info.CACertificate == "" {
		t.Fatalf("connection information: %d %+v %v", resp.StatusCode, info, err)
	}
	return info
}
