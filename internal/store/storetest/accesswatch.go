package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// markBound is how long a node may take to learn of another's write
// (a notification's round trip); the tests poll within it and never
// assert how fast it was.
const markBound = 10 * time.Second

// RunAccessWatchTests checks store.AccessWatch across two handles on one
// database, as two nodes (or a node and the command line) hold them:
// every write through one that can end access already granted changes
// the mark the other reads, and the writer's own mark changes at once.
func RunAccessWatchTests(t *testing.T, opener Opener) {
	open := opener(t, nil)
	writer, watcher := open(), open()
	t.Cleanup(func() { _ = writer.Close(); _ = watcher.Close() })
	ww, ok1 := writer.(store.AccessWatch)
	w, ok2 := watcher.(store.AccessWatch)
	if !ok1 || !ok2 {
		t.Fatal("the store does not implement store.AccessWatch")
	}
	ctx := context.Background()
	u := must[store.User](t)(writer.CreateUser(ctx, store.User{ID: "u-1", Username: "alice"}))
	must[store.User](t)(writer.CreateUser(ctx, store.User{ID: "u-2", Username: "bob"}))
	must[store.Group](t)(writer.CreateGroup(ctx, store.Group{Name: "staff"}))
	must[store.Role](t)(writer.CreateRole(ctx, store.Role{Name: "auditor"}))
	ra := must[store.RoleAssignment](t)(writer.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra-1", Role: "auditor",
		Kind: store.AssignEligible, Principal: store.UserPrincipal(u.ID)}))
	now := time.Now()
	e := must[store.Elevation](t)(writer.CreateElevation(ctx, store.Elevation{ID: "elv-1", UserID: u.ID, Role: "auditor",
		Duration: time.Hour, State: store.ElevationActive, RequestedAt: now, ActivatedAt: now, Until: now.Add(time.Hour)}))
	must[store.KVEntry](t)(writer.CreateKV(ctx, "oidc/grant/g-1", []byte(`{}`), time.Time{}))
	must[store.KVEntry](t)(writer.CreateKV(ctx, "oidc/grant/g-2", []byte(`{}`), time.Time{}))
	must[store.KVEntry](t)(writer.CreateKV(ctx, "revoke/not-before/u-1", []byte(`"2030-01-01T00:00:00Z"`), time.Time{}))
	must[store.KVEntry](t)(writer.CreateKV(ctx, "oidc/clients/bank", []byte(`{}`), time.Time{}))

	tests := []struct {
		name  string
		write func() error
	}{
		{"ok/token-denied", func() error {
			_, err := writer.CreateKV(ctx, "oidc/revoked/jti-1", []byte(`{}`), time.Time{})
			return err
		}},
		{"ok/grant-revoked", func() error {
			_, err := writer.UpdateKV(ctx, "oidc/grant/g-1", func([]byte) ([]byte, error) { return []byte(`{"revoked":true}`), nil })
			return err
		}},
		{"ok/grant-deleted", func() error { return writer.DeleteKV(ctx, "oidc/grant/g-2") }},
		{"ok/not-before-set", func() error {
			_, err := writer.CreateKV(ctx, "revoke/not-before/u-2", []byte(`"2030-01-01T00:00:00Z"`), time.Time{})
			return err
		}},
		{"ok/not-before-renewed", func() error {
			_, err := writer.RenewKV(ctx, "revoke/not-before/u-1", func(b []byte) ([]byte, time.Time, error) { return b, time.Time{}, nil })
			return err
		}},
		{"ok/client-removed", func() error { return writer.DeleteKV(ctx, "oidc/clients/bank") }},
		{"ok/user-disabled", func() error {
			_, err := writer.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) { u.Disabled = true; return u, nil })
			return err
		}},
		{"ok/group-changed", func() error {
			_, err := writer.UpdateGroup(ctx, "staff", func(g store.Group) (store.Group, error) { g.Parents = []string{"all"}; return g, nil })
			return err
		}},
		{"ok/assignment-deleted", func() error { return writer.DeleteRoleAssignment(ctx, ra.ID) }},
		{"ok/elevation-ended", func() error {
			_, err := writer.UpdateElevation(ctx, e.ID, func(e store.Elevation) (store.Elevation, error) {
				e.State, e.EndedAt, e.EndedBy, e.EndReason = store.ElevationDeactivated, time.Now(), "admin", "test"
				return e, nil
			})
			return err
		}},
		{"ok/role-deleted", func() error { return writer.DeleteRole(ctx, "auditor") }},
		{"ok/user-deleted", func() error { return writer.DeleteUser(ctx, "u-2") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := vouchedMark(t, w)
			own := vouchedMark(t, ww)
			if err := tc.write(); err != nil {
				t.Fatal(err)
			}
			if after := vouchedMark(t, ww); after == own {
				t.Error("the writer's own mark did not change at once")
			}
			deadline := time.Now().Add(markBound)
			for {
				if m, ok := w.AccessMark(ctx); ok && m != before {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("the other handle's mark did not change within %s", markBound)
				}
				time.Sleep(5 * time.Millisecond) // between polls, not an assertion
			}
		})
	}
}

// vouchedMark waits (within markBound) until w vouches for its mark.
func vouchedMark(t *testing.T, w store.AccessWatch) uint64 {
	t.Helper()
	deadline := time.Now().Add(markBound)
	for {
		if m, ok := w.AccessMark(context.Background()); ok {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not vouch for its access mark within %s", markBound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
