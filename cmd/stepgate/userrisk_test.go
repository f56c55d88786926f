package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

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
	stepgate(t, "", "user", "risk", "bob", "--dismiss", "--confirm-compromised", dd).mustFail(t, 2, "exactly one")
}
