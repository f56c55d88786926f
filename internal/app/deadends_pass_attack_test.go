package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/deadend"
)

// TestAttackDeadPassNeverMakesFixable: the dead-end analysis (and with
// it the registration offer) counts a temporary access pass only while
// the security page would take it: a single-use pass once spent, a pass
// past its expiry and a revoked one leave the user stuck, so no user is
// offered a registration the page then refuses, and no report calls a
// stranded user fixable on the strength of a dead pass.
func TestAttackDeadPassNeverMakesFixable(t *testing.T) {
	s := startConsole(t, func(cfg *config.Config) { cfg.Registration.Window = 0 })
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	passes := tap.New(s.app.Store, clock)
	analyzer := app.DeadEnds(s.app.Config, s.app.Store, &app.Methods{Registry: s.app.Methods.Registry, Passes: passes}, clock)
	verdict := func(t *testing.T) deadend.Verdict {
		t.Helper()
		found, err := analyzer.ForUser(ctx, s.app.Policies.Load(), s.bob)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			if f.Policy == "c2-mfa" {
				return f.Verdict
			}
		}
		t.Fatalf("bob, with a password alone, is not stranded by c2-mfa: %+v", found)
		return ""
	}
	if v := verdict(t); v != deadend.Stuck {
		t.Fatalf("bob without a pass: %s, want stuck", v)
	}
	t.Run("reusable-pass-used-once-still-opens", func(t *testing.T) {
		code, _, err := passes.Issue(ctx, s.bob.ID, "admin", time.Hour, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := passes.Redeem(ctx, s.bob.ID, code); err != nil {
			t.Fatal(err)
		}
		if v := verdict(t); v != deadend.Fixable {
			t.Fatalf("bob holding a reusable pass used once: %s, want fixable", v)
		}
		if err := passes.Revoke(ctx, s.bob.ID); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name string
		once bool
		kill func(t *testing.T, code string)
	}{
		{"single-use-spent", true, func(t *testing.T, code string) {
			if _, err := passes.Redeem(ctx, s.bob.ID, code); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoked", false, func(t *testing.T, _ string) {
			if err := passes.Revoke(ctx, s.bob.ID); err != nil {
				t.Fatal(err)
			}
		}},
		// Last: the store's own expiry runs on the real clock, so the
		// expired pass keeps its slot for the rest of this test.
		{"expired", false, func(*testing.T, string) { advance(2 * time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, err := passes.Issue(ctx, s.bob.ID, "admin", time.Hour, tc.once)
			if err != nil {
				t.Fatal(err)
			}
			if v := verdict(t); v != deadend.Fixable {
				t.Fatalf("bob holding a live pass: %s, want fixable", v)
			}
			tc.kill(t, code)
			if v := verdict(t); v != deadend.Stuck {
				t.Fatalf("bob holding a %s pass: %s, want stuck", tc.name, v)
			}
			_ = passes.Revoke(ctx, s.bob.ID) // make way for the next pass
		})
	}
}
