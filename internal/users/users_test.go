package users_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn/password"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/users"
)

var fast = password.Params{Time: 1, MemoryKiB: 64, Threads: 1}

func newService(t *testing.T) (*users.Service, store.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return users.New(st, password.NewHasher(fast), 8), st
}

func TestAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newService(t)
	if _, err := svc.AddGroup(ctx, store.Group{Name: "staff"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddRole(ctx, store.Role{Name: "admin"}); err != nil {
		t.Fatal(err)
	}
	u, err := svc.Add(ctx, users.NewUser{Username: "Alice", Email: "alice@example.com", Password: "long enough", Groups: []string{"Staff", "staff"}, Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "alice" || len(u.Groups) != 1 || u.Groups[0] != "staff" || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("added user = %+v", u)
	}
	tests := []struct {
		name string
		in   users.NewUser
		want error
		hint string
	}{
		{"fail/duplicate", users.NewUser{Username: "ALICE", Password: "long enough"}, users.ErrUserExists, "alice"},
		{"fail/short-password", users.NewUser{Username: "bob", Password: "short"}, users.ErrWeakPassword, "minimum is 8"},
		{"fail/empty-password", users.NewUser{Username: "bob"}, users.ErrWeakPassword, "minimum is 8"},
		{"fail/bad-name", users.NewUser{Username: "bob smith", Password: "long enough"}, users.ErrInvalid, "a-z"},
		{"fail/header-injection-name", users.NewUser{Username: "bob\r\nx", Password: "long enough"}, users.ErrInvalid, ""},
		{"fail/bad-email", users.NewUser{Username: "bob", Email: "Bob <bob@example.com>", Password: "long enough"}, users.ErrInvalid, "plain address"},
		{"fail/unknown-group", users.NewUser{Username: "bob", Password: "long enough", Groups: []string{"ops"}}, users.ErrUnknownGroup, "stepgate group add ops"},
		{"fail/unknown-role", users.NewUser{Username: "bob", Password: "long enough", Roles: []string{"root"}}, users.ErrUnknownRole, "stepgate role add root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Add(ctx, tc.in)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("Add = %v, want %v mentioning %q", err, tc.want, tc.hint)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, st := newService(t)
	u, err := svc.Add(ctx, users.NewUser{Username: "carol", Password: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Authenticate(ctx, "Carol", "correct horse"); err != nil || got.ID != u.ID {
		t.Fatalf("Authenticate = %v, %v", got, err)
	}
	for name, pw := range map[string][2]string{
		"fail/wrong-password": {"carol", "wrong horse"},
		"fail/unknown-user":   {"nobody", "correct horse"},
		"fail/empty":          {"", ""},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := svc.Authenticate(ctx, pw[0], pw[1]); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Fatalf("Authenticate = %v, want ErrInvalidCredentials", err)
			}
		})
	}

	// Disabling ends live sessions at once.
	if _, err := st.CreateSession(ctx, store.Session{ID: "s1", UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetDisabled(ctx, "carol", true); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a disabled user survived: %v", err)
	}
	if _, err := svc.Authenticate(ctx, "carol", "correct horse"); !errors.Is(err, users.ErrDisabled) {
		t.Fatalf("Authenticate disabled = %v, want ErrDisabled", err)
	}
	if _, err := svc.Authenticate(ctx, "carol", "wrong horse"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Fatalf("a wrong password for a disabled user revealed the account state: %v", err)
	}
	if err := svc.SetDisabled(ctx, "carol", false); err != nil {
		t.Fatal(err)
	}

	// A new password ends sessions and replaces the old one.
	if _, err := st.CreateSession(ctx, store.Session{ID: "s2", UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetPassword(ctx, "carol", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, "s2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a session survived a password change")
	}
	if _, err := svc.Authenticate(ctx, "carol", "correct horse"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Fatal("the old password still works")
	}
	if err := svc.SetPassword(ctx, "nobody", "battery staple"); !errors.Is(err, users.ErrUnknownUser) {
		t.Fatalf("SetPassword(nobody) = %v, want ErrUnknownUser", err)
	}
}

func TestRehashOnSignIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, st := newService(t)
	if _, err := svc.Add(ctx, users.NewUser{Username: "dave", Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	stronger := users.New(st, password.NewHasher(password.Params{Time: 2, MemoryKiB: 128, Threads: 1}), 8)
	if _, err := stronger.Authenticate(ctx, "dave", "correct horse"); err != nil {
		t.Fatal(err)
	}
	u, _ := st.GetUserByName(ctx, "dave")
	if !strings.Contains(u.PasswordHash, "m=128,t=2") {
		t.Fatalf("hash was not upgraded to the new parameters: %s", u.PasswordHash)
	}
}

func TestRemoveInUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newService(t)
	for _, g := range []store.Group{{Name: "staff"}, {Name: "eng", Parents: []string{"staff"}}} {
		if _, err := svc.AddGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.AddGroup(ctx, store.Group{Name: "x", Parents: []string{"nope"}}); !errors.Is(err, users.ErrUnknownGroup) {
		t.Fatalf("group with unknown parent = %v", err)
	}
	if _, err := svc.AddGroup(ctx, store.Group{Name: "staff"}); !errors.Is(err, users.ErrExists) {
		t.Fatalf("duplicate group = %v", err)
	}
	if _, err := svc.AddRole(ctx, store.Role{Name: "admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Add(ctx, users.NewUser{Username: "erin", Password: "long enough", Groups: []string{"eng"}, Roles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.RemoveGroup(ctx, "staff"); !errors.Is(err, users.ErrInUse) {
		t.Fatalf("removing a parent group = %v, want ErrInUse", err)
	}
	if err := svc.RemoveGroup(ctx, "eng"); !errors.Is(err, users.ErrInUse) {
		t.Fatalf("removing a group with members = %v, want ErrInUse", err)
	}
	if err := svc.RemoveRole(ctx, "admin"); !errors.Is(err, users.ErrInUse) {
		t.Fatalf("removing a held role = %v, want ErrInUse", err)
	}
	if _, err := svc.SetMemberships(ctx, "erin", []string{}, []string{}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return svc.RemoveGroup(ctx, "eng") },
		func() error { return svc.RemoveGroup(ctx, "staff") },
		func() error { return svc.RemoveRole(ctx, "admin") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.RemoveRole(ctx, "admin"); !errors.Is(err, users.ErrUnknownRole) {
		t.Fatalf("removing a missing role = %v", err)
	}
}
