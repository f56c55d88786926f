package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// testRoleAssignments: assignments are stamped on the store's clock, with
// the role lower-cased; one role, kind and principal is held once; lists
// come ordered by role, principal, kind.
func testRoleAssignments(t *testing.T, s store.Store, c *clock) {
	ctx := context.Background()
	alice, ops := store.UserPrincipal("u-alice"), store.GroupPrincipal("ops")
	a := must[store.RoleAssignment](t)(s.CreateRoleAssignment(ctx, store.RoleAssignment{
		ID: "ra-1", Role: "Bank-Admin", Kind: store.AssignEligible, Principal: alice, Scope: []string{"bank", "wiki"}, CreatedBy: "admin",
	}))
	if a.Role != "bank-admin" || !a.CreatedAt.Equal(c.now()) || a.Version != 1 {
		t.Fatalf("created assignment = %+v; want role bank-admin, created at the store's clock %s, version 1", a, c.now())
	}
	for _, dup := range []store.RoleAssignment{
		{ID: "ra-dup", Role: "bank-admin", Kind: store.AssignEligible, Principal: alice},
		{ID: "ra-dup", Role: "BANK-ADMIN", Kind: store.AssignEligible, Principal: alice, Scope: []string{"other"}},
	} {
		_, err := s.CreateRoleAssignment(ctx, dup)
		wantErr(t, err, store.ErrConflict)
	}
	// The same id twice is a conflict too.
	_, err := s.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra-1", Role: "auditor", Kind: store.AssignActive, Principal: alice})
	wantErr(t, err, store.ErrConflict)

	c.set(c.now().Add(time.Minute))
	for _, ra := range []store.RoleAssignment{
		{ID: "ra-2", Role: "bank-admin", Kind: store.AssignActive, Principal: alice}, // same role and holder, other kind
		{ID: "ra-3", Role: "bank-admin", Kind: store.AssignEligible, Principal: ops},
		{ID: "ra-4", Role: "auditor", Kind: store.AssignActive, Principal: ops, Scope: []string{"logs"}},
	} {
		must[store.RoleAssignment](t)(s.CreateRoleAssignment(ctx, ra))
	}
	ids := func(list []store.RoleAssignment) []string {
		var out []string
		for _, a := range list {
			out = append(out, a.ID)
		}
		return out
	}
	// group:ops < user:u-alice; active < eligible.
	all := must[[]store.RoleAssignment](t)(s.ListRoleAssignments(ctx, ""))
	if got, want := ids(all), []string{"ra-4", "ra-3", "ra-2", "ra-1"}; !slices.Equal(got, want) {
		t.Fatalf("ListRoleAssignments(all) = %v, want %v (role, principal, kind)", got, want)
	}
	first := all[3]
	if first.Role != "bank-admin" || first.Kind != store.AssignEligible || first.Principal != alice ||
		!slices.Equal(first.Scope, []string{"bank", "wiki"}) || first.CreatedBy != "admin" || !first.CreatedAt.Equal(a.CreatedAt) || first.Version != 1 {
		t.Fatalf("listed assignment = %+v, want %+v", first, a)
	}
	if len(all[1].Scope) != 0 {
		t.Fatalf("an unscoped assignment came back scoped: %+v", all[1])
	}
	if got, want := ids(must[[]store.RoleAssignment](t)(s.ListRoleAssignments(ctx, "BANK-ADMIN"))), []string{"ra-3", "ra-2", "ra-1"}; !slices.Equal(got, want) {
		t.Fatalf("ListRoleAssignments(BANK-ADMIN) = %v, want %v", got, want)
	}
	if got := must[[]store.RoleAssignment](t)(s.ListRoleAssignments(ctx, "nobody")); len(got) != 0 {
		t.Fatalf("ListRoleAssignments(nobody) = %v, want none", ids(got))
	}

	if err := s.DeleteRoleAssignment(ctx, "ra-1"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteRoleAssignment(ctx, "ra-1"), store.ErrNotFound)
	wantErr(t, s.DeleteRoleAssignment(ctx, "ra-missing"), store.ErrNotFound)
	if got, want := ids(must[[]store.RoleAssignment](t)(s.ListRoleAssignments(ctx, "bank-admin"))), []string{"ra-3", "ra-2"}; !slices.Equal(got, want) {
		t.Fatalf("after delete: %v, want %v", got, want)
	}
	// The deleted assignment no longer holds its place.
	must[store.RoleAssignment](t)(s.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra-5", Role: "bank-admin", Kind: store.AssignEligible, Principal: alice}))
}

// us is a duration with microseconds in it, so a store that keeps only
// milliseconds or seconds is caught.
const us = 123457 * time.Microsecond

// fullElevation has every field set, at microsecond precision.
func fullElevation(c *clock) store.Elevation {
	t0 := c.now()
	return store.Elevation{
		ID: "el-full", UserID: "u-alice", Role: "Bank-Admin", Scope: []string{"bank", "bank-api"},
		Duration: 90*time.Minute + time.Microsecond, Justification: "INC-7 wire reconciliation", Ticket: "INC-7",
		State: store.ElevationActive, RequestedAt: t0.Add(-10*time.Minute + us), ProvenAt: t0.Add(-9*time.Minute + us),
		Deadline: t0.Add(50*time.Minute + us),
		Decisions: []store.ElevationDecision{
			{By: "u-bob", At: t0.Add(-8*time.Minute + us), Approve: false, Comment: "which ticket?"},
			{By: "u-carol", At: t0.Add(-7*time.Minute + us), Approve: true},
		},
		ActivatedAt: t0.Add(-7*time.Minute + us), Until: t0.Add(83*time.Minute + 2*us),
		EndedAt: t0.Add(time.Minute + us), EndedBy: "u-admin", EndReason: "done early",
	}
}

// elevationDiff lists the fields where got differs from want.
func elevationDiff(got, want store.Elevation) []string {
	var diff []string
	check := func(name string, same bool, g, w any) {
		if !same {
			diff = append(diff, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	check("ID", got.ID == want.ID, got.ID, want.ID)
	check("UserID", got.UserID == want.UserID, got.UserID, want.UserID)
	check("Role", got.Role == want.Role, got.Role, want.Role)
	check("Scope", slices.Equal(got.Scope, want.Scope), got.Scope, want.Scope)
	check("Duration", got.Duration == want.Duration, got.Duration, want.Duration)
	check("Justification", got.Justification == want.Justification, got.Justification, want.Justification)
	check("Ticket", got.Ticket == want.Ticket, got.Ticket, want.Ticket)
	check("State", got.State == want.State, got.State, want.State)
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"RequestedAt", got.RequestedAt, want.RequestedAt}, {"ProvenAt", got.ProvenAt, want.ProvenAt},
		{"Deadline", got.Deadline, want.Deadline}, {"ActivatedAt", got.ActivatedAt, want.ActivatedAt},
		{"Until", got.Until, want.Until}, {"EndedAt", got.EndedAt, want.EndedAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt}, {"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
	} {
		check(f.name, f.got.Equal(f.want) && f.got.IsZero() == f.want.IsZero(), f.got, f.want)
	}
	check("Decisions", slices.EqualFunc(got.Decisions, want.Decisions, func(a, b store.ElevationDecision) bool {
		return a.By == b.By && a.At.Equal(b.At) && a.Approve == b.Approve && a.Comment == b.Comment
	}), got.Decisions, want.Decisions)
	check("EndedBy", got.EndedBy == want.EndedBy, got.EndedBy, want.EndedBy)
	check("EndReason", got.EndReason == want.EndReason, got.EndReason, want.EndReason)
	check("Version", got.Version == want.Version, got.Version, want.Version)
	return diff
}

func wantElevation(t *testing.T, what string, got, want store.Elevation) {
	t.Helper()
	if diff := elevationDiff(got, want); len(diff) > 0 {
		t.Fatalf("%s: %v", what, diff)
	}
}

// testElevations: every field of an elevation survives the round trip,
// unset times stay unset, and the store stamps it on its own clock.
func testElevations(t *testing.T, s store.Store, c *clock) {
	ctx := context.Background()
	in := fullElevation(c)
	created := must[store.Elevation](t)(s.CreateElevation(ctx, in))
	want := in
	want.Role, want.CreatedAt, want.UpdatedAt, want.Version = "bank-admin", c.now(), c.now(), 1
	wantElevation(t, "CreateElevation", created, want)
	wantElevation(t, "GetElevation", must[store.Elevation](t)(s.GetElevation(ctx, in.ID)), want)

	_, err := s.CreateElevation(ctx, store.Elevation{ID: in.ID, UserID: "u-mallory", Role: "bank-admin", State: store.ElevationPending})
	wantErr(t, err, store.ErrConflict)
	wantElevation(t, "after a conflicting create", must[store.Elevation](t)(s.GetElevation(ctx, in.ID)), want)

	// A fresh request: nothing decided, proven or ended yet.
	pending := store.Elevation{ID: "el-pending", UserID: "u-alice", Role: "auditor", Duration: time.Hour,
		State: store.ElevationPending, RequestedAt: c.now(), Deadline: c.now().Add(time.Hour)}
	must[store.Elevation](t)(s.CreateElevation(ctx, pending))
	got := must[store.Elevation](t)(s.GetElevation(ctx, pending.ID))
	if !got.ProvenAt.IsZero() || !got.ActivatedAt.IsZero() || !got.Until.IsZero() || !got.EndedAt.IsZero() ||
		len(got.Decisions) != 0 || len(got.Scope) != 0 || got.EndedBy != "" {
		t.Fatalf("a fresh request came back with more than was stored: %+v", got)
	}

	_, err = s.GetElevation(ctx, "el-missing")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateElevation(ctx, "el-missing", func(e store.Elevation) (store.Elevation, error) { return e, nil })
	wantErr(t, err, store.ErrNotFound)

	// An update keeps what it does not change, bumps the version and
	// stamps UpdatedAt on the store's clock; CreatedAt stays.
	c.set(c.now().Add(time.Minute + us))
	dec := store.ElevationDecision{By: "u-carol", At: c.now(), Approve: true, Comment: "ok"}
	upd := must[store.Elevation](t)(s.UpdateElevation(ctx, pending.ID, func(e store.Elevation) (store.Elevation, error) {
		e.State, e.ProvenAt, e.ActivatedAt, e.Until = store.ElevationActive, c.now(), c.now(), c.now().Add(e.Duration)
		e.Decisions = append(e.Decisions, dec)
		return e, nil
	}))
	want = pending
	want.State, want.ProvenAt, want.ActivatedAt, want.Until = store.ElevationActive, c.now(), c.now(), c.now().Add(time.Hour)
	want.Decisions = []store.ElevationDecision{dec}
	want.CreatedAt, want.UpdatedAt, want.Version = got.CreatedAt, c.now(), 2
	wantElevation(t, "UpdateElevation", upd, want)
	wantElevation(t, "GetElevation after update", must[store.Elevation](t)(s.GetElevation(ctx, pending.ID)), want)

	// A failing fn stores nothing.
	boom := errors.New("boom")
	_, err = s.UpdateElevation(ctx, pending.ID, func(e store.Elevation) (store.Elevation, error) {
		e.State = store.ElevationDeactivated
		return e, boom
	})
	wantErr(t, err, boom)
	wantElevation(t, "after a failed update", must[store.Elevation](t)(s.GetElevation(ctx, pending.ID)), want)
}

// testElevationTerms performs the attack of changing what was asked
// after it was approved (a longer duration, a wider scope, another
// role or requester): the store refuses every such update and keeps the
// record as it was.
func testElevationTerms(t *testing.T, s store.Store, c *clock) {
	ctx := context.Background()
	orig := must[store.Elevation](t)(s.CreateElevation(ctx, store.Elevation{
		ID: "el-terms", UserID: "u-alice", Role: "bank-admin", Scope: []string{"bank"}, Duration: time.Hour,
		Justification: "INC-7", Ticket: "T-1", State: store.ElevationPending, RequestedAt: c.now().Add(-time.Minute), ProvenAt: c.now(),
	}))
	stored := must[store.Elevation](t)(s.GetElevation(ctx, orig.ID))
	for _, tc := range []struct {
		name   string
		change func(*store.Elevation)
	}{
		{"fail/longer-duration", func(e *store.Elevation) { e.Duration = 24 * time.Hour }},
		{"fail/wider-scope", func(e *store.Elevation) { e.Scope = append(e.Scope, "admin") }},
		{"fail/scope-dropped-to-everywhere", func(e *store.Elevation) { e.Scope = nil }},
		{"fail/other-role", func(e *store.Elevation) { e.Role = "root" }},
		{"fail/role-case", func(e *store.Elevation) { e.Role = "Bank-Admin" }},
		{"fail/other-requester", func(e *store.Elevation) { e.UserID = "u-mallory" }},
		{"fail/other-justification", func(e *store.Elevation) { e.Justification = "because" }},
		{"fail/other-ticket", func(e *store.Elevation) { e.Ticket = "T-2" }},
		{"fail/later-request-time", func(e *store.Elevation) { e.RequestedAt = e.RequestedAt.Add(time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.UpdateElevation(ctx, orig.ID, func(e store.Elevation) (store.Elevation, error) {
				e.State, e.ActivatedAt, e.Until = store.ElevationActive, c.now(), c.now().Add(e.Duration)
				tc.change(&e)
				return e, nil
			})
			wantErr(t, err, store.ErrTermsChanged)
			wantElevation(t, "after a refused update", must[store.Elevation](t)(s.GetElevation(ctx, orig.ID)), stored)
		})
	}
	t.Run("ok/same-terms", func(t *testing.T) {
		must[store.Elevation](t)(s.UpdateElevation(ctx, orig.ID, func(e store.Elevation) (store.Elevation, error) {
			e.State = store.ElevationDenied
			return e, nil
		}))
		if got := must[store.Elevation](t)(s.GetElevation(ctx, orig.ID)); got.State != store.ElevationDenied || got.Role != "bank-admin" || got.Version != 2 {
			t.Fatalf("after a state change: %+v", got)
		}
	})
}

// testElevationLifecycle performs, against the stored record, the
// changes an elevation's lifecycle does not have: an approval replayed
// after the request ended, an activation without the step-up, an
// elevation stretched or moved, an approver's answer rewritten. Each is
// refused with ErrLifecycle and stores nothing; the lifecycle's own
// steps are stored.
func testElevationLifecycle(t *testing.T, s store.Store, c *clock) {
	ctx := context.Background()
	t0 := c.now()
	approve := store.ElevationDecision{By: "u-bob", At: t0, Approve: true, Comment: "ok"}
	// in returns a record in state, as the lifecycle leaves it there.
	in := func(state string) store.Elevation {
		e := store.Elevation{UserID: "u-alice", Role: "bank-admin", Scope: []string{"bank"}, Duration: time.Hour, State: state,
			RequestedAt: t0.Add(-time.Hour), ProvenAt: t0.Add(-59 * time.Minute), Decisions: []store.ElevationDecision{approve}}
		if state != store.ElevationPending && state != store.ElevationDenied {
			e.ActivatedAt, e.Until = t0.Add(-30*time.Minute), t0.Add(30*time.Minute)
		}
		if state != store.ElevationPending && state != store.ElevationActive {
			e.EndedAt, e.EndedBy = t0.Add(-time.Minute), "u-carol"
		}
		return e
	}
	activate := func(e *store.Elevation) {
		e.State, e.ActivatedAt, e.Until = store.ElevationActive, t0, t0.Add(e.Duration)
	}
	for _, tc := range []struct {
		name   string
		from   string
		change func(*store.Elevation)
		ok     bool
	}{
		{"ok/pending-to-active", store.ElevationPending, activate, true},
		{"ok/pending-to-denied", store.ElevationPending, func(e *store.Elevation) { e.State, e.EndedAt = store.ElevationDenied, t0 }, true},
		{"ok/pending-to-expired", store.ElevationPending, func(e *store.Elevation) { e.State, e.EndedAt = store.ElevationExpired, t0 }, true},
		{"ok/pending-withdrawn", store.ElevationPending, func(e *store.Elevation) { e.State, e.EndedAt = store.ElevationDeactivated, t0 }, true},
		{"ok/pending-another-decision", store.ElevationPending, func(e *store.Elevation) {
			e.Decisions = append(e.Decisions, store.ElevationDecision{By: "u-carol", At: t0, Approve: true})
		}, true},
		{"ok/active-to-expired", store.ElevationActive, func(e *store.Elevation) { e.State, e.EndedAt = store.ElevationExpired, e.Until }, true},
		{"ok/active-deactivated-ends-sooner", store.ElevationActive, func(e *store.Elevation) {
			e.State, e.EndedAt, e.Until = store.ElevationDeactivated, t0, t0
		}, true},
		{"ok/ended-annotated", store.ElevationDenied, func(e *store.Elevation) { e.EndReason = "no ticket" }, true},
		{"fail/pending-to-active-without-step-up", store.ElevationPending, func(e *store.Elevation) { activate(e); e.ProvenAt = time.Time{} }, false},
		{"fail/pending-to-active-for-longer", store.ElevationPending, func(e *store.Elevation) { activate(e); e.Until = e.Until.Add(time.Hour) }, false},
		{"fail/pending-to-active-without-start", store.ElevationPending, func(e *store.Elevation) { activate(e); e.ActivatedAt = time.Time{} }, false},
		{"fail/pending-to-unknown-state", store.ElevationPending, func(e *store.Elevation) { e.State = "approved" }, false},
		{"fail/active-stretched", store.ElevationActive, func(e *store.Elevation) { e.Until = e.Until.Add(time.Hour) }, false},
		{"fail/active-restarted", store.ElevationActive, func(e *store.Elevation) { e.ActivatedAt, e.Until = t0, t0.Add(e.Duration) }, false},
		// Backdated, it would count at times it was not yet granted.
		{"fail/active-backdated", store.ElevationActive, func(e *store.Elevation) { e.ActivatedAt = e.ActivatedAt.Add(-time.Hour) }, false},
		{"fail/active-to-pending", store.ElevationActive, func(e *store.Elevation) { e.State = store.ElevationPending }, false},
		{"fail/active-to-denied", store.ElevationActive, func(e *store.Elevation) { e.State = store.ElevationDenied }, false},
		{"fail/denied-then-approved", store.ElevationDenied, activate, false},
		{"fail/denied-to-pending", store.ElevationDenied, func(e *store.Elevation) { e.State = store.ElevationPending }, false},
		{"fail/expired-then-approved", store.ElevationExpired, func(e *store.Elevation) { e.State = store.ElevationActive }, false},
		{"fail/deactivated-brought-back", store.ElevationDeactivated, func(e *store.Elevation) { e.State = store.ElevationActive }, false},
		{"fail/expired-to-deactivated", store.ElevationExpired, func(e *store.Elevation) { e.State = store.ElevationDeactivated }, false},
		{"fail/decision-dropped", store.ElevationPending, func(e *store.Elevation) { e.Decisions = nil }, false},
		{"fail/decision-rewritten", store.ElevationPending, func(e *store.Elevation) {
			e.Decisions = []store.ElevationDecision{{By: "u-bob", At: t0, Approve: false, Comment: "ok"}}
		}, false},
		{"fail/decision-reattributed", store.ElevationPending, func(e *store.Elevation) {
			e.Decisions = []store.ElevationDecision{{By: "u-admin", At: t0, Approve: true, Comment: "ok"}, approve}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := in(tc.from)
			e.ID = "el-" + tc.name
			must[store.Elevation](t)(s.CreateElevation(ctx, e))
			before := must[store.Elevation](t)(s.GetElevation(ctx, e.ID))
			want := before
			tc.change(&want)
			got, err := s.UpdateElevation(ctx, e.ID, func(e store.Elevation) (store.Elevation, error) {
				tc.change(&e)
				return e, nil
			})
			stored := must[store.Elevation](t)(s.GetElevation(ctx, e.ID))
			if !tc.ok {
				wantErr(t, err, store.ErrLifecycle)
				wantElevation(t, "after a refused update", stored, before)
				return
			}
			if err != nil {
				t.Fatalf("UpdateElevation: %v", err)
			}
			want.UpdatedAt, want.Version = got.UpdatedAt, 2
			wantElevation(t, "after the update", stored, want)
		})
	}
}

// errNotPending is what a decision's fn answers when the request was
// decided already.
var errNotPending = errors.New("the request is no longer pending")

// testElevationRace performs the attack of two approvers (or an approver
// and a denier) deciding the same request at once: for each request,
// exactly one decision is stored, and the other caller is told so.
func testElevationRace(t *testing.T, s store.Store, c *clock) {
	ctx := context.Background()
	const rounds = 8
	for round := range rounds {
		id := fmt.Sprintf("el-race-%d", round)
		must[store.Elevation](t)(s.CreateElevation(ctx, store.Elevation{
			ID: id, UserID: "u-alice", Role: "bank-admin", Duration: time.Hour, State: store.ElevationPending, RequestedAt: c.now(), ProvenAt: c.now(),
		}))
		decide := func(by, state string) func(store.Elevation) (store.Elevation, error) {
			return func(e store.Elevation) (store.Elevation, error) {
				if e.State != store.ElevationPending {
					return e, errNotPending
				}
				e.State = state
				e.Decisions = append(e.Decisions, store.ElevationDecision{By: by, At: c.now(), Approve: state == store.ElevationActive})
				if state == store.ElevationActive {
					e.ActivatedAt, e.Until = c.now(), c.now().Add(e.Duration)
				} else {
					e.EndedAt, e.EndedBy = c.now(), by
				}
				return e, nil
			}
		}
		deciders := []struct{ by, state string }{{"u-bob", store.ElevationActive}, {"u-carol", store.ElevationDenied}}
		errs := make([]error, len(deciders))
		results := make([]store.Elevation, len(deciders))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, d := range deciders {
			wg.Go(func() {
				<-start
				results[i], errs[i] = s.UpdateElevation(ctx, id, decide(d.by, d.state))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both decisions were stored", round)
				}
				winner = i
			case errors.Is(err, errNotPending), errors.Is(err, store.ErrConflict):
			default:
				t.Fatalf("round %d: %s's decision failed with %v, want success, its own error or ErrConflict", round, deciders[i].by, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither decision was stored: %v", round, errs)
		}
		got := must[store.Elevation](t)(s.GetElevation(ctx, id))
		w := deciders[winner]
		if got.State != w.state || got.Version != 2 || len(got.Decisions) != 1 || got.Decisions[0].By != w.by || results[winner].Version != 2 {
			t.Fatalf("round %d: %s won, but the record is %+v", round, w.by, got)
		}
		// A late decision (a replayed approval) is refused by the same check.
		_, err := s.UpdateElevation(ctx, id, decide("u-dave", store.ElevationActive))
		wantErr(t, err, errNotPending)
		if again := must[store.Elevation](t)(s.GetElevation(ctx, id)); again.Version != 2 || again.State != w.state {
			t.Fatalf("round %d: a late decision changed the record: %+v", round, again)
		}
	}
}

// testListElevations: filters, newest request first (ties by id), a
// limit, and a cursor that walks every page without repeats or gaps,
// also between two requests made at the same moment.
func testListElevations(t *testing.T, s store.Store, c *clock) {
	ctx := context.Background()
	t0 := c.now()
	rows := []struct {
		id, user, role, state string
		at                    time.Duration
	}{
		{"el-01", "u-alice", "bank-admin", store.ElevationExpired, 0},
		{"el-02", "u-bob", "bank-admin", store.ElevationDenied, time.Minute},
		{"el-03", "u-alice", "auditor", store.ElevationActive, 2 * time.Minute},
		{"el-04", "u-alice", "bank-admin", store.ElevationPending, 3 * time.Minute},
		{"el-05", "u-alice", "bank-admin", store.ElevationActive, 3 * time.Minute}, // same moment as el-04
		{"el-06", "u-bob", "auditor", store.ElevationPending, 4 * time.Minute},
		{"el-07", "u-alice", "bank-admin", store.ElevationDeactivated, 5 * time.Minute},
		{"el-08", "u-bob", "bank-admin", store.ElevationActive, 5*time.Minute + time.Microsecond},
	}
	for _, r := range rows {
		must[store.Elevation](t)(s.CreateElevation(ctx, store.Elevation{
			ID: r.id, UserID: r.user, Role: r.role, State: r.state, Duration: time.Hour, RequestedAt: t0.Add(r.at),
		}))
	}
	list := func(q store.ElevationQuery) []string {
		t.Helper()
		var out []string
		for _, e := range must[[]store.Elevation](t)(s.ListElevations(ctx, q)) {
			out = append(out, e.ID)
		}
		return out
	}
	// Newest request first; el-05 before el-04, requested at the same moment.
	all := []string{"el-08", "el-07", "el-06", "el-05", "el-04", "el-03", "el-02", "el-01"}
	for _, tc := range []struct {
		name string
		q    store.ElevationQuery
		want []string
	}{
		{"ok/all", store.ElevationQuery{}, all},
		{"ok/user", store.ElevationQuery{UserID: "u-bob"}, []string{"el-08", "el-06", "el-02"}},
		{"ok/role-any-case", store.ElevationQuery{Role: "AUDITOR"}, []string{"el-06", "el-03"}},
		{"ok/one-state", store.ElevationQuery{States: []string{store.ElevationPending}}, []string{"el-06", "el-04"}},
		{"ok/several-states", store.ElevationQuery{States: []string{store.ElevationActive, store.ElevationPending}}, []string{"el-08", "el-06", "el-05", "el-04", "el-03"}},
		{"ok/user-role-states", store.ElevationQuery{UserID: "u-alice", Role: "bank-admin", States: []string{store.ElevationActive, store.ElevationPending, store.ElevationDenied}}, []string{"el-05", "el-04"}},
		{"ok/limit", store.ElevationQuery{Limit: 3}, all[:3]},
		{"ok/cursor-between-equal-times", store.ElevationQuery{Before: t0.Add(3 * time.Minute), BeforeID: "el-05"}, []string{"el-04", "el-03", "el-02", "el-01"}},
		{"ok/cursor-with-filter", store.ElevationQuery{UserID: "u-alice", Before: t0.Add(5 * time.Minute), BeforeID: "el-07", Limit: 2}, []string{"el-05", "el-04"}},
		{"ok/nobody", store.ElevationQuery{UserID: "u-nobody"}, nil},
		{"ok/no-state-matches", store.ElevationQuery{States: []string{"unknown"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.q); !slices.Equal(got, tc.want) {
				t.Fatalf("ListElevations(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	// Every page size walks everything once, in order; pages of one and
	// two put a page boundary between el-05 and el-04, requested at the
	// same moment.
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("ok/walk-pages-of-%d", limit), func(t *testing.T) {
			var walked []string
			q := store.ElevationQuery{Limit: limit}
			for range len(all) + 1 {
				page := must[[]store.Elevation](t)(s.ListElevations(ctx, q))
				if len(page) > limit {
					t.Fatalf("a page of %d, want at most %d", len(page), limit)
				}
				if len(page) == 0 {
					break
				}
				for _, e := range page {
					walked = append(walked, e.ID)
				}
				last := page[len(page)-1]
				q.Before, q.BeforeID = last.RequestedAt, last.ID
			}
			if !slices.Equal(walked, all) {
				t.Fatalf("pages of %d walked %v, want %v", limit, walked, all)
			}
		})
	}
	// Limit 0 is a page of 100; a Limit past the largest page is the
	// largest page, not the default.
	t.Run("ok/default-and-large-limits", func(t *testing.T) {
		for i := range 102 {
			must[store.Elevation](t)(s.CreateElevation(ctx, store.Elevation{
				ID: fmt.Sprintf("el-many-%03d", i), UserID: "u-many", Role: "auditor", State: store.ElevationExpired, RequestedAt: t0.Add(time.Duration(i) * time.Second),
			}))
		}
		for _, tc := range []struct{ limit, want int }{{0, 100}, {101, 101}, {5000, 102}} {
			if got := list(store.ElevationQuery{UserID: "u-many", Limit: tc.limit}); len(got) != tc.want || got[0] != "el-many-101" {
				t.Fatalf("Limit %d: %d elevations from %v, want %d from el-many-101", tc.limit, len(got), got[:min(len(got), 1)], tc.want)
			}
		}
	})
}

// testUserGrants: a user lookup carries the roles the user holds beyond
// User.Roles (active assignments to them or their groups, their active
// elevations not yet ended on the store's clock, of roles they are still
// eligible for), and nothing else: no eligibility, no request that is
// not active, no elevation that ended or that they are no longer
// eligible for, nothing of another user or of a group they are not in.
func testUserGrants(t *testing.T, s store.Store, c *clock) {
	ctx := context.Background()
	t0 := c.now()
	alice := must[store.User](t)(s.CreateUser(ctx, store.User{ID: "u-alice", Username: "alice", Groups: []string{"ops", "staff"}, Roles: []string{"viewer"}}))
	must[store.User](t)(s.CreateUser(ctx, store.User{ID: "u-bob", Username: "bob", Groups: []string{"finance"}}))
	assignments := []store.RoleAssignment{
		{ID: "ra-user-active", Role: "auditor", Kind: store.AssignActive, Principal: store.UserPrincipal(alice.ID), Scope: []string{"bank", "logs"}},
		{ID: "ra-group-active", Role: "operator", Kind: store.AssignActive, Principal: store.GroupPrincipal("ops")},
		{ID: "ra-user-eligible", Role: "bank-admin", Kind: store.AssignEligible, Principal: store.UserPrincipal(alice.ID)},
		{ID: "ra-group-eligible", Role: "db-admin", Kind: store.AssignEligible, Principal: store.GroupPrincipal("staff")},
		{ID: "ra-other-group", Role: "treasurer", Kind: store.AssignActive, Principal: store.GroupPrincipal("finance")},
		{ID: "ra-other-group-eligible", Role: "vault", Kind: store.AssignEligible, Principal: store.GroupPrincipal("finance")},
		{ID: "ra-other-user", Role: "bob-role", Kind: store.AssignActive, Principal: store.UserPrincipal("u-bob")},
		{ID: "ra-other-user-eligible", Role: "p-bob", Kind: store.AssignEligible, Principal: store.UserPrincipal("u-bob")},
		// A principal that only looks like alice's.
		{ID: "ra-prefix", Role: "lookalike", Kind: store.AssignActive, Principal: store.UserPrincipal("u-alice2")},
	}
	// alice is eligible for every role she asks for below but root and
	// vault, so what keeps those out is their state and time alone.
	for _, role := range []string{"p-pending", "p-denied", "p-expired", "p-deactivated", "p-past", "p-at-until"} {
		assignments = append(assignments, store.RoleAssignment{ID: "ra-" + role, Role: role, Kind: store.AssignEligible, Principal: store.UserPrincipal(alice.ID)})
	}
	for _, a := range assignments {
		must[store.RoleAssignment](t)(s.CreateRoleAssignment(ctx, a))
	}
	live := store.Elevation{ID: "el-live", UserID: alice.ID, Role: "bank-admin", Scope: []string{"bank"}, Duration: time.Hour,
		State: store.ElevationActive, RequestedAt: t0.Add(-11 * time.Minute), ActivatedAt: t0.Add(-10*time.Minute + us), Until: t0.Add(50*time.Minute + us)}
	viaGroup := store.Elevation{ID: "el-via-group", UserID: alice.ID, Role: "db-admin", Duration: time.Hour,
		State: store.ElevationActive, RequestedAt: t0.Add(-6 * time.Minute), ActivatedAt: t0.Add(-5 * time.Minute), Until: t0.Add(55 * time.Minute)}
	for _, e := range []store.Elevation{
		live, viaGroup,
		{ID: "el-pending", Role: "p-pending", State: store.ElevationPending},
		{ID: "el-denied", Role: "p-denied", State: store.ElevationDenied},
		{ID: "el-expired", Role: "p-expired", State: store.ElevationExpired, ActivatedAt: t0.Add(-2 * time.Hour), Until: t0.Add(-time.Hour)},
		// Ended early: its Until is still ahead, and it must not count.
		{ID: "el-deactivated", Role: "p-deactivated", State: store.ElevationDeactivated, ActivatedAt: t0.Add(-time.Minute), Until: t0.Add(time.Hour)},
		// Active in the record but past its end: the sweeper has not run yet.
		{ID: "el-past", Role: "p-past", State: store.ElevationActive, ActivatedAt: t0.Add(-2 * time.Hour), Until: t0.Add(-time.Second)},
		{ID: "el-at-until", Role: "p-at-until", State: store.ElevationActive, ActivatedAt: t0.Add(-time.Hour), Until: t0},
		// Active, but for roles alice is not eligible for: one nobody
		// assigned, one eligible only to a group she is not in.
		{ID: "el-not-eligible", Role: "root", State: store.ElevationActive, ActivatedAt: t0, Until: t0.Add(time.Hour)},
		{ID: "el-other-group", Role: "vault", State: store.ElevationActive, ActivatedAt: t0, Until: t0.Add(time.Hour)},
		{ID: "el-bob", UserID: "u-bob", Role: "p-bob", State: store.ElevationActive, ActivatedAt: t0, Until: t0.Add(time.Hour)},
	} {
		if e.UserID == "" {
			e.UserID = alice.ID
		}
		e.Duration, e.RequestedAt = time.Hour, cmp.Or(e.RequestedAt, t0.Add(-3*time.Hour))
		must[store.Elevation](t)(s.CreateElevation(ctx, e))
	}
	lookups := []struct {
		name string
		get  func() (store.User, error)
	}{
		{"GetUser", func() (store.User, error) { return s.GetUser(ctx, alice.ID) }},
		{"GetUserByName", func() (store.User, error) { return s.GetUserByName(ctx, "ALICE") }},
	}
	check := func(t *testing.T, want ...store.Grant) {
		t.Helper()
		for _, l := range lookups {
			u := must[store.User](t)(l.get())
			if diff := grantsDiff(u.Grants, want); diff != "" {
				t.Fatalf("%s(alice) grants at %s: %s", l.name, c.now().Sub(t0), diff)
			}
			if !slices.Equal(u.Roles, []string{"viewer"}) {
				t.Fatalf("%s(alice) roles = %v; grants must not be folded into the stored roles", l.name, u.Roles)
			}
		}
	}
	auditor, operator := store.Grant{Role: "auditor", Scope: []string{"bank", "logs"}}, store.Grant{Role: "operator"}
	liveGrant := store.Grant{Role: "bank-admin", Scope: []string{"bank"}, Since: live.ActivatedAt, Until: live.Until, Elevation: live.ID}
	viaGroupGrant := store.Grant{Role: "db-admin", Since: viaGroup.ActivatedAt, Until: viaGroup.Until, Elevation: viaGroup.ID}

	t.Run("ok/now", func(t *testing.T) { check(t, auditor, operator, liveGrant, viaGroupGrant) })
	t.Run("ok/roles-at-now", func(t *testing.T) {
		u := must[store.User](t)(s.GetUser(ctx, alice.ID))
		if got, want := slices.Sorted(slices.Values(u.RolesAt(c.now(), "bank"))), []string{"auditor", "bank-admin", "db-admin", "operator", "viewer"}; !slices.Equal(got, want) {
			t.Fatalf("RolesAt(bank) = %v, want %v", got, want)
		}
		if got, want := slices.Sorted(slices.Values(u.RolesAt(c.now(), "wiki"))), []string{"db-admin", "operator", "viewer"}; !slices.Equal(got, want) {
			t.Fatalf("RolesAt(wiki) = %v, want %v", got, want)
		}
		if end := u.GrantsEndAt(c.now(), "bank"); !end.Equal(live.Until) {
			t.Fatalf("GrantsEndAt(bank) = %s, want %s", end, live.Until)
		}
	})
	// The store's clock, not the real one, ends an elevation: at its
	// Until it is gone, though the real clock is an hour short of it.
	t.Run("ok/at-until-on-the-store-clock", func(t *testing.T) {
		c.set(live.Until)
		check(t, auditor, operator, viaGroupGrant)
	})
	// And a store clock behind the real one still carries an elevation
	// that the real clock has seen end.
	t.Run("ok/store-clock-behind", func(t *testing.T) {
		c.set(t0.Add(-90 * time.Minute))
		past := store.Grant{Role: "p-past", Since: t0.Add(-2 * time.Hour), Until: t0.Add(-time.Second), Elevation: "el-past"}
		atUntil := store.Grant{Role: "p-at-until", Since: t0.Add(-time.Hour), Until: t0, Elevation: "el-at-until"}
		check(t, auditor, operator, liveGrant, viaGroupGrant, past, atUntil)
	})
	t.Run("ok/other-user", func(t *testing.T) {
		c.set(t0)
		bob := must[store.User](t)(s.GetUser(ctx, "u-bob"))
		want := []store.Grant{{Role: "bob-role"}, {Role: "p-bob", Since: t0, Until: t0.Add(time.Hour), Elevation: "el-bob"}, {Role: "treasurer"}}
		if diff := grantsDiff(bob.Grants, want); diff != "" {
			t.Fatalf("GetUser(bob) grants: %s", diff)
		}
	})
	t.Run("ok/no-grants", func(t *testing.T) {
		carol := must[store.User](t)(s.CreateUser(ctx, store.User{ID: "u-carol", Username: "carol", Groups: []string{"nobody"}}))
		if got := must[store.User](t)(s.GetUser(ctx, carol.ID)); len(got.Grants) != 0 {
			t.Fatalf("GetUser(carol) grants = %+v, want none", got.Grants)
		}
	})
	// Grants follow the records at the next lookup: a deleted active
	// assignment, an elevation deactivated, and an elevation whose
	// holder is no longer eligible (left the eligible group; eligible
	// assignment deleted) though its record still says active.
	t.Run("ok/after-changes", func(t *testing.T) {
		c.set(t0)
		if err := s.DeleteRoleAssignment(ctx, "ra-group-active"); err != nil {
			t.Fatal(err)
		}
		check(t, auditor, liveGrant, viaGroupGrant)
		must[store.User](t)(s.UpdateUser(ctx, alice.ID, func(u store.User) (store.User, error) {
			u.Groups = []string{"ops"}
			return u, nil
		}))
		check(t, auditor, liveGrant)
		if err := s.DeleteRoleAssignment(ctx, "ra-user-eligible"); err != nil {
			t.Fatal(err)
		}
		check(t, auditor)
		// Eligible again: the elevation, still active, counts again until
		// it is deactivated.
		must[store.RoleAssignment](t)(s.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra-again", Role: "bank-admin", Kind: store.AssignEligible, Principal: store.UserPrincipal(alice.ID)}))
		check(t, auditor, liveGrant)
		must[store.Elevation](t)(s.UpdateElevation(ctx, live.ID, func(e store.Elevation) (store.Elevation, error) {
			e.State, e.EndedAt, e.EndedBy = store.ElevationDeactivated, c.now(), "u-admin"
			return e, nil
		}))
		check(t, auditor)
	})
}

// grantsDiff compares grants in any order; empty means equal.
func grantsDiff(got, want []store.Grant) string {
	key := func(g store.Grant) string { return g.Role + "|" + g.Elevation }
	byKey := func(a, b store.Grant) int { return cmp.Compare(key(a), key(b)) }
	got, want = slices.SortedFunc(slices.Values(got), byKey), slices.SortedFunc(slices.Values(want), byKey)
	same := slices.EqualFunc(got, want, func(a, b store.Grant) bool {
		return a.Role == b.Role && slices.Equal(a.Scope, b.Scope) && a.Elevation == b.Elevation &&
			a.Since.Equal(b.Since) && a.Until.Equal(b.Until) && a.Since.IsZero() == b.Since.IsZero() && a.Until.IsZero() == b.Until.IsZero()
	})
	if same {
		return ""
	}
	return fmt.Sprintf("got %+v, want %+v", got, want)
}

// testAssignmentsFollowDeletes: deleting a group, a role or a user takes
// the assignments that name it along, so a group or role made later
// under the same name starts with nothing (it does not hand the old
// holders' roles to new members, nor the old role back to its holders).
func testAssignmentsFollowDeletes(t *testing.T, s store.Store) {
	ctx := context.Background()
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "ops"}))
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "staff"}))
	must[store.Role](t)(s.CreateRole(ctx, store.Role{Name: "bank-admin"}))
	must[store.Role](t)(s.CreateRole(ctx, store.Role{Name: "auditor"}))
	erin := must[store.User](t)(s.CreateUser(ctx, store.User{ID: "u-erin", Username: "erin"}))
	for _, a := range []store.RoleAssignment{
		{ID: "ra-ops-admin", Role: "bank-admin", Kind: store.AssignActive, Principal: store.GroupPrincipal("ops")},
		{ID: "ra-ops-auditor", Role: "auditor", Kind: store.AssignEligible, Principal: store.GroupPrincipal("ops")},
		{ID: "ra-staff-admin", Role: "bank-admin", Kind: store.AssignEligible, Principal: store.GroupPrincipal("staff")},
		{ID: "ra-staff-auditor", Role: "auditor", Kind: store.AssignActive, Principal: store.GroupPrincipal("staff")},
		{ID: "ra-erin-auditor", Role: "auditor", Kind: store.AssignActive, Principal: store.UserPrincipal(erin.ID)},
	} {
		must[store.RoleAssignment](t)(s.CreateRoleAssignment(ctx, a))
	}
	left := func() []string {
		t.Helper()
		var out []string
		for _, a := range must[[]store.RoleAssignment](t)(s.ListRoleAssignments(ctx, "")) {
			out = append(out, a.ID)
		}
		return slices.Sorted(slices.Values(out))
	}

	if err := s.DeleteGroup(ctx, "OPS"); err != nil {
		t.Fatal(err)
	}
	if got, want := left(), []string{"ra-erin-auditor", "ra-staff-admin", "ra-staff-auditor"}; !slices.Equal(got, want) {
		t.Fatalf("after deleting group ops: %v, want %v", got, want)
	}
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "ops"}))
	newcomer := must[store.User](t)(s.CreateUser(ctx, store.User{ID: "u-frank", Username: "frank", Groups: []string{"ops"}}))
	if got := must[store.User](t)(s.GetUser(ctx, newcomer.ID)); len(got.Grants) != 0 {
		t.Fatalf("a member of a new group ops holds the old group's roles: %+v", got.Grants)
	}

	// gina holds bank-admin through an elevation she was eligible for by
	// group staff: deleting the role ends it at her next lookup.
	gina := must[store.User](t)(s.CreateUser(ctx, store.User{ID: "u-gina", Username: "gina", Groups: []string{"staff"}}))
	now := time.Now()
	must[store.Elevation](t)(s.CreateElevation(ctx, store.Elevation{ID: "el-gina", UserID: gina.ID, Role: "bank-admin", Duration: time.Hour,
		State: store.ElevationActive, RequestedAt: now, ProvenAt: now, ActivatedAt: now, Until: now.Add(time.Hour)}))
	if got := must[store.User](t)(s.GetUser(ctx, gina.ID)); len(got.Grants) != 2 {
		t.Fatalf("gina's grants = %+v, want auditor and the bank-admin elevation", got.Grants)
	}
	if err := s.DeleteRole(ctx, "Bank-Admin"); err != nil {
		t.Fatal(err)
	}
	if got := must[store.User](t)(s.GetUser(ctx, gina.ID)); len(got.Grants) != 1 || got.Grants[0].Role != "auditor" {
		t.Fatalf("after deleting role bank-admin gina's grants = %+v, want auditor only", got.Grants)
	}
	if got, want := left(), []string{"ra-erin-auditor", "ra-staff-auditor"}; !slices.Equal(got, want) {
		t.Fatalf("after deleting role bank-admin: %v, want %v", got, want)
	}

	if err := s.DeleteUser(ctx, erin.ID); err != nil {
		t.Fatal(err)
	}
	if got, want := left(), []string{"ra-staff-auditor"}; !slices.Equal(got, want) {
		t.Fatalf("after deleting user erin: %v, want %v", got, want)
	}
	// A delete that finds nothing takes nothing along.
	wantErr(t, s.DeleteGroup(ctx, "ops-missing"), store.ErrNotFound)
	wantErr(t, s.DeleteRole(ctx, "auditor-missing"), store.ErrNotFound)
	if got, want := left(), []string{"ra-staff-auditor"}; !slices.Equal(got, want) {
		t.Fatalf("after deletes of nothing: %v, want %v", got, want)
	}
}
