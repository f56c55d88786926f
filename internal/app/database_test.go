package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/policy"
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

// TestDatabaseDestructiveNeedsRealElevation: with destructive_needs_elevation,
// the wired server reads the user's elevations from the store: a TRUNCATE
// is refused while alice holds the role only by an active assignment,
// runs once she activates it (scoped to the database) in the same
// session, and is refused again within a second of its deactivation.
func TestDatabaseDestructiveNeedsRealElevation(t *testing.T) {
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
			DestructiveNeedsElevation: "dba",
			StatementWait:             config.Duration(time.Minute),
			MaxUpstreamConnections:    4,
		}}
	})
	ctx := context.Background()
	if _, err := s.app.Users.AddRole(ctx, store.Role{Name: "dba"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []store.RoleAssignment{
		{ID: "ra-active", Role: "dba", Kind: store.AssignActive, Principal: store.UserPrincipal(s.user.ID)},
		{ID: "ra-eligible", Role: "dba", Kind: store.AssignEligible, Principal: store.UserPrincipal(s.user.ID), Scope: []string{rpClientID}},
	} {
		if _, err := s.app.Store.CreateRoleAssignment(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	verifier, challenge := pkce()
	b := browser(t)
	cb := s.follow(t, b, s.authorizeURL(url.Values{"client_id": {rpClientID}, "redirect_uri": {rpRedirect}, "scope": {"openid"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	st, tok := s.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
		"redirect_uri": {rpRedirect}, "code_verifier": {verifier}}, rpClientID, rpSecret)
	if st != http.StatusOK {
		t.Fatalf("token: %d %s", st, tok.ErrorDescription)
	}
	host, port, _ := net.SplitHostPort(listen)
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s dbname=%s user=%s password=%s sslmode=disable", host, port, rpClientID, testUser, tok.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) error {
		_, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		return err
	}
	if err := exec("CREATE TEMP TABLE scratch (id int); INSERT INTO scratch VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := exec("TRUNCATE scratch"); err == nil || !strings.Contains(err.Error(), "42501") || !strings.Contains(err.Error(), "stepgate role activate dba") {
		t.Fatalf("TRUNCATE with an active assignment only: %v, want 42501 naming the role", err)
	}

	u, err := s.app.Store.GetUser(ctx, s.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.app.Elevation.Request(ctx, u, elevate.Ask{Role: "dba", Duration: 30 * time.Minute, Justification: "INC-7"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sess := store.Session{Events: []store.AuthEvent{{Method: "password", Time: now, AMR: []string{"pwd"}}, {Method: "totp", Time: now, AMR: []string{"otp"}}}}
	req := s.app.Access.Request(httptest.NewRequest("POST", "/account/roles", nil), u, &sess, elevate.App, now)
	if e, v, err := s.app.Elevation.Prove(ctx, e.ID, u, req, nil); err != nil || v.Outcome != policy.OutcomeAllow || e.State != store.ElevationActive {
		t.Fatalf("activate dba: state %q, verdict %+v, %v", e.State, v, err)
	}
	// The session reads the user again once a second has passed.
	waitFor(t, func() bool { return exec("TRUNCATE scratch") == nil })

	if _, err := s.app.Elevation.Deactivate(ctx, e.ID, u, false, "done"); err != nil {
		t.Fatal(err)
	}
	// A second later the session has read the user again, and must
	// refuse the first destructive statement it sees.
	time.Sleep(1100 * time.Millisecond)
	if err := exec("DROP TABLE scratch"); err == nil || !strings.Contains(err.Error(), "stepgate role activate dba") {
		t.Fatalf("DROP TABLE a second after the deactivation: %v, want it refused", err)
	}
}

// waitFor polls ok for up to 5 seconds.
func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}
