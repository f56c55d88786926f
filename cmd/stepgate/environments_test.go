package main

import (
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

const stagingFilePolicy = `policies:
  - name: staging-block-legacy
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {client_apps: [legacy]}
    grant: block
`

// TestPolicyExportEnvironment: --env exports one environment's set (its
// files and its stored documents, nothing of production's), and the
// export loads back as that environment's files to the same policies:
// the GitOps round-trip, per environment.
func TestPolicyExportEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prod := write(t, dir, "policies.yaml", lintGood)
	staging := write(t, dir, "staging.yaml", stagingFilePolicy)
	data := filepath.Join(dir, "data")
	cfgText := func(stagingFiles string) string {
		return "server:\n  data_dir: " + data + "\npolicy:\n  files: [" + prod + "]\n  environments:\n    staging: {files: [" + stagingFiles + "]}\n"
	}
	conf := "--config=" + write(t, dir, "stepgate.yaml", cfgText(staging))
	stepgate(t, "", "group", "add", "staff", conf).mustSucceed(t)

	cfg := config.Default()
	cfg.Server.DataDir = data
	st, err := app.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	docs := (&admin.Documents{KV: st, Now: time.Now}).InEnvironment("staging")
	if _, err := docs.Put(t.Context(), admin.Document{Name: "staging-trial", YAML: strings.ReplaceAll(stagingFilePolicy, "staging-block-legacy", "staging-trial")}, 0, "user:root"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	exported := func(t *testing.T, conf string) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "staging-export.yaml")
		stepgate(t, "", "policy", "export", conf, "--env", "staging", "-o", out).mustSucceed(t)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		doc, probs := policy.Parse(out, b)
		if len(probs) > 0 {
			t.Fatalf("the export does not parse: %v\n%s", probs, b)
		}
		var names []string
		for _, p := range doc.Policies {
			names = append(names, p.Name)
		}
		if got, want := strings.Join(names, " "), "staging-block-legacy staging-trial"; got != want {
			t.Fatalf("exported staging policies: %q, want %q (production's must not appear)", got, want)
		}
		return out
	}
	out := exported(t, conf)

	t.Run("ok/round-trip", func(t *testing.T) {
		// The export replaces staging's files; the stored document is
		// kept in the store, so it is removed from the export first to
		// avoid defining its policy twice.
		b, _ := os.ReadFile(out)
		trimmed := string(b)[:strings.Index(string(b), "  - name: staging-trial")]
		back := write(t, t.TempDir(), "staging-back.yaml", trimmed)
		conf2 := "--config=" + write(t, t.TempDir(), "stepgate.yaml", cfgText(back))
		exported(t, conf2)
	})
	t.Run("ok/production-unchanged", func(t *testing.T) {
		r := stepgate(t, "", "policy", "export", conf).mustSucceed(t)
		if strings.Contains(r.stdout, "staging-") || !strings.Contains(r.stdout, "staff-mfa") {
			t.Fatalf("production's export:\n%s", r.stdout)
		}
	})
	t.Run("fail/unknown-env", func(t *testing.T) {
		stepgate(t, "", "policy", "export", conf, "--env", "stagin").mustFail(t, 2, "no such policy environment", "production, staging")
	})
}

// TestPolicyTestEnvironment: --env runs the scenario tests beside the
// environment's own files against that environment's set; the same
// tests run against production's (different) set fail.
func TestPolicyTestEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stagingDir := filepath.Join(dir, "staging")
	mkdir(t, stagingDir)
	write(t, stagingDir, "policies.yaml", lintGood)
	tests := write(t, stagingDir, "good.tests.yaml", scenariosGood)
	prod := write(t, dir, "production.yaml", "policies: []\n")
	data := filepath.Join(dir, "data")
	conf := "--config=" + write(t, dir, "stepgate.yaml", "server:\n  data_dir: "+data+"\npolicy:\n  files: ["+prod+"]\n  environments:\n    staging: {files: ["+stagingDir+"]}\n")
	stepgate(t, "", "group", "add", "staff", conf).mustSucceed(t)
	stepgate(t, "correct horse battery", "user", "add", "alice", "--password-stdin", "--group", "staff", conf).mustSucceed(t)

	t.Run("ok/staging", func(t *testing.T) {
		r := stepgate(t, "", "policy", "test", conf, "--env", "staging").mustSucceed(t)
		if !strings.Contains(r.stdout, "2 scenarios: 2 passed, 0 failed") {
			t.Errorf("stdout:\n%s", r.stdout)
		}
	})
	t.Run("fail/same-tests-on-production", func(t *testing.T) {
		stepgate(t, "", "policy", "test", conf, tests).mustFail(t, 1, "failed")
	})
	t.Run("fail/unknown-env", func(t *testing.T) {
		stepgate(t, "", "policy", "test", conf, "--env", "qa").mustFail(t, 2, "no such policy environment")
		stepgate(t, "", "policy", "deadends", conf, "--env", "qa").mustFail(t, 2, "no such policy environment")
	})
	t.Run("ok/deadends-staging", func(t *testing.T) {
		// alice has only a password: staging's staff-mfa strands her,
		// production's empty set strands nobody.
		staging := stepgate(t, "", "policy", "deadends", conf, "--env", "staging").mustSucceed(t)
		prod := stepgate(t, "", "policy", "deadends", conf).mustSucceed(t)
		if !strings.Contains(staging.stdout, "staff-mfa") || strings.Contains(prod.stdout, "staff-mfa") {
			t.Errorf("staging:\n%s\nproduction:\n%s", staging.stdout, prod.stdout)
		}
	})
}
