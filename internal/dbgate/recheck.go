package dbgate

import (
	"context"
	"sync"
	"time"
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

// tokenCheck is a successful check: the identity it found (never
// changed once made, so sessions can share it) and when.
type tokenCheck struct {
	id *identity
	at time.Time
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
// check another session made of the same token for the same user under a
// second ago, or afresh (checkToken).
func (s *Server) recheckToken(ctx context.Context, token, username string) (*identity, error) {
	now := s.Now()
	if e, ok := s.checks.get(token); ok && now.Sub(e.at) < reverifyEvery && !now.Before(e.at) && e.id.user.Username == username {
		return e.id, nil
	}
	id, err := s.checkToken(ctx, token, username)
	if err != nil {
		s.checks.forget(token)
		return nil, err
	}
	s.checks.put(token, tokenCheck{id: id, at: id.verified}, now)
	return id, nil
}
