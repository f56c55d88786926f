package observe_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/elevate/observe"
	"github.com/stepgate/stepgate/internal/store"
)

// TestHeadlines: each step reads as a sentence in the chat line (and the
// mail's subject), with the approvals counted when more than one is
// needed, and the duration written as people write it.
func TestHeadlines(t *testing.T) {
	at := time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)
	two := elevate.Role{Name: role, Approvers: &elevate.Approvers{Group: "admins", Count: 2}}
	one := elevate.Role{Name: role, Approvers: &elevate.Approvers{Group: "admins", Count: 1}}
	base := store.Elevation{ID: "elv_1", UserID: "u-alice", Role: role, Duration: 90 * time.Minute, RequestedAt: at, ProvenAt: at}
	with := func(mod func(*store.Elevation)) store.Elevation {
		e := base
		mod(&e)
		return e
	}
	bob := elevate.Event{Actor: "u-bob", ActorName: "bob"}
	for _, tc := range []struct {
		name string
		kind string
		ev   elevate.Event
		r    elevate.Role
		want string
	}{
		{"ok/proven", elevate.Proven, elevate.Event{Elevation: base}, one, "alice asks for bank-admin for 1h30m and waits for approval"},
		{"ok/first-of-two", elevate.Approved, elevate.Event{Actor: bob.Actor, ActorName: bob.ActorName, Elevation: with(func(e *store.Elevation) {
			e.Decisions = []store.ElevationDecision{{By: "u-bob", Approve: true}}
		})}, two, "bob approved alice's request for bank-admin (1 of 2 approvals)"},
		{"ok/denied", elevate.Denied, elevate.Event{Actor: bob.Actor, ActorName: bob.ActorName, Elevation: base}, one, "bob denied alice's request for bank-admin"},
		{"ok/active", elevate.Activated, elevate.Event{Elevation: with(func(e *store.Elevation) { e.ActivatedAt, e.Until = at, at.Add(time.Hour) })}, one,
			"bank-admin is active for alice until 2031-03-04 10:00 UTC"},
		{"ok/time-up", elevate.Expired, elevate.Event{Actor: "system", Elevation: with(func(e *store.Elevation) { e.ActivatedAt = at })}, one, "alice's bank-admin ended at its time"},
		{"ok/lapsed", elevate.Expired, elevate.Event{Actor: "system", Elevation: base}, one, "alice's request for bank-admin lapsed: nobody decided in time"},
		{"ok/ended-by-system", elevate.Deactivated, elevate.Event{Actor: "system", Elevation: with(func(e *store.Elevation) { e.ActivatedAt = at })}, one,
			"alice's bank-admin was ended by Stepgate"},
		{"ok/withdrawn", elevate.Deactivated, elevate.Event{Actor: "u-alice", Elevation: base}, one, "alice's request for bank-admin was withdrawn by alice"},
		{"ok/whole-hours", elevate.Proven, elevate.Event{Elevation: with(func(e *store.Elevation) { e.Duration = 2 * time.Hour })}, one, "for 2h and"},
		{"ok/minutes", elevate.Proven, elevate.Event{Elevation: with(func(e *store.Elevation) { e.Duration = 45 * time.Minute })}, one, "for 45m and"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ev.Kind = tc.kind
			tc.ev.Requester = store.User{ID: "u-alice", Username: "alice"}
			tc.ev.At = at
			got := observe.NewBody(tc.ev, tc.r).Text
			if !strings.Contains(strings.SplitN(got, "\n", 2)[0], tc.want) {
				t.Errorf("headline %q, want %q", strings.SplitN(got, "\n", 2)[0], tc.want)
			}
		})
	}
}
