package web

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/secrets"
)

// junkPasskeys refuses every passkey answer, as for an attacker who
// sends made-up signatures.
type junkPasskeys struct{}

func (junkPasskeys) Name() string { return "webauthn" }

func (junkPasskeys) BeginLogin(context.Context) (authn.Challenge, error) {
	return authn.Challenge{State: []byte(`{}`), Show: map[string]any{"kind": "webauthn-login"}}, nil
}

func (junkPasskeys) FinishLogin(context.Context, []byte, []byte, func(context.Context) error) (string, authn.Proof, error) {
	return "", authn.Proof{}, authn.ErrInvalid
}

// TestPasskeySignInAddressNeverLockedForGood: junk passkey answers from
// one address are slowed down by the address throttle, but a hundred of
// them do not lock everyone behind that address out of passkey sign-in
// for good, as the per-account hard lock would.
func TestPasskeySignInAddressNeverLockedForGood(t *testing.T) {
	rg := newRig(t, func(d *Deps) {
		d.Passkeys = junkPasskeys{}
		box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		d.PasskeyChallenges = authn.NewLoginChallenges(box, d.KV, d.Now)
		ip := authn.NewThrottle(d.KV, d.Now)
		ip.Free, ip.HardLimit = 100, 0
		d.IPThrottle = ip
	})
	b := rg.browser()
	answer := func() int {
		t.Helper()
		_, page := b.do("GET", "/login", nil)
		cer := loginCeremonyRe.FindStringSubmatch(page)
		if cer == nil {
			t.Fatalf("the sign-in page has no passkey ceremony:\n%s", page)
		}
		resp, _ := b.do("POST", "/login/passkey", url.Values{"ceremony": {cer[1]}, "data": {"{}"}})
		return resp.StatusCode
	}
	for i := range 101 {
		if got := answer(); got != http.StatusUnauthorized {
			t.Fatalf("junk answer %d: status %d, want 401", i+1, got)
		}
	}
	if got := answer(); got != http.StatusTooManyRequests {
		t.Fatalf("fail/junk-not-slowed: status %d after 101 junk answers, want 429", got)
	}
	rg.clock.Add(time.Hour)
	if got := answer(); got != http.StatusUnauthorized {
		t.Fatalf("fail/address-locked-for-good: an hour later: status %d, want the answer checked (401)", got)
	}
}
