package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/riskservice"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestUserRiskCommand: `user risk --confirm-compromised` makes the user's
// risk high and ends their sessions; `--dismiss` clears it. The command
// works on the same stored risk the server reads.
func TestUserRiskCommand(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	stepgate(t, "correct horse battery\n", "user", "add", "bob", "--email", "bob@example.com", "--password-stdin", dd).mustSucceed(t)
	riskOf := func() string {
		t.Helper()
		ctx := context.Background()
		st, err := sqlite.Open(ctx, filepath.Join(dir, "stepgate.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		u, err := st.GetUserByName(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		svc, err := riskservice.New(riskservice.Options{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		return svc.UserRisk(ctx, u.ID)
	}

	out := stepgate(t, "", "user", "risk", "bob", "--confirm-compromised", dd).mustSucceed(t)
	if !strings.Contains(out.stdout, "confirmed compromised") {
		t.Errorf("confirm: %q", out.stdout)
	}
	if got := riskOf(); got != "high" {
		t.Fatalf("risk after confirm-compromised: %q, want high", got)
	}
	stepgate(t, "", "user", "risk", "bob", "--dismiss", dd).mustSucceed(t)
	if got := riskOf(); got != "" {
		t.Fatalf("risk after dismiss: %q, want none", got)
	}
	stepgate(t, "", "user", "risk", "bob", "--dismiss", "--confirm-compromised", dd).mustFail(t, 2, "at most one")
}

// TestUserRiskCommandShowsReportedDetections: a detection another system
// reported shows in `user risk NAME` and its JSON with its source, and
// `--dismiss` clears it as it clears the built-in ones.
func TestUserRiskCommandShowsReportedDetections(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	stepgate(t, "correct horse battery\n", "user", "add", "bob", "--email", "bob@example.com", "--password-stdin", dd).mustSucceed(t)
	func() {
		ctx := context.Background()
		st, err := sqlite.Open(ctx, filepath.Join(dir, "stepgate.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		svc, err := riskservice.New(riskservice.Options{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Report(ctx, "client:siem", "evt-1", riskservice.Report{User: "bob", Type: "siem-impossible-login",
			Level: "medium", Reason: "VPN login from two continents", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}()
	out := stepgate(t, "", "user", "risk", "bob", dd).mustSucceed(t)
	for _, want := range []string{"bob: user risk medium", "siem-impossible-login", "VPN login from two continents", "client:siem"} {
		if !strings.Contains(out.stdout, want) {
			t.Errorf("user risk bob: %q lacks %q", out.stdout, want)
		}
	}
	out = stepgate(t, "", "user", "risk", "bob", "--json", dd).mustSucceed(t)
	var shown struct {
		Level    string `json:"level"`
		Reported []struct {
			Source string `json:"source"`
			Type   string `json:"type"`
		} `json:"reported"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &shown); err != nil || shown.Level != "medium" || len(shown.Reported) != 1 ||
		shown.Reported[0].Source != "client:siem" {
		t.Fatalf("user risk bob --json: %+v, %v\n%s", shown, err, out.stdout)
	}
	stepgate(t, "", "user", "risk", "bob", "--dismiss", dd).mustSucceed(t)
	out = stepgate(t, "", "user", "risk", "bob", dd).mustSucceed(t)
	if !strings.Contains(out.stdout, "user risk none") || strings.Contains(out.stdout, "siem") {
		t.Fatalf("after --dismiss: %q", out.stdout)
	}
}
