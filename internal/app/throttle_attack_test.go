package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// slowThrottleStore delays every access to a throttle record by
// throttleLatency before the store sees it.
type slowThrottleStore struct{ store.Store }

const throttleLatency = 20 * time.Millisecond

func delayThrottle(key string) {
	if strings.HasPrefix(key, "authn/throttle/") {
		time.Sleep(throttleLatency)
	}
}

func (s slowThrottleStore) GetKV(ctx context.Context, key string) (store.KVEntry, error) {
	delayThrottle(key)
	return s.Store.GetKV(ctx, key)
}

func (s slowThrottleStore) CreateKV(ctx context.Context, key string, value []byte, expiresAt time.Time) (store.KVEntry, error) {
	delayThrottle(key)
	return s.Store.CreateKV(ctx, key, value, expiresAt)
}

func (s slowThrottleStore) RenewKV(ctx context.Context, key string, fn func([]byte) ([]byte, time.Time, error)) (store.KVEntry, error) {
	delayThrottle(key)
	return s.Store.RenewKV(ctx, key, fn)
}

// TestStepUpParallelTOTPGuesses fires a burst of concurrent wrong TOTP
// codes at the step-up, spread over many ceremonies so that no
// ceremony's own attempt limit is what stops them, as an attacker who
// holds the password and wants a six-digit code would. At most the
// throttle's allowance (five free failures and the one that locks) may
// reach verification; every other guess is refused unread. The store
// answers throttle reads and writes with a delay, as a database across a
// network does for nodes sharing it, which widens any gap between
// checking the lock and counting a guess.
func TestStepUpParallelTOTPGuesses(t *testing.T) {
	s := startOIDCOver(t, func(st store.Store) store.Store { return slowThrottleStore{st} }, nil)
	b := browser(t)
	// Two hundred requests at once, each through a slowed store, on a
	// machine that may be running other tests: the client waits as long
	// as it takes, since the test counts answers, never time.
	b.Timeout = 2 * time.Minute
	s.signIn(t, b, "/account")
	secret := s.enrollTOTP(t, b)

	const ceremonies, perCeremony = 40, 5
	type form struct{ csrf, ceremony string }
	forms := make([]form, ceremonies)
	for i := range forms {
		_, body := get(t, b, s.base+"/stepup?method=totp&return_to=/account")
		forms[i].csrf, forms[i].ceremony = formOf(t, body)
	}
	right := totpCode(t, secret, time.Now().Add(30*time.Second))
	wrong := "000000"
	if right == wrong || totpCode(t, secret, time.Now()) == wrong {
		wrong = "111111"
	}

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
		startGun = make(chan struct{})
	)
	for _, f := range forms {
		for range perCeremony {
			wg.Go(func() {
				<-startGun
				form := url.Values{"csrf_token": {f.csrf}, "ceremony": {f.ceremony}, "code": {wrong}, "return_to": {"/account"}}
				resp, err := b.PostForm(s.base+"/stepup", form)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			})
		}
	}
	close(startGun)
	wg.Wait()

	const allowance = 6 // five free failures, then the one that locks
	if got := statuses[http.StatusUnauthorized]; got > allowance || got == 0 {
		t.Fatalf("fail/parallel-totp-guesses: %d of %d parallel wrong codes reached verification, want 1..%d (statuses %v)",
			got, ceremonies*perCeremony, allowance, statuses)
	}
	if got := statuses[http.StatusTooManyRequests]; got < ceremonies*perCeremony-allowance {
		t.Fatalf("fail/parallel-totp-guesses: only %d refused as throttled (statuses %v)", got, statuses)
	}
	// The account is locked now: even the right code is not read.
	_, body := get(t, b, s.base+"/stepup?method=totp&return_to=/account")
	csrf, cer := formOf(t, body)
	resp, _ := post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "code": {right}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fail/right-code-while-locked: status %d, want 429", resp.StatusCode)
	}
}

// TestPasswordStepUpKeepsTOTPCount: the holder of a password who guesses
// at the TOTP code cannot clear the count of wrong codes by stepping up
// with the password between rounds, which would give unlimited guesses.
func TestPasswordStepUpKeepsTOTPCount(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	s.signIn(t, b, "/account")
	secret := s.enrollTOTP(t, b)
	wrong := "000000"
	if totpCode(t, secret, time.Now()) == wrong || totpCode(t, secret, time.Now().Add(30*time.Second)) == wrong {
		wrong = "111111"
	}
	guess := func(t *testing.T) int {
		t.Helper()
		_, body := get(t, b, s.base+"/stepup?method=totp&return_to=/account")
		csrf, cer := formOf(t, body)
		resp, _ := post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "code": {wrong}, "return_to": {"/account"}})
		return resp.StatusCode
	}
	for i := range 5 {
		if got := guess(t); got != http.StatusUnauthorized {
			t.Fatalf("free wrong code %d: status %d, want 401", i+1, got)
		}
	}
	resp, _ := post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "password": {testPassword}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ok/password-step-up: status %d, want 303", resp.StatusCode)
	}
	if got := guess(t); got != http.StatusUnauthorized {
		t.Fatalf("sixth wrong code: status %d, want 401 (the one that locks)", got)
	}
	if got := guess(t); got != http.StatusTooManyRequests {
		t.Fatalf("fail/password-resets-totp-count: seventh wrong code: status %d, want 429", got)
	}
}

// TestSignInParallelPasswordGuesses fires a burst of concurrent wrong
// passwords at one account: at most the throttle's allowance is checked.
func TestSignInParallelPasswordGuesses(t *testing.T) {
	s := startOIDCOver(t, func(st store.Store) store.Store { return slowThrottleStore{st} }, nil)
	b := browser(t)
	tok := csrfToken(t, b, s.base)
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
		startGun = make(chan struct{})
	)
	const guesses = 100
	for i := range guesses {
		wg.Go(func() {
			<-startGun
			resp, err := b.PostForm(s.base+"/login", url.Values{"csrf_token": {tok}, "username": {testUser}, "password": {"guess-" + strconv.Itoa(i)}})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		})
	}
	close(startGun)
	wg.Wait()
	if got := statuses[http.StatusUnauthorized]; got > 6 || got == 0 {
		t.Fatalf("fail/parallel-password-guesses: %d of %d parallel wrong passwords checked, want 1..6 (statuses %v)", got, guesses, statuses)
	}
}
