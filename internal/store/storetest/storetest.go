// Package storetest is the conformance suite every store backend runs.
// A backend is correct when RunTests and RunNamespaceTests (every
// namespace of the key/value catalogue, on the store's own clock) pass
// against it.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// Opener returns a function that opens one fresh, empty database whose
// clock is now (nil: the real clock); calling the returned function again
// opens the same database anew (to prove that data outlives a close). The
// backend closes nothing itself: the suite closes every store it opens.
type Opener func(t testing.TB, now func() time.Time) (open func() store.Store)

// RunTests runs the whole suite.
func RunTests(t *testing.T, opener Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
		// clocked tests run on a store whose clock they set.
		clocked func(t *testing.T, s store.Store, c *clock)
	}{
		{"users", testUsers, nil},
		{"groups", testGroups, nil},
		{"roles", testRoles, nil},
		{"role-assignments", nil, testRoleAssignments},
		{"elevations", nil, testElevations},
		{"elevation-terms", nil, testElevationTerms},
		{"elevation-lifecycle", nil, testElevationLifecycle},
		{"elevation-race", nil, testElevationRace},
		{"elevation-list", nil, testListElevations},
		{"user-grants", nil, testUserGrants},
		{"assignments-follow-deletes", testAssignmentsFollowDeletes, nil},
		{"credentials", testCredentials, nil},
		{"sessions", testSessions, nil},
		{"kv", testKV, nil},
		{"kv-expiry", testKVExpiry, nil},
		{"kv-renew", testKVRenew, nil},
		{"kv-quota", testKVQuota, nil},
		{"kv-quota-concurrent", testKVQuotaConcurrent, nil},
		{"signins", testSignIns, nil},
		{"signin-statements", testSignInStatements, nil},
		{"signin-totals", testSignInTotals, nil},
		{"signin-totals-concurrent", testSignInTotalsConcurrent, nil},
		{"signin-totals-repeated-in-batch", testSignInTotalsRepeatedInBatch, nil},
		{"update-errors", testUpdateErrors, nil},
		{"concurrent-cas", testConcurrentCAS, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.clocked == nil {
				s := opener(t, nil)()
				t.Cleanup(func() { _ = s.Close() })
				tc.fn(t, s)
				return
			}
			c := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
			s := opener(t, c.now)()
			t.Cleanup(func() { _ = s.Close() })
			tc.clocked(t, s, c)
		})
	}
	t.Run("persistence", func(t *testing.T) { testPersistence(t, opener(t, nil)) })
}

func id() string { return rand.Text() }

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := must[store.User](t)(s.CreateUser(ctx, store.User{
		ID: id(), Username: "Alice", Email: "alice@example.com", DisplayName: "Alice A.",
		Groups: []string{"staff"}, Roles: []string{"admin"}, PasswordHash: "$argon2id$x",
	}))
	if u.Version != 1 || u.CreatedAt.IsZero() || u.Username != "alice" {
		t.Fatalf("created user = %+v; want version 1, created time, lower-case name", u)
	}
	got := must[store.User](t)(s.GetUserByName(ctx, "ALICE"))
	if got.ID != u.ID || got.Email != "alice@example.com" || !slices.Equal(got.Groups, []string{"staff"}) ||
		!slices.Equal(got.Roles, []string{"admin"}) || got.PasswordHash != "$argon2id$x" || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("GetUserByName = %+v, want %+v", got, u)
	}
	_, err := s.CreateUser(ctx, store.User{ID: id(), Username: "alice"})
	wantErr(t, err, store.ErrConflict)
	_, err = s.GetUser(ctx, "missing")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUserByName(ctx, "bob")
	wantErr(t, err, store.ErrNotFound)

	must[store.User](t)(s.CreateUser(ctx, store.User{ID: id(), Username: "bob"}))
	list := must[[]store.User](t)(s.ListUsers(ctx))
	if len(list) != 2 || list[0].Username != "alice" || list[1].Username != "bob" {
		t.Fatalf("ListUsers = %+v, want alice, bob", list)
	}

	testFindUsers(t, s)

	upd := must[store.User](t)(s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.Disabled = true
		u.Groups = append(u.Groups, "ops")
		return u, nil
	}))
	if upd.Version != 2 || !upd.Disabled {
		t.Fatalf("updated = %+v, want version 2 and disabled", upd)
	}
	got = must[store.User](t)(s.GetUser(ctx, u.ID))
	if !got.Disabled || !slices.Equal(got.Groups, []string{"staff", "ops"}) || got.Version != 2 {
		t.Fatalf("after update = %+v", got)
	}
	_, err = s.UpdateUser(ctx, "missing", func(u store.User) (store.User, error) { return u, nil })
	wantErr(t, err, store.ErrNotFound)

	// Deleting a user takes their sessions and credentials along.
	must[store.Session](t)(s.CreateSession(ctx, store.Session{ID: id(), UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}))
	must[store.Credential](t)(s.CreateCredential(ctx, store.Credential{ID: id(), UserID: u.ID, Type: "totp"}))
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteUser(ctx, u.ID), store.ErrNotFound)
	if n := len(must[[]store.Session](t)(s.ListUserSessions(ctx, u.ID))); n != 0 {
		t.Fatalf("%d sessions outlived their user", n)
	}
	if n := len(must[[]store.Credential](t)(s.ListCredentials(ctx, u.ID))); n != 0 {
		t.Fatalf("%d credentials outlived their user", n)
	}
}

func testGroups(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "Engineering", DisplayName: "Eng", Parents: []string{"staff"}}))
	if g.Name != "engineering" || g.Version != 1 {
		t.Fatalf("created group = %+v", g)
	}
	_, err := s.CreateGroup(ctx, store.Group{Name: "engineering"})
	wantErr(t, err, store.ErrConflict)
	got := must[store.Group](t)(s.GetGroup(ctx, "ENGINEERING"))
	if got.DisplayName != "Eng" || !slices.Equal(got.Parents, []string{"staff"}) {
		t.Fatalf("GetGroup = %+v", got)
	}
	must[store.Group](t)(s.UpdateGroup(ctx, "engineering", func(g store.Group) (store.Group, error) {
		g.Description = "builds things"
		return g, nil
	}))
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "admins"}))
	list := must[[]store.Group](t)(s.ListGroups(ctx))
	if len(list) != 2 || list[0].Name != "admins" || list[1].Description != "builds things" {
		t.Fatalf("ListGroups = %+v", list)
	}
	if err := s.DeleteGroup(ctx, "admins"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetGroup(ctx, "admins")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteGroup(ctx, "admins"), store.ErrNotFound)
}

func testRoles(t *testing.T, s store.Store) {
	ctx := context.Background()
	must[store.Role](t)(s.CreateRole(ctx, store.Role{Name: "Auditor", Description: "reads logs"}))
	_, err := s.CreateRole(ctx, store.Role{Name: "auditor"})
	wantErr(t, err, store.ErrConflict)
	r := must[store.Role](t)(s.UpdateRole(ctx, "auditor", func(r store.Role) (store.Role, error) {
		r.Description = "reads all logs"
		return r, nil
	}))
	if r.Version != 2 {
		t.Fatalf("version = %d, want 2", r.Version)
	}
	got := must[store.Role](t)(s.GetRole(ctx, "auditor"))
	if got.Description != "reads all logs" {
		t.Fatalf("GetRole = %+v", got)
	}
	if n := len(must[[]store.Role](t)(s.ListRoles(ctx))); n != 1 {
		t.Fatalf("ListRoles has %d, want 1", n)
	}
	if err := s.DeleteRole(ctx, "auditor"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetRole(ctx, "auditor")
	wantErr(t, err, store.ErrNotFound)
}

func testCredentials(t *testing.T, s store.Store) {
	ctx := context.Background()
	c1 := must[store.Credential](t)(s.CreateCredential(ctx, store.Credential{ID: id(), UserID: "u1", Type: "totp", Name: "phone", Data: []byte{0, 1, 2, 255}}))
	_, err := s.CreateCredential(ctx, store.Credential{ID: c1.ID, UserID: "u1", Type: "totp"})
	wantErr(t, err, store.ErrConflict)
	must[store.Credential](t)(s.CreateCredential(ctx, store.Credential{ID: id(), UserID: "u1", Type: "webauthn"}))
	must[store.Credential](t)(s.CreateCredential(ctx, store.Credential{ID: id(), UserID: "u2", Type: "totp"}))
	list := must[[]store.Credential](t)(s.ListCredentials(ctx, "u1"))
	if len(list) != 2 {
		t.Fatalf("ListCredentials(u1) has %d, want 2", len(list))
	}
	used := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	must[store.Credential](t)(s.UpdateCredential(ctx, c1.ID, func(c store.Credential) (store.Credential, error) {
		c.LastUsedAt = used
		c.Data = append(c.Data, 7)
		return c, nil
	}))
	got := must[store.Credential](t)(s.GetCredential(ctx, c1.ID))
	if !got.LastUsedAt.Equal(used) || !slices.Equal(got.Data, []byte{0, 1, 2, 255, 7}) {
		t.Fatalf("GetCredential = %+v", got)
	}
	if err := s.DeleteCredential(ctx, c1.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetCredential(ctx, c1.ID)
	wantErr(t, err, store.ErrNotFound)
}

func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	ev := store.AuthEvent{Method: "password", Time: now, AMR: []string{"pwd"}}
	sess := must[store.Session](t)(s.CreateSession(ctx, store.Session{
		ID: id(), UserID: "u1", ExpiresAt: now.Add(time.Hour), Events: []store.AuthEvent{ev}, IP: "127.0.0.1", UserAgent: "test",
	}))
	got := must[store.Session](t)(s.GetSession(ctx, sess.ID))
	if got.UserID != "u1" || len(got.Events) != 1 || !got.Events[0].Time.Equal(now) || got.Events[0].AMR[0] != "pwd" ||
		!got.ExpiresAt.Equal(now.Add(time.Hour)) || got.IP != "127.0.0.1" {
		t.Fatalf("GetSession = %+v", got)
	}
	_, err := s.CreateSession(ctx, store.Session{ID: sess.ID, UserID: "u2"})
	wantErr(t, err, store.ErrConflict)

	// Rotation: the old id is gone, the new one carries the events.
	next := got
	next.ID = id()
	next.Events = append(next.Events, store.AuthEvent{Method: "totp", Time: now, AMR: []string{"otp"}})
	must[store.Session](t)(s.ReplaceSession(ctx, sess.ID, next))
	_, err = s.GetSession(ctx, sess.ID)
	wantErr(t, err, store.ErrNotFound)
	if got := must[store.Session](t)(s.GetSession(ctx, next.ID)); len(got.Events) != 2 {
		t.Fatalf("replaced session has %d events, want 2", len(got.Events))
	}
	// Replacing an id that is already gone must fail and store nothing:
	// otherwise a stolen, revoked id could be swapped for a live one.
	orphan := store.Session{ID: id(), UserID: "u1", ExpiresAt: now.Add(time.Hour)}
	_, err = s.ReplaceSession(ctx, sess.ID, orphan)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetSession(ctx, orphan.ID)
	wantErr(t, err, store.ErrNotFound)

	must[store.Session](t)(s.CreateSession(ctx, store.Session{ID: id(), UserID: "u1", ExpiresAt: now.Add(-time.Minute)}))
	must[store.Session](t)(s.CreateSession(ctx, store.Session{ID: id(), UserID: "u2", ExpiresAt: now.Add(time.Hour)}))
	if n := must[int](t)(s.DeleteExpiredSessions(ctx, now)); n != 1 {
		t.Fatalf("DeleteExpiredSessions removed %d, want 1", n)
	}
	if n := len(must[[]store.Session](t)(s.ListUserSessions(ctx, "u1"))); n != 1 {
		t.Fatalf("u1 has %d sessions, want 1", n)
	}
	if n := must[int](t)(s.DeleteUserSessions(ctx, "u1")); n != 1 {
		t.Fatalf("DeleteUserSessions removed %d, want 1", n)
	}
	if n := len(must[[]store.Session](t)(s.ListUserSessions(ctx, "u2"))); n != 1 {
		t.Fatalf("u2 has %d sessions, want 1 (other users' sessions must survive)", n)
	}
	wantErr(t, s.DeleteSession(ctx, next.ID), store.ErrNotFound)
}

func testKV(t *testing.T, s store.Store) {
	ctx := context.Background()
	must[store.KVEntry](t)(s.CreateKV(ctx, "keys/signing/1", []byte("one"), time.Time{}))
	_, err := s.CreateKV(ctx, "keys/signing/1", []byte("other"), time.Time{})
	wantErr(t, err, store.ErrConflict)
	if got := must[store.KVEntry](t)(s.GetKV(ctx, "keys/signing/1")); string(got.Value) != "one" {
		t.Fatalf("a losing CreateKV overwrote the value: %q", got.Value)
	}
	must[store.KVEntry](t)(s.CreateKV(ctx, "keys/signing/2", []byte("two"), time.Time{}))
	must[store.KVEntry](t)(s.CreateKV(ctx, "keys/signingX", []byte("x"), time.Time{}))
	must[store.KVEntry](t)(s.CreateKV(ctx, "keys/50%_off", []byte("y"), time.Time{}))
	list := must[[]store.KVEntry](t)(s.ListKV(ctx, "keys/signing/"))
	if len(list) != 2 || list[0].Key != "keys/signing/1" || list[1].Key != "keys/signing/2" {
		t.Fatalf("ListKV(keys/signing/) = %v", list)
	}
	// '%' and '_' are literal in prefixes.
	if list := must[[]store.KVEntry](t)(s.ListKV(ctx, "keys/5%_")); len(list) != 0 {
		t.Fatalf("ListKV treated %% as a wildcard: %v", list)
	}
	if list := must[[]store.KVEntry](t)(s.ListKV(ctx, "keys/50%_")); len(list) != 1 {
		t.Fatalf("ListKV(keys/50%%_) = %v, want one", list)
	}
	e := must[store.KVEntry](t)(s.UpdateKV(ctx, "keys/signing/2", func(v []byte) ([]byte, error) { return append(v, '!'), nil }))
	if string(e.Value) != "two!" || e.Version != 2 {
		t.Fatalf("UpdateKV = %+v", e)
	}
	if err := s.DeleteKV(ctx, "keys/signing/2"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetKV(ctx, "keys/signing/2")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateKV(ctx, "nothing", func(v []byte) ([]byte, error) { return v, nil })
	wantErr(t, err, store.ErrNotFound)
}

// testKVExpiry checks that an expired entry is gone for every reader:
// single-use grants (authorization codes, refresh tokens) rely on it.
func testKVExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	must[store.KVEntry](t)(s.CreateKV(ctx, "grant/old", []byte("old"), past))
	must[store.KVEntry](t)(s.CreateKV(ctx, "grant/live", []byte("live"), future))
	_, err := s.GetKV(ctx, "grant/old")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateKV(ctx, "grant/old", func(v []byte) ([]byte, error) { return v, nil })
	wantErr(t, err, store.ErrNotFound)
	if list := must[[]store.KVEntry](t)(s.ListKV(ctx, "grant/")); len(list) != 1 || list[0].Key != "grant/live" {
		t.Fatalf("ListKV(grant/) = %v, want only the live entry", list)
	}
	got := must[store.KVEntry](t)(s.GetKV(ctx, "grant/live"))
	if !got.ExpiresAt.Equal(future.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("ExpiresAt = %v, want %v", got.ExpiresAt, future)
	}
	// An expired entry no longer holds its key.
	must[store.KVEntry](t)(s.CreateKV(ctx, "grant/old", []byte("new"), future))
	if got := must[store.KVEntry](t)(s.GetKV(ctx, "grant/old")); string(got.Value) != "new" {
		t.Fatalf("recreated entry = %q", got.Value)
	}
	// The live entry still holds its key, and an update keeps its expiry.
	_, err = s.CreateKV(ctx, "grant/live", []byte("x"), future)
	wantErr(t, err, store.ErrConflict)
	e := must[store.KVEntry](t)(s.UpdateKV(ctx, "grant/live", func(v []byte) ([]byte, error) { return append(v, '!'), nil }))
	if !e.ExpiresAt.Equal(got.ExpiresAt) {
		t.Fatalf("UpdateKV dropped the expiry: %+v", e)
	}
	must[store.KVEntry](t)(s.CreateKV(ctx, "grant/gone", []byte("g"), past))
	if n := must[int](t)(s.DeleteExpiredKV(ctx, time.Now())); n != 1 {
		t.Fatalf("DeleteExpiredKV removed %d, want 1", n)
	}
	if list := must[[]store.KVEntry](t)(s.ListKV(ctx, "grant/")); len(list) != 2 {
		t.Fatalf("DeleteExpiredKV removed live entries: %v", list)
	}
}

// testKVRenew checks that RenewKV sets the expiry with the value, in
// both directions: later, never, and (for a lapsing record) earlier.
func testKVRenew(t *testing.T, s store.Store) {
	ctx := context.Background()
	soon, later := time.Now().Add(time.Minute), time.Now().Add(48*time.Hour)
	must[store.KVEntry](t)(s.CreateKV(ctx, "lock/a", []byte("1"), soon))
	e := must[store.KVEntry](t)(s.RenewKV(ctx, "lock/a", func(v []byte) ([]byte, time.Time, error) {
		return append(v, '2'), later, nil
	}))
	got := must[store.KVEntry](t)(s.GetKV(ctx, "lock/a"))
	if string(got.Value) != "12" || !got.ExpiresAt.Equal(later.UTC().Truncate(time.Microsecond)) || !got.ExpiresAt.Equal(e.ExpiresAt) {
		t.Fatalf("after RenewKV to %s: %+v (returned %+v)", later, got, e)
	}
	must[store.KVEntry](t)(s.RenewKV(ctx, "lock/a", func(v []byte) ([]byte, time.Time, error) { return v, time.Time{}, nil }))
	if got := must[store.KVEntry](t)(s.GetKV(ctx, "lock/a")); !got.ExpiresAt.IsZero() {
		t.Fatalf("RenewKV to never kept an expiry: %+v", got)
	}
	if n := must[int](t)(s.DeleteExpiredKV(ctx, time.Now().Add(24*365*time.Hour))); n != 0 {
		t.Fatalf("DeleteExpiredKV removed %d entries that never expire", n)
	}
	must[store.KVEntry](t)(s.RenewKV(ctx, "lock/a", func(v []byte) ([]byte, time.Time, error) {
		return v, time.Now().Add(-time.Second), nil
	}))
	_, err := s.GetKV(ctx, "lock/a")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RenewKV(ctx, "lock/a", func(v []byte) ([]byte, time.Time, error) { return v, later, nil })
	wantErr(t, err, store.ErrNotFound)
	boom := errors.New("boom")
	must[store.KVEntry](t)(s.CreateKV(ctx, "lock/b", []byte("b"), soon))
	_, err = s.RenewKV(ctx, "lock/b", func(v []byte) ([]byte, time.Time, error) { return []byte("x"), time.Time{}, boom })
	wantErr(t, err, boom)
	if got := must[store.KVEntry](t)(s.GetKV(ctx, "lock/b")); string(got.Value) != "b" || !got.ExpiresAt.Equal(soon.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("a failed RenewKV changed the entry: %+v", got)
	}
}

// testKVQuota: CreateKVWithin counts only live entries under each
// quota's prefix (not expired ones, not look-alike prefixes), counts the
// new entry, and stores nothing it refuses.
func testKVQuota(t *testing.T, s store.Store) {
	ctx := context.Background()
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	must[store.KVEntry](t)(s.CreateKV(ctx, "kept/user/expired", make([]byte, 100), past))
	must[store.KVEntry](t)(s.CreateKV(ctx, "keptX/look-alike", make([]byte, 100), future))
	must[store.KVEntry](t)(s.CreateKV(ctx, "kept0", make([]byte, 100), future))
	all := store.Quota{Prefix: "kept/", MaxCount: 3, MaxBytes: 10}
	anon := store.Quota{Prefix: "kept/anon/", MaxCount: 1, MaxBytes: 4}
	for _, tc := range []struct {
		name, key string
		size      int
		refusedBy string // the quota's prefix; empty: stored
	}{
		{"ok/first-anonymous", "kept/anon/1", 3, ""},
		{"fail/anonymous-count", "kept/anon/2", 1, "kept/anon/"},
		{"ok/user", "kept/user/1", 4, ""},
		{"fail/total-bytes", "kept/user/2", 4, "kept/"},
		{"ok/fills-the-quota", "kept/user/3", 3, ""},
		{"fail/total-count", "kept/user/4", 0, "kept/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateKVWithin(ctx, tc.key, make([]byte, tc.size), future, all, anon)
			if tc.refusedBy == "" {
				if err != nil {
					t.Fatalf("CreateKVWithin(%s): %v", tc.key, err)
				}
				return
			}
			var qe *store.QuotaError
			if !errors.As(err, &qe) || !errors.Is(err, store.ErrQuota) || qe.Quota.Prefix != tc.refusedBy {
				t.Fatalf("CreateKVWithin(%s) = %v, want the quota of %s", tc.key, err, tc.refusedBy)
			}
			_, err = s.GetKV(ctx, tc.key)
			wantErr(t, err, store.ErrNotFound)
		})
	}
	if n, size := must2(t)(s.KVUsage(ctx, "kept/")); n != 3 || size != 10 {
		t.Fatalf("KVUsage(kept/) = %d entries, %d bytes; want 3, 10", n, size)
	}
	// A taken entry frees its share at once.
	if err := s.DeleteKV(ctx, "kept/anon/1"); err != nil {
		t.Fatal(err)
	}
	must[store.KVEntry](t)(s.CreateKVWithin(ctx, "kept/anon/2", []byte("a"), future, all, anon))
}

func must2(t testing.TB) func(int, int64, error) (int, int64) {
	return func(n int, size int64, err error) (int, int64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n, size
	}
}

// testKVQuotaConcurrent: callers racing for the last places of a quota
// (as nodes sharing a database do) never together overshoot it.
func testKVQuotaConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := store.Quota{Prefix: "race/", MaxCount: 5, MaxBytes: 1 << 20}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, refused := 0, 0
	for i := range 20 {
		wg.Go(func() {
			_, err := s.CreateKVWithin(ctx, fmt.Sprintf("race/%d", i), []byte("x"), time.Now().Add(time.Hour), q)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				stored++
			case errors.Is(err, store.ErrQuota):
				refused++
			default:
				t.Errorf("CreateKVWithin: %v", err)
			}
		})
	}
	wg.Wait()
	if n, _ := must2(t)(s.KVUsage(ctx, "race/")); stored != 5 || refused != 15 || n != 5 {
		t.Fatalf("20 racing inserts under a quota of 5: %d stored, %d refused, %d present", stored, refused, n)
	}
}

func testUpdateErrors(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := must[store.User](t)(s.CreateUser(ctx, store.User{ID: id(), Username: "carol", Email: "c@example.com"}))
	boom := errors.New("boom")
	_, err := s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.Email = "changed@example.com"
		return u, boom
	})
	wantErr(t, err, boom)
	if got := must[store.User](t)(s.GetUser(ctx, u.ID)); got.Email != "c@example.com" || got.Version != 1 {
		t.Fatalf("a failed update changed the record: %+v", got)
	}
	_, err = s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.ID = "someone-else"
		return u, nil
	})
	if err == nil {
		t.Fatal("an update that changes the key was accepted")
	}
	// A rename onto a taken username is a conflict, not a silent merge.
	must[store.User](t)(s.CreateUser(ctx, store.User{ID: id(), Username: "dave"}))
	_, err = s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.Username = "dave"
		return u, nil
	})
	wantErr(t, err, store.ErrConflict)
}

// testConcurrentCAS hammers one user and one KV entry from many goroutines;
// every increment must survive.
func testConcurrentCAS(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, rounds = 16, 10
	u := must[store.User](t)(s.CreateUser(ctx, store.User{ID: id(), Username: "counter"}))
	must[store.KVEntry](t)(s.CreateKV(ctx, "counter", []byte("0"), time.Time{}))

	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*2)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				_, err := s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
					u.Groups = append(u.Groups, fmt.Sprintf("g%d-%d", w, r))
					return u, nil
				})
				errs <- err
				_, err = s.UpdateKV(ctx, "counter", func(v []byte) ([]byte, error) {
					var n int
					if _, err := fmt.Sscan(string(v), &n); err != nil {
						return nil, err
					}
					return fmt.Appendf(nil, "%d", n+1), nil
				})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent update failed: %v", err)
		}
	}
	got := must[store.User](t)(s.GetUser(ctx, u.ID))
	if len(got.Groups) != workers*rounds || got.Version != workers*rounds+1 {
		t.Fatalf("user has %d groups at version %d, want %d at %d: an update was lost",
			len(got.Groups), got.Version, workers*rounds, workers*rounds+1)
	}
	if e := must[store.KVEntry](t)(s.GetKV(ctx, "counter")); string(e.Value) != fmt.Sprint(workers*rounds) {
		t.Fatalf("counter = %s, want %d: an update was lost", e.Value, workers*rounds)
	}
}

func testPersistence(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	s := open()
	u := must[store.User](t)(s.CreateUser(ctx, store.User{ID: id(), Username: "erin", Groups: []string{"a"}}))
	sess := must[store.Session](t)(s.CreateSession(ctx, store.Session{ID: id(), UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}))
	must[store.KVEntry](t)(s.CreateKV(ctx, "secret", []byte{1, 2, 3}, time.Time{}))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	defer s.Close()
	if got := must[store.User](t)(s.GetUserByName(ctx, "erin")); got.ID != u.ID || !slices.Equal(got.Groups, []string{"a"}) {
		t.Fatalf("after reopen user = %+v", got)
	}
	if _, err := s.GetSession(ctx, sess.ID); err != nil {
		t.Fatalf("after reopen session: %v", err)
	}
	if e := must[store.KVEntry](t)(s.GetKV(ctx, "secret")); !slices.Equal(e.Value, []byte{1, 2, 3}) {
		t.Fatalf("after reopen kv = %v", e.Value)
	}
}

// BenchSessionLookup measures GetSession, the per-request hot path of
// the gateway, with many goroutines over a table of 10,000 sessions.
func BenchSessionLookup(b *testing.B, opener Opener) {
	ctx := context.Background()
	s := opener(b, nil)()
	defer s.Close()
	ids := make([]string, 10000)
	now := time.Now()
	for i := range ids {
		ids[i] = id()
		ev := []store.AuthEvent{{Method: "password", Time: now, AMR: []string{"pwd"}}}
		if _, err := s.CreateSession(ctx, store.Session{ID: ids[i], UserID: "u", ExpiresAt: now.Add(time.Hour), Events: ev}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.GetSession(ctx, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
			i += 7919
		}
	})
}

func testSignIns(t *testing.T, s store.Store) {
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Second)
	var rows []store.SignIn
	for i := range 25 {
		r := store.SignIn{
			ID:       fmt.Sprintf("si-%02d", i),
			Time:     base.Add(time.Duration(i) * time.Minute),
			UserID:   []string{"alice", "bob"}[i%2],
			App:      []string{"bank", "admin", "wiki"}[i%3],
			Decision: []string{"allow", "challenge"}[i%2],
			Body:     []byte(fmt.Sprintf(`{"n":%d}`, i)),
		}
		if i%5 == 0 {
			r.Policies = []string{"wire-transfer", "admins-mfa"}
		}
		rows = append(rows, r)
	}
	if err := s.AppendSignIns(ctx, rows[:20]); err != nil {
		t.Fatal(err)
	}
	// A retried batch overlapping the first writes each entry once.
	if err := s.AppendSignIns(ctx, rows[15:]); err != nil {
		t.Fatal(err)
	}
	ids := func(got []store.SignIn) []string {
		var out []string
		for _, r := range got {
			out = append(out, r.ID)
		}
		return out
	}
	list := func(q store.SignInQuery) []store.SignIn {
		t.Helper()
		return must[[]store.SignIn](t)(s.ListSignIns(ctx, q))
	}

	all := list(store.SignInQuery{})
	if len(all) != 25 || all[0].ID != "si-24" || all[24].ID != "si-00" {
		t.Fatalf("all sign-ins, newest first: got %v", ids(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq >= all[i-1].Seq {
			t.Fatalf("seq not decreasing: %d then %d", all[i-1].Seq, all[i].Seq)
		}
	}
	first := all[24]
	if string(first.Body) != `{"n":0}` || !first.Time.Equal(base) || first.App != "bank" ||
		!slices.Equal(first.Policies, []string{"admins-mfa", "wire-transfer"}) {
		t.Fatalf("round trip lost data: %+v", first)
	}

	if got := list(store.SignInQuery{UserID: "bob", Decision: "challenge"}); len(got) != 12 {
		t.Fatalf("bob's challenges: got %d, want 12", len(got))
	}
	if got := ids(list(store.SignInQuery{Policy: "wire-transfer"})); !slices.Equal(got, []string{"si-20", "si-15", "si-10", "si-05", "si-00"}) {
		t.Fatalf("policy filter: got %v", got)
	}
	if got := ids(list(store.SignInQuery{App: "admin", Since: base.Add(10 * time.Minute), Until: base.Add(20 * time.Minute)})); !slices.Equal(got, []string{"si-19", "si-16", "si-13", "si-10"}) {
		t.Fatalf("app and time window: got %v", got)
	}
	if got := ids(list(store.SignInQuery{UserID: "alice", Policy: "wire-transfer"})); !slices.Equal(got, []string{"si-20", "si-10", "si-00"}) {
		t.Fatalf("user and policy: got %v", got)
	}
	if got := ids(list(store.SignInQuery{Policy: "wire-transfer", Before: all[5].Seq, Limit: 2})); !slices.Equal(got, []string{"si-15", "si-10"}) {
		t.Fatalf("policy filter from a cursor: got %v", got)
	}

	// Cursor pagination walks everything exactly once.
	var walked []string
	q := store.SignInQuery{Limit: 7}
	for {
		page := list(q)
		if len(page) == 0 {
			break
		}
		walked = append(walked, ids(page)...)
		q.Before = page[len(page)-1].Seq
	}
	if !slices.Equal(walked, ids(all)) {
		t.Fatalf("pagination: walked %v", walked)
	}

	testSignInAmend(t, s, all)

	if n := must[int](t)(s.DeleteSignInsBefore(ctx, base.Add(10*time.Minute))); n != 10 {
		t.Fatalf("retention removed %d, want 10", n)
	}
	if got := ids(list(store.SignInQuery{Policy: "wire-transfer"})); !slices.Equal(got, []string{"si-20", "si-15", "si-10"}) {
		t.Fatalf("policy filter after retention: got %v", got)
	}
}

// testSignInAmend: an amending row replaces the body of the entry it
// names and nothing else (its indexed fields stay, so the filters still
// find it); amendments apply in order, after the new rows of their own
// batch; one for an entry that is gone changes nothing.
func testSignInAmend(t *testing.T, s store.Store, all []store.SignIn) {
	t.Helper()
	ctx := context.Background()
	target := all[3]
	fresh := store.SignIn{ID: "si-new", Time: target.Time, UserID: "carol", App: "bank", Decision: "allow", Body: []byte(`{"v":1}`)}
	batch := []store.SignIn{
		{ID: target.ID, Time: target.Time, UserID: "mallory", App: "other", Decision: "block", Body: []byte(`{"v":"first"}`), Amend: true},
		{ID: target.ID, Time: target.Time, Body: []byte(`{"v":"second"}`), Amend: true},
		fresh,
		{ID: "si-new", Time: target.Time, Body: []byte(`{"v":2}`), Amend: true},
		{ID: "si-gone", Time: target.Time, Body: []byte(`{}`), Amend: true},
	}
	if err := s.AppendSignIns(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got := must[[]store.SignIn](t)(s.ListSignIns(ctx, store.SignInQuery{UserID: target.UserID, App: target.App, Decision: target.Decision}))
	var found *store.SignIn
	for i := range got {
		if got[i].ID == target.ID {
			found = &got[i]
		}
	}
	if found == nil || string(found.Body) != `{"v":"second"}` || found.Seq != target.Seq {
		t.Fatalf("amended entry %+v: want the last body under its own indexed fields and place", found)
	}
	news := must[[]store.SignIn](t)(s.ListSignIns(ctx, store.SignInQuery{UserID: "carol"}))
	if len(news) != 1 || string(news[0].Body) != `{"v":2}` {
		t.Fatalf("an entry amended in its own batch: %+v", news)
	}
	for _, r := range must[[]store.SignIn](t)(s.ListSignIns(ctx, store.SignInQuery{})) {
		if r.ID == "si-gone" {
			t.Fatal("an amendment of a missing entry made one")
		}
	}
}

// testFindUsers pages through users and searches them; alice and bob
// exist already.
func testFindUsers(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, u := range []store.User{
		{Username: "carol", Email: "Carol@Example.org", DisplayName: "Carol Danvers"},
		{Username: "dave_ops", Email: "dave@example.org"},
		{Username: "erin", DisplayName: "100% Erin"},
		{Username: "frank", DisplayName: "Frank Öz"},
	} {
		u.ID = id()
		must[store.User](t)(s.CreateUser(ctx, u))
	}
	names := func(q store.UserQuery) []string {
		var out []string
		for _, u := range must[[]store.User](t)(s.FindUsers(ctx, q)) {
			out = append(out, u.Username)
		}
		return out
	}
	// Pages of two, each after the last name of the one before, cover
	// everyone once, in order.
	var all []string
	for after := ""; ; {
		page := names(store.UserQuery{After: after, Limit: 2})
		if len(page) > 2 {
			t.Fatalf("a page of %d users, want at most 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1]
	}
	if want := []string{"alice", "bob", "carol", "dave_ops", "erin", "frank"}; !slices.Equal(all, want) {
		t.Fatalf("paged users %v, want %v", all, want)
	}
	for _, tc := range []struct {
		match string
		want  []string
	}{
		{"CAROL@example", []string{"carol"}}, // email, whatever the case of ASCII letters
		{"danvers", []string{"carol"}},       // display name
		{"_", []string{"dave_ops"}},          // a literal underscore, not LIKE's any-character
		{"%", []string{"erin"}},              // a literal percent sign
		{"Öz", []string{"frank"}},            // as written
		{"example.org", []string{"carol", "dave_ops"}},
		{"nobody", nil},
	} {
		if got := names(store.UserQuery{Match: tc.match}); !slices.Equal(got, tc.want) {
			t.Errorf("FindUsers(%q) = %v, want %v", tc.match, got, tc.want)
		}
	}
	if got := names(store.UserQuery{Match: "example.org", After: "carol"}); !slices.Equal(got, []string{"dave_ops"}) {
		t.Errorf("FindUsers(example.org after carol) = %v, want [dave_ops]", got)
	}
}
