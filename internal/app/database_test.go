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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// startDatabase serves the test PostgreSQL as the database rpClientID
// (so the relying party's tokens are for it), writes need context c2
// (MFA), and returns the server and the gateway's address.
func startDatabase(t *testing.T, stepUpWait time.Duration, edit ...func(*config.Database)) (*oidcServer, string) {
	t.Helper()
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
			StepUpWait:             config.Duration(stepUpWait),
			MaxUpstreamConnections: 4,
		}}
		for _, e := range edit {
			e(&cfg.Databases[0])
		}
	})
	return s, listen
}

// accessToken signs c in (when it is not yet) and returns an access token
// of clientID from the authorization code flow.
func (s *oidcServer) accessToken(t *testing.T, c *http.Client, clientID, secret, redirect string) string {
	t.Helper()
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

// databaseDSN is a connection string to the gateway at listen.
func databaseDSN(listen, token string) string {
	host, port, _ := net.SplitHostPort(listen)
	return fmt.Sprintf("host=%s port=%s dbname=%s user=%s password=%s sslmode=disable", host, port, rpClientID, testUser, token)
}

// databaseEntries returns the sign-in log's database entries, oldest
// first, as decision:reason.
func (s *oidcServer) databaseEntries(t *testing.T) []string {
	t.Helper()
	if err := s.app.SignIns.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.app.Store.ListSignIns(context.Background(), store.SignInQuery{App: rpClientID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(rows) - 1; i >= 0; i-- {
		if e, _ := audit.Decode(rows[i]); e.Source == "database" {
			out = append(out, e.Decision+":"+string(e.Reason))
		}
	}
	return out
}

// TestDatabaseGatewayWithRealTokens: `stepgate serve` with a databases:
// entry serves it; an access token the provider issued for the
// database's audience signs in; a token for another client does not; a
// write needs context c2 (MFA), which a password sign-in lacks: it waits
// for a step-up, the client is told so in a NOTICE naming c2, and with
// no approval it is refused when the wait ends; the sign-in log has the
// challenge and the timeout.
func TestDatabaseGatewayWithRealTokens(t *testing.T) {
	s, listen := startDatabase(t, time.Second)
	b := browser(t)
	dbToken := s.accessToken(t, b, rpClientID, rpSecret, rpRedirect)
	otherToken := s.accessToken(t, b, otherClientID, otherSecret, otherRedirect)
	ctx := context.Background()
	_, err := pgx.Connect(ctx, databaseDSN(listen, otherToken))
	if err == nil || !strings.Contains(err.Error(), "28P01") {
		t.Fatalf("a token for another client: %v, want 28P01", err)
	}
	cfg, err := pgx.ParseConfig(databaseDSN(listen, dbToken))
	if err != nil {
		t.Fatal(err)
	}
	notices := make(chan *pgconn.Notice, 4)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("read: %v", err)
	}
	_, err = conn.Exec(ctx, "CREATE TEMP TABLE t (id int)")
	if err == nil || !strings.Contains(err.Error(), "28000") || !strings.Contains(err.Error(), "no proof came within 1s") {
		t.Fatalf("DDL without MFA: %v, want 28000 once the wait ended", err)
	}
	if n := <-notices; !strings.Contains(n.Message, "c2") || !strings.Contains(n.Message, s.base+"/device?user_code=") {
		t.Fatalf("notice %q should name c2 and the approval link", n.Message)
	}
	if got := strings.Join(s.databaseEntries(t), ","); got != "challenge:controls-not-satisfied,challenge:step-up-timed-out" {
		t.Fatalf("sign-in log %s", got)
	}
	// The database filter: the statements on the database, never the
	// sign-ins of its OIDC client, which has the same name.
	rows, err := s.app.Store.ListSignIns(ctx, store.SignInQuery{Database: rpClientID, StatementClass: "ddl"})
	if err != nil || len(rows) != 2 {
		t.Fatalf("database filter: %d rows, %v; want the two DDL entries", len(rows), err)
	}
	for _, r := range rows {
		if !strings.Contains(string(r.Body), `"source":"database"`) || r.StatementClass != "ddl" {
			t.Fatalf("the database filter returned %s", r.Body)
		}
	}
}

var userCodeInLink = regexp.MustCompile(`/device\?user_code=([A-Z]{4}-[A-Z]{4})`)

// TestDatabaseStatementWaitsForStepUp: the whole loop with the real
// provider. A DDL statement from a password-only session waits; the
// NOTICE's link opens the approval page in the user's browser, which
// shows the statement's facts; approving sends the user to step up with
// the authenticator app and back; the second approval releases the
// statement, which runs and returns without being sent again. The next
// DDL of the session runs at once on the same proofs; the log has the
// challenge, the browser's approvals and the allows.
func TestDatabaseStatementWaitsForStepUp(t *testing.T) {
	s, listen := startDatabase(t, time.Minute)
	b := browser(t)
	dbToken := s.accessToken(t, b, rpClientID, rpSecret, rpRedirect)
	secret := s.enrollTOTP(t, b)
	approver := browser(t) // another browser of the same user, password only
	s.signIn(t, approver, "/account")

	ctx := context.Background()
	cfg, err := pgx.ParseConfig(databaseDSN(listen, dbToken))
	if err != nil {
		t.Fatal(err)
	}
	notices := make(chan *pgconn.Notice, 4)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	done := make(chan error, 1)
	go func() { _, err := conn.Exec(ctx, "CREATE TEMP TABLE held (id int)"); done <- err }()
	var n *pgconn.Notice
	select {
	case n = <-notices:
	case <-time.After(20 * time.Second):
		t.Fatal("no notice for the held statement")
	}
	m := userCodeInLink.FindStringSubmatch(n.Message)
	if m == nil {
		t.Fatalf("notice %q has no approval link", n.Message)
	}
	code := m[1]
	back := "/device?user_code=" + url.QueryEscape(code)
	form := func() string {
		t.Helper()
		resp, body := get(t, approver, s.base+back)
		c := csrfRe.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusOK || c == nil || !strings.Contains(body, "Run this statement?") || !strings.Contains(body, "CREATE TABLE") {
			t.Fatalf("approval page: %d\n%s", resp.StatusCode, body)
		}
		return c[1]
	}
	resp, _ := s.deviceAnswer(t, approver, form(), code, "approve")
	loc, _ := resp.Location()
	if loc == nil || loc.Path != "/stepup" || loc.Query().Get("return_to") != back || loc.Query().Get("methods") != "totp" {
		t.Fatalf("approval with a password only: redirect %v, want the step-up page with totp", loc)
	}
	select {
	case err := <-done:
		t.Fatalf("the statement ended before the approval: %v", err)
	default:
	}
	s.stepUpTOTP(t, approver, secret, back)
	resp, body := s.deviceAnswer(t, approver, form(), code, "approve")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Statement approved") {
		t.Fatalf("approval after the step-up: %d\n%s", resp.StatusCode, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("approved statement: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the approved statement did not run")
	}
	if _, err := conn.Exec(ctx, "INSERT INTO held VALUES (1)"); err != nil {
		t.Fatalf("the next write, on the same proofs: %v", err)
	}
	want := []string{"challenge:controls-not-satisfied", "challenge:controls-not-satisfied", "allow:", "allow:", "allow:"}
	if got := s.databaseEntries(t); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("sign-in log %v, want %v", got, want)
	}
	// The INSERT's entry was amended with what it did once it ran.
	rows, err := s.app.Store.ListSignIns(ctx, store.SignInQuery{App: rpClientID, Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	e, err := audit.Decode(rows[0])
	if err != nil || e.Statement == nil || e.Statement.Command != "INSERT" || !e.Statement.Ran || e.Statement.Rows != 1 || e.Statement.DurationMicros <= 0 {
		t.Fatalf("newest entry %+v (%v): want the INSERT with one row and its duration", e.Statement, err)
	}
}

// TestDatabaseDestructiveNeedsRealElevation: with destructive_needs_elevation,
// the wired server reads the user's elevations from the store: a TRUNCATE
// is refused while alice holds the role only by an active assignment,
// runs once she activates it (scoped to the database) in the same
// session, and is refused again within a second of its deactivation.
func TestDatabaseDestructiveNeedsRealElevation(t *testing.T) {
	s, listen := startDatabase(t, time.Minute, func(d *config.Database) {
		d.ClassContexts = nil
		d.DestructiveNeedsElevation = "dba"
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
	tok := s.accessToken(t, browser(t), rpClientID, rpSecret, rpRedirect)
	conn, err := pgx.Connect(ctx, databaseDSN(listen, tok))
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
