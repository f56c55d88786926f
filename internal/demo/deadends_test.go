package demo

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/deadend"
)

// TestDemoDeadEnds: in the demo, bob (a password and nothing else, and no
// registration window) can never open the customer records, and only a
// temporary access pass gets him further; admin holds one; alice, with
// her authenticator app, can add the passkey the admin pages ask for on
// her own.
func TestDemoDeadEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	log := slog.New(slog.DiscardHandler)
	if _, err := Seed(ctx, cfg, log); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep, err := a.Admin.DeadEnds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	find := func(pol, user string) (deadend.Finding, bool) {
		for _, p := range rep.Policies {
			for _, f := range p.Stranded {
				if p.Policy == pol && f.Username == user {
					return f, true
				}
			}
		}
		return deadend.Finding{}, false
	}
	bob, ok := find("pii-needs-mfa", "bob")
	if !ok || bob.Verdict != deadend.Stuck || !strings.HasPrefix(bob.Why, "needs mfa; has password;") || !strings.Contains(bob.Why, "temporary access pass") {
		t.Errorf("bob and the customer records: %+v (found %v), want stuck: needs mfa, has password, needs a pass", bob, ok)
	}
	// admin has a password alone too, but holds the pass the demo prints.
	adm, ok := find("pii-needs-mfa", "admin")
	if !ok || adm.Verdict != deadend.Fixable {
		t.Errorf("admin and the customer records: %+v (found %v), want fixable: the printed pass opens a registration", adm, ok)
	}
	alice, ok := find("admin-actions-need-a-passkey", "alice")
	if !ok || alice.Verdict != deadend.Fixable || alice.Why != "needs phishing-resistant; has totp, password; fixable by registering webauthn" {
		t.Errorf("alice and the admin pages: %+v (found %v), want fixable by a passkey", alice, ok)
	}
	if _, ok := find("pii-needs-mfa", "alice"); ok {
		t.Error("alice's authenticator app meets pii-needs-mfa; she is listed")
	}
	for _, p := range rep.Policies {
		if p.Policy == "admin-pages-need-bank-admin" || p.Policy == "block-high-risk-sign-ins" || p.Policy == "bank-compliant-device-trial" {
			t.Errorf("%s is listed: block and report-only policies strand nobody", p.Policy)
		}
	}
	if !a.Config.Registration.Campaign.Enabled {
		t.Error("the registration campaign is off in the demo")
	}
}
