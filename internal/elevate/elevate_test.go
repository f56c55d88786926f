package elevate

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// rig is a service over a SQLite store with a clock the test moves.
type rig struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	svc    *Service
	now    time.Time
	mu     sync.Mutex
	events []Event
	alice  store.User // eligible for ops-admin (approval) and db-read (none)
	carol  store.User // approver (group approvers)
	dave   store.User // approver too
	eve    store.User // not an approver, not eligible
}

func newRig(t *testing.T) *rig {
	t.Helper()
	rg := &rig{t: t, ctx: context.Background(), now: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)}
	clock := func() time.Time { rg.mu.Lock(); defer rg.mu.Unlock(); return rg.now }
	st, err := sqlite.Open(rg.ctx, t.TempDir()+"/e.db", sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rg.st = st
	for _, r := range []string{"ops-admin", "db-read"} {
		if _, err := st.CreateRole(rg.ctx, store.Role{Name: r}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateGroup(rg.ctx, store.Group{Name: "approvers"}); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, groups ...string) store.User {
		u, err := st.CreateUser(rg.ctx, store.User{ID: "id-" + name, Username: name, Groups: groups})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	rg.alice, rg.carol, rg.dave, rg.eve = mk("alice"), mk("carol", "approvers"), mk("dave", "approvers"), mk("eve")
	for _, a := range []store.RoleAssignment{
		{ID: "a1", Role: "ops-admin", Kind: store.AssignEligible, Principal: store.UserPrincipal(rg.alice.ID), Scope: []string{"ops"}},
		{ID: "a2", Role: "db-read", Kind: store.AssignEligible, Principal: store.UserPrincipal(rg.alice.ID)},
	} {
		if _, err := st.CreateRoleAssignment(rg.ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	checker, err := NewChecker(func() *policy.Snapshot {
		snap, probs := policy.Compile(nil)
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		return snap
	})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]Role{
		"ops-admin": {Name: "ops-admin", MaxDuration: time.Hour, NeedJustification: true, Approvers: &Approvers{Group: "approvers", Count: 2, Expire: 2 * time.Hour}},
		"db-read":   {Name: "db-read", MaxDuration: 30 * time.Minute},
	}
	rg.svc = &Service{
		Store: st, Proofs: checker, MaxPending: 5, Now: clock,
		Roles: func(name string) Role { return roles[name] },
		Observers: []Observer{func(_ context.Context, e Event) {
			rg.mu.Lock()
			rg.events = append(rg.events, e)
			rg.mu.Unlock()
		}},
	}
	return rg
}

func (rg *rig) advance(d time.Duration) { rg.mu.Lock(); rg.now = rg.now.Add(d); rg.mu.Unlock() }
func (rg *rig) clock() time.Time        { rg.mu.Lock(); defer rg.mu.Unlock(); return rg.now }

// proofs is alice's access request with a password and, when mfaAgo is
// not negative, a TOTP proof that long ago.
func (rg *rig) proofs(u store.User, mfaAgo time.Duration) *policy.Request {
	now := rg.clock()
	evs := []store.AuthEvent{{Method: "password", Time: now.Add(-5 * time.Minute), AMR: []string{"pwd"}}}
	if mfaAgo >= 0 {
		evs = append(evs, store.AuthEvent{Method: "totp", Time: now.Add(-mfaAgo), AMR: []string{"otp"}})
	}
	b := &access.Builder{}
	return b.Request(httptest.NewRequest("POST", "/account/roles", nil), u, &store.Session{Events: evs}, App, now)
}

func (rg *rig) user(u store.User) store.User {
	got, err := rg.st.GetUser(rg.ctx, u.ID)
	if err != nil {
		rg.t.Fatal(err)
	}
	return got
}

// active asks for role, proves it with a fresh TOTP, and has both
// approvers approve when the role needs them.
func (rg *rig) active(role string, d time.Duration) store.Elevation {
	rg.t.Helper()
	e, err := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: role, Duration: d, Justification: "incident 42"})
	if err != nil {
		rg.t.Fatal(err)
	}
	e, v, err := rg.svc.Prove(rg.ctx, e.ID, rg.alice, rg.proofs(rg.alice, time.Minute), nil)
	if err != nil || v.Outcome != policy.OutcomeAllow {
		rg.t.Fatalf("prove: %v %v", v.Outcome, err)
	}
	if e.State == store.ElevationPending {
		for _, approver := range []store.User{rg.carol, rg.dave} {
			if e, err = rg.svc.Decide(rg.ctx, e.ID, approver, true, "ok"); err != nil {
				rg.t.Fatal(err)
			}
		}
	}
	if e.State != store.ElevationActive {
		rg.t.Fatalf("state %s, want active", e.State)
	}
	return e
}

func TestRequestRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		who  func(*rig) store.User
		ask  Ask
		want error
		says string
	}{
		{"fail/not-eligible", func(rg *rig) store.User { return rg.eve }, Ask{Role: "ops-admin", Justification: "x"}, ErrNotEligible, "stepgate role eligible"},
		{"fail/unknown-role", func(rg *rig) store.User { return rg.alice }, Ask{Role: "root"}, ErrNotEligible, "root"},
		{"fail/over-max-duration", func(rg *rig) store.User { return rg.alice }, Ask{Role: "ops-admin", Duration: 2 * time.Hour, Justification: "x"}, ErrInvalid, "1h0m0s or less"},
		{"fail/too-short", func(rg *rig) store.User { return rg.alice }, Ask{Role: "db-read", Duration: time.Second}, ErrInvalid, "shortest"},
		{"fail/no-justification", func(rg *rig) store.User { return rg.alice }, Ask{Role: "ops-admin", Justification: "  "}, ErrInvalid, "justification"},
		{"fail/control-characters", func(rg *rig) store.User { return rg.alice }, Ask{Role: "ops-admin", Justification: "a\nb"}, ErrInvalid, "one line"},
		{"fail/long-justification", func(rg *rig) store.User { return rg.alice }, Ask{Role: "ops-admin", Justification: strings.Repeat("x", MaxJustification+1)}, ErrInvalid, "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rg := newRig(t)
			_, err := rg.svc.Request(rg.ctx, tc.who(rg), tc.ask)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
			}
			if all, _ := rg.st.ListElevations(rg.ctx, store.ElevationQuery{}); len(all) != 0 {
				t.Fatalf("a refused request stored %d records", len(all))
			}
		})
	}
}

func TestRequestQuotaAndDuplicates(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	rg.svc.MaxPending = 1
	if _, err := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: "ops-admin", Justification: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: "ops-admin", Justification: "y"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("fail/second-request-same-role: %v", err)
	}
	if _, err := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: "db-read"}); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("fail/over-quota: %v", err)
	}
}

func TestActivationNeedsTheStepUp(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	e, err := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: "db-read"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ago  time.Duration
	}{{"fail/password-only", -1}, {"fail/stale-mfa", 11 * time.Minute}} {
		got, v, err := rg.svc.Prove(rg.ctx, e.ID, rg.alice, rg.proofs(rg.alice, tc.ago), nil)
		if err != nil || v.Outcome != policy.OutcomeChallenge || got.State != store.ElevationPending || !got.ProvenAt.IsZero() {
			t.Fatalf("%s: outcome %s, state %s, proven %v, %v", tc.name, v.Outcome, got.State, got.ProvenAt, err)
		}
	}
	if u := rg.user(rg.alice); len(u.RolesAt(rg.clock(), "any")) != 0 {
		t.Fatalf("fail/role-without-step-up: %v", u.RolesAt(rg.clock(), "any"))
	}
	// Someone else's proof does not prove alice's request.
	if _, _, err := rg.svc.Prove(rg.ctx, e.ID, rg.eve, rg.proofs(rg.eve, time.Minute), nil); !errors.Is(err, ErrNotYours) {
		t.Fatalf("fail/foreign-proof: %v", err)
	}
	got, v, err := rg.svc.Prove(rg.ctx, e.ID, rg.alice, rg.proofs(rg.alice, 2*time.Minute), nil)
	if err != nil || v.Outcome != policy.OutcomeAllow || got.State != store.ElevationActive || !got.Until.Equal(rg.clock().Add(30*time.Minute)) {
		t.Fatalf("ok/fresh-totp: %s %s until %v, %v", v.Outcome, got.State, got.Until, err)
	}
	if roles := rg.user(rg.alice).RolesAt(rg.clock(), "any"); len(roles) != 1 || roles[0] != "db-read" {
		t.Fatalf("ok/role-counts: %v", roles)
	}
}

func TestApprovals(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	e, err := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: "ops-admin", Duration: 20 * time.Minute, Justification: "incident 42"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rg.svc.Decide(rg.ctx, e.ID, rg.carol, true, ""); !errors.Is(err, ErrUnproven) {
		t.Fatalf("fail/approve-unproven: %v", err)
	}
	if _, _, err := rg.svc.Prove(rg.ctx, e.ID, rg.alice, rg.proofs(rg.alice, time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	aliceApprover := rg.alice
	aliceApprover.Groups = []string{"approvers"}
	for _, tc := range []struct {
		name string
		who  store.User
		want error
	}{{"fail/self-approval", aliceApprover, ErrSelfApproval}, {"fail/not-approver", rg.eve, ErrNotApprover}} {
		if _, err := rg.svc.Decide(rg.ctx, e.ID, tc.who, true, ""); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	got, err := rg.svc.Decide(rg.ctx, e.ID, rg.carol, true, "fine")
	if err != nil || got.State != store.ElevationPending {
		t.Fatalf("ok/first-of-two: %s %v", got.State, err)
	}
	if _, err := rg.svc.Decide(rg.ctx, e.ID, rg.carol, true, "again"); !errors.Is(err, ErrAlreadyAnswered) {
		t.Fatalf("fail/replayed-approval: %v", err)
	}
	rg.advance(5 * time.Minute)
	got, err = rg.svc.Decide(rg.ctx, e.ID, rg.dave, true, "")
	if err != nil || got.State != store.ElevationActive || !got.Until.Equal(rg.clock().Add(20*time.Minute)) || got.Duration != 20*time.Minute {
		t.Fatalf("ok/second-approval: %s until %v (%s), %v", got.State, got.Until, got.Duration, err)
	}
	if _, err := rg.svc.Decide(rg.ctx, e.ID, rg.dave, false, "late"); !errors.Is(err, ErrDecided) {
		t.Fatalf("fail/decide-after-activation: %v", err)
	}
	// The scope of the assignment goes with the role.
	u := rg.user(rg.alice)
	if roles := u.RolesAt(rg.clock(), "ops"); len(roles) != 1 {
		t.Fatalf("ok/in-scope: %v", roles)
	}
	if roles := u.RolesAt(rg.clock(), "payroll"); len(roles) != 0 {
		t.Fatalf("fail/out-of-scope: %v", roles)
	}
}

func TestRacingDecisionsHaveOneOutcome(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	roles := map[string]Role{"ops-admin": {Name: "ops-admin", MaxDuration: time.Hour, Approvers: &Approvers{Group: "approvers", Count: 1, Expire: time.Hour}}}
	rg.svc.Roles = func(n string) Role { return roles[n] }
	for i := range 10 {
		e, err := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: "ops-admin"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := rg.svc.Prove(rg.ctx, e.ID, rg.alice, rg.proofs(rg.alice, time.Minute), nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, approve := range []bool{true, false} {
			wg.Go(func() { _, errs[j] = rg.svc.Decide(rg.ctx, e.ID, []store.User{rg.carol, rg.dave}[j], approve, "") })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: approve %v, deny %v: want exactly one to count", i, errs[0], errs[1])
		}
		got, _ := rg.st.GetElevation(rg.ctx, e.ID)
		if len(got.Decisions) != 1 || (got.State == store.ElevationActive) != (errs[0] == nil) {
			t.Fatalf("round %d: state %s with %d decisions", i, got.State, len(got.Decisions))
		}
		if got.State == store.ElevationActive {
			if _, err := rg.svc.Deactivate(rg.ctx, e.ID, rg.alice, false, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestApprovalAfterDeadlineLapses(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	e, _ := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: "ops-admin", Justification: "x"})
	if _, _, err := rg.svc.Prove(rg.ctx, e.ID, rg.alice, rg.proofs(rg.alice, time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	rg.advance(2 * time.Hour)
	if _, err := rg.svc.Decide(rg.ctx, e.ID, rg.carol, true, ""); !errors.Is(err, ErrDecided) {
		t.Fatalf("fail/approval-after-expiry: %v", err)
	}
	if got, _ := rg.st.GetElevation(rg.ctx, e.ID); got.State != store.ElevationExpired || got.EndReason != ReasonNoDecision {
		t.Fatalf("lapsed request is %s (%s)", got.State, got.EndReason)
	}
}

func TestEndings(t *testing.T) {
	t.Parallel()
	t.Run("ok/expires-at-until", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		e := rg.active("db-read", 10*time.Minute)
		u := rg.user(rg.alice)
		rg.advance(10*time.Minute - time.Nanosecond)
		if len(u.RolesAt(rg.clock(), "x")) != 1 {
			t.Fatal("role gone before its end")
		}
		rg.advance(time.Nanosecond)
		if len(u.RolesAt(rg.clock(), "x")) != 0 {
			t.Fatal("fail/expired-role-counts: a user read before the end still grants it at the end")
		}
		if n, err := rg.svc.Sweep(rg.ctx); err != nil || n != 1 {
			t.Fatalf("sweep ended %d, %v", n, err)
		}
		if got, _ := rg.st.GetElevation(rg.ctx, e.ID); got.State != store.ElevationExpired {
			t.Fatalf("state %s", got.State)
		}
	})
	t.Run("fail/clock-set-back", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		rg.active("db-read", 10*time.Minute)
		u := rg.user(rg.alice)
		rg.advance(-time.Hour)
		if len(u.RolesAt(rg.clock(), "x")) != 0 {
			t.Fatal("a clock set back before the activation still grants the role")
		}
		// A node whose clock ran ahead ends it for everyone: once ended,
		// a clock back in range does not bring it back.
		rg.advance(2 * time.Hour)
		if _, err := rg.svc.Sweep(rg.ctx); err != nil {
			t.Fatal(err)
		}
		rg.advance(-55 * time.Minute)
		if u := rg.user(rg.alice); len(u.RolesAt(rg.clock(), "x")) != 0 {
			t.Fatal("an ended elevation counts again after the clock came back")
		}
	})
	t.Run("ok/deactivate", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		e := rg.active("db-read", 10*time.Minute)
		if _, err := rg.svc.Deactivate(rg.ctx, e.ID, rg.eve, false, ""); !errors.Is(err, ErrNotYours) {
			t.Fatalf("fail/foreign-deactivate: %v", err)
		}
		if _, err := rg.svc.Deactivate(rg.ctx, e.ID, rg.alice, false, ""); err != nil {
			t.Fatal(err)
		}
		if u := rg.user(rg.alice); len(u.RolesAt(rg.clock(), "x")) != 0 {
			t.Fatal("a deactivated role still counts")
		}
	})
	t.Run("ok/no-longer-eligible", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		e := rg.active("db-read", 10*time.Minute)
		if err := rg.st.DeleteRoleAssignment(rg.ctx, "a2"); err != nil {
			t.Fatal(err)
		}
		if _, err := rg.svc.Sweep(rg.ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := rg.st.GetElevation(rg.ctx, e.ID); got.State != store.ElevationDeactivated || got.EndReason != ReasonNotEligible {
			t.Fatalf("state %s (%s)", got.State, got.EndReason)
		}
	})
	t.Run("ok/role-deleted", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		e := rg.active("db-read", 10*time.Minute)
		if err := rg.st.DeleteRole(rg.ctx, "db-read"); err != nil {
			t.Fatal(err)
		}
		if _, err := rg.svc.Sweep(rg.ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := rg.st.GetElevation(rg.ctx, e.ID); got.State != store.ElevationDeactivated || got.EndReason != ReasonRoleDeleted {
			t.Fatalf("state %s (%s)", got.State, got.EndReason)
		}
	})
}

func TestEveryTransitionAnnouncedOnce(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	e := rg.active("ops-admin", 10*time.Minute)
	rg.advance(10 * time.Minute)
	for range 3 {
		if _, err := rg.svc.Sweep(rg.ctx); err != nil {
			t.Fatal(err)
		}
	}
	var kinds []string
	for _, ev := range rg.events {
		if ev.Elevation.ID == e.ID {
			kinds = append(kinds, ev.Kind)
		}
	}
	want := []string{Requested, Proven, Approved, Approved, Activated, Expired}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", kinds, want)
	}
}

// TestSweepReachesEveryOpenElevation: a sweep that read only its first
// page would leave the oldest elevations of a busy deployment running.
func TestSweepReachesEveryOpenElevation(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	start := rg.clock()
	for i := range sweepPage + 3 {
		_, err := rg.st.CreateElevation(rg.ctx, store.Elevation{
			ID: newID(), UserID: rg.alice.ID, Role: "db-read", Duration: time.Minute, State: store.ElevationActive,
			RequestedAt: start.Add(time.Duration(i) * time.Millisecond), ActivatedAt: start, Until: start.Add(time.Minute),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rg.advance(time.Minute)
	if n, err := rg.svc.Sweep(rg.ctx); err != nil || n != sweepPage+3 {
		t.Fatalf("sweep ended %d of %d, %v", n, sweepPage+3, err)
	}
	if left, _ := rg.st.ListElevations(rg.ctx, store.ElevationQuery{States: []string{store.ElevationActive}}); len(left) != 0 {
		t.Fatalf("%d elevations left active", len(left))
	}
}

// TestApprovalOfNoLongerEligibleRequester: between the request and the
// approval the requester lost the eligibility (or the account): the
// approval must not hand them the role.
func TestApprovalOfNoLongerEligibleRequester(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	e, err := rg.svc.Request(rg.ctx, rg.alice, Ask{Role: "ops-admin", Justification: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rg.svc.Prove(rg.ctx, e.ID, rg.alice, rg.proofs(rg.alice, time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if err := rg.st.DeleteRoleAssignment(rg.ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.svc.Decide(rg.ctx, e.ID, rg.carol, true, ""); !errors.Is(err, ErrNotEligible) {
		t.Fatalf("fail/approve-ineligible: %v", err)
	}
	if got, _ := rg.st.GetElevation(rg.ctx, e.ID); len(got.Decisions) != 0 {
		t.Fatalf("the refused approval was recorded: %+v", got.Decisions)
	}
}
