package store

import (
	"slices"
	"testing"
	"time"
)

// t0 is an arbitrary instant: RolesAt and GrantsEndAt judge only the
// time they are given, never the real clock.
var t0 = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

// elevated is an elevation grant of role that began at since and ends at until.
func elevated(role string, since, until time.Time, scope ...string) Grant {
	return Grant{Role: role, Scope: scope, Since: since, Until: until, Elevation: "el-" + role}
}

func TestRolesAt(t *testing.T) {
	bankAdmin := elevated("bank-admin", t0, t0.Add(time.Hour), "bank")
	for _, tc := range []struct {
		name   string
		roles  []string
		grants []Grant
		now    time.Time
		app    string
		want   []string
	}{
		{"ok/standing-only", []string{"viewer"}, nil, t0, "bank", []string{"viewer"}},
		{"ok/no-roles-at-all", nil, nil, t0, "bank", nil},
		{"ok/assignment-everywhere", []string{"viewer"}, []Grant{{Role: "operator"}}, t0, "wiki", []string{"viewer", "operator"}},
		{"ok/assignment-in-scope", nil, []Grant{{Role: "auditor", Scope: []string{"logs", "bank"}}}, t0, "bank", []string{"auditor"}},
		{"fail/assignment-out-of-scope", []string{"viewer"}, []Grant{{Role: "auditor", Scope: []string{"logs"}}}, t0, "bank", []string{"viewer"}},
		{"fail/scoped-grant-without-app", []string{"viewer"}, []Grant{{Role: "auditor", Scope: []string{"logs"}}}, t0, "", []string{"viewer"}},
		{"ok/elevation-at-its-start", []string{"viewer"}, []Grant{bankAdmin}, t0, "bank", []string{"viewer", "bank-admin"}},
		{"ok/elevation-just-before-its-end", nil, []Grant{bankAdmin}, t0.Add(time.Hour - time.Nanosecond), "bank", []string{"bank-admin"}},
		{"fail/elevation-at-its-end", []string{"viewer"}, []Grant{bankAdmin}, t0.Add(time.Hour), "bank", []string{"viewer"}},
		{"fail/elevation-after-its-end", []string{"viewer"}, []Grant{bankAdmin}, t0.Add(2 * time.Hour), "bank", []string{"viewer"}},
		// A clock set back does not bring an elevation to life before it began.
		{"fail/elevation-before-its-start", []string{"viewer"}, []Grant{bankAdmin}, t0.Add(-time.Nanosecond), "bank", []string{"viewer"}},
		{"fail/elevation-out-of-scope", []string{"viewer"}, []Grant{bankAdmin}, t0, "wiki", []string{"viewer"}},
		{"ok/duplicates-once", []string{"viewer", "operator"}, []Grant{
			{Role: "operator"}, {Role: "auditor"}, {Role: "auditor", Scope: []string{"bank"}}, bankAdmin,
			elevated("bank-admin", t0.Add(-time.Minute), t0.Add(time.Minute)), elevated("viewer", t0, t0.Add(time.Minute)),
		}, t0, "bank", []string{"viewer", "operator", "auditor", "bank-admin"}},
		{"ok/one-of-two-elevations-ended", nil, []Grant{
			elevated("bank-admin", t0.Add(-2*time.Hour), t0.Add(-time.Hour)), elevated("bank-admin", t0.Add(-time.Minute), t0.Add(time.Minute)),
		}, t0, "bank", []string{"bank-admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &User{Roles: slices.Clone(tc.roles), Grants: tc.grants}
			if got := u.RolesAt(tc.now, tc.app); !slices.Equal(got, tc.want) {
				t.Fatalf("RolesAt(%s, %q) = %v, want %v", tc.now.Sub(t0), tc.app, got, tc.want)
			}
			if !slices.Equal(u.Roles, tc.roles) {
				t.Fatalf("RolesAt changed u.Roles to %v, want %v", u.Roles, tc.roles)
			}
		})
	}
}

// TestRolesAtSharesStandingRoles: when no grant adds a role, the gateway's
// per-request path gets u.Roles itself, without allocating.
func TestRolesAtSharesStandingRoles(t *testing.T) {
	u := &User{Roles: []string{"viewer", "operator"}, Grants: []Grant{
		{Role: "operator"},                                               // held already
		{Role: "auditor", Scope: []string{"logs"}},                       // another app
		elevated("bank-admin", t0.Add(-2*time.Hour), t0.Add(-time.Hour)), // ended
		elevated("db-admin", t0.Add(time.Hour), t0.Add(2*time.Hour)),     // not begun
	}}
	got := u.RolesAt(t0, "bank")
	if !slices.Equal(got, u.Roles) || &got[0] != &u.Roles[0] {
		t.Fatalf("RolesAt = %v (%p), want u.Roles itself (%p)", got, &got[0], &u.Roles[0])
	}
	if n := testing.AllocsPerRun(100, func() { _ = u.RolesAt(t0, "bank") }); n != 0 {
		t.Fatalf("RolesAt allocated %v times when no grant adds a role, want 0", n)
	}
}

// TestRolesAtNeverWritesIntoRoles: u.Roles with room to spare must not
// receive the granted roles (one caller's elevation leaking into the
// record, or into another caller's result for another app).
func TestRolesAtNeverWritesIntoRoles(t *testing.T) {
	backing := make([]string, 1, 8)
	backing[0] = "viewer"
	u := &User{Roles: backing, Grants: []Grant{
		{Role: "operator"},
		elevated("bank-admin", t0, t0.Add(time.Hour), "bank"),
		elevated("wiki-admin", t0, t0.Add(time.Hour), "wiki"),
	}}
	bank := u.RolesAt(t0, "bank")
	wiki := u.RolesAt(t0, "wiki")
	if want := []string{"viewer", "operator", "bank-admin"}; !slices.Equal(bank, want) {
		t.Fatalf("RolesAt(bank) = %v, want %v", bank, want)
	}
	if want := []string{"viewer", "operator", "wiki-admin"}; !slices.Equal(wiki, want) {
		t.Fatalf("RolesAt(wiki) = %v, want %v", wiki, want)
	}
	if len(u.Roles) != 1 || u.Roles[0] != "viewer" || slices.ContainsFunc(backing[:cap(backing)], func(r string) bool { return r != "" && r != "viewer" }) {
		t.Fatalf("RolesAt wrote into u.Roles' array: %q", backing[:cap(backing)])
	}
	// A caller that changes its result changes nothing else.
	bank[0], bank[1] = "root", "root"
	if u.Roles[0] != "viewer" || wiki[0] != "viewer" || wiki[1] != "operator" {
		t.Fatalf("results share an array: u.Roles = %v, RolesAt(wiki) = %v", u.Roles, wiki)
	}
	if got := u.RolesAt(t0, "bank"); !slices.Equal(got, []string{"viewer", "operator", "bank-admin"}) {
		t.Fatalf("RolesAt(bank) after a caller changed an earlier result = %v", got)
	}
}

func TestGrantsEndAt(t *testing.T) {
	soon := elevated("bank-admin", t0.Add(-time.Hour), t0.Add(10*time.Minute), "bank")
	later := elevated("auditor", t0.Add(-time.Minute), t0.Add(time.Hour))
	for _, tc := range []struct {
		name   string
		grants []Grant
		now    time.Time
		app    string
		want   time.Time
	}{
		{"ok/none", nil, t0, "bank", time.Time{}},
		{"ok/assignments-never-end", []Grant{{Role: "operator"}, {Role: "auditor", Scope: []string{"bank"}}}, t0, "bank", time.Time{}},
		{"ok/the-earliest-end", []Grant{later, {Role: "operator"}, soon}, t0, "bank", soon.Until},
		{"ok/out-of-scope-does-not-count", []Grant{later, soon}, t0, "wiki", later.Until},
		{"ok/at-the-earliest-end-the-next", []Grant{soon, later}, soon.Until, "bank", later.Until},
		{"ok/all-ended", []Grant{soon, later}, later.Until, "bank", time.Time{}},
		// Before an elevation began (a clock set back) it does not count,
		// so it does not bound anything either.
		{"ok/not-begun", []Grant{elevated("db-admin", t0.Add(time.Minute), t0.Add(2*time.Minute)), later}, t0, "bank", later.Until},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &User{Grants: tc.grants}
			if got := u.GrantsEndAt(tc.now, tc.app); !got.Equal(tc.want) || got.IsZero() != tc.want.IsZero() {
				t.Fatalf("GrantsEndAt(%s, %q) = %s, want %s", tc.now.Sub(t0), tc.app, got, tc.want)
			}
		})
	}
}

func TestSameTerms(t *testing.T) {
	base := Elevation{ID: "el-1", UserID: "u-alice", Role: "bank-admin", Scope: []string{"bank"}, Duration: time.Hour,
		Justification: "INC-7", Ticket: "T-1", State: ElevationPending, RequestedAt: t0}
	for _, tc := range []struct {
		name   string
		change func(*Elevation)
		same   bool
	}{
		{"ok/decided", func(e *Elevation) {
			e.State, e.ActivatedAt, e.Until = ElevationActive, t0, t0.Add(time.Hour)
			e.Decisions = []ElevationDecision{{By: "u-bob", At: t0, Approve: true}}
		}, true},
		{"fail/role-case", func(e *Elevation) { e.Role = "Bank-Admin" }, false},
		{"ok/request-time-elsewhere", func(e *Elevation) { e.RequestedAt = t0.In(time.FixedZone("x", 3600)) }, true},
		{"fail/duration", func(e *Elevation) { e.Duration += time.Nanosecond }, false},
		{"fail/scope-widened", func(e *Elevation) { e.Scope = []string{"bank", "admin"} }, false},
		{"fail/scope-everywhere", func(e *Elevation) { e.Scope = nil }, false},
		{"fail/role", func(e *Elevation) { e.Role = "root" }, false},
		{"fail/requester", func(e *Elevation) { e.UserID = "u-mallory" }, false},
		{"fail/justification", func(e *Elevation) { e.Justification = "" }, false},
		{"fail/ticket", func(e *Elevation) { e.Ticket = "T-2" }, false},
		{"fail/request-time", func(e *Elevation) { e.RequestedAt = t0.Add(time.Microsecond) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := base
			next.Scope = slices.Clone(base.Scope)
			tc.change(&next)
			if got := base.SameTerms(next); got != tc.same {
				t.Fatalf("SameTerms = %v, want %v", got, tc.same)
			}
		})
	}
}
