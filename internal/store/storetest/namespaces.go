package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// ClockOpener opens one fresh, empty database whose clock is now.
type ClockOpener func(t testing.TB, now func() time.Time) store.Store

// clock is a settable clock; it starts at the real time, so nothing the
// store compares with the real clock is pinned.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// RunNamespaceTests stores, for every namespace of the key/value
// catalogue, a representative value of its shape under a representative
// key, and checks what its writer relies on: the round trip, its expiry
// on the store's clock, create-only, compare-and-swap, renewal, listing
// and quotas, as the namespace declares them.
func RunNamespaceTests(t *testing.T, open ClockOpener) {
	c := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
	s := open(t, c.now)
	t.Cleanup(func() { _ = s.Close() })
	for _, sp := range kvspace.All() {
		t.Run(sp.Name(), func(t *testing.T) {
			testRoundTrip(t, s, c, sp)
			testExpiry(t, s, c, sp)
			if sp.Uses(kvspace.UseCreateOnly) {
				testCreateOnly(t, s, c, sp)
			}
			if sp.Uses(kvspace.UseUpdate) {
				testUpdate(t, s, c, sp)
			}
			if sp.Uses(kvspace.UseRenew) {
				testRenew(t, s, c, sp)
			}
			if sp.Uses(kvspace.UseQuota) {
				testNamespaceQuota(t, s, c, sp)
			}
		})
	}
	t.Run("lists-hold-only-their-namespace", func(t *testing.T) { testListsApart(t, s, c) })
}

// sampleAt is the namespace's sample value under a fresh id, so each check
// starts from no entry; fixed namespaces have one entry, cleared first.
func sampleAt(t *testing.T, s store.Store, sp kvspace.Space) (kvspace.Ref[[]byte], []byte, string) {
	t.Helper()
	id, value := sp.Sample()
	ns := kvspace.Raw(sp)
	switch {
	case sp.Fixed():
		if err := ns.At().Delete(context.Background(), s); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	case sp.Hashed():
		id = []string{id[0] + "|" + rand8()}
	default:
		id[len(id)-1] += "-" + rand8()
	}
	ref := ns.At(id...)
	key, err := ref.Key()
	if err != nil {
		t.Fatalf("sample id %q: %v", id, err)
	}
	return ref, value, key
}

func rand8() string { return strings.ToLower(id()[:8]) }

// lifetime is how long the checks' entries live.
const lifetime = time.Hour

func expiresFor(sp kvspace.Space, now time.Time) time.Time {
	if sp.Expiry() == kvspace.Never {
		return time.Time{}
	}
	return now.Add(lifetime)
}

func testRoundTrip(t *testing.T, s store.Store, c *clock, sp kvspace.Space) {
	ctx := context.Background()
	ref, value, key := sampleAt(t, s, sp)
	if !strings.HasPrefix(key, sp.Prefix()) {
		t.Fatalf("key %q is outside the prefix %q", key, sp.Prefix())
	}
	exp := expiresFor(sp, c.now())
	if err := ref.Create(ctx, s, value, exp); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, e, err := ref.Entry(ctx, s)
	if err != nil || !bytes.Equal(got, value) || e.Key != key {
		t.Fatalf("round trip of %q at %q: got %q at %q, %v", value, key, got, e.Key, err)
	}
	if !e.ExpiresAt.Equal(exp) {
		t.Fatalf("expiry %v, want %v", e.ExpiresAt, exp)
	}
}

// testExpiry moves the store's clock: an entry with an expiry is there
// until that instant and gone from it on, for every reader, no longer
// holds its key, and is swept; one without outlives any sweep.
func testExpiry(t *testing.T, s store.Store, c *clock, sp kvspace.Space) {
	ctx := context.Background()
	ref, value, key := sampleAt(t, s, sp)
	start := c.now()
	exp := expiresFor(sp, start)
	if err := ref.Create(ctx, s, value, exp); err != nil {
		t.Fatalf("create: %v", err)
	}
	defer c.set(start)
	if exp.IsZero() {
		c.set(start.Add(10 * 365 * 24 * time.Hour))
		if _, err := ref.Get(ctx, s); err != nil {
			t.Fatalf("an entry that never expires is gone ten years on: %v", err)
		}
		if _, err := s.DeleteExpiredKV(ctx, c.now()); err != nil {
			t.Fatal(err)
		}
		if _, err := ref.Get(ctx, s); err != nil {
			t.Fatalf("the sweep removed an entry that never expires: %v", err)
		}
		return
	}
	c.set(exp.Add(-time.Microsecond))
	if _, err := ref.Get(ctx, s); err != nil {
		t.Fatalf("gone before its expiry: %v", err)
	}
	c.set(exp)
	if _, err := ref.Get(ctx, s); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read at its expiry: %v, want ErrNotFound", err)
	}
	if err := ref.Update(ctx, s, func(b []byte) ([]byte, error) { return b, nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update after its expiry: %v, want ErrNotFound", err)
	}
	if list := must[[]store.KVEntry](t)(s.ListKV(ctx, key)); len(list) != 0 {
		t.Fatalf("listed after its expiry: %v", list)
	}
	if _, err := s.DeleteExpiredKV(ctx, exp.Add(time.Microsecond)); err != nil {
		t.Fatal(err)
	}
	c.set(start)
	if _, err := ref.Get(ctx, s); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the sweep left an expired entry: %v", err)
	}
	if err := ref.Create(ctx, s, value, expiresFor(sp, start)); err != nil {
		t.Fatalf("an expired entry still holds its key: %v", err)
	}
}

func testCreateOnly(t *testing.T, s store.Store, c *clock, sp kvspace.Space) {
	ctx := context.Background()
	ref, value, _ := sampleAt(t, s, sp)
	exp := expiresFor(sp, c.now())
	if err := ref.Create(ctx, s, value, exp); err != nil {
		t.Fatal(err)
	}
	err := ref.Create(ctx, s, []byte("other"), exp)
	wantErr(t, err, store.ErrConflict)
	if got, _ := ref.Get(ctx, s); !bytes.Equal(got, value) {
		t.Fatalf("a second create overwrote %q with %q", value, got)
	}
}

func testUpdate(t *testing.T, s store.Store, c *clock, sp kvspace.Space) {
	ctx := context.Background()
	ref, value, _ := sampleAt(t, s, sp)
	exp := expiresFor(sp, c.now())
	if err := ref.Create(ctx, s, value, exp); err != nil {
		t.Fatal(err)
	}
	_, before, _ := ref.Entry(ctx, s)
	changed := append(append([]byte(nil), value...), ' ')
	if err := ref.Update(ctx, s, func(b []byte) ([]byte, error) {
		if !bytes.Equal(b, value) {
			t.Errorf("update saw %q, want %q", b, value)
		}
		return changed, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, e, err := ref.Entry(ctx, s)
	if err != nil || !bytes.Equal(got, changed) || e.Version != before.Version+1 || !e.ExpiresAt.Equal(exp) {
		t.Fatalf("after update: %q v%d expires %v, %v; want %q v%d expires %v", got, e.Version, e.ExpiresAt, err, changed, before.Version+1, exp)
	}
	refused := errors.New("refused")
	if err := ref.Update(ctx, s, func([]byte) ([]byte, error) { return []byte("x"), refused }); !errors.Is(err, refused) {
		t.Fatalf("a refused update = %v", err)
	}
	if got, _ := ref.Get(ctx, s); !bytes.Equal(got, changed) {
		t.Fatalf("a refused update stored %q", got)
	}
}

// testRenew: a renewal sets the expiry with the value, so an entry that
// must outlive its latest change does, and can become permanent.
func testRenew(t *testing.T, s store.Store, c *clock, sp kvspace.Space) {
	ctx := context.Background()
	ref, value, _ := sampleAt(t, s, sp)
	start := c.now()
	defer c.set(start)
	if err := ref.Create(ctx, s, value, start.Add(lifetime)); err != nil {
		t.Fatal(err)
	}
	later := start.Add(3 * lifetime)
	if err := ref.Renew(ctx, s, func(b []byte) ([]byte, time.Time, error) { return b, later, nil }); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(2 * lifetime))
	if got, err := ref.Get(ctx, s); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("a renewed entry lapsed at its first expiry: %q, %v", got, err)
	}
	if err := ref.Renew(ctx, s, func(b []byte) ([]byte, time.Time, error) { return b, time.Time{}, nil }); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(10 * 365 * 24 * time.Hour))
	if _, err := ref.Get(ctx, s); err != nil {
		t.Fatalf("an entry renewed to never expired: %v", err)
	}
}

// testNamespaceQuota: a namespace's quota counts its own live entries, and
// the total quota of kept requests counts both classes.
func testNamespaceQuota(t *testing.T, s store.Store, c *clock, sp kvspace.Space) {
	ctx := context.Background()
	ns := kvspace.Raw(sp)
	n0, _ := must2(t)(s.KVUsage(ctx, sp.Prefix()))
	total0, _ := must2(t)(s.KVUsage(ctx, kvspace.GatewayKept))
	ref, value, _ := sampleAt(t, s, sp)
	quota := ns.Quota(n0+1, 1<<20)
	if err := ref.CreateWithin(ctx, s, value, expiresFor(sp, c.now()), quota); err != nil {
		t.Fatalf("first entry within the quota: %v", err)
	}
	other, _, _ := sampleAt(t, s, sp)
	err := other.CreateWithin(ctx, s, value, expiresFor(sp, c.now()), quota)
	wantErr(t, err, store.ErrQuota)
	if strings.HasPrefix(sp.Prefix(), kvspace.GatewayKept) {
		if total, _ := must2(t)(s.KVUsage(ctx, kvspace.GatewayKept)); total != total0+1 {
			t.Fatalf("the total of kept requests is %d, want %d", total, total0+1)
		}
	}
}

// testListsApart stores the sample of every namespace, plus an entry of a
// look-alike owner, and lists each: a namespace's listing holds its own
// entries only, and an owner's only that owner's.
func testListsApart(t *testing.T, s store.Store, c *clock) {
	ctx := context.Background()
	for _, sp := range kvspace.All() {
		ref, value, _ := sampleAt(t, s, sp)
		if err := ref.Create(ctx, s, value, expiresFor(sp, c.now())); err != nil {
			t.Fatalf("%s: %v", sp.Name(), err)
		}
	}
	for _, sp := range kvspace.All() {
		if !sp.Uses(kvspace.UseList) {
			continue
		}
		ns := kvspace.Raw(sp)
		items, err := ns.List(ctx, s)
		if err != nil || len(items) == 0 {
			t.Fatalf("%s: listed %d, %v", sp.Name(), len(items), err)
		}
		for _, it := range items {
			if _, err := sp.Key(strings.Split(it.ID, kvspace.Separator)...); err != nil {
				t.Errorf("%s lists %q, which is not one of its keys: %v", sp.Name(), it.ID, err)
			}
		}
		minParts, _ := sp.Parts()
		if minParts < 2 {
			continue
		}
		id, value := sp.Sample()
		owner, lookalike := id[0]+"-own", id[0]+"-own2"
		mine := ns.At(append([]string{owner}, id[1:]...)...)
		theirs := ns.At(append([]string{lookalike}, id[1:]...)...)
		for _, ref := range []kvspace.Ref[[]byte]{mine, theirs} {
			if err := ref.Create(ctx, s, value, expiresFor(sp, c.now())); err != nil {
				t.Fatal(err)
			}
		}
		items, err = ns.List(ctx, s, owner)
		if err != nil || len(items) != 1 {
			t.Fatalf("%s: the listing of %q holds %d entries, %v; want its one", sp.Name(), owner, len(items), err)
		}
	}
}
