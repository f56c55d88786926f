package users

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/store"
)

// AddGroup creates a group; parents must exist.
func (s *Service) AddGroup(ctx context.Context, g store.Group) (store.Group, error) {
	g.Name = strings.ToLower(strings.TrimSpace(g.Name))
	if err := checkName("group", g.Name); err != nil {
		return g, err
	}
	parents, _, err := s.checkMemberships(ctx, g.Parents, nil)
	if err != nil {
		return g, err
	}
	g.Parents = parents
	out, err := s.store.CreateGroup(ctx, g)
	if errors.Is(err, store.ErrConflict) {
		return out, fmt.Errorf("group %q %w", g.Name, ErrExists)
	}
	return out, err
}

// ListGroups returns every group, ordered by name.
func (s *Service) ListGroups(ctx context.Context) ([]store.Group, error) {
	return s.store.ListGroups(ctx)
}

// RemoveGroup deletes a group that no user or group refers to. Removing a
// referenced group would silently change who policies apply to.
func (s *Service) RemoveGroup(ctx context.Context, name string) error {
	name = strings.ToLower(strings.TrimSpace(name))
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if slices.Contains(u.Groups, name) {
			return fmt.Errorf("group %q is %w: user %q is a member", name, ErrInUse, u.Username)
		}
	}
	groups, err := s.store.ListGroups(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if slices.Contains(g.Parents, name) {
			return fmt.Errorf("group %q is %w: group %q is nested in it", name, ErrInUse, g.Name)
		}
	}
	return notFound(s.store.DeleteGroup(ctx, name), ErrUnknownGroup, name)
}

// AddRole creates a role.
func (s *Service) AddRole(ctx context.Context, r store.Role) (store.Role, error) {
	r.Name = strings.ToLower(strings.TrimSpace(r.Name))
	if err := checkName("role", r.Name); err != nil {
		return r, err
	}
	out, err := s.store.CreateRole(ctx, r)
	if errors.Is(err, store.ErrConflict) {
		return out, fmt.Errorf("role %q %w", r.Name, ErrExists)
	}
	return out, err
}

// ListRoles returns every role, ordered by name.
func (s *Service) ListRoles(ctx context.Context) ([]store.Role, error) {
	return s.store.ListRoles(ctx)
}

// RemoveRole deletes a role no user holds.
func (s *Service) RemoveRole(ctx context.Context, name string) error {
	name = strings.ToLower(strings.TrimSpace(name))
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if slices.Contains(u.Roles, name) {
			return fmt.Errorf("role %q is %w: user %q holds it", name, ErrInUse, u.Username)
		}
	}
	return notFound(s.store.DeleteRole(ctx, name), ErrUnknownRole, name)
}

// SetMemberships replaces a user's groups and roles (nil leaves that list
// unchanged).
func (s *Service) SetMemberships(ctx context.Context, username string, groups, roles []string) (store.User, error) {
	gs, rs, err := s.checkMemberships(ctx, groups, roles)
	if err != nil {
		return store.User{}, err
	}
	return s.update(ctx, username, func(u store.User) (store.User, error) {
		if groups != nil {
			u.Groups = gs
		}
		if roles != nil {
			u.Roles = rs
		}
		return u, nil
	})
}

func notFound(err, sentinel error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w %q", sentinel, name)
	}
	return err
}
