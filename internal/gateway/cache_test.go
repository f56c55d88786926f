package gateway

import (
	"crypto/sha256"
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	key := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	var c ttlCache[string]
	if _, ok := c.get(key("a"), now); ok {
		t.Fatal("fail/empty: a hit in an empty cache")
	}
	c.put(key("a"), "alice", now)
	for _, tc := range []struct {
		name  string
		at    time.Time
		found bool
	}{
		{"ok/fresh", now.Add(identityTTL - time.Millisecond), true},
		{"fail/stale", now.Add(identityTTL), false},
		{"fail/clock-went-back", now.Add(-time.Second), false},
	} {
		if v, ok := c.get(key("a"), tc.at); ok != tc.found || (ok && v != "alice") {
			t.Errorf("%s: got %q, %v; want found=%v", tc.name, v, ok, tc.found)
		}
	}
	if _, ok := c.get(key("b"), now); ok {
		t.Error("fail/other-key: a hit for a key never put")
	}
}

func TestTTLCacheBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var c ttlCache[int]
	for i := range 2 * maxCachedIdentities {
		c.put(sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)}), i, now)
		if len(c.m) > maxCachedIdentities {
			t.Fatalf("the cache holds %d entries, more than %d", len(c.m), maxCachedIdentities)
		}
	}
}

func TestBufferPool(t *testing.T) {
	t.Parallel()
	p := make(bufferPool, 1)
	b := p.Get()
	if len(b) != proxyBufferSize {
		t.Fatalf("a new buffer has %d bytes, want %d", len(b), proxyBufferSize)
	}
	p.Put(b[:10])
	if got := p.Get(); len(got) != proxyBufferSize || &got[0] != &b[0] {
		t.Fatal("a returned buffer is not lent again at full size")
	}
	p.Put(make([]byte, 100)) // a foreign buffer is dropped
	if len(p) != 0 {
		t.Fatal("a buffer of another size was kept")
	}
}
