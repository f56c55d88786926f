package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// result is one CLI invocation's outcome.
type result struct {
	code           int
	stdout, stderr string
}

func stepgate(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func (r result) mustSucceed(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

func (r result) mustFail(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
		}
	}
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	stepgate(t, "", "group", "add", "staff", dd).mustSucceed(t)
	stepgate(t, "", "group", "add", "eng", "--parent", "staff", dd).mustSucceed(t)
	stepgate(t, "", "role", "add", "admin", "--description", "all powers", dd).mustSucceed(t)

	r := stepgate(t, "correct horse battery\n", "user", "add", "alice", "--email", "alice@example.com", "--password-stdin", "--group", "eng", "--role", "admin", dd).mustSucceed(t)
	if !strings.Contains(r.stdout, "created user alice") {
		t.Fatalf("user add printed %q", r.stdout)
	}

	t.Run("fail/duplicate", func(t *testing.T) {
		stepgate(t, "another password", "user", "add", "ALICE", "--password-stdin", dd).mustFail(t, 1, "already exists", "alice")
	})
	t.Run("fail/weak-password", func(t *testing.T) {
		stepgate(t, "short", "user", "add", "bob", "--password-stdin", dd).mustFail(t, 1, "minimum is 8")
	})
	t.Run("fail/empty-password", func(t *testing.T) {
		stepgate(t, "", "user", "add", "bob", "--password-stdin", dd).mustFail(t, 1, "no password on stdin")
	})
	t.Run("fail/password-not-from-stdin", func(t *testing.T) {
		stepgate(t, "", "user", "add", "bob", dd).mustFail(t, 2, "--password-stdin is required")
	})
	t.Run("fail/unknown-group", func(t *testing.T) {
		stepgate(t, "long enough pw", "user", "add", "bob", "--password-stdin", "--group", "ops", dd).mustFail(t, 1, `unknown group "ops"`, "stepgate group add ops")
	})
	t.Run("fail/unknown-user", func(t *testing.T) {
		stepgate(t, "", "user", "show", "nobody", dd).mustFail(t, 1, `unknown user "nobody"`)
		stepgate(t, "", "user", "disable", "nobody", dd).mustFail(t, 1, `unknown user "nobody"`)
		stepgate(t, "long enough pw", "user", "passwd", "nobody", "--password-stdin", dd).mustFail(t, 1, `unknown user "nobody"`)
	})
	t.Run("fail/usage", func(t *testing.T) {
		stepgate(t, "", "user", "show", dd).mustFail(t, 2, "expected a username")
		stepgate(t, "", "user", "list", "--bogus", dd).mustFail(t, 2, "unknown flag")
	})
	t.Run("fail/group-in-use", func(t *testing.T) {
		stepgate(t, "", "group", "remove", "eng", dd).mustFail(t, 1, "still in use", "alice")
	})

	r = stepgate(t, "", "user", "list", "--json", dd).mustSucceed(t)
	if strings.Contains(r.stdout, "argon2") || strings.Contains(strings.ToLower(r.stdout), "password_hash") {
		t.Fatal("user list --json leaks the password hash")
	}
	var list []struct {
		Username string   `json:"username"`
		Email    string   `json:"email"`
		Groups   []string `json:"groups"`
		Roles    []string `json:"roles"`
		Disabled bool     `json:"disabled"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("user list --json: %v\n%s", err, r.stdout)
	}
	if len(list) != 1 || list[0].Username != "alice" || list[0].Email != "alice@example.com" || list[0].Groups[0] != "eng" || list[0].Roles[0] != "admin" {
		t.Fatalf("user list --json = %+v", list)
	}

	r = stepgate(t, "", "user", "list", dd).mustSucceed(t)
	if !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, "active") {
		t.Fatalf("user list = %q", r.stdout)
	}
	stepgate(t, "", "user", "disable", "alice", dd).mustSucceed(t)
	r = stepgate(t, "", "user", "show", "alice", "--json", dd).mustSucceed(t)
	if !strings.Contains(r.stdout, `"disabled": true`) {
		t.Fatalf("user show after disable = %s", r.stdout)
	}
	stepgate(t, "", "user", "enable", "alice", dd).mustSucceed(t)
	stepgate(t, "new password please", "user", "passwd", "alice", "--password-stdin", dd).mustSucceed(t)
	stepgate(t, "", "user", "set", "alice", "--group", "", "--role", "", dd).mustSucceed(t)
	stepgate(t, "", "group", "remove", "eng", dd).mustSucceed(t)
	stepgate(t, "", "role", "remove", "admin", dd).mustSucceed(t)
	if r := stepgate(t, "", "role", "list", dd).mustSucceed(t); strings.Contains(r.stdout, "admin") {
		t.Fatalf("role list after remove = %q", r.stdout)
	}
}

func TestConfigWithThreeMistakesReportsAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stepgate.yaml")
	bad := "server:\n  listn: 127.0.0.1:8080\nlog:\n  format: xml\nsessions:\n  idle_timeout: soon\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	stepgate(t, "", "serve", "--config", path, "--data-dir", t.TempDir()).
		mustFail(t, 1, "3 problems", "server.listn", "log.format", "sessions.idle_timeout")
}

func TestMissingConfigFile(t *testing.T) {
	stepgate(t, "", "serve", "--config", filepath.Join(t.TempDir(), "nope.yaml")).mustFail(t, 1, "nope.yaml")
}

func TestUnreachablePostgresFailsFast(t *testing.T) {
	t.Setenv("STEPGATE_STORAGE_DSN", "postgres://stepgate:s3cretpw@127.0.0.1:1/stepgate")
	start := time.Now()
	r := stepgate(t, "", "serve", "--listen", "127.0.0.1:0")
	r.mustFail(t, 1, "cannot reach PostgreSQL at 127.0.0.1:1", "STEPGATE_STORAGE_DSN")
	if strings.Contains(r.stderr, "s3cretpw") {
		t.Error("the error leaks the database password")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %s to fail", d)
	}
}

func TestCorruptDatabaseIsNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stepgate.db")
	junk := bytes.Repeat([]byte("not a database "), 500)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	stepgate(t, "", "serve", "--data-dir", dir, "--listen", "127.0.0.1:0").mustFail(t, 1, "not a SQLite database", "restore it from a backup")
	stepgate(t, "long enough pw", "user", "add", "x", "--password-stdin", "--data-dir", dir).mustFail(t, 1, "not a SQLite database")
	if after, _ := os.ReadFile(path); !bytes.Equal(after, junk) {
		t.Fatal("the corrupt database file was modified")
	}
}

func TestServeOnDefaultsWithListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--data-dir", t.TempDir(), "--log-format", "json"}, strings.NewReader(""), &out, &errOut)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not come up: %v\n%s", err, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel() // as SIGINT/SIGTERM would
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d after shutdown\n%s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
	_, port, _ := net.SplitHostPort(addr)
	logs := errOut.String()
	if !strings.Contains(logs, `"issuer":"http://localhost:`+port+`"`) {
		t.Errorf("the issuer was not derived from --listen; logs:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"shutting down"`) {
		t.Errorf("no JSON shutdown log line; logs:\n%s", logs)
	}
}

func TestVersion(t *testing.T) {
	r := stepgate(t, "", "version").mustSucceed(t)
	if !strings.HasPrefix(r.stdout, "stepgate ") || !strings.Contains(r.stdout, "go: go1.") {
		t.Fatalf("version printed %q", r.stdout)
	}
}

// TestBreachedPasswordsRefused: with password.breached_list set, a
// password on the list is refused when set, with a message naming why.
func TestBreachedPasswordsRefused(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "common.txt")
	if err := os.WriteFile(list, []byte("password123\nqwertyuiop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "stepgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("password:\n  breached_list: "+list+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", cfgFile, "--data-dir", filepath.Join(dir, "data")}
	var out, errOut bytes.Buffer
	code := run(context.Background(), append(args, "user", "add", "carol", "--email", "c@example.com", "--password-stdin"), strings.NewReader("qwertyuiop"), &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "breached or common passwords") {
		t.Fatalf("a listed password: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	code = run(context.Background(), append(args, "user", "add", "carol", "--email", "c@example.com", "--password-stdin"), strings.NewReader("plausible unlisted phrase"), &out, &errOut)
	if code != 0 {
		t.Fatalf("an unlisted password: exit %d, stderr %q", code, errOut.String())
	}
}
