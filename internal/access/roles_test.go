package access_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// elevated is a user with a standing role, an active elevation to
// bank-admin scoped to the bank app, and an assignment of auditor that
// counts everywhere.
func elevated() store.User {
	return store.User{ID: "u1", Username: "alice", Roles: []string{"staff"}, Grants: []store.Grant{
		{Role: "bank-admin", Scope: []string{"bank"}, Since: now.Add(-10 * time.Minute), Until: now.Add(50 * time.Minute), Elevation: "elv_1"},
		{Role: "auditor"},
	}}
}

// TestRequestRolesForApp: the subject's roles are those the user holds
// for the request's app at its time. An elevation counts in its scope
// and while it lasts; outside either it does not, and a clock set back
// before it began does not bring it back.
func TestRequestRolesForApp(t *testing.T) {
	t.Parallel()
	b := &access.Builder{}
	r := httptest.NewRequest("GET", "/", nil)
	tests := []struct {
		name string
		app  string
		at   time.Time
		want []string
	}{
		{name: "ok/elevated-in-scope", app: "bank", at: now, want: []string{"staff", "bank-admin", "auditor"}},
		{name: "fail/elevated-other-app", app: "payroll", at: now, want: []string{"staff", "auditor"}},
		{name: "fail/elevated-no-app", app: "", at: now, want: []string{"staff", "auditor"}},
		{name: "fail/at-until", app: "bank", at: now.Add(50 * time.Minute), want: []string{"staff", "auditor"}},
		{name: "fail/clock-set-back", app: "bank", at: now.Add(-11 * time.Minute), want: []string{"staff", "auditor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := b.Request(r, elevated(), nil, tt.app, tt.at)
			if !slices.Equal(req.Subject.Roles, tt.want) || req.App != tt.app {
				t.Errorf("roles %q app %q, want %q %q", req.Subject.Roles, req.App, tt.want, tt.app)
			}
		})
	}
}

// TestRequestRolesShareStanding: a user whose grants add nothing gets
// the standing roles themselves, so the hot path allocates nothing for
// them; a user whose grants add a role gets a copy, never a write into
// the cached user's slice.
func TestRequestRolesShareStanding(t *testing.T) {
	t.Parallel()
	b := &access.Builder{}
	r := httptest.NewRequest("GET", "/", nil)
	plain := store.User{ID: "u2", Roles: make([]string, 1, 4)}
	plain.Roles[0] = "staff"
	if got := b.Request(r, plain, nil, "bank", now).Subject.Roles; &got[0] != &plain.Roles[0] {
		t.Error("roles were copied for a user without grants")
	}
	u := elevated()
	u.Roles = make([]string, 1, 4)
	u.Roles[0] = "staff"
	_ = b.Request(r, u, nil, "bank", now)
	if spare := u.Roles[:2]; spare[1] != "" {
		t.Errorf("the request wrote %q into the user's role slice", spare[1])
	}
}

// TestWhatIfRoles: a What-If evaluates the roles active at its time for
// its app, and shows active, elevated and eligible roles apart.
func TestWhatIfRoles(t *testing.T) {
	t.Parallel()
	users := fakeUsers{"alice": elevated()}
	b := &access.Builder{Eligible: func(context.Context, store.User) ([]string, error) {
		return []string{"bank-admin", "ops"}, nil
	}}
	req, roles, err := b.WhatIf(context.Background(), users, &policy.WhatIf{User: "alice", App: "bank"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"staff", "bank-admin", "auditor"}; !slices.Equal(req.Subject.Roles, want) || !slices.Equal(roles.Active, want) {
		t.Errorf("evaluated roles %q, shown active %q; want %q", req.Subject.Roles, roles.Active, want)
	}
	if len(roles.Elevated) != 1 || roles.Elevated[0].Role != "bank-admin" || !roles.Elevated[0].Until.Equal(now.Add(50*time.Minute)) {
		t.Errorf("elevated %+v, want bank-admin until its end", roles.Elevated)
	}
	if !slices.Equal(roles.Eligible, []string{"ops"}) {
		t.Errorf("eligible, not active = %q, want [ops]", roles.Eligible)
	}
	req, roles, err = b.WhatIf(context.Background(), users, &policy.WhatIf{User: "alice", App: "payroll"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(req.Subject.Roles, "bank-admin") || len(roles.Elevated) != 0 || !slices.Equal(roles.Eligible, []string{"bank-admin", "ops"}) {
		t.Errorf("for another app: evaluated %q, elevated %+v, eligible %q", req.Subject.Roles, roles.Elevated, roles.Eligible)
	}
}
