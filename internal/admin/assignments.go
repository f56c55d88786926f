package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// AssignmentInfo is a role assignment as administrators see it.
type AssignmentInfo struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	Kind string `json:"kind"`
	// User or Group is who holds it (a username, a group name).
	User      string    `json:"user,omitempty"`
	Group     string    `json:"group,omitempty"`
	Scope     []string  `json:"scope"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Holder names who holds the assignment: "user alice", "group ops".
func (a AssignmentInfo) Holder() string {
	if a.User != "" {
		return "user " + a.User
	}
	return "group " + a.Group
}

// Assignment is an assignment to make, or to remove.
type Assignment struct {
	Role string `json:"role"`
	// Kind is store.AssignEligible (the default) or store.AssignActive.
	Kind string `json:"kind,omitempty"`
	// Exactly one of User (a username or id) and Group.
	User  string   `json:"user,omitempty"`
	Group string   `json:"group,omitempty"`
	Scope []string `json:"scope,omitempty"`
}

// scopeName is what an app id in a scope may look like: the characters
// of OIDC client ids and gateway route apps.
var scopeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// maxScope bounds the apps one assignment lists.
const maxScope = 50

// resolve checks a and finds its holder: the role and the user or group
// must exist, so a typo cannot make an assignment nobody holds.
func (s *Service) resolve(ctx context.Context, a *Assignment) (principal, holder string, err error) {
	a.Role = strings.ToLower(strings.TrimSpace(a.Role))
	a.User, a.Group = strings.TrimSpace(a.User), strings.TrimSpace(a.Group)
	switch a.Kind {
	case "":
		a.Kind = store.AssignEligible
	case store.AssignEligible, store.AssignActive:
	default:
		return "", "", invalid("kind must be %q or %q (got %q)", store.AssignEligible, store.AssignActive, a.Kind)
	}
	if a.Role == "" {
		return "", "", invalid("name the role")
	}
	if a.Role == Role {
		// The console and the API count only the standing role
		// (IsAdmin): an assignment would look like administrator access
		// without being it, and an elevated administrator could approve
		// further elevations.
		return "", "", invalid("%s is given only as a standing role, with: stepgate user set NAME --role %s", Role, Role)
	}
	if _, err := s.Store.GetRole(ctx, a.Role); errors.Is(err, store.ErrNotFound) {
		return "", "", &Error{Kind: NotFound, Message: fmt.Sprintf("no role %q; create it first with: stepgate role add %s", a.Role, a.Role)}
	} else if err != nil {
		return "", "", err
	}
	if err := checkScope(a.Scope); err != nil {
		return "", "", err
	}
	switch {
	case (a.User == "") == (a.Group == ""):
		return "", "", invalid("name exactly one holder: a user or a group")
	case a.User != "":
		u, err := s.userByName(ctx, a.User)
		if err != nil {
			return "", "", err
		}
		return store.UserPrincipal(u.ID), "user:" + u.Username, nil
	}
	if _, err := s.Store.GetGroup(ctx, a.Group); errors.Is(err, store.ErrNotFound) {
		return "", "", &Error{Kind: NotFound, Message: fmt.Sprintf("no group %q", a.Group)}
	} else if err != nil {
		return "", "", err
	}
	return store.GroupPrincipal(a.Group), "group:" + a.Group, nil
}

func checkScope(scope []string) error {
	if len(scope) > maxScope {
		return invalid("a scope lists at most %d apps (got %d)", maxScope, len(scope))
	}
	for _, app := range scope {
		if !scopeName.MatchString(app) {
			return invalid("scope %q is not an app id (an OIDC client id or a gateway route app: letters, digits, . _ : -)", app)
		}
	}
	return nil
}

// Assign makes a role assignment.
func (s *Service) Assign(ctx context.Context, actor Actor, reason string, a Assignment) (AssignmentInfo, error) {
	principal, holder, err := s.resolve(ctx, &a)
	if err != nil {
		return AssignmentInfo{}, err
	}
	made, err := s.Store.CreateRoleAssignment(ctx, store.RoleAssignment{
		ID: "ra_" + rand.Text(), Role: a.Role, Kind: a.Kind, Principal: principal, Scope: a.Scope, CreatedBy: string(actor),
	})
	if errors.Is(err, store.ErrConflict) {
		return AssignmentInfo{}, &Error{Kind: Conflict, Message: fmt.Sprintf("%s already has an %s assignment of %s; remove it first to change its scope", holder, a.Kind, a.Role)}
	}
	if err != nil {
		return AssignmentInfo{}, err
	}
	info := s.assignmentInfo(ctx, made, map[string]string{})
	return info, s.record(ctx, actor, "role.assign", "role:"+a.Role, reason, nil, info)
}

// Unassign removes the assignment matching a (its role, kind and
// holder). A holder who is no longer eligible loses their pending and
// active elevations of the role at the next sweep, within a second.
func (s *Service) Unassign(ctx context.Context, actor Actor, reason string, a Assignment) error {
	principal, holder, err := s.resolve(ctx, &a)
	if err != nil {
		return err
	}
	all, err := s.Store.ListRoleAssignments(ctx, a.Role)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(x store.RoleAssignment) bool { return x.Kind == a.Kind && x.Principal == principal })
	if i < 0 {
		return &Error{Kind: NotFound, Message: fmt.Sprintf("%s has no %s assignment of %s", holder, a.Kind, a.Role)}
	}
	return s.unassign(ctx, actor, reason, all[i])
}

// UnassignID removes the assignment id.
func (s *Service) UnassignID(ctx context.Context, actor Actor, reason, id string) error {
	all, err := s.Store.ListRoleAssignments(ctx, "")
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(x store.RoleAssignment) bool { return x.ID == id })
	if i < 0 {
		return &Error{Kind: NotFound, Message: fmt.Sprintf("no role assignment %q", id)}
	}
	return s.unassign(ctx, actor, reason, all[i])
}

func (s *Service) unassign(ctx context.Context, actor Actor, reason string, a store.RoleAssignment) error {
	if err := s.Store.DeleteRoleAssignment(ctx, a.ID); errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: NotFound, Message: fmt.Sprintf("no role assignment %q (removed meanwhile?)", a.ID)}
	} else if err != nil {
		return err
	}
	return s.record(ctx, actor, "role.unassign", "role:"+a.Role, reason, s.assignmentInfo(ctx, a, map[string]string{}), nil)
}

// Assignments lists the assignments of role, or of every role when role
// is empty.
func (s *Service) Assignments(ctx context.Context, role string) ([]AssignmentInfo, error) {
	all, err := s.Store.ListRoleAssignments(ctx, strings.ToLower(strings.TrimSpace(role)))
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	out := make([]AssignmentInfo, 0, len(all))
	for _, a := range all {
		out = append(out, s.assignmentInfo(ctx, a, names))
	}
	return out, nil
}

func (s *Service) assignmentInfo(ctx context.Context, a store.RoleAssignment, names map[string]string) AssignmentInfo {
	info := AssignmentInfo{ID: a.ID, Role: a.Role, Kind: a.Kind, Scope: nonNilStrings(a.Scope), CreatedBy: a.CreatedBy, CreatedAt: a.CreatedAt}
	if id, ok := strings.CutPrefix(a.Principal, "user:"); ok {
		info.User = s.username(ctx, id, names)
	} else {
		info.Group = strings.TrimPrefix(a.Principal, "group:")
	}
	return info
}

// username names the user id for people; an id that is no user's (a
// deleted user, "system", an operator) is shown as it is.
func (s *Service) username(ctx context.Context, id string, names map[string]string) string {
	if n, ok := names[id]; ok {
		return n
	}
	n := id
	if u, err := s.Store.GetUser(ctx, id); err == nil {
		n = u.Username
	}
	names[id] = n
	return n
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
