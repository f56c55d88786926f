package authn

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// Throttle slows down guessing: after Free consecutive failures for a key
// (a user, an IP address, a phone number) each further failure locks the
// key for Base, doubling up to Max. A success resets the count. With the
// defaults an attacker gets 5 free guesses, then at most one guess per
// lock period, which reaches 15 minutes after 9 failures: well inside
// NIST SP 800-63B's limit of 100 consecutive failures, while a user who
// mistypes a few times never notices.
type Throttle struct {
	kv   store.KV
	now  func() time.Time
	Free int
	Base time.Duration
	Max  time.Duration
}

// NewThrottle returns a throttle with the defaults above.
func NewThrottle(kv store.KV, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{kv: kv, now: now, Free: 5, Base: 30 * time.Second, Max: 15 * time.Minute}
}

type throttleState struct {
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	Last        time.Time `json:"last,omitzero"`
}

// throttleRecordLife is how long a throttle record exists. The store
// keeps an entry's expiry when it is updated, so the record must outlive
// a sustained attack: were it to expire an hour after the first failure,
// an attacker would get fresh free guesses every hour. Forgetting after
// a quiet spell is decided from Last instead.
const throttleRecordLife = 7 * 24 * time.Hour

func throttleKey(key string) string { return "authn/throttle/" + key }

// Check returns ErrThrottled while key is locked.
func (t *Throttle) Check(ctx context.Context, key string) error {
	e, err := t.kv.GetKV(ctx, throttleKey(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var s throttleState
	if json.Unmarshal(e.Value, &s) == nil && t.now().Before(s.LockedUntil) {
		return ErrThrottled
	}
	return nil
}

// Fail records a failure for key.
func (t *Throttle) Fail(ctx context.Context, key string) error {
	now := t.now()
	expires := now.Add(throttleRecordLife)
	update := func(s throttleState) throttleState {
		// Failures are forgotten after a quiet hour past the longest lock.
		if !s.Last.IsZero() && now.Sub(s.Last) > t.Max+time.Hour {
			s = throttleState{}
		}
		s.Last = now
		s.Failures++
		if over := s.Failures - t.Free; over > 0 {
			lock := t.Base << min(over-1, 20)
			s.LockedUntil = now.Add(min(lock, t.Max))
		}
		return s
	}
	_, err := t.kv.UpdateKV(ctx, throttleKey(key), func(b []byte) ([]byte, error) {
		var s throttleState
		_ = json.Unmarshal(b, &s)
		return json.Marshal(update(s))
	})
	if errors.Is(err, store.ErrNotFound) {
		b, _ := json.Marshal(update(throttleState{}))
		_, err = t.kv.CreateKV(ctx, throttleKey(key), b, expires)
		if errors.Is(err, store.ErrConflict) {
			return t.Fail(ctx, key)
		}
	}
	return err
}

// Reset clears key after a success.
func (t *Throttle) Reset(ctx context.Context, key string) error {
	err := t.kv.DeleteKV(ctx, throttleKey(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
