// Package revoke is continuous access evaluation: when something
// critical happens to a user — disabled, password changed or reset, all
// sessions revoked by an administrator, user risk raised to high, a
// sign-in method removed — everything the user holds stops working at
// once, not when it would have expired.
//
// Sessions are deleted. Tokens cannot be deleted (they are signed and may
// sit in any cache), so the user gets a "not before" time instead: every
// check of an access token or refresh grant issued before it fails, and
// the gateway answers API clients with a challenge naming the time.
package revoke

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Keep is how long a not-before record lives after the time it holds:
// at least as long as any refresh grant or token it must outlast, which
// is why configuration refuses a longer oidc.refresh_token_lifetime. Each
// revocation renews it; a record that lapsed a fixed time after the first
// revocation would bring back a grant that a later revocation ended.
const Keep = 90 * 24 * time.Hour

// Store is what revocation touches.
type Store interface {
	store.KV
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

// Revoker revokes users' sessions and tokens.
type Revoker struct {
	st  Store
	log *slog.Logger
	now func() time.Time
	// mu guards subscribers.
	mu          sync.Mutex
	subscribers []func(userID string)
}

// Subscribe calls fn after every revocation made through r, so caches in
// this process (the gateway's) drop what they hold at once.
func (r *Revoker) Subscribe(fn func(userID string)) {
	r.mu.Lock()
	r.subscribers = append(r.subscribers, fn)
	r.mu.Unlock()
}

// New returns a Revoker.
func New(st Store, log *slog.Logger, now func() time.Time) *Revoker {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Revoker{st: st, log: log, now: now}
}

// RevokeUser ends every session of userID and makes every token issued
// before now invalid. reason is logged ("disabled", "password-changed",
// "admin-revoke", "risk-high", "method-removed").
func (r *Revoker) RevokeUser(ctx context.Context, userID, reason string) error {
	now := r.now().UTC()
	rec := kvspace.RevokedBefore.At(userID)
	err := rec.Renew(ctx, r.st, func(prev time.Time) (time.Time, time.Time, error) {
		// Never move the time back: a later event keeps its later time.
		if prev.After(now) {
			return prev, prev.Add(Keep), nil
		}
		return now, now.Add(Keep), nil
	})
	if errors.Is(err, kvspace.ErrCorrupt) {
		// A record that cannot be read cannot hold a later time: the
		// revocation replaces it rather than fail.
		if err = rec.Delete(ctx, r.st); err == nil || errors.Is(err, store.ErrNotFound) {
			err = store.ErrNotFound
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		err = rec.Create(ctx, r.st, now, now.Add(Keep))
		if errors.Is(err, store.ErrConflict) {
			return r.RevokeUser(ctx, userID, reason)
		}
	}
	if err != nil {
		return fmt.Errorf("revoke user %s: %w", userID, err)
	}
	n, err := r.st.DeleteUserSessions(ctx, userID)
	if err != nil {
		return fmt.Errorf("revoke user %s: %w", userID, err)
	}
	r.log.InfoContext(ctx, "user access revoked", "user_id", userID, "reason", reason, "sessions", n, "not_before", now)
	r.mu.Lock()
	subs := append([]func(string){}, r.subscribers...)
	r.mu.Unlock()
	for _, fn := range subs {
		fn(userID)
	}
	return nil
}

// NotBefore is the time before which userID's tokens are invalid; zero
// when nothing was revoked.
func (r *Revoker) NotBefore(ctx context.Context, userID string) (time.Time, error) {
	nbf, err := kvspace.RevokedBefore.At(userID).Get(ctx, r.st)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("revocation record of %s: %w", userID, err)
	}
	return nbf, nil
}

// Revoked reports whether something issued at issued predates userID's
// not-before time. Callers pass the most precise issue time they have
// (a grant's creation time, to the microsecond); a token's iat is whole
// seconds, which rounds down and so errs on the side of revoking.
func (r *Revoker) Revoked(ctx context.Context, userID string, issued time.Time) (bool, time.Time, error) {
	nbf, err := r.NotBefore(ctx, userID)
	if err != nil || nbf.IsZero() {
		return false, nbf, err
	}
	return issued.Before(nbf), nbf, nil
}
