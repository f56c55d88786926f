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
	// HardLimit, when above zero, is the number of consecutive failures
	// after which the key stays locked until an administrator resets it
	// (NIST SP 800-63B 5.2.2: at most 100 consecutive failed attempts on
	// one authenticator). Zero for keys shared by many people (an address).
	HardLimit int
}

// NewThrottle returns a throttle with the defaults above.
func NewThrottle(kv store.KV, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{kv: kv, now: now, Free: 5, Base: 30 * time.Second, Max: 15 * time.Minute, HardLimit: 100}
}

type throttleState struct {
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	Last        time.Time `json:"last,omitzero"`
}

// throttleRecordLife is how long a throttle record outlives the last
// failure it counts. Each failure renews it: were it to expire at a time
// fixed by the first failure, a slow attacker (one guess per lock period,
// for longer than the record lives) would start afresh every time it
// lapsed and never reach the hard limit. Forgetting after a quiet spell is
// decided from Last instead; the record's life only bounds how long an
// idle key takes space. A hard lock never expires.
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
	update := func(s throttleState) throttleState {
		hardLocked := t.HardLimit > 0 && s.Failures >= t.HardLimit
		// Failures are forgotten after a quiet hour past the longest lock,
		// but a hard lock waits for an administrator.
		if !hardLocked && !s.Last.IsZero() && now.Sub(s.Last) > t.Max+time.Hour {
			s = throttleState{}
		}
		s.Last = now
		s.Failures++
		if over := s.Failures - t.Free; over > 0 {
			lock := t.Base << min(over-1, 20)
			s.LockedUntil = now.Add(min(lock, t.Max))
		}
		if t.HardLimit > 0 && s.Failures >= t.HardLimit {
			s.LockedUntil = hardLockUntil
		}
		return s
	}
	// The state and the record's life change in one compare-and-swap: a
	// hard lock made permanent in a second step (delete, then create
	// without expiry) could be lost to a guess racing into the gap, which
	// would find no record, pass Check and start the count afresh.
	_, err := t.kv.RenewKV(ctx, throttleKey(key), func(b []byte) ([]byte, time.Time, error) {
		var s throttleState
		_ = json.Unmarshal(b, &s)
		return throttleRecord(update(s), now)
	})
	if errors.Is(err, store.ErrNotFound) {
		b, expires, _ := throttleRecord(update(throttleState{}), now)
		_, err = t.kv.CreateKV(ctx, throttleKey(key), b, expires)
		if errors.Is(err, store.ErrConflict) {
			return t.Fail(ctx, key)
		}
	}
	return err
}

// throttleRecord encodes s and says when its record may go: never while hard
// locked, otherwise throttleRecordLife after this failure.
func throttleRecord(s throttleState, now time.Time) ([]byte, time.Time, error) {
	b, err := json.Marshal(s)
	if s.LockedUntil.Equal(hardLockUntil) {
		return b, time.Time{}, err
	}
	return b, now.Add(throttleRecordLife), err
}

// hardLockUntil marks a key locked until an administrator resets it.
var hardLockUntil = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Reset clears key after a success, or when an administrator unlocks it.
func (t *Throttle) Reset(ctx context.Context, key string) error {
	err := t.kv.DeleteKV(ctx, throttleKey(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
