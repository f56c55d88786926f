package gateway

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// identityTTL is how long an identity found for a gateway cookie or a
// bearer token is reused without asking the store again. It is the
// staleness bound of the gateway: signing out, disabling a user, or
// revoking a token or its grant takes effect on requests through the
// gateway at most this long after it happened (at once on Stepgate's own
// pages). Everything that is not a lookup is still decided per request:
// the session's lifetime and idle timeout, the token's expiry, the
// policies, the rule's max age and single-use elevation.
//
// Without it every proxied request costs three store reads (gateway
// cookie, session, user) or a signature verification and two reads
// (token, deny list, grant), several times the cost of proxying. On the
// node where a security event or a token's revocation happens, Forget
// drops the caches at once;
// other nodes follow within this bound, well inside a second.
const identityTTL = 500 * time.Millisecond

// maxCachedIdentities bounds each identity cache. Only identities that
// were found are cached, so filling it takes that many live sessions or
// valid tokens; unknown cookies and forged tokens always reach the store.
const maxCachedIdentities = 10000

// ttlCache maps the SHA-256 of a bearer secret (gateway cookie, access
// token) to what it was found to stand for, and when. Keys are hashes so
// the secrets themselves are not kept.
type ttlCache[V any] struct {
	// mu guards m.
	mu sync.Mutex
	m  map[[sha256.Size]byte]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	checked time.Time
}

// get returns the value cached for key if it was looked up less than
// identityTTL before now.
func (c *ttlCache[V]) get(key [sha256.Size]byte, now time.Time) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || now.Sub(e.checked) >= identityTTL || now.Before(e.checked) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// forget drops every entry.
func (c *ttlCache[V]) forget() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *ttlCache[V]) put(key [sha256.Size]byte, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]cacheEntry[V]{}
	}
	if len(c.m) >= maxCachedIdentities {
		for k, e := range c.m {
			if now.Sub(e.checked) >= identityTTL {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedIdentities {
			clear(c.m) // all fresh: crude but bounded, the next requests look up again
		}
	}
	c.m[key] = cacheEntry[V]{v: v, checked: now}
}

// browserEntry is what a gateway cookie led to. The cache holds it by
// pointer and never changes it: a hit copies out only what the request
// uses, and the cache's lock is held for a pointer's copy.
type browserEntry struct {
	route string
	// sess is shared, read only, by every request the entry serves, so
	// a cache hit copies nothing.
	sess *store.Session
	user store.User
	memo *identityMemo
}

// bearerEntry is what a verified access token stands for. found is false
// for a service client's token, whose subject is no user.
type bearerEntry struct {
	claims *oauth.AccessClaims
	user   store.User
	found  bool
	// proofs holds the events the token was issued on (its prf claim),
	// for the access request of each request it makes.
	proofs *store.Session
	memo   *identityMemo
}
