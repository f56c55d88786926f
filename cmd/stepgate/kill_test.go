//go:build unix

package main

import (
	"bufio"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// The kill test's deployment: one OIDC client, one user, and two
// policies that apply to every authorization (so every entry has rows in
// the policy index, which a torn batch would leave out of step).
const (
	killClient     = "webapp"
	killSecret     = "webapp-secret-webapp-secret-0123456789"
	killRedirect   = "http://127.0.0.1:9/callback" // nothing listens: the code is read from the redirect
	killUser       = "alice"
	killPassword   = "correct horse battery"
	killPolicy     = "webapp-sign-in"
	killReportOnly = "webapp-mfa-report"
	// killLoaders is how many signed-in browsers authorize at once.
	killLoaders = 4
	// killAfter is how many entries the API must have returned before
	// the server is killed.
	killAfter = 1000
	// Unwritten entries a kill may lose at most: a full buffer
	// (signin_log.buffer's default) and the batch the writer holds.
	killMaxLost = 8192 + 256
)

const killPolicies = `
policies:
  - name: ` + killPolicy + `
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [` + killClient + `]}}
    grant: {controls: [{strength: single-factor}]}
  - name: ` + killReportOnly + `
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [` + killClient + `]}}
    grant: {controls: [mfa]}
`

// TestSignInLogSurvivesKill9 holds the sign-in log to its durability
// promise (docs/audit-and-metrics.md): an entry GET /api/v1/signins has
// returned is committed, and a kill -9 cannot take it back. It runs the
// real binary under a steady load of OIDC authorizations (one entry
// each), records every entry id the API returns, kills the server with
// SIGKILL mid-load, starts it again on the same data, and expects every
// recorded id, a readable log that matches its policy index, a log that
// takes new entries, and an intact audit chain.
func TestSignInLogSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the stepgate binary")
	}
	bin := buildStepgate(t)
	t.Run("sqlite", func(t *testing.T) { testKill9(t, bin, "sqlite") })
	t.Run("postgres", func(t *testing.T) { testKill9(t, bin, pgtest.DSN(t)) })
}

// testKill9 runs the whole story on one backend: dsn is "sqlite" or a
// PostgreSQL DSN.
func testKill9(t *testing.T, bin, dsn string) {
	dir := t.TempDir()
	token := rand.Text() + rand.Text()
	cfg := writeKillConfig(t, dir, dsn, token)
	addUser := exec.Command(bin, "--config", cfg, "user", "add", killUser, "--email", "alice@example.com", "--password-stdin") //nolint:gosec // the binary this test built
	addUser.Env, addUser.Stdin = childEnv(), strings.NewReader(killPassword)
	if out, err := addUser.CombinedOutput(); err != nil {
		t.Fatalf("stepgate user add: %v\n%s", err, out)
	}

	acked, answered, browser := killMidLoad(t, bin, cfg, token)
	srv := startServer(t, bin, cfg)
	entries := checkAcknowledged(t, srv.base, token, acked, answered)
	checkPolicyIndex(t, srv.base, token, entries)
	stored := map[string]bool{}
	for _, e := range entries {
		stored[e.ID] = true
	}
	checkStillLogging(t, srv.base, token, browser, stored)

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.wait(t); err != nil {
		t.Fatalf("graceful shutdown after the restart: %v", err)
	}
	checkOffline(t, bin, cfg, dsn, len(entries)+stillLoggingRounds)
}

// killMidLoad starts the server, loads it, and sends it SIGKILL once the
// API has acknowledged killAfter entries. It returns the acknowledged
// ids, how many authorizations were answered, and a signed-in browser.
func killMidLoad(t *testing.T, bin, cfg, token string) (acked map[string]bool, answered int64, browser *http.Client) {
	t.Helper()
	srv := startServer(t, bin, cfg)
	browsers := make([]*http.Client, killLoaders)
	for i := range browsers {
		browsers[i] = signedIn(t, srv.base)
	}
	l := startLoad(t, srv.base, browsers)
	w := watchSignIns(srv.base, token)
	w.waitFor(t, killAfter)
	l.killed.Store(true)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.wait(t) // "signal: killed", as intended
	answered, acked = l.stop(), w.stop()
	t.Logf("killed after %d authorizations answered, %d entries acknowledged by the API", answered, len(acked))
	return acked, answered, browsers[0]
}

// checkAcknowledged reads the whole log after the restart and expects
// every acknowledged id in it, once. It returns the entries.
func checkAcknowledged(t *testing.T, base, token string, acked map[string]bool, answered int64) []logEntry {
	t.Helper()
	entries := exportSignIns(t, base, token, "")
	stored := map[string]bool{}
	authorizations := 0
	for _, e := range entries {
		if stored[e.ID] {
			t.Errorf("entry %s is stored twice", e.ID)
		}
		stored[e.ID] = true
		if e.Source == "oidc" {
			authorizations++
		}
	}
	missing := 0
	for id := range acked {
		if !stored[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of the %d entries the API returned before the kill are gone after it", missing, len(acked))
	}
	// Entries answered but never written were in the buffer: the loss a
	// kill is allowed, within the buffer's bound.
	lost := int(answered) - authorizations
	t.Logf("after the restart: %d entries stored (%d authorizations); %d answered authorizations were not yet written",
		len(entries), authorizations, max(0, lost))
	if lost > killMaxLost {
		t.Errorf("the kill lost %d answered authorizations; at most %d (buffer and batch) can be unwritten", lost, killMaxLost)
	}
	return entries
}

// buildStepgate builds the binary once. It is built without the race
// detector even when this test has it: under the detector the server
// answers several times fewer requests, and the load before the kill is
// what this test is about.
func buildStepgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stepgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput() //nolint:gosec // fixed arguments
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childEnv is this process's environment without STEPGATE_* variables,
// so a developer's own settings cannot point the server elsewhere.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STEPGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

func writeKillConfig(t *testing.T, dir, dsn, token string) string {
	t.Helper()
	policies := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policies, []byte(killPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
  data_dir: %q
storage:
  dsn: %q
password:
  argon2: {time: 1, memory_kib: 7168, threads: 1}
api:
  token: %q
policy:
  files: [%q]
oidc:
  clients:
    - id: %s
      name: Web app
      secret: %s
      redirect_uris: [%q]
`, filepath.Join(dir, "data"), dsn, token, policies, killClient, killSecret, killRedirect)
	path := filepath.Join(dir, "stepgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serverProcess is a running `stepgate serve`.
type serverProcess struct {
	cmd    *exec.Cmd
	base   string
	logs   *lockedBuffer
	exited chan struct{}
	err    error // how it exited, once exited is closed
}

var servingRe = regexp.MustCompile(`msg="stepgate is serving" addr=(\S+)`)

// startServer runs serve with cfg (which listens on port 0) and waits
// for the address it logs.
func startServer(t *testing.T, bin, cfg string) *serverProcess {
	t.Helper()
	p := &serverProcess{logs: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "--config", cfg, "serve") //nolint:gosec // the binary this test built
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = childEnv(), p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("server log:\n%s", p.logs)
		}
	})
	deadline := time.After(30 * time.Second)
	for p.base == "" {
		select {
		case <-p.exited:
			t.Fatalf("stepgate serve exited: %v\n%s", p.err, p.logs)
		case <-deadline:
			t.Fatalf("stepgate serve did not start in 30s:\n%s", p.logs)
		case <-time.After(20 * time.Millisecond):
		}
		if m := servingRe.FindStringSubmatch(p.logs.String()); m != nil {
			p.base = "http://" + m[1]
		}
	}
	return p
}

// wait waits for the process to exit and returns how it exited.
func (p *serverProcess) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(30 * time.Second):
		t.Fatal("stepgate serve did not exit in 30s")
		return nil
	}
}

var csrfFieldRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signedIn returns a browser with a session: it posts the sign-in form.
func signedIn(t *testing.T, base string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfFieldRe.FindSubmatch(page)
	if m == nil {
		t.Fatalf("the sign-in page has no CSRF token:\n%s", page)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf_token": {string(m[1])}, "username": {killUser},
		"password": {killPassword}, "return_to": {"/account"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in answered %d, want 303", resp.StatusCode)
	}
	return c
}

// authorizeURL is an authorization request that a signed-in browser is
// allowed at once: it redirects to the client with a code.
func authorizeURL(base string) string {
	q := url.Values{"client_id": {killClient}, "redirect_uri": {killRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "code_challenge_method": {"S256"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}}
	return base + "/oauth2/authorize?" + q.Encode()
}

// authorize makes one authorization and reports whether it issued a code.
func authorize(c *http.Client, base string) (bool, error) {
	resp, err := c.Get(authorizeURL(base))
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc, _ := resp.Location()
	if loc == nil || loc.Query().Get("code") == "" {
		return false, fmt.Errorf("authorize answered %d (Location %v), want a redirect with a code", resp.StatusCode, loc)
	}
	return true, nil
}

// load keeps every browser authorizing until stopped.
type load struct {
	killed   atomic.Bool // set before the kill: errors after it are expected
	answered atomic.Int64
	done     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(t *testing.T, base string, browsers []*http.Client) *load {
	l := &load{done: make(chan struct{})}
	for _, c := range browsers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.done:
					return
				default:
				}
				ok, err := authorize(c, base)
				if err != nil {
					if !l.killed.Load() {
						t.Errorf("before the kill: %v", err)
					}
					return
				}
				if ok {
					l.answered.Add(1)
				}
			}
		})
	}
	return l
}

// stop ends the load and returns how many authorizations were answered
// with a code.
func (l *load) stop() int64 {
	close(l.done)
	l.wg.Wait()
	return l.answered.Load()
}

// logEntry is what these tests read of a sign-in log entry.
type logEntry struct {
	ID       string                `json:"id"`
	Source   string                `json:"source"`
	Policies []policy.PolicyResult `json:"policies"`
}

// watcher reads the newest entries from the API over and over and keeps
// every id it was given: each is an entry acknowledged as written.
type watcher struct {
	mu   sync.Mutex
	ids  map[string]bool // guarded by mu
	done chan struct{}
	wg   sync.WaitGroup
}

func watchSignIns(base, token string) *watcher {
	w := &watcher{ids: map[string]bool{}, done: make(chan struct{})}
	c := &http.Client{Timeout: 10 * time.Second}
	w.wg.Go(func() {
		for {
			select {
			case <-w.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if err := w.poll(c, base, token); err != nil {
				// The server is gone: what was acknowledged is final.
				return
			}
		}
	})
	return w
}

// poll reads pages, newest first, until one holds an id seen before.
func (w *watcher) poll(c *http.Client, base, token string) error {
	cursor := ""
	for {
		var page struct {
			SignIns    []logEntry `json:"signins"`
			NextCursor string     `json:"next_cursor"`
		}
		u := base + "/api/v1/signins?limit=100"
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if err := apiGet(c, u, token, func(r io.Reader) error { return json.NewDecoder(r).Decode(&page) }); err != nil {
			return err
		}
		w.mu.Lock()
		caughtUp := false
		for _, e := range page.SignIns {
			caughtUp = caughtUp || w.ids[e.ID]
			w.ids[e.ID] = true
		}
		w.mu.Unlock()
		if caughtUp || page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ids)
}

func (w *watcher) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for w.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the API returned %d entries in 45s, want %d before the kill", w.count(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the polling and returns every id acknowledged.
func (w *watcher) stop() map[string]bool {
	close(w.done)
	w.wg.Wait()
	return w.ids
}

// apiGet calls the API with the token and hands a 200 answer to read.
func apiGet(c *http.Client, u, token string, read func(io.Reader) error) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	return read(resp.Body)
}

// exportSignIns reads every entry (of one policy, if named) as JSON
// Lines; a line that does not decode is a corrupt entry.
func exportSignIns(t *testing.T, base, token, policyName string) []logEntry {
	t.Helper()
	u := base + "/api/v1/signins?format=jsonl"
	if policyName != "" {
		u += "&policy=" + url.QueryEscape(policyName)
	}
	var out []logEntry
	err := apiGet(&http.Client{Timeout: 60 * time.Second}, u, token, func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e logEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return fmt.Errorf("unreadable entry %q: %w", sc.Text(), err)
			}
			if e.ID == "" {
				return fmt.Errorf("entry without an id: %q", sc.Text())
			}
			out = append(out, e)
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPolicyIndex: the policy filter finds exactly the entries whose
// own body says the policy applied. An entry stored without its policy
// rows (or the reverse) would mean a batch was torn by the kill.
func checkPolicyIndex(t *testing.T, base, token string, all []logEntry) {
	t.Helper()
	for _, name := range []string{killPolicy, killReportOnly} {
		want := map[string]bool{}
		for _, e := range all {
			for _, p := range e.Policies {
				if p.Policy == name && p.Result != policy.ResultNotApplied && p.Result != policy.ResultReportOnlyNotApplied {
					want[e.ID] = true
				}
			}
		}
		got := exportSignIns(t, base, token, name)
		if len(got) != len(want) {
			t.Errorf("policy %s: the filter finds %d entries, their bodies say %d", name, len(got), len(want))
		}
		for _, e := range got {
			if !want[e.ID] {
				t.Errorf("policy %s: the filter finds %s, whose body does not list it", name, e.ID)
			}
		}
	}
}

// stillLoggingRounds is how many authorizations follow the restart.
const stillLoggingRounds = 20

// checkStillLogging: after the restart the log takes new entries (the
// browser's session outlived the kill too).
func checkStillLogging(t *testing.T, base, token string, browser *http.Client, before map[string]bool) {
	t.Helper()
	for range stillLoggingRounds {
		if _, err := authorize(browser, base); err != nil {
			t.Fatalf("after the restart: %v", err)
		}
	}
	c := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page struct {
			SignIns []logEntry `json:"signins"`
		}
		err := apiGet(c, base+"/api/v1/signins?limit=100", token, func(r io.Reader) error { return json.NewDecoder(r).Decode(&page) })
		if err != nil {
			t.Fatal(err)
		}
		fresh := 0
		for _, e := range page.SignIns {
			if !before[e.ID] {
				fresh++
			}
		}
		if fresh == stillLoggingRounds {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart %d of %d new authorizations are in the log", fresh, stillLoggingRounds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOffline reads the stopped server's data with the CLI: every entry
// decodes, none is missing, the audit chain verifies, and a SQLite file
// passes its own integrity check.
func checkOffline(t *testing.T, bin, cfg, dsn string, want int) {
	t.Helper()
	cli := func(args ...string) string {
		cmd := exec.Command(bin, append([]string{"--config", cfg}, args...)...) //nolint:gosec // the binary this test built
		cmd.Env = childEnv()
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("stepgate %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
			}
			t.Fatalf("stepgate %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	lines := strings.Count(cli("logs", "signins", "--json", "--limit", "0"), "\n")
	if lines != want {
		t.Errorf("stepgate logs signins lists %d entries, want %d", lines, want)
	}
	if out := cli("audit", "verify"); !strings.Contains(out, "chain intact") {
		t.Errorf("stepgate audit verify: %s", out)
	}
	if dsn != "sqlite" {
		return
	}
	db, err := sql.Open("sqlite", filepath.Join(filepath.Dir(cfg), "data", "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&verdict); err != nil || verdict != "ok" {
		t.Errorf("SQLite integrity check: %q, %v", verdict, err)
	}
}
