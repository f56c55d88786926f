package dbgate

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// tokenChecks remembers the last successful check of each token in use,
// so that the sessions sharing a token (a pool of connections an
// application opened with one token) check it once a second between
// them rather than once a second each: a check verifies a signature and
// reads the store, a millisecond of work.
//
// Sharing never stretches the bound on a revoked token: a session takes
// the check's own time as its last verification, so every session still
// runs no statement more than reverifyEvery after the last check that
// succeeded.
type tokenChecks struct {
	mu   sync.Mutex
	last map[string]tokenCheck // by the raw token
}

type tokenCheck struct {
	user   store.User
	claims *oauth.AccessClaims
	at     time.Time
}

// maxTokenChecks bounds the map; past it, checks older than
// reverifyEvery are dropped.
const maxTokenChecks = 4096

func (t *tokenChecks) get(token string) (tokenCheck, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.last[token]
	return e, ok
}

func (t *tokenChecks) put(token string, e tokenCheck, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[string]tokenCheck{}
	}
	if len(t.last) >= maxTokenChecks {
		for k, old := range t.last {
			if now.Sub(old.at) >= reverifyEvery {
				delete(t.last, k)
			}
		}
		if len(t.last) >= maxTokenChecks {
			clear(t.last)
		}
	}
	t.last[token] = e
}

func (t *tokenChecks) forget(token string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.last, token)
}

// recheckToken checks a signed-in session's token again: through a
// check another session made of the same token under a second ago, or
// afresh (checkToken). The session gets its own copy of the claims, so
// nothing one session adds to them reaches another.
func (s *Server) recheckToken(ctx context.Context, c *client) error {
	now := s.Now()
	if e, ok := s.checks.get(c.token); ok && now.Sub(e.at) < reverifyEvery && !now.Before(e.at) && e.user.Username == c.user.Username {
		claims := *e.claims
		claims.Proofs = slices.Clone(e.claims.Proofs)
		c.user, c.claims, c.verified = e.user, &claims, e.at
		return nil
	}
	if err := s.checkToken(ctx, c, c.user.Username); err != nil {
		s.checks.forget(c.token)
		return err
	}
	claims := *c.claims
	claims.Proofs = slices.Clone(c.claims.Proofs)
	s.checks.put(c.token, tokenCheck{user: c.user, claims: &claims, at: c.verified}, now)
	return nil
}
