// Package users manages accounts, groups and roles on top of the store:
// validation, password policy and authentication by password. The CLI, the
// sign-in pages and (later) the admin API all go through it, so the rules
// are the same everywhere.
package users

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/authn/password"
	"github.com/stepgate/stepgate/internal/store"
)

// Errors. Messages name the problem; callers add the fix where they can.
var (
	ErrUnknownUser        = errors.New("unknown user")
	ErrUserExists         = errors.New("user already exists")
	ErrInvalidCredentials = errors.New("incorrect username or password")
	ErrDisabled           = errors.New("account is disabled")
	ErrWeakPassword       = errors.New("password not accepted")
	ErrInvalid            = errors.New("invalid value")
	ErrUnknownGroup       = errors.New("unknown group")
	ErrUnknownRole        = errors.New("unknown role")
	ErrExists             = errors.New("already exists")
	ErrInUse              = errors.New("still in use")
)

// Store is what the service needs from storage.
type Store interface {
	store.Users
	store.Groups
	store.Roles
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

// Service manages users, groups and roles.
type Service struct {
	store     Store
	hasher    *password.Hasher
	minLength int
	breached  *password.Breached // nil: no list configured
	revoker   Revoker
}

// Revoker ends a user's sessions and invalidates the tokens they hold
// (continuous access evaluation, package revoke).
type Revoker interface {
	RevokeUser(ctx context.Context, userID, reason string) error
}

// RevokeWith makes critical changes (password set, account disabled)
// revoke tokens as well as sessions.
func (s *Service) RevokeWith(r Revoker) { s.revoker = r }

// endAccess ends the user's sessions and, with a revoker, invalidates
// their tokens.
func (s *Service) endAccess(ctx context.Context, userID, reason string) error {
	if s.revoker != nil {
		return s.revoker.RevokeUser(ctx, userID, reason)
	}
	_, err := s.store.DeleteUserSessions(ctx, userID)
	return err
}

// Revoke ends every session of the user and invalidates their tokens, as
// an administrator does for a lost laptop.
func (s *Service) Revoke(ctx context.Context, username string) error {
	u, err := s.Get(ctx, username)
	if err != nil {
		return err
	}
	return s.endAccess(ctx, u.ID, "admin-revoke")
}

// New returns a Service. minLength is the shortest password accepted.
func New(s Store, h *password.Hasher, minLength int) *Service {
	return &Service{store: s, hasher: h, minLength: minLength}
}

// RefuseBreached makes the service refuse new passwords found in list
// (NIST SP 800-63B 5.1.1.2). Existing passwords keep working.
func (s *Service) RefuseBreached(list *password.Breached) { s.breached = list }

// NewUser is the input to Add.
type NewUser struct {
	Username    string
	Email       string
	DisplayName string
	Password    string
	Groups      []string
	Roles       []string
}

// namePattern is what usernames, group and role names may contain: short,
// lower-case, and safe in URLs, headers and logs.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]{0,63}$`)

func checkName(kind, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: %s %q must be 1-64 characters of a-z, 0-9 and . _ @ + - (starting with a letter or digit)", ErrInvalid, kind, name)
	}
	return nil
}

func checkEmail(email string) error {
	if email == "" {
		return nil
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email {
		return fmt.Errorf("%w: email %q is not a plain address like alice@example.com", ErrInvalid, email)
	}
	return nil
}

// CheckPassword applies the password policy (NIST SP 800-63B: a minimum
// length, no composition rules).
func (s *Service) CheckPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < s.minLength {
		return fmt.Errorf("%w: it has %d characters, the minimum is %d", ErrWeakPassword, n, s.minLength)
	}
	if len(pw) > password.MaxBytes {
		return fmt.Errorf("%w: it is longer than %d bytes", ErrWeakPassword, password.MaxBytes)
	}
	if s.breached.Contains(pw) {
		return fmt.Errorf("%w: it appears in a list of breached or common passwords; choose another, such as a few unrelated words", ErrWeakPassword)
	}
	return nil
}

// Add creates a user. Groups and roles must exist.
func (s *Service) Add(ctx context.Context, nu NewUser) (store.User, error) {
	nu.Username = strings.ToLower(strings.TrimSpace(nu.Username))
	if err := checkName("username", nu.Username); err != nil {
		return store.User{}, err
	}
	if err := checkEmail(nu.Email); err != nil {
		return store.User{}, err
	}
	if err := s.CheckPassword(nu.Password); err != nil {
		return store.User{}, err
	}
	groups, roles, err := s.checkMemberships(ctx, nu.Groups, nu.Roles)
	if err != nil {
		return store.User{}, err
	}
	hash, err := s.hasher.Hash(ctx, nu.Password)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.store.CreateUser(ctx, store.User{
		ID: rand.Text(), Username: nu.Username, Email: nu.Email, DisplayName: nu.DisplayName,
		Groups: groups, Roles: roles, PasswordHash: hash,
	})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, fmt.Errorf("%w: %q", ErrUserExists, nu.Username)
	}
	return u, err
}

func (s *Service) checkMemberships(ctx context.Context, groups, roles []string) ([]string, []string, error) {
	gs, err := normalizeNames(groups)
	if err != nil {
		return nil, nil, err
	}
	rs, err := normalizeNames(roles)
	if err != nil {
		return nil, nil, err
	}
	for _, g := range gs {
		if _, err := s.store.GetGroup(ctx, g); errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("%w %q; create it first with: stepgate group add %s", ErrUnknownGroup, g, g)
		} else if err != nil {
			return nil, nil, err
		}
	}
	for _, r := range rs {
		if _, err := s.store.GetRole(ctx, r); errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("%w %q; create it first with: stepgate role add %s", ErrUnknownRole, r, r)
		} else if err != nil {
			return nil, nil, err
		}
	}
	return gs, rs, nil
}

func normalizeNames(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if err := checkName("name", n); err != nil {
			return nil, err
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Get returns the user called username.
func (s *Service) Get(ctx context.Context, username string) (store.User, error) {
	u, err := s.store.GetUserByName(ctx, strings.TrimSpace(username))
	if errors.Is(err, store.ErrNotFound) {
		return u, fmt.Errorf("%w %q", ErrUnknownUser, username)
	}
	return u, err
}

// List returns every user, ordered by username.
func (s *Service) List(ctx context.Context) ([]store.User, error) { return s.store.ListUsers(ctx) }

// update applies fn to the user called username.
func (s *Service) update(ctx context.Context, username string, fn func(store.User) (store.User, error)) (store.User, error) {
	u, err := s.Get(ctx, username)
	if err != nil {
		return u, err
	}
	return s.store.UpdateUser(ctx, u.ID, fn)
}

// SetPassword replaces a user's password and ends their sessions: whoever
// knew the old password must not stay signed in.
func (s *Service) SetPassword(ctx context.Context, username, pw string) error {
	if err := s.CheckPassword(pw); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	u, err := s.update(ctx, username, func(u store.User) (store.User, error) {
		u.PasswordHash = hash
		return u, nil
	})
	if err != nil {
		return err
	}
	return s.endAccess(ctx, u.ID, "password-changed")
}

// SetDisabled disables or enables an account. Disabling ends every session
// of the user at once.
func (s *Service) SetDisabled(ctx context.Context, username string, disabled bool) error {
	u, err := s.update(ctx, username, func(u store.User) (store.User, error) {
		u.Disabled = disabled
		return u, nil
	})
	if err != nil || !disabled {
		return err
	}
	return s.endAccess(ctx, u.ID, "disabled")
}

// Authenticate checks a username and password. Every failure looks the
// same to the caller (ErrInvalidCredentials, or ErrDisabled only after a
// correct password) and costs the same time, so neither the message nor
// the latency tells an attacker which usernames exist.
func (s *Service) Authenticate(ctx context.Context, username, pw string) (store.User, error) {
	u, err := s.store.GetUserByName(ctx, strings.TrimSpace(username))
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.PasswordHash == "") {
		s.hasher.VerifyDummy(ctx, pw)
		return store.User{}, ErrInvalidCredentials
	}
	if err != nil {
		return store.User{}, err
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil {
		return store.User{}, fmt.Errorf("verify password of %s: %w", u.Username, err)
	}
	if !ok {
		return store.User{}, ErrInvalidCredentials
	}
	if u.Disabled {
		return store.User{}, ErrDisabled
	}
	if rehash {
		// Cost parameters were raised since this hash was made; upgrade it
		// now that we hold the plaintext. Failure here is not fatal.
		if hash, err := s.hasher.Hash(ctx, pw); err == nil {
			_, _ = s.store.UpdateUser(ctx, u.ID, func(cur store.User) (store.User, error) {
				cur.PasswordHash = hash
				return cur, nil
			})
		}
	}
	return u, nil
}
