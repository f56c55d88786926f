package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestLogsSignins: "logs signins" filters the sign-in log by user,
// decision, policy and age, exports JSON Lines with the risk evidence,
// and names the fix for a bad filter.
func TestLogsSignins(t *testing.T) {
	dir := t.TempDir()
	sg := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"--data-dir", dir}, args...), strings.NewReader("correct horse battery"), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, e := sg("user", "add", "erin", "--email", "e@example.com", "--password-stdin"); code != 0 {
		t.Fatal(e)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "stepgate.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	erin, err := st.GetUserByName(ctx, "erin")
	if err != nil {
		t.Fatal(err)
	}
	log := audit.NewSignInLog(st, audit.SignInLogOptions{})
	now := time.Now()
	entries := []audit.SignIn{
		{Time: now.Add(-48 * time.Hour), Source: "sign-in", UserID: erin.ID, Username: "erin", Decision: "success", IP: "198.51.100.7"},
		{Time: now.Add(-time.Hour), Source: "sign-in", Username: "mallory", Decision: "failure", Reason: "invalid-credentials"},
		{Time: now.Add(-time.Minute), Source: "sign-in", UserID: erin.ID, Username: "erin", Decision: "success", RiskLevel: "high",
			Risk:     []audit.Detection{{Type: risk.TypeSpray, Level: "high", Reason: risk.ReasonPasswordSpray, Evidence: map[string]string{"failed_accounts": "51"}}},
			Policies: []policy.PolicyResult{{Policy: "mfa-on-risk", Result: policy.ResultReportOnlyUserActionRequired}}},
	}
	for _, e := range entries {
		if err := log.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, _ := sg("logs", "signins", "--user", "erin")
	if code != 0 || strings.Count(out, "erin") != 2 || !strings.Contains(out, "high: password-spray") || strings.Contains(out, "mallory") {
		t.Fatalf("logs signins --user erin: %d\n%s", code, out)
	}
	if _, out, _ := sg("logs", "signins", "--since", "24h"); strings.Count(out, "\n") != 3 {
		t.Fatalf("--since 24h should list two entries under the header:\n%s", out)
	}
	if _, out, _ := sg("logs", "signins", "--decision", "failure"); !strings.Contains(out, "invalid-credentials") || strings.Contains(out, "erin") {
		t.Fatalf("--decision failure:\n%s", out)
	}

	code, out, _ = sg("logs", "signins", "--policy", "mfa-on-risk", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 1 {
		t.Fatalf("--policy --json: %d\n%s", code, out)
	}
	var got audit.SignIn
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Risk) != 1 || got.Risk[0].Evidence["failed_accounts"] != "51" {
		t.Fatalf("exported entry lost its evidence: %+v", got)
	}

	for _, bad := range [][]string{{"--user", "nobody"}, {"--since", "yesterday"}, {"--limit", "-1"}} {
		code, _, errOut := sg(append([]string{"logs", "signins"}, bad...)...)
		if code == 0 || !strings.Contains(errOut, bad[0]) {
			t.Fatalf("logs signins %v: exit %d, %q; want an error naming %s", bad, code, errOut, bad[0])
		}
	}
}

// TestLogsSigninsDatabase: --database lists the statements decided on a
// database, not the sign-ins of its OIDC client of the same name, and
// --statement-class narrows them to one class.
func TestLogsSigninsDatabase(t *testing.T) {
	dir := t.TempDir()
	sg := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"--data-dir", dir}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "stepgate.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := audit.NewSignInLog(st, audit.SignInLogOptions{})
	now := time.Now()
	for _, e := range []audit.SignIn{
		{Time: now.Add(-4 * time.Minute), Source: "oidc", Username: "erin", App: "bank", Decision: "allow"},
		{Time: now.Add(-3 * time.Minute), Source: "database", Username: "erin", App: "bank", Decision: "block",
			Statement: &audit.Statement{Command: "DROP TABLE", Class: "ddl", Tables: []string{"customers"}}},
		{Time: now.Add(-2 * time.Minute), Source: "database", Username: "erin", App: "bank", Decision: "allow",
			Statement: &audit.Statement{Command: "SELECT", Class: "read", Labels: []string{"pii"}}},
		{Time: now.Add(-time.Minute), Source: "database", Username: "erin", App: "ledger", Decision: "block",
			Statement: &audit.Statement{Command: "TRUNCATE", Class: "write"}},
	} {
		if err := log.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, _ := sg("logs", "signins", "--database", "bank")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "ddl: DROP TABLE") || !strings.Contains(out, "read: SELECT") || strings.Contains(out, "oidc") {
		t.Fatalf("logs signins --database bank: %d\n%s", code, out)
	}
	if _, out, _ := sg("logs", "signins", "--app", "bank"); !strings.Contains(out, "oidc") || strings.Count(out, "\n") != 4 {
		t.Fatalf("--app bank should list the client's sign-in and the statements:\n%s", out)
	}
	if _, out, _ := sg("logs", "signins", "--database", "bank", "--statement-class", "ddl"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "DROP TABLE") {
		t.Fatalf("--database bank --statement-class ddl:\n%s", out)
	}
	if _, out, _ := sg("logs", "signins", "--statement-class", "write"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "ledger") {
		t.Fatalf("--statement-class write:\n%s", out)
	}
	code, _, errOut := sg("logs", "signins", "--statement-class", "dml")
	if code != 2 || !strings.Contains(errOut, "--statement-class") || !strings.Contains(errOut, "session, read, utility, write, ddl, privilege, unknown") {
		t.Fatalf("--statement-class dml: exit %d, %q", code, errOut)
	}
}
