package observe_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/elevate/observe"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// signInSink keeps the sign-in log entries written.
type signInSink struct {
	mu      sync.Mutex
	entries []audit.SignIn
}

func (s *signInSink) write(_ context.Context, e audit.SignIn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, e)
	return nil
}

// TestEveryStepIsRecorded drives requests through the real service:
// every transition lands once in the audit trail (with its actor and
// comment, the chain intact), in the sign-in log (source elevation, the
// kind as decision, a stable reason code, the request's facts), and in
// the metrics (activations per role, the wait for approval).
func TestEveryStepIsRecorded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	trail := audit.New(f.st, f.clock.Now)
	var sink signInSink
	m := metrics.New()
	log := slog.New(slog.DiscardHandler)
	s := f.service(t, observe.Audit(trail, log), observe.SignIns(sink.write, log), observe.Metrics(m))

	// Approved after 5 minutes, then ended early by its holder.
	e := f.ask(t, s, "deploy the fix for INC-7")
	f.clock.Advance(5 * time.Minute)
	if _, err := s.Decide(ctx, e.ID, f.bob, true, "ok, go"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deactivate(ctx, e.ID, f.alice, false, "done"); err != nil {
		t.Fatal(err)
	}
	// Denied.
	d := f.ask(t, s, "again")
	if _, err := s.Decide(ctx, d.ID, f.bob, false, "not now"); err != nil {
		t.Fatal(err)
	}
	// Approved, then over at its time: the sweep records the end.
	x := f.ask(t, s, "third")
	if _, err := s.Decide(ctx, x.ID, f.bob, true, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Minute)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}

	entries, err := trail.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range entries {
		got = append(got, en.Action+" "+en.Actor+" "+en.Target+" "+en.Reason)
	}
	want := []string{
		"elevation.requested user:alice elevation:" + e.ID + " deploy the fix for INC-7",
		"elevation.proven user:alice elevation:" + e.ID + " ",
		"elevation.approved user:bob elevation:" + e.ID + " ok, go",
		"elevation.activated user:bob elevation:" + e.ID + " ok, go",
		"elevation.deactivated user:alice elevation:" + e.ID + " done",
		"elevation.requested user:alice elevation:" + d.ID + " again",
		"elevation.proven user:alice elevation:" + d.ID + " ",
		"elevation.denied user:bob elevation:" + d.ID + " not now",
		"elevation.requested user:alice elevation:" + x.ID + " third",
		"elevation.proven user:alice elevation:" + x.ID + " ",
		"elevation.approved user:bob elevation:" + x.ID + " ",
		"elevation.activated user:bob elevation:" + x.ID + " ",
		"elevation.expired system elevation:" + x.ID + " time-up",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if n, err := trail.Verify(ctx); err != nil || n != len(want) {
		t.Errorf("the chain verifies %d entries, %v", n, err)
	}
	var after struct {
		State, User, Role, Justification string
		Until                            time.Time
	}
	if err := json.Unmarshal(entries[3].After, &after); err != nil || after.State != store.ElevationActive || after.User != "alice" || after.Role != role || after.Until.IsZero() {
		t.Errorf("the activation's after is %s (%v)", entries[3].After, err)
	}

	var decisions []string
	for _, en := range sink.entries {
		if en.Source != observe.Source || en.App != elevate.App || en.UserID != f.alice.ID || en.Username != "alice" || en.Elevation == nil || en.Elevation.Role != role {
			t.Errorf("sign-in entry %+v lacks the source, app, user or the elevation's facts", en)
		}
		if !en.Reason.Known() {
			t.Errorf("sign-in entry reason %q is not in the catalogue", en.Reason)
		}
		decisions = append(decisions, en.Decision+" "+string(en.Reason))
	}
	wantDecisions := []string{
		"requested elevation-requested", "proven elevation-proven", "approved elevation-approved", "activated elevation-activated",
		"deactivated elevation-deactivated", // "done" is free text: in the comment, not the code
		"requested elevation-requested", "proven elevation-proven", "denied elevation-denied",
		"requested elevation-requested", "proven elevation-proven", "approved elevation-approved", "activated elevation-activated",
		"expired elevation-expired:time-up",
	}
	if !slices.Equal(decisions, wantDecisions) {
		t.Errorf("sign-in log:\n  %s\nwant\n  %s", strings.Join(decisions, "\n  "), strings.Join(wantDecisions, "\n  "))
	}
	if c := sink.entries[2].Elevation; c.Actor != "user:bob" || c.Comment != "ok, go" {
		t.Errorf("the approval's entry names %q saying %q", c.Actor, c.Comment)
	}

	hasLines(t, exposition(t, m),
		`stepgate_elevation_activations_total{role="bank-admin"} 2`,
		`stepgate_elevation_events_total{kind="denied"} 1`,
		`stepgate_elevation_events_total{kind="expired"} 1`,
		`stepgate_elevation_approval_seconds_count{role="bank-admin"} 2`,
		// One waited 5 minutes, one not at all.
		`stepgate_elevation_approval_seconds_bucket{role="bank-admin",le="30"} 1`,
		`stepgate_elevation_approval_seconds_bucket{role="bank-admin",le="300"} 2`,
	)
}

// TestHangingUpKeepsTheRecord is the attack of a requester or approver
// who cancels their request the moment the step is stored, hoping the
// audit trail and sign-in log writes fail with it: the step is recorded
// all the same.
func TestHangingUpKeepsTheRecord(t *testing.T) {
	f := newFixture(t)
	trail := audit.New(f.st, f.clock.Now)
	log := slog.New(slog.DiscardHandler)
	var seen []string
	write := func(ctx context.Context, e audit.SignIn) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		seen = append(seen, e.Decision)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := elevate.Event{Kind: elevate.Approved, Elevation: store.Elevation{ID: "elv_1", UserID: f.alice.ID, Role: role},
		Requester: f.alice, Actor: f.bob.ID, ActorName: "bob", Comment: "fine", At: f.clock.Now()}
	observe.Audit(trail, log)(ctx, e)
	observe.SignIns(write, log)(ctx, e)
	entries, err := trail.List(context.Background())
	if err != nil || len(entries) != 1 || entries[0].Action != "elevation.approved" {
		t.Fatalf("attack/hang-up-skips-audit: trail %+v, %v", entries, err)
	}
	if !slices.Equal(seen, []string{"approved"}) {
		t.Fatalf("attack/hang-up-skips-sign-in-log: entries %v", seen)
	}
}

// TestActorNames: who caused a step reads as the audit trail names
// people everywhere else.
func TestActorNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    elevate.Event
		want string
	}{
		{"ok/user", elevate.Event{Actor: "u-bob", ActorName: "bob"}, "user:bob"},
		{"ok/system", elevate.Event{Actor: "system"}, "system"},
		{"ok/operator", elevate.Event{Actor: "cli:root"}, "cli:root"},
		{"ok/unknown", elevate.Event{}, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := observe.Actor(tc.e); got != tc.want {
				t.Errorf("Actor = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSignInEntryKeepsFreeTextOutOfCodes: an administrator's free-text
// reason for ending an elevation stays in the comment; the reason code
// carries only the service's own end reasons, so dashboards counting by
// code are not flooded with one series per sentence, and a line break
// typed in the reason does not reach the log's one-line fields.
func TestSignInEntryKeepsFreeTextOutOfCodes(t *testing.T) {
	el := store.Elevation{ID: "elv_1", UserID: "u-alice", Role: role, State: store.ElevationDeactivated, EndReason: "leaving\r\nnow"}
	got := observe.SignInEntry(elevate.Event{Kind: elevate.Deactivated, Elevation: el, Actor: "u-bob", ActorName: "bob", Comment: el.EndReason})
	if got.Reason != reason.ElevationDeactivated || got.Elevation.Comment != "leaving  now" {
		t.Errorf("reason %q comment %q", got.Reason, got.Elevation.Comment)
	}
}
