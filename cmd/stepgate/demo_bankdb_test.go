//go:build unix && cgo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/demo"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

var (
	demoDBListenRe = regexp.MustCompile(`database gateway on (127\.0\.0\.1:[0-9]+)\)`)
	demoDBCertRe   = regexp.MustCompile(`sslrootcert=([^"\s]+)"`)
)

// bankDB is the bank database of a running demo, as its welcome text
// describes it.
type bankDB struct {
	host, port, cert string
	// admin reaches the upstream database directly, as its owner.
	admin *pgx.Conn
}

// startBankDemo runs "stepgate demo --with-postgres=URL" against the
// test server and returns the demo's listener, welcome text and bank
// database.
func startBankDemo(t *testing.T) (base string, addr string, welcome string, db bankDB) {
	t.Helper()
	pgtest.Require(t)
	ln, out := startTestDemo(t, func(d *demoRun) {
		d.postgres = os.Getenv(pgtest.EnvDSN)
		d.configure = bankDeviceClient
	})
	welcome = out.String()
	m, c := demoDBListenRe.FindStringSubmatch(welcome), demoDBCertRe.FindStringSubmatch(welcome)
	if m == nil || c == nil {
		t.Fatalf("the welcome text does not say where the bank database is:\n%s", welcome)
	}
	for _, want := range []string{"stepgate psql bank", "user=alice", "sslmode=verify-full"} {
		if !strings.Contains(welcome, want) {
			t.Errorf("the welcome text does not mention %q:\n%s", want, welcome)
		}
	}
	db.host, db.port, db.cert = "127.0.0.1", strings.TrimPrefix(m[1], "127.0.0.1:"), c[1]
	admin, err := pgx.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	admin.Database = demo.BankUpstreamDatabase
	ctx := context.Background()
	if db.admin, err = pgx.ConnectConfig(ctx, admin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.admin.Close(context.Background()) })
	return "http://localhost:" + itoa(ln.Addr().(*net.TCPAddr).Port), ln.Addr().String(), welcome, db
}

// bankDeviceClient lets the bank's client run the device flow, so a
// test can get a token whose audience is the bank database.
func bankDeviceClient(cfg *config.Config) {
	for i, c := range cfg.OIDC.Clients {
		if c.ID == demo.BankApp {
			cfg.OIDC.Clients[i].GrantTypes = append(slices.Clone(c.GrantTypes), config.DeviceCodeGrant)
		}
	}
}

// bankToken signs alice in with her password through the device flow
// and returns an access token for the bank database: her password is
// the only proof it carries.
func bankToken(t *testing.T, base, addr string) string {
	t.Helper()
	api := &http.Client{Timeout: 10 * time.Second}
	post := func(path string, form url.Values) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(demo.BankApp, demo.BankClientSecret)
		resp, err := api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body
	}
	start := post("/oauth2/device_authorization", url.Values{"scope": {"openid"}})
	userCode, _ := start["user_code"].(string)
	deviceCode, _ := start["device_code"].(string)
	if userCode == "" || deviceCode == "" {
		t.Fatalf("device authorization: %v", start)
	}
	approveDevice(t, base, addr, userCode, "alice", "")
	tok := post("/oauth2/token", url.Values{"grant_type": {config.DeviceCodeGrant}, "device_code": {deviceCode}})
	at, _ := tok["access_token"].(string)
	if at == "" {
		t.Fatalf("token: %v", tok)
	}
	return at
}

// approveDevice signs user in with a browser and approves the device
// page for userCode; with a TOTP secret, it steps up when Stepgate asks.
func approveDevice(t *testing.T, base, addr, userCode, user, totpSecret string) {
	t.Helper()
	b := demoBrowser(addr)
	back := "/device?user_code=" + url.QueryEscape(userCode)
	_, page := demoDo(t, b, "GET", base+"/login", nil)
	csrf := demoCSRFRe.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("the sign-in page has no form:\n%s", page)
	}
	resp, _ := demoDo(t, b, "POST", base+"/login", url.Values{"csrf_token": {csrf[1]}, "username": {user},
		"password": {user + "-demo-password"}, "return_to": {back}})
	loc := resp.Header.Get("Location")
	for range 4 {
		if !strings.HasPrefix(loc, "/stepup") && !strings.HasPrefix(loc, base+"/stepup") {
			break
		}
		if totpSecret == "" {
			t.Fatalf("Stepgate asks for a step-up (%s), and the test has no code", loc)
		}
		loc = stepUpWithTOTP(t, b, base, loc, totpSecret)
	}
	if loc != back && loc != base+back {
		t.Fatalf("sign-in went to %q, want back to %q", loc, back)
	}
	_, confirm := demoDo(t, b, "GET", base+back, nil)
	m := demoCSRFRe.FindStringSubmatch(confirm)
	if m == nil || !strings.Contains(confirm, userCode) {
		t.Fatalf("the device page does not show the code:\n%s", confirm)
	}
	resp, body := demoDo(t, b, "POST", base+"/device", url.Values{"csrf_token": {m[1]}, "user_code": {userCode}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: status %d\n%s", resp.StatusCode, body)
	}
}

// stepUpWithTOTP answers the step-up page at loc with the current code
// of secret and returns where Stepgate sends the browser next.
func stepUpWithTOTP(t *testing.T, b *http.Client, base, loc, secret string) string {
	t.Helper()
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	_, page := demoDo(t, b, "GET", loc, nil)
	csrf, cer := demoCSRFRe.FindStringSubmatch(page), demoCerRe.FindStringSubmatch(page)
	if csrf == nil || cer == nil {
		t.Fatalf("the step-up page has no code form:\n%s", page)
	}
	resp, body := demoDo(t, b, "POST", base+"/stepup", url.Values{"csrf_token": {csrf[1]}, "ceremony": {cer[1]},
		"method": {"totp"}, "code": {demoCode(t, secret, time.Now())}})
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("step-up: status %d\n%s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// bankTotals is what the unsafe statements must leave as they were.
type bankTotals struct {
	balances       string
	accounts, xfer int
}

func (db bankDB) totals(t *testing.T) bankTotals {
	t.Helper()
	var tt bankTotals
	err := db.admin.QueryRow(context.Background(),
		"SELECT (SELECT sum(balance)::text FROM accounts), (SELECT count(*) FROM accounts), (SELECT count(*) FROM transfers)").
		Scan(&tt.balances, &tt.accounts, &tt.xfer)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func (db bankDB) dsn(user, token string) string {
	return "host=" + db.host + " port=" + db.port + " dbname=bank user=" + user + " password=" + token +
		" sslmode=verify-full sslrootcert=" + db.cert + " connect_timeout=10"
}

// psql runs the real psql against the demo's bank database with the
// token as its password, over TLS with the demo's certificate.
func (db bankDB) psql(t *testing.T, token string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(psqlBinary(t), append([]string{"-X", "-At", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
		"-h", db.host, "-p", db.port, "-U", "alice", "-d", "bank"}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+token, "PGSSLMODE=verify-full", "PGSSLROOTCERT="+db.cert, "PGCONNECT_TIMEOUT=10")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// psqlBinary finds the real psql client, or skips.
func psqlBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql"); len(m) > 0 {
		return m[len(m)-1]
	}
	if os.Getenv(pgtest.EnvRequire) != "" {
		t.Fatalf("%s is set but psql is not installed (Debian postgresql-client)", pgtest.EnvRequire)
	}
	t.Skip("psql is not installed (Debian postgresql-client)")
	return ""
}

func wantPgError(t *testing.T, what string, err error, code string, mentions ...string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Errorf("%s: %v, want SQLSTATE %s", what, err, code)
		return
	}
	text := pgErr.Message + " " + pgErr.Detail + " " + pgErr.Hint
	for _, m := range mentions {
		if !strings.Contains(text, m) {
			t.Errorf("%s: %q does not mention %q", what, text, m)
		}
	}
}

// TestDemoBankDatabase runs "stepgate demo --with-postgres=URL" against
// a real PostgreSQL and follows the README's bank database walk-through
// with pgx and the real psql, over TLS verified with the demo's
// certificate: alice, signed in with her password, reads customer
// names; reading their social security numbers asks for her
// authenticator app (context c1); UPDATE and DELETE without WHERE, in
// every disguise the classifier knows, are refused (42501) whatever she
// proves, and the bank's data is unchanged afterwards.
func TestDemoBankDatabase(t *testing.T) {
	base, addr, _, db := startBankDemo(t)
	ctx := context.Background()
	before := db.totals(t)
	token := bankToken(t, base, addr)

	conn, err := pgx.Connect(ctx, db.dsn("alice", token))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT name FROM customers ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != 6 || names[0] != "Ada Okafor" {
		t.Fatalf("customer names: %v %v", names, err)
	}
	var ssn string
	err = conn.QueryRow(ctx, "SELECT ssn FROM customers WHERE id = 1").Scan(&ssn)
	wantPgError(t, "reading an ssn with a password only", err, "28000", "c1")
	if ssn != "" {
		t.Fatalf("the ssn was read: %q", ssn)
	}
	for _, tc := range []struct{ name, sql string }{
		{"fail/update-without-where", "UPDATE accounts SET balance = 0"},
		{"fail/update-where-true", "UPDATE accounts SET balance = 0 WHERE true"},
		{"fail/update-where-constant", "UPDATE accounts SET balance = 0 WHERE 1 = 1"},
		{"fail/delete-without-where", "DELETE FROM transfers"},
		{"fail/truncate", "TRUNCATE transfers"},
		{"fail/hidden-in-a-read", "WITH d AS (UPDATE accounts SET balance = 0 RETURNING id) SELECT count(*) FROM d"},
		{"fail/behind-a-read", "SELECT 1; UPDATE accounts SET balance = 0"},
		{"fail/comment-disguise", "/* SELECT */ UPDATE accounts SET balance = 0 -- WHERE id = 1"},
	} {
		_, err := conn.Exec(ctx, tc.sql)
		wantPgError(t, tc.name, err, "42501")
	}
	_, err = conn.Prepare(ctx, "zero", "UPDATE accounts SET balance = 0")
	if err == nil {
		_, err = conn.Exec(ctx, "zero")
	}
	wantPgError(t, "fail/prepared-update-without-where", err, "42501")

	out, stderr, err := db.psql(t, token, "-c", "SELECT name FROM customers ORDER BY id")
	if err != nil || !strings.HasPrefix(out, "Ada Okafor\n") {
		t.Fatalf("psql read: %q %q %v", out, stderr, err)
	}
	out, stderr, err = db.psql(t, token, "-c", "UPDATE accounts SET balance = 0")
	if err == nil || !strings.Contains(stderr, "42501") || strings.Contains(out, "UPDATE") {
		t.Fatalf("psql UPDATE without WHERE: %q %q %v; want refused with 42501", out, stderr, err)
	}
	out, stderr, err = db.psql(t, token, "-c", "SELECT ssn FROM customers")
	if err == nil || !strings.Contains(stderr, "28000") || !strings.Contains(stderr, "c1") || strings.Contains(out, "000-") {
		t.Fatalf("psql ssn read: %q %q %v; want refused with 28000 naming c1", out, stderr, err)
	}

	if after := db.totals(t); after != before {
		t.Fatalf("the bank's data changed: %+v, was %+v", after, before)
	}
}
