package elevate

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/stepgate/stepgate/internal/store"
)

// Eligibility is one role a user may activate.
type Eligibility struct {
	Role  Role
	Scope []string // where the activated role counts; empty: everywhere
	// Via is the assignment's holder: "user:<id>" or "group:<name>".
	Via string
}

// Eligible returns the roles u may activate, ordered by role. A role
// that no longer exists, or a disabled user, gives none.
func (s *Service) Eligible(ctx context.Context, u store.User) ([]Eligibility, error) {
	if u.Disabled {
		return nil, nil
	}
	all, err := s.Store.ListRoleAssignments(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	var out []Eligibility
	for _, a := range all {
		if a.Kind != store.AssignEligible || !holds(u, a.Principal) {
			continue
		}
		if i := slices.IndexFunc(out, func(e Eligibility) bool { return e.Role.Name == a.Role }); i >= 0 {
			// Two assignments of one role: the wider scope wins.
			out[i].Scope = widerScope(out[i].Scope, a.Scope)
			continue
		}
		if _, err := s.Store.GetRole(ctx, a.Role); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("role %s: %w", a.Role, err)
		}
		out = append(out, Eligibility{Role: s.Roles(a.Role), Scope: a.Scope, Via: a.Principal})
	}
	return out, nil
}

// eligibleFor returns u's eligibility for role; ok is false when u is not
// eligible.
func (s *Service) eligibleFor(ctx context.Context, u store.User, role string) (Eligibility, bool, error) {
	all, err := s.Eligible(ctx, u)
	if err != nil {
		return Eligibility{}, false, err
	}
	for _, e := range all {
		if e.Role.Name == role {
			return e, true, nil
		}
	}
	return Eligibility{}, false, nil
}

// holds reports whether principal names u or one of u's groups.
func holds(u store.User, principal string) bool {
	if principal == store.UserPrincipal(u.ID) {
		return true
	}
	return slices.ContainsFunc(u.Groups, func(g string) bool { return principal == store.GroupPrincipal(g) })
}

func widerScope(a, b []string) []string {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	out := slices.Clone(a)
	for _, app := range b {
		if !slices.Contains(out, app) {
			out = append(out, app)
		}
	}
	return out
}
