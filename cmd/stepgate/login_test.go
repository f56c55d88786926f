package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/users"
)

// loginServer is a running Stepgate with the stepgate-cli client (the
// device grant, polled every second) and the user alice.
type loginServer struct {
	app  *app.App
	base string
	// lastConfirm is the device page answerAs last approved or denied.
	lastConfirm string
}

const (
	loginUser     = "alice"
	loginPassword = "correct horse battery"
)

func startLoginServer(t *testing.T, edits ...func(*config.Config)) *loginServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.Listen = ln.Addr().String()
	cfg.Server.Issuer = "http://" + ln.Addr().String()
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1}
	cfg.OIDC.Device.Interval = config.Duration(time.Second)
	cfg.OIDC.Clients = []config.OIDCClient{
		{ID: defaultLoginClient, Name: "Stepgate command line", Public: true, GrantTypes: []string{deviceCodeGrant, "refresh_token"}},
		{ID: "spa", Name: "Single-page app", Public: true, RedirectURIs: []string{"http://127.0.0.1:9/cb"}},
	}
	for _, edit := range edits {
		edit(&cfg)
	}
	if probs := cfg.Validate(); len(probs) > 0 {
		t.Fatal(probs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	if _, err := a.Users.Add(context.Background(), users.NewUser{Username: loginUser, Password: loginPassword}); err != nil {
		t.Fatal(err)
	}
	return &loginServer{app: a, base: cfg.Server.Issuer}
}

// loginRun is one `stepgate login` under way.
type loginRun struct {
	stdout, stderr *lockedBuffer
	done           chan error
}

// startLogin runs `stepgate login args...` with the token cache in dir.
func startLogin(t *testing.T, dir string, args ...string) *loginRun {
	t.Helper()
	return startLoginAt(t, time.Now, dir, args...)
}

// startLoginAt is startLogin with the command's clock.
func startLoginAt(t *testing.T, now func() time.Time, dir string, args ...string) *loginRun {
	t.Helper()
	r := &loginRun{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	c := &cli{stdin: strings.NewReader(""), stdout: r.stdout, stderr: r.stderr, now: now, configDir: dir}
	root := c.root()
	root.SetArgs(append([]string{"login"}, args...))
	root.SetOut(r.stdout)
	root.SetErr(r.stderr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	go func() { r.done <- root.ExecuteContext(ctx) }()
	return r
}

func (r *loginRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("stepgate login did not finish:\n%s", r.stderr.String())
		return nil
	}
}

var shownCode = regexp.MustCompile(`enter the code ([A-Z]{4}-[A-Z]{4})`)

// userCode waits for the code the command prints.
func (r *loginRun) userCode(t *testing.T) string {
	t.Helper()
	var code string
	waitFor(t, "the user code on stderr", func() bool {
		if m := shownCode.FindStringSubmatch(r.stderr.String()); m != nil {
			code = m[1]
		}
		return code != ""
	})
	return code
}

// answerAs signs alice in with a browser and answers the device page
// for code: approve or deny.
func (s *loginServer) answerAs(t *testing.T, code, decision string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	page := func(u string) string {
		resp, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	postForm := func(u string, form url.Values) (*http.Response, string) {
		resp, err := b.PostForm(u, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	back := "/device?user_code=" + url.QueryEscape(code)
	tok := csrf.FindStringSubmatch(page(s.base + "/login"))[1]
	resp, _ := postForm(s.base+"/login", url.Values{"csrf_token": {tok}, "username": {loginUser}, "password": {loginPassword}, "return_to": {back}})
	if loc := resp.Header.Get("Location"); loc != back {
		t.Fatalf("sign-in went to %q, want back to %q", loc, back)
	}
	confirm := page(s.base + back)
	s.lastConfirm = confirm
	m := csrf.FindStringSubmatch(confirm)
	if m == nil || !strings.Contains(confirm, "Stepgate command line") || !strings.Contains(confirm, code) {
		t.Fatalf("the device page does not show the client and the code:\n%s", confirm)
	}
	resp, body := postForm(s.base+"/device", url.Values{"csrf_token": {m[1]}, "user_code": {code}, "decision": {decision}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("answer %s: status %d\n%s", decision, resp.StatusCode, body)
	}
	return body
}

// TestLoginDeviceFlow runs `stepgate login` against a running server:
// it prints the code, the user approves in a browser, the command gets
// a token for alice with her proofs, keeps it in a file only she can
// read, prints PGPASSWORD, and a second run reuses the kept token.
func TestLoginDeviceFlow(t *testing.T) {
	s := startLoginServer(t)
	dir := t.TempDir()
	run := startLogin(t, dir, "--issuer", s.base, "--print-env")
	code := run.userCode(t)
	if !strings.Contains(run.stderr.String(), s.base+"/device?user_code="+code) {
		t.Errorf("the complete verification address is not printed:\n%s", run.stderr.String())
	}
	if body := s.answerAs(t, code, "approve"); !strings.Contains(body, "Device signed in") {
		t.Fatalf("approval page:\n%s", body)
	}
	if err := run.wait(t); err != nil {
		t.Fatalf("login: %v\n%s", err, run.stderr.String())
	}
	line := strings.TrimSpace(run.stdout.String())
	tok, ok := strings.CutPrefix(line, "PGPASSWORD=")
	if !ok || strings.Contains(tok, "\n") {
		t.Fatalf("stdout %q, want one PGPASSWORD= line", line)
	}
	claims, err := s.app.OIDC.VerifyAccessToken(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Username != loginUser || claims.ClientID != defaultLoginClient || len(claims.Proofs) == 0 {
		t.Fatalf("claims %+v: want alice's token for %s with her proofs", claims, defaultLoginClient)
	}
	fi, err := os.Stat(filepath.Join(dir, "stepgate", "tokens.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token cache: %v, mode %v; want a 0600 file", err, fi)
	}

	again := startLogin(t, dir, "--issuer", s.base, "--print-env")
	if err := again.wait(t); err != nil {
		t.Fatalf("second login: %v\n%s", err, again.stderr.String())
	}
	if strings.TrimSpace(again.stdout.String()) != line || !strings.Contains(again.stderr.String(), "kept token") {
		t.Fatalf("the second run did not reuse the token:\nstdout %s\nstderr %s", again.stdout.String(), again.stderr.String())
	}
}

// TestLoginRenewsWithTheRefreshToken: with offline_access the refresh
// token is kept; once the access token has expired, the next run renews
// it without a new approval. A refresh the server refuses (here: the
// user's sessions and tokens revoked) leads to a new device sign-in.
func TestLoginRenewsWithTheRefreshToken(t *testing.T) {
	s := startLoginServer(t)
	dir := t.TempDir()
	args := []string{"--issuer", s.base, "--scope", "openid offline_access", "--print-env"}
	run := startLogin(t, dir, args...)
	s.answerAs(t, run.userCode(t), "approve")
	if err := run.wait(t); err != nil {
		t.Fatalf("login: %v\n%s", err, run.stderr.String())
	}
	later := func() time.Time { return time.Now().Add(time.Hour) }
	again := startLoginAt(t, later, dir, args...)
	if err := again.wait(t); err != nil {
		t.Fatalf("renewal: %v\n%s", err, again.stderr.String())
	}
	if !strings.Contains(again.stderr.String(), "Renewed the kept token") || again.stdout.String() == run.stdout.String() {
		t.Fatalf("the expired token was not renewed:\n%s", again.stderr.String())
	}
	u, err := s.app.Store.GetUserByName(context.Background(), loginUser)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.app.Revoker.RevokeUser(context.Background(), u.ID, "test"); err != nil {
		t.Fatal(err)
	}
	third := startLoginAt(t, func() time.Time { return time.Now().Add(2 * time.Hour) }, dir, args...)
	code := third.userCode(t)
	if !strings.Contains(third.stderr.String(), "cannot be renewed") {
		t.Fatalf("a refused refresh is not explained:\n%s", third.stderr.String())
	}
	s.answerAs(t, code, "approve")
	if err := third.wait(t); err != nil {
		t.Fatalf("sign-in after a refused refresh: %v\n%s", err, third.stderr.String())
	}
}

// TestLoginFailures: a denial, a wait that times out, a client without
// the grant, an unknown client and plain http to another host each end
// with an error that says what happened and what to do.
func TestLoginFailures(t *testing.T) {
	s := startLoginServer(t)
	t.Run("fail/denied", func(t *testing.T) {
		run := startLogin(t, t.TempDir(), "--issuer", s.base)
		code := run.userCode(t)
		if body := s.answerAs(t, code, "deny"); !strings.Contains(body, "Request denied") {
			t.Fatalf("denial page:\n%s", body)
		}
		wantLoginError(t, run, "denied")
	})
	t.Run("fail/timeout", func(t *testing.T) {
		wantLoginError(t, startLogin(t, t.TempDir(), "--issuer", s.base, "--timeout", "1500ms"), "nobody approved the sign-in within 1.5s")
	})
	t.Run("fail/grant-not-allowed", func(t *testing.T) {
		wantLoginError(t, startLogin(t, t.TempDir(), "--issuer", s.base, "--client", "spa"), `client "spa" may not use the device flow; add `+deviceCodeGrant)
	})
	t.Run("fail/unknown-client", func(t *testing.T) {
		wantLoginError(t, startLogin(t, t.TempDir(), "--issuer", s.base, "--client", "nobody"), `does not know client "nobody"`)
	})
	t.Run("fail/plain-http", func(t *testing.T) {
		wantLoginError(t, startLogin(t, t.TempDir(), "--issuer", "http://stepgate.example.com"), "plain http")
	})
	t.Run("fail/unreachable", func(t *testing.T) {
		wantLoginError(t, startLogin(t, t.TempDir(), "--issuer", "http://127.0.0.1:9"), "cannot reach http://127.0.0.1:9")
	})
}

func wantLoginError(t *testing.T, run *loginRun, want string) {
	t.Helper()
	err := run.wait(t)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("login error %v, want one mentioning %q\nstderr: %s", err, want, run.stderr.String())
	}
	if run.stdout.String() != "" {
		t.Fatalf("a failed login printed %q on stdout", run.stdout.String())
	}
}
