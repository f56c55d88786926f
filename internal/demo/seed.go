package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// Seeded is what seeding leaves for the reader to use.
type Seeded struct {
	// AliceTOTPSecret is the base32 secret of alice's authenticator app.
	AliceTOTPSecret string
	// AdminPass is a temporary access pass for admin, who has a password
	// only, to register a passkey with; empty once admin has a method.
	// It works until AdminPassExpires.
	AdminPass        string
	AdminPassExpires time.Time
}

// AdminPassLifetime is how long the admin's pass of a demo run works.
const AdminPassLifetime = 8 * time.Hour

// Seed makes the store in cfg's data directory hold the demo: the
// admins group, the demo users, alice's authenticator app and the
// policy file. It is idempotent: what exists is kept as it is (a second
// run does not reset passwords or register a second app), so the demo
// can be stopped and started again over the same data.
func Seed(ctx context.Context, cfg config.Config, log *slog.Logger) (Seeded, error) {
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		return Seeded{}, fmt.Errorf("create the demo data directory: %w", err)
	}
	// Written on every start: the policies belong to this version of the
	// demo, like its routes, which are not stored either.
	if err := os.WriteFile(PolicyPath(cfg.Server.DataDir), policies, 0o600); err != nil {
		return Seeded{}, fmt.Errorf("write the demo policies: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Server.DataDir, TestFile), policyTests, 0o600); err != nil {
		return Seeded{}, fmt.Errorf("write the demo policies' scenario tests: %w", err)
	}
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return Seeded{}, err
	}
	defer st.Close()
	svc, err := app.NewUsers(cfg, st)
	if err != nil {
		return Seeded{}, err
	}
	if _, err := svc.AddGroup(ctx, store.Group{Name: AdminGroup, DisplayName: "Bank administrators"}); err != nil && !errors.Is(err, users.ErrExists) {
		return Seeded{}, fmt.Errorf("add group %s: %w", AdminGroup, err)
	}
	// The server creates the administrator role at start; the demo seeds
	// before that, so it makes it itself.
	if _, err := svc.AddRole(ctx, store.Role{Name: admin.Role}); err != nil && !errors.Is(err, users.ErrExists) {
		return Seeded{}, fmt.Errorf("add role %s: %w", admin.Role, err)
	}
	if _, err := svc.AddRole(ctx, store.Role{Name: BankAdminRole, Description: "Opens the demo bank's admin pages"}); err != nil && !errors.Is(err, users.ErrExists) {
		return Seeded{}, fmt.Errorf("add role %s: %w", BankAdminRole, err)
	}
	for _, u := range Users {
		existing, err := svc.Get(ctx, u.Username)
		if err == nil {
			if err := keepRoles(ctx, svc, existing, u.Roles); err != nil {
				return Seeded{}, err
			}
			continue
		}
		if !errors.Is(err, users.ErrUnknownUser) {
			return Seeded{}, err
		}
		if _, err := svc.Add(ctx, users.NewUser{
			Username: u.Username, Password: u.Password, Email: u.Email, DisplayName: u.DisplayName, Groups: u.Groups, Roles: u.Roles,
		}); err != nil {
			return Seeded{}, fmt.Errorf("add demo user %s: %w", u.Username, err)
		}
	}
	if err := eligible(ctx, st, "alice", BankAdminRole); err != nil {
		return Seeded{}, err
	}
	m, err := app.NewMethods(cfg, st, log, nil)
	if err != nil {
		return Seeded{}, err
	}
	secret, err := totpSecret(ctx, st, m, "alice")
	if err != nil {
		return Seeded{}, fmt.Errorf("alice's authenticator app: %w", err)
	}
	seeded := Seeded{AliceTOTPSecret: secret}
	if seeded.AdminPass, seeded.AdminPassExpires, err = adminPass(ctx, st, m); err != nil {
		return Seeded{}, fmt.Errorf("admin's temporary access pass: %w", err)
	}
	return seeded, nil
}

// adminPass gives admin, while admin has no sign-in method beyond the
// password, a fresh temporary access pass to register a passkey with:
// the demo's passwords are public, so a password alone registers
// nothing. A pass from an earlier run (stored hashed, so it cannot be
// printed again) is replaced.
func adminPass(ctx context.Context, st store.Store, m *app.Methods) (string, time.Time, error) {
	u, err := st.GetUserByName(ctx, "admin")
	if err != nil {
		return "", time.Time{}, err
	}
	creds, err := st.ListCredentials(ctx, u.ID)
	if err != nil {
		return "", time.Time{}, err
	}
	if slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Type != "recovery-code" }) {
		return "", time.Time{}, nil
	}
	if err := m.Passes.Revoke(ctx, u.ID); err != nil && !errors.Is(err, tap.ErrNone) {
		return "", time.Time{}, err
	}
	code, p, err := m.Passes.Issue(ctx, u.ID, "stepgate demo", AdminPassLifetime, false)
	return code, p.ExpiresAt, err
}

// eligible makes username eligible for role, once.
func eligible(ctx context.Context, st store.Store, username, role string) error {
	u, err := st.GetUserByName(ctx, username)
	if err != nil {
		return fmt.Errorf("make %s eligible for %s: %w", username, role, err)
	}
	_, err = st.CreateRoleAssignment(ctx, store.RoleAssignment{
		ID: "ra_" + rand.Text(), Role: role, Kind: store.AssignEligible, Principal: store.UserPrincipal(u.ID), CreatedBy: "stepgate demo",
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("make %s eligible for %s: %w", username, role, err)
	}
	return nil
}

// keepRoles gives an existing demo user the roles of its definition
// (data seeded by an older version lacks the administrator role).
func keepRoles(ctx context.Context, svc *users.Service, u store.User, roles []string) error {
	if len(roles) == 0 || !slices.ContainsFunc(roles, func(r string) bool { return !slices.Contains(u.Roles, r) }) {
		return nil
	}
	if _, err := svc.SetMemberships(ctx, u.Username, nil, append(slices.Clone(u.Roles), roles...)); err != nil {
		return fmt.Errorf("give demo user %s the roles %v: %w", u.Username, roles, err)
	}
	return nil
}

// totpSecret returns the secret of the user's authenticator app,
// registering one when the user has none (the first run, or after
// "stepgate user reset-mfa").
func totpSecret(ctx context.Context, st store.Store, m *app.Methods, username string) (string, error) {
	u, err := st.GetUserByName(ctx, username)
	if err != nil {
		return "", err
	}
	creds, err := st.ListCredentials(ctx, u.ID)
	if err != nil {
		return "", err
	}
	for _, c := range creds {
		if c.Type == totp.Name {
			return m.TOTP.Secret(u, c)
		}
	}
	secret, _, err := m.TOTP.EnrollNow(ctx, u, "Demo authenticator app")
	return secret, err
}
