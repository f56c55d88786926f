package authn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
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

// throttles are the throttle records, by key. A key that makes no id of
// the namespace (a typed name with a control character, an empty segment
// or over its length) is counted under its hash instead, so a name no
// account can have is throttled like any other. A change reads a corrupt
// record as a fresh count (the repair bindings), as a read ignores it.
var (
	throttles             = kvspace.JSON[throttleState](kvspace.Throttle)
	throttlesRepair       = kvspace.LenientJSON[throttleState](kvspace.Throttle)
	throttleDigests       = kvspace.JSON[throttleState](kvspace.ThrottleDigest)
	throttleDigestsRepair = kvspace.LenientJSON[throttleState](kvspace.ThrottleDigest)
)

// throttleAt is key's record in plain, or in digests when key makes no
// id of plain.
func throttleAt(plain, digests kvspace.Namespace[throttleState], key string) kvspace.Ref[throttleState] {
	if _, err := plain.Key(key); err != nil {
		return digests.At(key)
	}
	return plain.At(key)
}

// Check returns ErrThrottled while key is locked. It reserves nothing, so
// it only suits gates in front of something that is not a guess, such as
// sending a new code; a guess goes through Begin.
func (t *Throttle) Check(ctx context.Context, key string) error {
	s, err := throttleAt(throttles, throttleDigests, key).Get(ctx, t.kv)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil && !errors.Is(err, kvspace.ErrCorrupt) {
		return err
	}
	if err == nil && t.now().Before(s.LockedUntil) {
		return ErrThrottled
	}
	return nil
}

// Attempt is one guess at key, counted as a failure from the moment Begin
// admitted it. The caller ends it with Failed (the answer was wrong),
// Succeeded (right: the count starts afresh) or Release (the secret was
// never compared, or a right answer on a key many people share).
type Attempt struct {
	t    *Throttle
	key  string
	done bool
}

// Begin admits one guess at key, or returns ErrThrottled while key is
// locked. The guess is counted as a failure in the same compare-and-swap
// that checks the lock: were the check and the count two steps, many
// parallel guesses would all pass the check before the first failure
// landed, and a burst of requests (one node or many sharing a database)
// would get far more guesses than the lock allows. So a burst gets exactly
// what a patient attacker gets: Free guesses, then one per lock period.
func (t *Throttle) Begin(ctx context.Context, key string) (*Attempt, error) {
	now := t.now()
	admit := func(s throttleState) (throttleState, error) {
		if now.Before(s.LockedUntil) {
			return s, ErrThrottled
		}
		return t.count(s, now), nil
	}
	if err := t.change(ctx, key, now, admit); err != nil {
		return nil, err
	}
	return &Attempt{t: t, key: key}, nil
}

// Failed ends a wrong guess; Begin already counted it.
func (a *Attempt) Failed() { a.done = true }

// Succeeded ends a right guess: the key's failures are forgotten.
func (a *Attempt) Succeeded(ctx context.Context) error {
	if a.done {
		return nil
	}
	a.done = true
	return a.t.Reset(ctx, a.key)
}

// Release takes the guess back: the secret was never compared (the
// ceremony had expired, the answer was not of the right kind), or it was
// right on a key where one success must not wipe out others' failures (an
// address, or a step-up key that also counts guesses at stronger
// methods). It does nothing once the attempt has ended, so it can be
// deferred.
func (a *Attempt) Release(ctx context.Context) error {
	if a.done {
		return nil
	}
	a.done = true
	t := a.t
	now := t.now()
	// A reservation taken back must not outlive a cancelled request.
	ctx = context.WithoutCancel(ctx)
	return t.change(ctx, a.key, now, func(s throttleState) (throttleState, error) {
		s.Failures = max(s.Failures-1, 0)
		switch {
		case s.Failures <= t.Free:
			s.LockedUntil = time.Time{}
		case s.LockedUntil.Equal(hardLockUntil) && s.Failures < t.HardLimit:
			s.LockedUntil = now.Add(t.lock(s.Failures))
		}
		return s, nil
	})
}

// Fail records a failure for key that no Begin counted (a wrong answer
// given on another device, such as a push approval's number).
func (t *Throttle) Fail(ctx context.Context, key string) error {
	now := t.now()
	return t.change(ctx, key, now, func(s throttleState) (throttleState, error) { return t.count(s, now), nil })
}

// count adds one failure at now to s and locks it as the count demands.
func (t *Throttle) count(s throttleState, now time.Time) throttleState {
	hardLocked := t.HardLimit > 0 && s.Failures >= t.HardLimit
	// Failures are forgotten after a quiet hour past the longest lock,
	// but a hard lock waits for an administrator.
	if !hardLocked && !s.Last.IsZero() && now.Sub(s.Last) > t.Max+time.Hour {
		s = throttleState{}
	}
	s.Last = now
	s.Failures++
	if s.Failures > t.Free {
		s.LockedUntil = now.Add(t.lock(s.Failures))
	}
	if t.HardLimit > 0 && s.Failures >= t.HardLimit {
		s.LockedUntil = hardLockUntil
	}
	return s
}

// lock is how long the failures-th failure locks its key: Base after the
// first failure past Free, doubling up to Max.
func (t *Throttle) lock(failures int) time.Duration {
	over := failures - t.Free
	if over <= 0 {
		return 0
	}
	return min(t.Base<<min(over-1, 20), t.Max)
}

// throttleTries bounds the compare-and-swap retries of one change. A key
// so contended that they all lose is under attack: the change fails
// closed, as ErrThrottled.
const throttleTries = 32

// change applies fn to key's state in one compare-and-swap, creating the
// record when there is none. The state and the record's life change
// together: a hard lock made permanent in a second step (delete, then
// create without expiry) could be lost to a guess racing into the gap,
// which would find no record and start the count afresh.
func (t *Throttle) change(ctx context.Context, key string, now time.Time, fn func(throttleState) (throttleState, error)) error {
	rec := throttleAt(throttlesRepair, throttleDigestsRepair, key)
	for range throttleTries {
		err := rec.Renew(ctx, t.kv, func(s throttleState) (throttleState, time.Time, error) {
			next, err := fn(s)
			if err != nil {
				return s, time.Time{}, err
			}
			return next, throttleExpiry(next, now), nil
		})
		if errors.Is(err, store.ErrNotFound) {
			var next throttleState
			if next, err = fn(throttleState{}); err != nil {
				return err
			}
			if next == (throttleState{}) {
				return nil // nothing to count: a release after a reset
			}
			err = rec.Create(ctx, t.kv, next, throttleExpiry(next, now))
		}
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%w: too many attempts at once", ErrThrottled)
}

// throttleExpiry says when the record of s may go: never while hard
// locked, otherwise throttleRecordLife after this failure.
func throttleExpiry(s throttleState, now time.Time) time.Time {
	if s.LockedUntil.Equal(hardLockUntil) {
		return time.Time{}
	}
	return now.Add(throttleRecordLife)
}

// hardLockUntil marks a key locked until an administrator resets it.
var hardLockUntil = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Reset clears key after a success, or when an administrator unlocks it.
func (t *Throttle) Reset(ctx context.Context, key string) error {
	err := throttleAt(throttles, throttleDigests, key).Delete(ctx, t.kv)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
