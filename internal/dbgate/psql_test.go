//go:build cgo

package dbgate

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// psqlPath finds the real psql client, or skips.
func psqlPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
	if len(matches) == 0 {
		t.Skip("psql is not installed (Debian postgresql-client)")
	}
	return matches[len(matches)-1]
}

// runPsql runs psql non-interactively against the gateway over TLS with
// the token as its password.
func (r *rig) runPsql(t *testing.T, token string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(psqlPath(t), append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-At", "-h", "127.0.0.1", "-p", strconv.Itoa(r.port), "-U", "alice", "-d", "bank"}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+token, "PGSSLMODE=verify-full", "PGSSLROOTCERT="+r.certPEM, "PGCONNECT_TIMEOUT=10")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestPsql: the real psql, over TLS with a verified certificate: a read
// flows; a read of a labelled column is refused with the context it
// needs; a script's later statements do not run after the refusal.
func TestPsql(t *testing.T) {
	r := newRig(t, func(d *Database) { d.InsecureLoopback = false })
	tok := r.token("u-alice", "bank", "password")
	out, stderr, err := r.runPsql(t, tok, "-c", "SELECT name FROM customers WHERE id = 1")
	if err != nil || strings.TrimSpace(out) != "Ada" {
		t.Fatalf("read: out %q, stderr %q, %v", out, stderr, err)
	}
	out, stderr, err = r.runPsql(t, tok, "-c", "SELECT ssn FROM customers")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || strings.Contains(out, "111-11-1111") || !strings.Contains(stderr, "c7") {
		t.Fatalf("labelled read: out %q, stderr %q, %v; want refused naming c7", out, stderr, err)
	}
	script := filepath.Join(t.TempDir(), "script.sql")
	if err := os.WriteFile(script, []byte("SELECT count(*) FROM customers;\nDELETE FROM customers WHERE id = 1;\nSELECT 'after';\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = r.runPsql(t, tok, "-f", script)
	if err == nil || !strings.Contains(out, "2") || strings.Contains(out, "after") {
		t.Fatalf("script: out %q, %v; want the count, then a stop at the DELETE", out, err)
	}
	if n := r.countRows("customers"); n != 2 {
		t.Errorf("customers has %d rows, want 2", n)
	}
}
