//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// realPsql finds the PostgreSQL client, or skips (fails when the
// PostgreSQL tests are required).
func realPsql(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql"); len(m) > 0 {
		return m[len(m)-1]
	}
	if os.Getenv(pgtest.EnvRequire) != "" {
		t.Fatal("psql is not installed (Debian postgresql-client), and the PostgreSQL tests are required")
	}
	t.Skip("psql is not installed (Debian postgresql-client)")
	return ""
}

// freeLoopback returns a loopback address nothing listens on.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// psqlCall is what `stepgate psql` ran psql with, and what psql said.
type psqlCall struct {
	args, env []string
	out       string
	err       error
}

// psqlRun is one `stepgate psql` (or login) under way, running the real
// psql as a child instead of in its place.
type psqlRun struct {
	*loginRun
	mu    sync.Mutex
	calls []psqlCall
}

func (r *psqlRun) call(t *testing.T) psqlCall {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) != 1 {
		t.Fatalf("psql ran %d times, want once", len(r.calls))
	}
	return r.calls[0]
}

func startCLI(t *testing.T, dir, psql string, args ...string) *psqlRun {
	t.Helper()
	r := &psqlRun{loginRun: &loginRun{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}}
	c := &cli{stdin: strings.NewReader(""), stdout: r.stdout, stderr: r.stderr, now: time.Now, configDir: dir,
		lookPath: func(string) (string, error) { return psql, nil },
		psqlRunner: func(path string, args, env []string) error {
			cmd := exec.Command(path, args...)
			cmd.Env = append(env, "PGCONNECT_TIMEOUT=10")
			out, err := cmd.CombinedOutput()
			r.mu.Lock()
			defer r.mu.Unlock()
			r.calls = append(r.calls, psqlCall{args: args, env: env, out: string(out), err: err})
			return err
		}}
	root := c.root()
	root.SetArgs(args)
	root.SetOut(r.stdout)
	root.SetErr(r.stderr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	go func() { r.done <- root.ExecuteContext(ctx) }()
	return r
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestPsqlThroughTheGateway runs `stepgate psql bank -c 'SELECT 1'`
// against a running server whose database gateway serves bank and shop
// in front of the real PostgreSQL, with the real psql: the command asks
// for a token for bank, the user sees "bank" on the device page and
// approves, and psql connects with verify-full against the certificate
// the server handed out, as the user, the token in its environment
// only. The next run reuses the kept token; login --database prints the
// same variables. The bank token is refused at shop, and a database the
// server does not serve is named with the ones it does.
func TestPsqlThroughTheGateway(t *testing.T) {
	pgtest.Require(t)
	psql := realPsql(t)
	base, err := pgconn.ParseConfig(os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "upstream-password")
	if err := os.WriteFile(pwFile, []byte(base.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	upstream := config.DatabaseUpstream{Address: net.JoinHostPort(base.Host, fmt.Sprint(base.Port)), Database: base.Database, User: base.User, PasswordFile: pwFile}
	shopListen := freeLoopback(t)
	s := startLoginServer(t, func(cfg *config.Config) {
		cfg.Databases = []config.Database{
			{Name: "bank", Listen: freeLoopback(t), Upstream: upstream, StatementWait: config.Duration(time.Minute), StepUpWait: config.Duration(time.Minute), MaxUpstreamConnections: 4},
			{Name: "shop", Listen: shopListen, Upstream: upstream, StatementWait: config.Duration(time.Minute), StepUpWait: config.Duration(time.Minute), MaxUpstreamConnections: 4},
		}
	})
	dir := t.TempDir()
	run := startCLI(t, dir, psql, "psql", "--issuer", s.base, "bank", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", "SELECT 1")
	s.answerAs(t, run.userCode(t), "approve")
	if !strings.Contains(s.lastConfirm, "asks for access to the database bank") {
		t.Fatalf("the device page does not say which database is asked for:\n%s", s.lastConfirm)
	}
	if err := run.wait(t); err != nil {
		t.Fatalf("stepgate psql: %v\n%s", err, run.stderr.String())
	}
	call := run.call(t)
	if call.err != nil || strings.TrimSpace(call.out) != "1" {
		t.Fatalf("psql: %v\n%s", call.err, call.out)
	}
	token := envValue(call.env, "PGPASSWORD")
	if token == "" || slices.ContainsFunc(call.args, func(a string) bool { return strings.Contains(a, token) }) {
		t.Fatalf("the token is not in the environment, or is on the command line: %q", call.args)
	}
	claims, err := s.app.OIDC.VerifyAccessToken(context.Background(), token)
	if err != nil || !slices.Equal(claims.Audience, []string{"bank"}) {
		t.Fatalf("the token's audience: %v %v", claims, err)
	}
	if envValue(call.env, "PGUSER") != loginUser || envValue(call.env, "PGSSLMODE") != "verify-full" || envValue(call.env, "PGDATABASE") != "bank" {
		t.Fatalf("environment %q", call.env)
	}
	ca := envValue(call.env, "PGSSLROOTCERT")
	if fi, err := os.Stat(ca); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("PGSSLROOTCERT %q: %v %v, want a 0600 file", ca, fi, err)
	}

	t.Run("ok/kept-token-reused", func(t *testing.T) {
		again := startCLI(t, dir, psql, "psql", "--issuer", s.base, "bank", "-X", "-At", "-c", "SELECT 2")
		if err := again.wait(t); err != nil {
			t.Fatalf("%v\n%s", err, again.stderr.String())
		}
		if c := again.call(t); strings.TrimSpace(c.out) != "2" || envValue(c.env, "PGPASSWORD") != token {
			t.Fatalf("second run: %q (same token: %v)", c.out, envValue(c.env, "PGPASSWORD") == token)
		}
	})
	t.Run("ok/login-print-env", func(t *testing.T) {
		login := startCLI(t, dir, psql, "login", "--issuer", s.base, "--scope", "openid offline_access", "--database", "bank", "--print-env")
		if err := login.wait(t); err != nil {
			t.Fatalf("%v\n%s", err, login.stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(login.stdout.String()), "\n")
		if !slices.Equal(lines, pgSettings{Host: envValue(call.env, "PGHOST"), Port: atoi(t, envValue(call.env, "PGPORT")),
			DBName: "bank", User: loginUser, Password: token, SSLMode: "verify-full", RootCert: ca}.shellLines()) {
			t.Fatalf("login --print-env printed\n%s", login.stdout.String())
		}
	})
	t.Run("ok/the-binary-runs-psql-in-its-place", func(t *testing.T) {
		// The built command, its kept token found through
		// XDG_CONFIG_HOME, replaces itself with psql. A PGHOSTADDR in the
		// caller's environment would send the token elsewhere (here: to
		// an address that answers nothing) and is not passed on.
		cmd := exec.Command(buildStepgate(t), "psql", "--issuer", s.base, "bank", "-X", "-At", "-c", "SELECT 3")
		cmd.Env = append(childEnv(), "XDG_CONFIG_HOME="+dir, "PATH="+filepath.Dir(psql)+":"+os.Getenv("PATH"),
			"PGHOSTADDR=192.0.2.1", "PGCONNECT_TIMEOUT=5")
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != "3" {
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				t.Fatalf("stepgate psql: %v: %s %s", err, out, exit.Stderr)
			}
			t.Fatalf("stepgate psql: %q %v", out, err)
		}
	})
	t.Run("fail/bank-token-at-shop", func(t *testing.T) {
		host, port, _ := net.SplitHostPort(shopListen)
		_, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s dbname=shop user=%s password=%s sslmode=require connect_timeout=10", host, port, loginUser, token))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28P01" || !strings.Contains(pe.Message, "shop") {
			t.Fatalf("the bank token at shop: %v, want 28P01 naming shop", err)
		}
	})
	t.Run("ok/revoked-kept-token-signs-in-again", func(t *testing.T) {
		u, err := s.app.Store.GetUserByName(context.Background(), loginUser)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.app.Revoker.RevokeUser(context.Background(), u.ID, "test"); err != nil {
			t.Fatal(err)
		}
		// The kept token still looks valid on this machine; the server
		// refuses it, and the command signs in again rather than hand
		// psql a token the gateway would refuse.
		again := startCLI(t, dir, psql, "psql", "--issuer", s.base, "bank", "-X", "-At", "-c", "SELECT 4")
		code := again.userCode(t)
		if !strings.Contains(again.stderr.String(), "refused by the server") {
			t.Fatalf("the refusal is not explained:\n%s", again.stderr.String())
		}
		s.answerAs(t, code, "approve")
		if err := again.wait(t); err != nil {
			t.Fatalf("%v\n%s", err, again.stderr.String())
		}
		if c := again.call(t); strings.TrimSpace(c.out) != "4" {
			t.Fatalf("after signing in again: %q", c.out)
		}
	})
	t.Run("fail/unknown-database", func(t *testing.T) {
		unknown := startCLI(t, t.TempDir(), psql, "psql", "--issuer", s.base, "payroll")
		err := unknown.wait(t)
		if err == nil || !strings.Contains(err.Error(), `no database "payroll"; it serves: bank, shop`) {
			t.Fatalf("got %v", err)
		}
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
