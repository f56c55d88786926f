package otp

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stepgate/stepgate/internal/authn"
)

// TestParallelGuessesOverManyCodes requests every code the send limit
// allows and fires all their guesses at once, as an attacker holding the
// password would to beat the per-code limit: the user's throttle admits
// no more wrong answers than one at a time would get.
func TestParallelGuessesOverManyCodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t)
	enrollSMS(t, f, f.alice, phone)
	creds := f.creds(t, f.alice)
	var states [][]byte
	for range MaxSends {
		ch, err := f.sms.BeginVerify(ctx, f.alice, creds)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, ch.State)
	}
	answer := wrong(f.in.last(phone))
	var (
		evaluated, throttled atomic.Int64
		wg                   sync.WaitGroup
	)
	for _, st := range states {
		for range MaxGuesses {
			wg.Go(func() {
				_, err := f.sms.Verify(ctx, f.alice, creds, st, authn.Response{Code: answer})
				switch {
				case errors.Is(err, authn.ErrInvalid):
					evaluated.Add(1)
				case errors.Is(err, authn.ErrThrottled):
					throttled.Add(1)
				default:
					t.Errorf("guess: %v", err)
				}
			})
		}
	}
	wg.Wait()
	const allowance = 6 // the throttle's five free failures and the one that locks
	if got := evaluated.Load(); got > allowance {
		t.Fatalf("fail/parallel-guesses-over-codes: %d of %d guesses compared, want at most %d", got, MaxSends*MaxGuesses, allowance)
	}
	if got := evaluated.Load() + throttled.Load(); got != int64(MaxSends*MaxGuesses) {
		t.Fatalf("%d guesses answered, want %d", got, MaxSends*MaxGuesses)
	}
}
