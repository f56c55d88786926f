package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// TestDatabaseGatewayWithRealTokens: `stepgate serve` with a databases:
// entry serves it; an access token the provider issued for the
// database's audience signs in; a token for another client does not; a
// write needs context c2 (MFA), which a password sign-in lacks, and the
// refusal is in the sign-in log with the statement's facts.
func TestDatabaseGatewayWithRealTokens(t *testing.T) {
	pgtest.Require(t)
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
		cfg.Databases = []config.Database{{
			Name: rpClientID, Listen: listen, InsecureLoopback: true,
			Upstream: config.DatabaseUpstream{Address: net.JoinHostPort(base.Host, fmt.Sprint(base.Port)), Database: base.Database,
				User: base.User, PasswordFile: pwFile},
			ClassContexts:          map[string]string{"write": "c2"},
			StatementWait:          config.Duration(time.Minute),
			MaxUpstreamConnections: 4,
		}}
	})
	token := func(c *http.Client, clientID, secret, redirect string) string {
		verifier, challenge := pkce()
		cb := s.follow(t, c, s.authorizeURL(url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "scope": {"openid"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		st, tok := s.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {redirect}, "code_verifier": {verifier}}, clientID, secret)
		if st != http.StatusOK {
			t.Fatalf("token: %d %s", st, tok.ErrorDescription)
		}
		return tok.AccessToken
	}
	b := browser(t)
	dbToken := token(b, rpClientID, rpSecret, rpRedirect)
	otherToken := token(b, otherClientID, otherSecret, otherRedirect)
	host, port, _ := net.SplitHostPort(listen)
	dsn := func(tok string) string {
		return fmt.Sprintf("host=%s port=%s dbname=%s user=%s password=%s sslmode=disable", host, port, rpClientID, testUser, tok)
	}
	ctx := context.Background()
	_, err = pgx.Connect(ctx, dsn(otherToken))
	if err == nil || !strings.Contains(err.Error(), "28P01") {
		t.Fatalf("a token for another client: %v, want 28P01", err)
	}
	conn, err := pgx.Connect(ctx, dsn(dbToken))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("read: %v", err)
	}
	_, err = conn.Exec(ctx, "CREATE TEMP TABLE t (id int)")
	if err == nil || !strings.Contains(err.Error(), "28000") || !strings.Contains(err.Error(), "c2") {
		t.Fatalf("DDL without MFA: %v, want 28000 naming c2", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The database filter: the statements on the database, never the
		// sign-ins of its OIDC client, which has the same name.
		rows, err := s.app.Store.ListSignIns(ctx, store.SignInQuery{Database: rpClientID, StatementClass: "ddl"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if !strings.Contains(string(r.Body), `"source":"database"`) || r.StatementClass != "ddl" {
				t.Fatalf("the database filter returned %s", r.Body)
			}
			if strings.Contains(string(r.Body), `"decision":"challenge"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no database challenge in the sign-in log: %d rows", len(rows))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
