package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPgEnviron: the caller's PG* variables that could send the token
// elsewhere or weaken TLS are dropped; the session's own are kept; the
// database's settings are added; nothing else is touched.
func TestPgEnviron(t *testing.T) {
	t.Parallel()
	s := pgSettings{Host: "db.example", Port: 6432, DBName: "bank", User: "alice", Password: "tok", SSLMode: "verify-full", RootCert: "/x/ca.crt"}
	got := pgEnviron([]string{
		"HOME=/home/alice", "PGHOSTADDR=203.0.113.9", "PGSERVICE=evil", "PGSERVICEFILE=/tmp/s", "PGPASSFILE=/tmp/p",
		"PGSSLMODE=disable", "PGSSLROOTCERT=/tmp/any", "PGOPTIONS=-c role=admin", "PGHOST=other", "PGAPPNAME=report", "PGTZ=UTC",
		"PAGER=less",
	}, s)
	want := []string{"HOME=/home/alice", "PGAPPNAME=report", "PGTZ=UTC", "PAGER=less",
		"PGHOST=db.example", "PGPORT=6432", "PGDATABASE=bank", "PGUSER=alice", "PGPASSWORD=tok", "PGSSLMODE=verify-full", "PGSSLROOTCERT=/x/ca.crt"}
	if !slices.Equal(got, want) {
		t.Fatalf("environment\n  %q\nwant\n  %q", got, want)
	}
	noCA := s
	noCA.RootCert = ""
	if slices.ContainsFunc(noCA.env(), func(kv string) bool { return strings.HasPrefix(kv, "PGSSLROOTCERT=") }) {
		t.Fatal("PGSSLROOTCERT set without a certificate")
	}
	stanza := s.service("bank")
	if !strings.HasPrefix(stanza, "[bank]\nhost=db.example\nport=6432\ndbname=bank\nuser=alice\nsslmode=verify-full\nsslrootcert=/x/ca.crt\n") || strings.Contains(stanza, "tok") {
		t.Fatalf("service stanza:\n%s", stanza)
	}
}

// TestShellLines: what --print-env prints reads back in a shell as the
// values themselves, whatever they hold.
func TestShellLines(t *testing.T) {
	t.Parallel()
	s := pgSettings{Host: "db.example", Port: 6432, DBName: "bank", User: "o'brien", Password: "a.b-c_d", SSLMode: "verify-full",
		RootCert: "/Users/al/Library/Application Support/stepgate/databases/x-bank.crt"}
	script := "set -e\n"
	for _, l := range s.shellLines() {
		script += l + "\n"
	}
	script += `printf '%s|%s|%s\n' "$PGUSER" "$PGSSLROOTCERT" "$PGPASSWORD"`
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), s.User+"|"+s.RootCert+"|"+s.Password; got != want {
		t.Fatalf("read back %q, want %q", got, want)
	}
	if lines := s.shellLines(); lines[0] != "PGHOST=db.example" {
		t.Fatalf("a plain value is quoted: %q", lines[0])
	}
}

func TestTokenUsername(t *testing.T) {
	t.Parallel()
	jwt := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	if u, err := tokenUsername(jwt(`{"sub":"u1","preferred_username":"alice"}`)); err != nil || u != "alice" {
		t.Fatalf("ok/username: %q %v", u, err)
	}
	for name, tok := range map[string]string{
		"fail/no-name":      jwt(`{"sub":"u1"}`),
		"fail/not-json":     jwt(`alice`),
		"fail/not-a-jwt":    "opaque-token",
		"fail/bad-encoding": "e30.%%%.sig",
	} {
		if _, err := tokenUsername(tok); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestDatabaseNameChecked: a name that could climb out of the cache
// directory or change the connection information's URL is refused
// before anything happens.
func TestDatabaseNameChecked(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"../tokens", "bank/../shop", "Bank", "", "bank?x=1", "bank%2F", strings.Repeat("a", 64)} {
		var ue usageError
		if err := checkDatabaseName(name); !errors.As(err, &ue) {
			t.Errorf("fail/%q: %v, want a usage error", name, err)
		}
	}
	if err := checkDatabaseName("bank_eu-1"); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownDatabaseListsTheServedOnes(t *testing.T) {
	t.Parallel()
	err := unknownDatabase("payroll", `resource "urn:stepgate:database:payroll" names no database this server serves; use one of urn:stepgate:database:bank, urn:stepgate:database:shop`)
	if err == nil || !strings.Contains(err.Error(), `no database "payroll"; it serves: bank, shop`) {
		t.Fatalf("got %v", err)
	}
	err = unknownDatabase("bank", `resource "urn:stepgate:database:bank" names no database: this server serves none (configure databases:)`)
	if err == nil || !strings.Contains(err.Error(), "serves none") {
		t.Fatalf("got %v", err)
	}
}

// TestDatabaseTokensKeptApart: the kept token for a database is not the
// client's own, nor another database's.
func TestDatabaseTokensKeptApart(t *testing.T) {
	t.Parallel()
	keys := map[string]bool{}
	for _, db := range []string{"", "bank", "shop"} {
		keys[tokenKey{Issuer: "https://id.example", Client: "stepgate-cli", Scope: "openid", Database: db}.String()] = true
	}
	if len(keys) != 3 {
		t.Fatalf("keys collide: %v", keys)
	}
	if k := (tokenKey{Issuer: "https://id.example", Client: "stepgate-cli", Scope: "openid"}).String(); k != "https://id.example stepgate-cli openid" {
		t.Fatalf("the client's own key changed to %q: kept tokens would be lost", k)
	}
}

// TestKeepCA: the certificate is written readable by its owner only,
// under a name of the issuer and database.
func TestKeepCA(t *testing.T) {
	t.Parallel()
	c := &cli{configDir: t.TempDir()}
	a, err := c.keepCA("https://a.example", "bank", "PEM-A")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.keepCA("https://b.example", "bank", "PEM-B")
	if err != nil {
		t.Fatal(err)
	}
	if a == b || filepath.Dir(a) != filepath.Join(c.configDir, "stepgate", "databases") {
		t.Fatalf("paths %s and %s", a, b)
	}
	fi, err := os.Stat(a)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v, want 0600", fi, err)
	}
	if got, _ := os.ReadFile(a); string(got) != "PEM-A" {
		t.Fatalf("content %q", got)
	}
}

// TestPsqlNotInstalled: without psql the command says what to install,
// before anyone is asked to approve a sign-in.
func TestPsqlNotInstalled(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	ran := false
	c := &cli{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, now: time.Now, configDir: t.TempDir(),
		lookPath:   func(string) (string, error) { return "", errors.New("not found") },
		psqlRunner: func(string, []string, []string) error { ran = true; return nil }}
	root := c.root()
	root.SetArgs([]string{"psql", "--issuer", "http://127.0.0.1:9", "bank", "-c", "SELECT 1"})
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "postgresql-client") || ran || strings.Contains(stderr.String(), "open this address") {
		t.Fatalf("error %v, stderr %q", err, stderr.String())
	}
}
