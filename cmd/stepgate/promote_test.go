package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
)

// TestPolicyPromoteHistoryRollback: "policy promote staging production"
// shows the diff and the replay and asks; anything but "yes" changes
// nothing; "yes" (or --yes) promotes in one audited change; "policy
// history" lists it; "policy rollback --to" restores the earlier
// version. Mistakes on the command line are usage errors naming the fix.
func TestPolicyPromoteHistoryRollback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prod := write(t, dir, "policies.yaml", lintGood)
	data := write(t, dir, "stepgate.yaml", "server:\n  data_dir: "+dir+"/data\npolicy:\n  files: ["+prod+"]\n  environments:\n    staging: {}\n")
	conf := "--config=" + data
	stepgate(t, "", "group", "add", "staff", conf).mustSucceed(t)

	cfg := config.Default()
	cfg.Server.DataDir = dir + "/data"
	st, err := app.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	docs := &admin.Documents{KV: st, Now: time.Now}
	trial := strings.ReplaceAll(stagingFilePolicy, "staging-block-legacy", "legacy-trial")
	if _, err := docs.Put(t.Context(), admin.Document{Name: "notes", YAML: "policies: []\n"}, 0, "user:root"); err != nil {
		t.Fatal(err)
	}
	if _, err := docs.InEnvironment("staging").Put(t.Context(), admin.Document{Name: "trial", YAML: trial}, 0, "user:root"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	stepgate(t, "", "policy", "promote", "staging", "production", conf).mustFail(t, 2, "--reason")
	stepgate(t, "", "policy", "promote", "staging", "qa", conf, "--reason", "x").mustFail(t, 2, "not configured")
	stepgate(t, "", "policy", "promote", "staging", conf, "--reason", "x").mustFail(t, 2, "the two environments")

	r := stepgate(t, "no\n", "policy", "promote", "staging", "production", conf, "--reason", "CHG-1").mustSucceed(t)
	for _, want := range []string{"added document trial", "+    state: report-only", "removed document notes", "replayed 0 decisions", "nothing changed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the review does not say %q:\n%s", want, r.stdout)
		}
	}
	r = stepgate(t, "yes\n", "policy", "promote", "staging", "production", conf, "--reason", "CHG-1").mustSucceed(t)
	if !strings.Contains(r.stdout, "promoted staging version 1 to production: now version 2") {
		t.Fatalf("promote says:\n%s", r.stdout)
	}
	r = stepgate(t, "", "policy", "promote", "staging", "production", conf, "--reason", "again", "--yes").mustSucceed(t)
	if !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("promoting the same documents again says:\n%s", r.stdout)
	}

	r = stepgate(t, "", "policy", "history", conf).mustSucceed(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "promoted from staging v1") || !strings.Contains(lines[1], "CHG-1") || !strings.HasPrefix(lines[2], "1 ") {
		t.Fatalf("history:\n%s", r.stdout)
	}

	stepgate(t, "", "policy", "rollback", conf, "--reason", "x").mustFail(t, 2, "--to VERSION")
	stepgate(t, "", "policy", "rollback", "--to", "1", conf).mustFail(t, 2, "--reason")
	stepgate(t, "", "policy", "rollback", "--to", "7", conf, "--reason", "x").mustFail(t, 2, "no version 7")
	r = stepgate(t, "", "policy", "rollback", "--to", "1", conf, "--reason", "INC-3", "--yes").mustSucceed(t)
	if !strings.Contains(r.stdout, "removed document trial") || !strings.Contains(r.stdout, "restored version 1 of production as version 3") {
		t.Fatalf("rollback says:\n%s", r.stdout)
	}
	r = stepgate(t, "", "policy", "export", conf).mustSucceed(t)
	if strings.Contains(r.stdout, "legacy-trial") {
		t.Fatalf("after the rollback the export still has the promoted policy:\n%s", r.stdout)
	}
	r = stepgate(t, "", "audit", "list", conf).mustSucceed(t)
	if !strings.Contains(r.stdout, "policy.promote") || !strings.Contains(r.stdout, "policy.rollback") {
		t.Errorf("the audit trail lacks the promotion or the rollback:\n%s", r.stdout)
	}
}
