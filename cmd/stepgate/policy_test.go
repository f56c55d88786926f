package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
)

const lintGood = `auth_contexts:
  - id: c2
    name: High-value transaction
policies:
  - name: staff-mfa
    state: enabled
    users:
      include: {groups: [staff]}
    target:
      apps: {include: [all]}
    grant:
      controls: [mfa]
    session:
      sign_in_frequency: 8h
  - name: c2-phishing-resistant
    state: enabled
    users:
      include: {users: [all]}
    target:
      auth_contexts: [c2]
    grant:
      controls:
        - strength: phishing-resistant
`

const lintBad = `policies:
  - name: bad
    state: enabeld
    users:
      include: {groups: [staff]}
    target:
      apps: {include: [all]}
    conditions:
      expression: 'device.is_compliant + 1'
    grant:
      controls: [mfa]
    sesion: {}
`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyLint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := write(t, dir, "good.yaml", lintGood)
	bad := write(t, t.TempDir(), "bad.yaml", lintBad)

	t.Run("ok/file", func(t *testing.T) {
		r := stepgate(t, "", "policy", "lint", good).mustSucceed(t)
		if r.stdout != "ok: 2 policies in 1 file\n" {
			t.Fatalf("stdout = %q", r.stdout)
		}
	})
	t.Run("ok/directory", func(t *testing.T) {
		write(t, dir, "more.yml", "policies:\n  - name: block-legacy\n    state: report-only\n    users: {include: {users: [all]}}\n"+
			"    target: {apps: {include: [all]}}\n    conditions: {client_apps: [legacy]}\n    grant: block\n")
		write(t, dir, "notes.txt", "not a policy")
		r := stepgate(t, "", "policy", "lint", dir).mustSucceed(t)
		if r.stdout != "ok: 3 policies in 2 files\n" {
			t.Fatalf("stdout = %q", r.stdout)
		}
	})
	t.Run("fail/every-problem-with-file-and-line", func(t *testing.T) {
		r := stepgate(t, "", "policy", "lint", good, bad)
		r.mustFail(t, 1, "3 problems in the policy files")
		for _, want := range []string{
			bad + `:3: policies[0].state: "enabeld" is not a state; did you mean "enabled"?`,
			bad + `:9: policies[0].conditions.expression: CEL: found no matching overload`,
			bad + `:12: policies[0].sesion: unknown key; did you mean "session"?`,
		} {
			if !strings.Contains(r.stdout, want+"") {
				t.Errorf("stdout does not report %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "good.yaml") {
			t.Errorf("problems reported in the good file:\n%s", r.stdout)
		}
	})
	t.Run("fail/missing-file", func(t *testing.T) {
		stepgate(t, "", "policy", "lint", filepath.Join(dir, "nope.yaml")).mustFail(t, 1, "nope.yaml", "does not exist")
	})
	t.Run("fail/no-arguments", func(t *testing.T) {
		stepgate(t, "", "policy", "lint").mustFail(t, 2, "give the policy files")
	})
	t.Run("fail/strict-unknown-group", func(t *testing.T) {
		// The offline check cannot know the group; --strict asks the store.
		stepgate(t, "", "policy", "lint", "--strict", "--data-dir", t.TempDir(), good).mustFail(t, 1, "1 problem in")
	})
}

func TestWhatIf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pol := write(t, dir, "policies.yaml", lintGood)
	data := filepath.Join(dir, "data")
	cfg := write(t, dir, "stepgate.yaml", "server:\n  data_dir: "+data+"\npolicy:\n  files: ["+pol+"]\n")
	conf := "--config=" + cfg
	stepgate(t, "", "group", "add", "staff", conf).mustSucceed(t)
	stepgate(t, "correct horse battery", "user", "add", "alice", "--password-stdin", "--group", "staff", conf).mustSucceed(t)

	t.Run("ok/table", func(t *testing.T) {
		r := stepgate(t, "", "whatif", conf, "--user", "alice", "--app", "payroll", "--context", "c2", "--auth", "pwd@-5m,totp@-2m").mustSucceed(t)
		for _, want := range []string{
			"outcome:  challenge (controls-not-satisfied)",
			"missing:  1. strength phishing-resistant [add webauthn] (c2-phishing-resistant)",
			"POLICY                 STATE    RESULT   DETAIL",
			"staff-mfa              enabled  applied  all-of: mfa within 8h [ok]",
			"roles active: -\n  elevated: -\nroles eligible, not active: -\n",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout does not contain %q:\n%s", want, r.stdout)
			}
		}
	})
	t.Run("ok/json", func(t *testing.T) {
		r := stepgate(t, "", "whatif", conf, "--user", "alice", "--app", "payroll", "--auth", "pwd@-5m,totp@-2m", "--json").mustSucceed(t)
		var d policy.Decision
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		if d.Outcome != policy.OutcomeAllow || len(d.Policies) != 2 || d.Policies[0].Result != policy.ResultApplied {
			t.Fatalf("decision = %+v", d)
		}
	})
	t.Run("ok/challenge-still-exits-zero", func(t *testing.T) {
		stepgate(t, "", "whatif", conf, "--user", "alice", "--app", "payroll", "--json").mustSucceed(t)
	})
	t.Run("fail/unknown-user", func(t *testing.T) {
		stepgate(t, "", "whatif", conf, "--user", "bob", "--app", "payroll").mustFail(t, 1, `unknown user "bob"`, "stepgate user list")
	})
	t.Run("fail/bad-values", func(t *testing.T) {
		stepgate(t, "", "whatif", conf, "--user", "alice", "--app", "payroll", "--ip", "10.0.0.300", "--sign-in-risk", "mediun").
			mustFail(t, 2, `ip "10.0.0.300" is not an IP address`, `sign_in_risk "mediun"`)
	})
	t.Run("fail/unknown-flag", func(t *testing.T) {
		stepgate(t, "", "whatif", conf, "--user", "alice", "--app", "payroll", "--risk", "high").mustFail(t, 2, "--risk")
	})
	t.Run("fail/no-user", func(t *testing.T) {
		stepgate(t, "", "whatif", conf, "--app", "payroll").mustFail(t, 2, "--user NAME")
	})
	t.Run("fail/no-target", func(t *testing.T) {
		stepgate(t, "", "whatif", conf, "--user", "alice").mustFail(t, 2, "--app APP")
	})
}

// TestPolicyExport: the export holds the policy files and the documents
// created in the console (kept in the store), and loads back as one
// policy file that compiles to the same policies.
func TestPolicyExport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pol := write(t, dir, "policies.yaml", lintGood)
	data := filepath.Join(dir, "data")
	cfgPath := write(t, dir, "stepgate.yaml", "server:\n  data_dir: "+data+"\npolicy:\n  files: ["+pol+"]\n")
	conf := "--config=" + cfgPath
	stepgate(t, "", "group", "add", "staff", conf).mustSucceed(t)

	cfg := config.Default()
	cfg.Server.DataDir = data
	st, err := app.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	docs := &admin.Documents{KV: st, Now: time.Now}
	if _, err := docs.Put(t.Context(), admin.Document{Name: "console-trial", YAML: "policies:\n  - name: trial-block-legacy\n    state: report-only\n    users: {include: {users: [all]}}\n    target: {apps: {include: [all]}}\n    conditions: {client_apps: [legacy]}\n    grant: block\n"}, 0, "user:root"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out := filepath.Join(dir, "export.yaml")
	r := stepgate(t, "", "policy", "export", conf, "-o", out).mustSucceed(t)
	if !strings.Contains(r.stderr, "3 policies") {
		t.Errorf("stderr %q does not count 3 policies", r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc, probs := policy.Parse("export.yaml", b)
	if len(probs) > 0 {
		t.Fatalf("the export does not parse: %v\n%s", probs, b)
	}
	var names []string
	for _, p := range doc.Policies {
		names = append(names, p.Name+"="+p.State)
	}
	if got := strings.Join(names, " "); got != "staff-mfa=enabled c2-phishing-resistant=enabled trial-block-legacy=report-only" {
		t.Fatalf("exported policies: %s", got)
	}
	lint := stepgate(t, "", "policy", "lint", out).mustSucceed(t)
	if !strings.Contains(lint.stdout, "ok: 3 policies in 1 file") {
		t.Fatalf("lint of the export: %s", lint.stdout)
	}
}

// TestWhatIfStatement: the What-If takes a SQL statement, so a policy on
// a database's statements can be tried before it is enforced.
func TestWhatIfStatement(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pol := write(t, dir, "policies.yaml", `policies:
  - name: no-drop-on-bank
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {statements: {classes: [ddl], tables: [customers]}}
    grant: block
`)
	data := filepath.Join(dir, "data")
	cfg := write(t, dir, "stepgate.yaml", "server:\n  data_dir: "+data+"\npolicy:\n  files: ["+pol+"]\n")
	conf := "--config=" + cfg
	stepgate(t, "", "client", "add", "bank", "--redirect-uri", "https://bank.example/cb", conf).mustSucceed(t)
	stepgate(t, "correct horse battery", "user", "add", "alice", "--password-stdin", conf).mustSucceed(t)
	t.Run("ok/blocked", func(t *testing.T) {
		r := stepgate(t, "", "whatif", conf, "--user", "alice", "--app", "bank", "--auth", "pwd@-1m",
			"--statement-class", "ddl", "--statement-command", "DROP TABLE", "--statement-table", "public.Customers").mustSucceed(t)
		if !strings.Contains(r.stdout, "outcome:     block (blocked-by-policy)") {
			t.Errorf("stdout:\n%s", r.stdout)
		}
	})
	t.Run("ok/read-not-applied", func(t *testing.T) {
		r := stepgate(t, "", "whatif", conf, "--user", "alice", "--app", "bank", "--auth", "pwd@-1m",
			"--statement-class", "read", "--statement-table", "customers").mustSucceed(t)
		if !strings.Contains(r.stdout, "statement-class-not-included") {
			t.Errorf("stdout:\n%s", r.stdout)
		}
	})
	t.Run("fail/unknown-class", func(t *testing.T) {
		stepgate(t, "", "whatif", conf, "--user", "alice", "--app", "bank", "--statement-class", "dml").
			mustFail(t, 2, `statement.class "dml" is not one of session, read, utility, write, ddl, privilege, unknown`)
	})
}
