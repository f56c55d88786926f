package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDatabasesDecode(t *testing.T) {
	file := `
databases:
  - name: bank
    upstream:
      address: 127.0.0.1:5432
      database: bank
      user: gateway
      password_env: BANK_PASSWORD
    labels:
      pii: [customers.ssn, customers.email]
    label_contexts:
      pii: c1
    class_contexts:
      write: c2
    refuse_no_where: true
    destructive_needs_elevation: dba
`
	cfg, _, err := resolve("stepgate.yaml", []byte(file), Flags{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Databases) != 1 {
		t.Fatalf("databases = %+v", cfg.Databases)
	}
	db := cfg.Databases[0]
	if db.Listen != DefaultDatabaseListen || db.StatementWait.D() != 2*time.Minute || db.MaxUpstreamConnections != 20 {
		t.Errorf("defaults not applied: %+v", db)
	}
	if strings.Join(db.Labels["pii"], ",") != "customers.ssn,customers.email" || db.LabelContexts["pii"] != "c1" || db.ClassContexts["write"] != "c2" || !db.RefuseNoWhere ||
		db.DestructiveNeedsElevation != "dba" {
		t.Errorf("decoded %+v", db)
	}
	pw, err := db.Upstream.Password("databases[0].upstream", func(k string) string { return map[string]string{"BANK_PASSWORD": "s3cret"}[k] })
	if err != nil || pw != "s3cret" {
		t.Errorf("password = %q, %v", pw, err)
	}
	if _, err := db.Upstream.Password("databases[0].upstream", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "BANK_PASSWORD") {
		t.Errorf("a missing variable: %v", err)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("from-file\n"), 0o600)
	db.Upstream.PasswordFile, db.Upstream.PasswordEnv = pwFile, ""
	if pw, err := db.Upstream.Password("p", nil); err != nil || pw != "from-file" {
		t.Errorf("password file = %q, %v", pw, err)
	}
}

func TestDatabasesProblems(t *testing.T) {
	file := `
databases:
  - name: Bank
    listen: 0.0.0.0:6432
    insecure_loopback: true
    upstream:
      address: nohost
      password_file: /x
      password_env: X
    tls:
      cert_file: a.crt
    labels:
      pii: ["a.b.c.d"]
    label_contexts:
      secret: c1
    class_contexts:
      writes: c2
      read: high
    statement_wait: -1s
    max_upstream_connections: -3
    destructive_needs_elevation: "DBA admins"
    bogus: 1
`
	got := problemsOf(t, file, Flags{}, nil)
	var paths []string
	for _, p := range got {
		paths = append(paths, p.Path)
	}
	for _, want := range []string{
		"databases[0].bogus", "databases[0].name", "databases[0].insecure_loopback", "databases[0].upstream.address",
		"databases[0].upstream.database", "databases[0].upstream.user", "databases[0].upstream", "databases[0].tls",
		"databases[0].labels", "databases[0].label_contexts.secret", "databases[0].class_contexts.writes",
		"databases[0].class_contexts.read", "databases[0].statement_wait", "databases[0].max_upstream_connections",
		"databases[0].destructive_needs_elevation",
	} {
		found := false
		for _, p := range paths {
			found = found || p == want
		}
		if !found {
			t.Errorf("no problem at %s; got %q", want, got)
		}
	}
}

func TestDatabasePublicAddressProblems(t *testing.T) {
	for _, tc := range []struct {
		name, keys, want string
	}{
		{"fail/not-host-port", "public_address: db.example.com", "databases[0].public_address"},
		{"fail/no-host", "public_address: \":6432\"", "databases[0].public_address"},
		{"fail/unspecified-host", "public_address: 0.0.0.0:6432", "databases[0].public_address"},
		{"fail/ca-without-cert", "tls: {ca_file: ca.pem}", "databases[0].tls.ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := `
databases:
  - name: bank
    ` + tc.keys + `
    upstream: {address: 127.0.0.1:5432, database: bank, user: gateway, password_env: BANK_PASSWORD}
`
			got := problemsOf(t, file, Flags{}, nil)
			if len(got) != 1 || got[0].Path != tc.want {
				t.Fatalf("problems %q, want one at %s", got, tc.want)
			}
		})
	}
	ok := `
databases:
  - name: bank
    listen: 0.0.0.0:6432
    public_address: db.example.com:6432
    upstream: {address: 127.0.0.1:5432, database: bank, user: gateway, password_env: BANK_PASSWORD}
`
	if _, _, err := resolve("stepgate.yaml", []byte(ok), Flags{}, nil); err != nil {
		t.Fatalf("ok/public-address: %v", err)
	}
}
