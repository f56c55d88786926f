package oidc

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/store"
)

// maxVerifiedTokens bounds the cache of verified access tokens. Only
// tokens that passed every check are kept, so filling it takes that
// many live tokens; a forged or altered token is never kept, and always
// costs its full verification.
const maxVerifiedTokens = 10000

// verifiedTokens remembers the access tokens this provider verified, so
// a resource server that introspects the same live token again and
// again (RFC 7662's common case) costs neither a signature check nor
// store reads each time.
//
// An entry is keyed by the SHA-256 of the whole token, so only the very
// bytes that were verified find it. It is trusted only under the store's
// access mark it was verified under (store.AccessWatch): any write that
// can end access — on this node, another node sharing PostgreSQL, or the
// command line — changes the mark, and the next request verifies again.
// What changes with the clock alone is checked on every hit against the
// entry: the token's exp and nbf, its grant's lifetime, the key still
// published, the roles it names still held. Client authentication and
// what the caller may learn are never cached: the cache sits below
// them, in VerifyAccessToken.
type verifiedTokens struct {
	watch store.AccessWatch
	// mu guards m.
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*verifiedToken
}

// verifiedToken is what one verification found; read only once stored.
type verifiedToken struct {
	claims *AccessClaims
	// kid and alg are the signing key's, which must still be published.
	kid, alg string
	mark     uint64
	// grantEnds is when the token's grant expires from the store (zero
	// for a token without a grant).
	grantEnds time.Time
	// user is the token's user as verified, when the token names roles:
	// they are held (User.RolesAt) at the time of each request.
	user *store.User
}

// facts are what a full verification read besides the claims.
type facts struct {
	kid, alg  string
	grantEnds time.Time
	user      *store.User
}

func newVerifiedTokens(st any) *verifiedTokens {
	w, ok := st.(store.AccessWatch)
	if !ok {
		return nil
	}
	// The first read starts a backend's listening, so the cache is in
	// use by the time the first resource servers call.
	_, _ = w.AccessMark(context.Background())
	return &verifiedTokens{watch: w, m: map[[sha256.Size]byte]*verifiedToken{}}
}

// mark is the access mark now, and whether cached entries may be
// trusted at all; it is read before any state a verification reads.
func (v *verifiedTokens) mark(ctx context.Context) (uint64, bool) {
	if v == nil {
		return 0, false
	}
	return v.watch.AccessMark(ctx)
}

func (v *verifiedTokens) get(key [sha256.Size]byte, mark uint64) *verifiedToken {
	v.mu.RLock()
	e := v.m[key]
	v.mu.RUnlock()
	if e == nil || e.mark != mark {
		return nil
	}
	return e
}

func (v *verifiedTokens) put(key [sha256.Size]byte, e *verifiedToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= maxVerifiedTokens {
		for k, old := range v.m {
			if old.mark != e.mark {
				delete(v.m, k)
			}
		}
		if len(v.m) >= maxVerifiedTokens {
			clear(v.m) // all current: crude but bounded, the next requests verify again
		}
	}
	v.m[key] = e
}

// cachedAccessToken returns the claims of the token whose hash is key
// when it was verified under mark and still holds at now; nil sends the
// caller to the full verification, which gives the refusal its reason.
func (p *Provider) cachedAccessToken(ctx context.Context, key [sha256.Size]byte, mark uint64) *AccessClaims {
	e := p.verified.get(key, mark)
	if e == nil {
		return nil
	}
	now := p.Now()
	if k, ok := p.Keys.verificationKey(ctx, e.kid); !ok || k.Alg != e.alg {
		return nil
	}
	if e.claims.ValidateWithLeeway(jwt.Expected{Issuer: p.Issuer, Time: now}, clockSkew) != nil {
		return nil
	}
	if !e.grantEnds.IsZero() && !now.Before(e.grantEnds) {
		return nil
	}
	if e.user != nil {
		held := e.user.RolesAt(now, e.claims.RolesApp())
		for _, role := range e.claims.Roles {
			if !slices.Contains(held, role) {
				return nil
			}
		}
	}
	c := *e.claims
	return &c
}

// rememberAccessToken keeps what a verification under mark found.
func (p *Provider) rememberAccessToken(key [sha256.Size]byte, mark uint64, c *AccessClaims, f facts) {
	cp := *c
	p.verified.put(key, &verifiedToken{claims: &cp, kid: f.kid, alg: f.alg, mark: mark, grantEnds: f.grantEnds, user: f.user})
}
