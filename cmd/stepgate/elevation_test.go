package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// elevationConfig: bank-admin needs a justification and one approval
// from the group approvers.
const elevationConfig = `elevation:
  roles:
    - {role: bank-admin, justification: required, approvers: {group: approvers}}
`

// markProven records the requester's step-up on request id, as their
// roles page does: the command line itself never can.
func markProven(t *testing.T, cfgPath, dataDir, id string) {
	t.Helper()
	ctx := context.Background()
	cfg, _, err := config.Resolve(cfgPath, config.Flags{DataDir: dataDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.UpdateElevation(ctx, id, func(e store.Elevation) (store.Elevation, error) {
		e.ProvenAt = time.Now()
		return e, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func requests(t *testing.T, args ...string) []admin.ElevationInfo {
	t.Helper()
	r := stepgate(t, "", append([]string{"role", "requests", "--json"}, args...)...).mustSucceed(t)
	var page admin.ElevationPage
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
		t.Fatalf("role requests --json: %v\n%s", err, r.stdout)
	}
	return page.Elevations
}

// TestRoleElevationCommands drives eligibility, a request made for a
// user, the approvers' answers and a deactivation from the command line:
// usage mistakes exit 2 naming the fix, refusals exit 1 and store
// nothing, self-approval, a non-approver, an answer before the user's
// step-up and a replayed approval are refused, and every change is in
// the audit trail in the operator's name with --reason.
func TestRoleElevationCommands(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "stepgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(elevationConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	flags := []string{"--config", cfgPath, "--data-dir", data}
	sg := func(stdin string, args ...string) result {
		t.Helper()
		return stepgate(t, stdin, append(args, flags...)...)
	}
	list := func(args ...string) []admin.ElevationInfo {
		t.Helper()
		return requests(t, append(args, flags...)...)
	}
	sg("", "role", "add", "bank-admin").mustSucceed(t)
	sg("", "group", "add", "approvers").mustSucceed(t)
	sg("alice-password-1", "user", "add", "alice", "--password-stdin").mustSucceed(t)
	sg("carol-password-1", "user", "add", "carol", "--password-stdin", "--group", "approvers").mustSucceed(t)
	sg("dave-password-12", "user", "add", "dave", "--password-stdin").mustSucceed(t)

	t.Run("fail/usage", func(t *testing.T) {
		sg("", "role", "eligible", "bank-admin").mustFail(t, 2, "--user NAME or --group NAME")
		sg("", "role", "eligible", "bank-admin", "--user", "alice", "--group", "approvers").mustFail(t, 2, "exactly one holder")
		sg("", "role", "eligible", "--user", "alice").mustFail(t, 2, "expected a role name")
		sg("", "role", "eligible", "bank-admin", "--user", "alice", "--scope", "bank", "--remove").mustFail(t, 2, "--scope and --remove")
		sg("", "role", "activate", "bank-admin").mustFail(t, 2, "--user is required")
		sg("", "role", "activate", "bank-admin", "--user", "alice", "--duration", "soon").mustFail(t, 2, `--duration "soon"`, "like 30m or 1h")
		sg("", "role", "approve", "elv_X").mustFail(t, 2, "--as is required")
		sg("", "role", "deny", "--as", "carol").mustFail(t, 2, "expected a request id")
		sg("", "role", "requests", "--limit", "0").mustFail(t, 2, "--limit must be")
		sg("", "role", "requests", "--bogus").mustFail(t, 2, "unknown flag")
	})

	r := sg("", "role", "eligible", "bank-admin", "--user", "alice", "--scope", "bank", "--reason", "CHG-1").mustSucceed(t)
	if !strings.Contains(r.stdout, "user alice is now eligible for bank-admin (for bank)") {
		t.Fatalf("eligible printed %q", r.stdout)
	}
	t.Run("fail/refused-requests", func(t *testing.T) {
		sg("", "role", "eligible", "bank-admin", "--user", "alice").mustFail(t, 1, "already has an eligible assignment")
		sg("", "role", "eligible", "bank-admin", "--group", "nobody").mustFail(t, 1, `no group "nobody"`)
		sg("", "role", "activate", "bank-admin", "--user", "dave", "--justification", "x").mustFail(t, 1, "not eligible", "stepgate role eligible bank-admin --user dave")
		sg("", "role", "activate", "bank-admin", "--user", "alice", "--duration", "2h", "--justification", "x").mustFail(t, 1, "longer than bank-admin allows")
		sg("", "role", "activate", "bank-admin", "--user", "alice").mustFail(t, 1, "needs a justification")
		if got := list(); len(got) != 0 {
			t.Fatalf("refused requests were stored: %+v", got)
		}
	})

	r = sg("", "role", "activate", "bank-admin", "--user", "alice", "--duration", "30m", "--justification", "payouts stuck", "--ticket", "INC-7").mustSucceed(t)
	m := regexp.MustCompile(`request (elv_[A-Z0-9]+): bank-admin for alice, 30m0s; pending`).FindStringSubmatch(r.stdout)
	if m == nil || !strings.Contains(r.stdout, "/account/roles") || !strings.Contains(r.stdout, "stepgate role approve "+m[1]+" --as APPROVER") {
		t.Fatalf("activate printed %q", r.stdout)
	}
	id := m[1]
	if got := list("--user", "alice", "--state", "pending"); len(got) != 1 || got[0].ID != id || got[0].Proven || got[0].Ticket != "INC-7" {
		t.Fatalf("pending requests %+v", got)
	}

	t.Run("fail/before-the-step-up", func(t *testing.T) {
		sg("", "role", "approve", id, "--as", "carol").mustFail(t, 1, "has not given the proof", "/account/roles")
	})
	markProven(t, cfgPath, data, id)
	t.Run("fail/self-approval", func(t *testing.T) {
		sg("", "role", "approve", id, "--as", "alice").mustFail(t, 1, "cannot approve their own request")
	})
	t.Run("fail/not-an-approver", func(t *testing.T) {
		sg("", "role", "approve", id, "--as", "dave").mustFail(t, 1, "not an approver", "group approvers")
		sg("", "role", "deny", id, "--as", "dave").mustFail(t, 1, "not an approver")
	})
	if got := list("--state", "pending"); len(got) != 1 || len(got[0].Decisions) != 0 {
		t.Fatalf("a refused answer was recorded: %+v", got)
	}
	r = sg("", "role", "approve", id, "--as", "carol", "--comment", "fine").mustSucceed(t)
	if !strings.Contains(r.stdout, "approved by carol; the request is active until") {
		t.Fatalf("approve printed %q", r.stdout)
	}
	t.Run("fail/replayed-approval", func(t *testing.T) {
		sg("", "role", "approve", id, "--as", "carol").mustFail(t, 1, "no longer pending (it is active)")
	})
	if got := list("--state", "active"); len(got) != 1 || got[0].Until.Sub(got[0].ActivatedAt) != 30*time.Minute {
		t.Fatalf("active %+v", got)
	}
	r = sg("", "role", "deactivate", id, "--reason", "done").mustSucceed(t)
	if !strings.Contains(r.stdout, "is deactivated") {
		t.Fatalf("deactivate printed %q", r.stdout)
	}
	sg("", "role", "deactivate", id).mustFail(t, 1, "no longer pending (it is deactivated)")
	if got := list("--state", "deactivated"); len(got) != 1 || got[0].EndReason != "done" || !strings.HasPrefix(got[0].EndedBy, "cli") {
		t.Fatalf("deactivated %+v", got)
	}
	sg("", "role", "eligible", "bank-admin", "--user", "alice", "--remove").mustSucceed(t)
	sg("", "role", "eligible", "bank-admin", "--user", "alice", "--remove").mustFail(t, 1, "has no eligible assignment")

	audit := sg("", "audit", "list", "--json").mustSucceed(t).stdout
	// The operator's command and, through the server's observers, each
	// step it caused: an answer from the command line is recorded like
	// one given in the console.
	for _, want := range []string{`"action":"role.assign"`, `"reason":"CHG-1"`, `"action":"elevation.request"`, `"action":"elevation.approve"`, `"approver":"carol"`, `"action":"elevation.revoke"`, `"reason":"done"`, `"action":"role.unassign"`,
		`"action":"elevation.approved"`, `"action":"elevation.activated"`, `"action":"elevation.deactivated"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit trail lacks %s:\n%s", want, audit)
		}
	}
	signIns := sg("", "logs", "signins", "--json").mustSucceed(t).stdout
	for _, want := range []string{`"source":"elevation"`, `"reason":"elevation-approved"`, `"reason":"elevation-deactivated`} {
		if !strings.Contains(signIns, want) {
			t.Errorf("the sign-in log lacks %s:\n%s", want, signIns)
		}
	}
}
