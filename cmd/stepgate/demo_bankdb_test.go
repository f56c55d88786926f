//go:build unix && cgo

package main

import (
	"bufio"
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
	})
	welcome = out.String()
	m, c := demoDBListenRe.FindStringSubmatch(welcome), demoDBCertRe.FindStringSubmatch(welcome)
	if m == nil || c == nil {
		t.Fatalf("the welcome text does not say where the bank database is:\n%s", welcome)
	}
	for _, want := range []string{"stepgate psql --issuer http://localhost:", "user=alice", "sslmode=verify-full"} {
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

// bankToken signs alice in with her password through the device flow
// of the demo's stepgate-cli client, asking for a token for the bank
// database (resource urn:stepgate:database:bank), as "stepgate psql
// bank" does: her password is the only proof it carries.
func bankToken(t *testing.T, base, addr string) string {
	t.Helper()
	api := &http.Client{Timeout: 10 * time.Second}
	resource := databaseResourcePrefix + demo.BankDatabaseName
	post := func(path string, form url.Values) map[string]any {
		t.Helper()
		form.Set("client_id", defaultLoginClient)
		form.Set("resource", resource)
		resp, err := api.PostForm(base+path, form)
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
	approveDevice(t, base, addr, userCode, "alice", nil, "approve")
	tok := post("/oauth2/token", url.Values{"grant_type": {config.DeviceCodeGrant}, "device_code": {deviceCode}})
	at, _ := tok["access_token"].(string)
	if at == "" {
		t.Fatalf("token: %v", tok)
	}
	return at
}

// approveDevice signs user in with a browser and answers the device
// page for userCode with decision (approve or deny). When Stepgate asks
// for more proof first, it steps up with the authenticator app of
// totpSecret and answers again. It returns the final page.
func approveDevice(t *testing.T, base, addr, userCode, user string, codes *totpCodes, decision string) string {
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
	if strings.Contains(loc, "/account/register-offer") {
		// The demo's registration campaign offers alice a passkey after
		// her sign-in: "Not now" goes on to the device page.
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		if u, err = u.Parse(loc); err != nil {
			t.Fatal(err)
		}
		resp, _ = demoNotNow(t, b, base, u)
		loc = resp.Header.Get("Location")
	}
	if loc != back && loc != base+back {
		t.Fatalf("sign-in went to %q, want back to %q", loc, back)
	}
	for range 3 {
		_, confirm := demoDo(t, b, "GET", base+back, nil)
		m := demoCSRFRe.FindStringSubmatch(confirm)
		if m == nil || !strings.Contains(confirm, userCode) {
			t.Fatalf("the device page does not show the code:\n%s", confirm)
		}
		resp, body := demoDo(t, b, "POST", base+"/device", url.Values{"csrf_token": {m[1]}, "user_code": {userCode}, "decision": {decision}})
		if resp.StatusCode == http.StatusOK {
			return body
		}
		loc := resp.Header.Get("Location")
		if !strings.Contains(loc, "/stepup") || codes == nil {
			t.Fatalf("answer %s: status %d, to %q\n%s", decision, resp.StatusCode, loc, body)
		}
		if next := stepUpWithTOTP(t, b, base, loc, codes); next != back && next != base+back {
			t.Fatalf("the step-up went to %q, want back to %q", next, back)
		}
	}
	t.Fatalf("answering %s for %s did not end", decision, userCode)
	return ""
}

// totpCodes hands out codes of alice's authenticator app, each of a
// later time step than the one before: a code once accepted is never
// accepted again, and Stepgate accepts the steps just before and after
// the current one, so three step-ups fit in one test.
type totpCodes struct {
	secret string
	used   int
}

func (c *totpCodes) next(t *testing.T) string {
	t.Helper()
	if c.used > 2 {
		t.Fatal("more step-ups than distinct codes around the current time")
	}
	code := demoCode(t, c.secret, time.Now().Add(time.Duration(c.used-1)*30*time.Second))
	c.used++
	return code
}

// stepUpWithTOTP answers the step-up page at loc with the next code of
// codes and returns where Stepgate sends the browser next.
func stepUpWithTOTP(t *testing.T, b *http.Client, base, loc string, codes *totpCodes) string {
	t.Helper()
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	_, page := demoDo(t, b, "GET", loc, nil)
	csrf, cer := demoCSRFRe.FindStringSubmatch(page), demoCerRe.FindStringSubmatch(page)
	if csrf == nil || cer == nil {
		t.Fatalf("the step-up page has no code form:\n%s", page)
	}
	resp, body := demoDo(t, b, "POST", base+"/stepup", url.Values{"csrf_token": {csrf[1]}, "ceremony": {cer[1]},
		"code": {codes.next(t)}, "return_to": {u.Query().Get("return_to")}})
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

var noticeCodeRe = regexp.MustCompile(`/device\?user_code=([A-Z]{4}-[A-Z]{4})`)

// heldNotice waits for the NOTICE of a held statement and returns its
// user code, checking the link is Stepgate's device page.
func heldNotice(t *testing.T, base string, notices <-chan *pgconn.Notice) string {
	t.Helper()
	select {
	case n := <-notices:
		m := noticeCodeRe.FindStringSubmatch(n.Message)
		if m == nil || !strings.Contains(n.Message, base+"/device?user_code=") || !strings.Contains(n.Message, "c1") {
			t.Fatalf("notice %q has no link to %s/device naming c1", n.Message, base)
		}
		return m[1]
	case <-time.After(20 * time.Second):
		t.Fatal("no NOTICE for the held statement")
		return ""
	}
}

// noticeConn connects to the bank database through pgx and sends the
// server's notices to the returned channel.
func (db bankDB) noticeConn(t *testing.T, token string) (*pgx.Conn, <-chan *pgconn.Notice) {
	t.Helper()
	cfg, err := pgx.ParseConfig(db.dsn("alice", token))
	if err != nil {
		t.Fatal(err)
	}
	notices := make(chan *pgconn.Notice, 8)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n }
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, notices
}

type queryResult struct {
	values []string
	err    error
}

// queryStrings runs sql in the background and sends its one text column.
func queryStrings(conn *pgx.Conn, sql string) <-chan queryResult {
	done := make(chan queryResult, 1)
	go func() {
		rows, err := conn.Query(context.Background(), sql)
		if err != nil {
			done <- queryResult{err: err}
			return
		}
		v, err := pgx.CollectRows(rows, pgx.RowTo[string])
		done <- queryResult{v, err}
	}()
	return done
}

func waitResult(t *testing.T, what string, done <-chan queryResult) queryResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not end", what)
		return queryResult{}
	}
}

// TestDemoBankDatabase runs "stepgate demo --with-postgres=URL" against
// a real PostgreSQL and follows the README's bank database walk-through
// with pgx and with "stepgate psql bank" running the real psql, over
// TLS verified with the demo's certificate. alice, signed in with her password, reads customer names
// at once. Reading their social security numbers waits: a NOTICE links
// to the device page, where alice's password alone is not enough and
// she steps up with her authenticator app; the waiting query then
// returns, unsent again. bob cannot see or answer alice's code; a
// denial ends the wait with 28000 and no row. UPDATE and DELETE without
// WHERE, in every disguise the classifier knows, are refused (42501)
// whatever she proves, and the bank's data is unchanged afterwards.
func TestDemoBankDatabase(t *testing.T) {
	base, addr, welcome, db := startBankDemo(t)
	secretMatch := demoSecretRe.FindStringSubmatch(welcome)
	if secretMatch == nil {
		t.Fatalf("no TOTP secret in the welcome text:\n%s", welcome)
	}
	codes := &totpCodes{secret: secretMatch[1]}
	ctx := context.Background()
	before := db.totals(t)
	token := bankToken(t, base, addr)

	conn, notices := db.noticeConn(t, token)
	names := waitResult(t, "reading names", queryStrings(conn, "SELECT name FROM customers ORDER BY id"))
	if names.err != nil || len(names.values) != 6 || names.values[0] != "Ada Okafor" {
		t.Fatalf("customer names: %v %v", names.values, names.err)
	}
	if len(notices) != 0 {
		t.Fatalf("a routine read got a notice: %q", (<-notices).Message)
	}

	held := queryStrings(conn, "SELECT ssn FROM customers ORDER BY id")
	code := heldNotice(t, base, notices)
	if page := bobLooksAt(t, base, addr, code); strings.Contains(page, "Run this statement?") || strings.Contains(page, "customers") {
		t.Fatalf("bob sees alice's held statement:\n%s", page)
	}
	select {
	case r := <-held:
		t.Fatalf("the ssn read ended before alice approved it: %v %v", r.values, r.err)
	default:
	}
	if page := approveDevice(t, base, addr, code, "alice", codes, "approve"); !strings.Contains(page, "Statement approved") {
		t.Fatalf("the approval page:\n%s", page)
	}
	ssns := waitResult(t, "the approved ssn read", held)
	if ssns.err != nil || len(ssns.values) != 6 || ssns.values[0] != "000-12-3401" {
		t.Fatalf("the approved ssn read: %v %v", ssns.values, ssns.err)
	}
	emails := waitResult(t, "an email read after the approval", queryStrings(conn, "SELECT email FROM customers WHERE id = 1"))
	if emails.err != nil || len(emails.values) != 1 || len(notices) != 0 {
		t.Fatalf("a pii read after the approval, on the session's proofs: %v %v (notices %d)", emails.values, emails.err, len(notices))
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
	_, err := conn.Prepare(ctx, "zero", "UPDATE accounts SET balance = 0")
	if err == nil {
		_, err = conn.Exec(ctx, "zero")
	}
	wantPgError(t, "fail/prepared-update-without-where", err, "42501")

	denied, deniedNotices := db.noticeConn(t, token)
	deniedRead := queryStrings(denied, "SELECT ssn FROM customers")
	deniedCode := heldNotice(t, base, deniedNotices)
	approveDevice(t, base, addr, deniedCode, "alice", codes, "deny")
	r := waitResult(t, "the denied ssn read", deniedRead)
	wantPgError(t, "fail/denied", r.err, "28000")
	if len(r.values) != 0 {
		t.Fatalf("a denied read returned %v", r.values)
	}

	psqlWalkThrough(t, base, addr, codes)
	if after := db.totals(t); after != before {
		t.Fatalf("the bank's data changed: %+v, was %+v", after, before)
	}
}

// bobLooksAt signs bob in and opens the device page for alice's code.
func bobLooksAt(t *testing.T, base, addr, code string) string {
	t.Helper()
	b := demoBrowser(addr)
	back := "/device?user_code=" + url.QueryEscape(code)
	_, page := demoDo(t, b, "GET", base+"/login", nil)
	csrf := demoCSRFRe.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("the sign-in page has no form:\n%s", page)
	}
	demoDo(t, b, "POST", base+"/login", url.Values{"csrf_token": {csrf[1]}, "username": {"bob"}, "password": {"bob-demo-password"}, "return_to": {back}})
	_, page = demoDo(t, b, "GET", base+back, nil)
	if m := demoCSRFRe.FindStringSubmatch(page); m != nil {
		resp, body := demoDo(t, b, "POST", base+"/device", url.Values{"csrf_token": {m[1]}, "user_code": {code}, "decision": {"approve"}})
		if resp.StatusCode == http.StatusOK && strings.Contains(body, "approved") {
			t.Fatalf("bob approved alice's statement:\n%s", body)
		}
	}
	return page
}

// stepgatePsql is one "stepgate psql --issuer BASE bank ARGS..." under
// way, running the real psql as a child (instead of in its place) and
// passing on psql's standard error line by line as psql writes it.
type stepgatePsql struct {
	cliErr *lockedBuffer
	out    *lockedBuffer
	lines  chan string
	done   chan error
}

func startStepgatePsql(t *testing.T, configDir, base string, args ...string) *stepgatePsql {
	t.Helper()
	psql := psqlBinary(t)
	r := &stepgatePsql{cliErr: &lockedBuffer{}, out: &lockedBuffer{}, lines: make(chan string, 64), done: make(chan error, 1)}
	c := &cli{stdin: strings.NewReader(""), stdout: &lockedBuffer{}, stderr: r.cliErr, now: time.Now, configDir: configDir,
		lookPath: func(string) (string, error) { return psql, nil },
		psqlRunner: func(path string, args, env []string) error {
			defer close(r.lines)
			cmd := exec.Command(path, args...)
			cmd.Env = append(env, "PGCONNECT_TIMEOUT=10")
			cmd.Stdout = r.out
			pipe, err := cmd.StderrPipe()
			if err != nil {
				return err
			}
			if err := cmd.Start(); err != nil {
				return err
			}
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				r.lines <- sc.Text()
			}
			return cmd.Wait()
		}}
	root := c.root()
	root.SetArgs(append([]string{"psql", "--issuer", base, demo.BankDatabaseName, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"}, args...))
	root.SetOut(r.cliErr)
	root.SetErr(r.cliErr)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	go func() { r.done <- root.ExecuteContext(ctx) }()
	return r
}

// line waits for a line of psql's standard error containing want.
func (r *stepgatePsql) line(t *testing.T, want string) string {
	t.Helper()
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				t.Fatalf("psql ended without printing %q", want)
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("psql printed no %q", want)
		}
	}
}

// wait waits for the command to end; psql's output and the rest of its
// standard error are returned.
func (r *stepgatePsql) wait(t *testing.T) (stdout, stderr string, err error) {
	t.Helper()
	var rest []string
	for {
		select {
		case l, ok := <-r.lines:
			if ok {
				rest = append(rest, l)
				continue
			}
			r.lines = nil
		case err = <-r.done:
			// psqlRunner closed lines before the command returned.
			if r.lines != nil {
				for l := range r.lines {
					rest = append(rest, l)
				}
			}
			return r.out.String(), strings.Join(rest, "\n"), err
		case <-time.After(60 * time.Second):
			t.Fatalf("stepgate psql did not finish:\n%s", r.cliErr.String())
		}
	}
}

// psqlWalkThrough follows the README's steps with "stepgate psql bank"
// and the real psql: the first run signs alice in with the device flow
// (password only) and the read flows; the ssn read pauses, psql prints
// the NOTICE with the link at once, and the numbers after alice approves
// with her authenticator app; the UPDATE without WHERE is refused with
// 42501. The later runs reuse the kept token.
func psqlWalkThrough(t *testing.T, base, addr string, codes *totpCodes) {
	t.Helper()
	dir := t.TempDir()
	read := startStepgatePsql(t, dir, base, "-c", "SELECT name FROM customers")
	var code string
	waitFor(t, "the device code of stepgate psql", func() bool {
		if m := shownCode.FindStringSubmatch(read.cliErr.String()); m != nil {
			code = m[1]
		}
		return code != ""
	})
	approveDevice(t, base, addr, code, "alice", nil, "approve")
	if out, stderr, err := read.wait(t); err != nil || !strings.Contains(out, "Ada Okafor\n") {
		t.Fatalf("stepgate psql read: %q %q %v\n%s", out, stderr, err, read.cliErr.String())
	}

	held := startStepgatePsql(t, dir, base, "-c", "SELECT ssn FROM customers")
	notice := held.line(t, "NOTICE:")
	t.Logf("psql printed: %s", notice)
	m := noticeCodeRe.FindStringSubmatch(notice)
	if m == nil {
		t.Fatalf("psql's NOTICE has no link: %q", notice)
	}
	approveDevice(t, base, addr, m[1], "alice", codes, "approve")
	if out, stderr, err := held.wait(t); err != nil || !strings.HasPrefix(out, "000-12-3401\n") {
		t.Fatalf("psql after the approval: %q %q %v", out, stderr, err)
	}

	update := startStepgatePsql(t, dir, base, "-c", "UPDATE accounts SET balance = 0")
	if out, stderr, err := update.wait(t); err == nil || !strings.Contains(stderr, "42501") || strings.Contains(out, "UPDATE") {
		t.Fatalf("psql UPDATE without WHERE: %q %q %v; want refused with 42501", out, stderr, err)
	}
	if strings.Count(read.cliErr.String()+held.cliErr.String()+update.cliErr.String(), "enter the code") != 1 {
		t.Errorf("stepgate psql asked for a device sign-in more than once")
	}
}

// TestDemoPostgresArguments: --with-postgres takes its URL after "=" or
// after a space; a URL without the flag, or any other argument, is an
// error that says how to write it.
func TestDemoPostgresArguments(t *testing.T) {
	const u = "postgres://postgres:pw@127.0.0.1:5432/postgres"
	for _, tc := range []struct {
		name, flag string
		args       []string
		wantErr    string
	}{
		{"ok/no-flag", "", nil, ""},
		{"ok/private", privatePostgres, nil, ""},
		{"ok/url-after-equals", u, nil, ""},
		{"ok/url-after-space", privatePostgres, []string{u}, ""},
		{"ok/postgresql-scheme", privatePostgres, []string{"postgresql://h/db"}, ""},
		{"fail/url-without-flag", "", []string{u}, "--with-postgres=" + u},
		{"fail/url-twice", u, []string{u}, "--with-postgres=" + u},
		{"fail/other-argument", privatePostgres, []string{"bank"}, "no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flag := tc.flag
			err := demoArgs(&flag)(nil, tc.args)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestDemoSaysHowToAddTheBankDatabase: a demo started without
// --with-postgres on a machine with PostgreSQL says in one line how to
// add the bank database, and starts nothing.
func TestDemoSaysHowToAddTheBankDatabase(t *testing.T) {
	var out bytes.Buffer
	printBankDatabase(demoRun{out: &out, self: "stepgate"}, defaultIssuer, nil)
	if demo.FindPostgres() == "" {
		if out.Len() != 0 {
			t.Fatalf("without PostgreSQL, the demo still says: %q", out.String())
		}
		t.Skip("no local PostgreSQL programs")
	}
	if !strings.Contains(out.String(), "stepgate demo --with-postgres adds the bank's database") || strings.Count(out.String(), "\n") != 2 {
		t.Fatalf("the demo says %q", out.String())
	}
}

var demoUpstreamRe = regexp.MustCompile(`upstream:  database \S+ on (127\.0\.0\.1:[0-9]+)`)

// TestDemoPrivatePostgres runs "stepgate demo --with-postgres" with no
// URL: the demo starts PostgreSQL from the local programs (as the
// postgres user when the test runs as root), the bank database answers
// through the gateway, and once the demo stops, the server is gone.
func TestDemoPrivatePostgres(t *testing.T) {
	if demo.FindPostgres() == "" {
		if os.Getenv(pgtest.EnvRequire) != "" {
			t.Fatalf("%s is set but no PostgreSQL programs (initdb, pg_ctl) were found", pgtest.EnvRequire)
		}
		t.Skip("no local PostgreSQL programs (Debian: postgresql)")
	}
	var upstream string
	// Registered first, so it runs after the demo has stopped.
	t.Cleanup(func() {
		if conn, err := net.DialTimeout("tcp", upstream, time.Second); err == nil {
			conn.Close()
			t.Errorf("the demo's PostgreSQL still answers on %s after the demo stopped", upstream)
		}
	})
	ln, out := startTestDemo(t, func(d *demoRun) {
		d.postgres = privatePostgres
	})
	welcome := out.String()
	m, c, u := demoDBListenRe.FindStringSubmatch(welcome), demoDBCertRe.FindStringSubmatch(welcome), demoUpstreamRe.FindStringSubmatch(welcome)
	if m == nil || c == nil || u == nil {
		t.Fatalf("the welcome text does not say where the bank database is:\n%s", welcome)
	}
	upstream = u[1]
	db := bankDB{host: "127.0.0.1", port: strings.TrimPrefix(m[1], "127.0.0.1:"), cert: c[1]}
	base := "http://localhost:" + itoa(ln.Addr().(*net.TCPAddr).Port)
	conn, _ := db.noticeConn(t, bankToken(t, base, ln.Addr().String()))
	names := waitResult(t, "reading names", queryStrings(conn, "SELECT name FROM customers ORDER BY id"))
	if names.err != nil || len(names.values) != 6 {
		t.Fatalf("customer names: %v %v", names.values, names.err)
	}
}
