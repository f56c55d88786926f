package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// LoginChallenges keeps the state of a passwordless sign-in in the page
// instead of the database.
//
// Every anonymous view of the sign-in page starts a passkey sign-in. Kept
// in the store, a flood of page views would grow the database without
// bound; kept under a quota, every page view would pay for a count and a
// cluster-wide lock. So the state (the challenge and its options) is
// sealed with the secrets key, with its expiry inside and the browser's
// CSRF cookie as associated data, and handed to the page. Nothing is
// written until an answer's signature has verified: then the challenge is
// spent, once, by a record that lives only as long as the challenge could.
// Those records are bounded by successful passkey sign-ins.
type LoginChallenges struct {
	box *secrets.Box
	kv  store.KV
	now func() time.Time
}

// LoginChallenge is an opened sealed sign-in.
type LoginChallenge struct {
	State   []byte    // the method's ceremony state
	Expires time.Time // when the answer is no longer taken
}

// sealedLogin is what a sign-in page carries, encrypted.
type sealedLogin struct {
	Expires int64  `json:"exp"`
	State   []byte `json:"state"`
}

// NewLoginChallenges returns sealed sign-ins under box, spent in kv.
func NewLoginChallenges(box *secrets.Box, kv store.KV, now func() time.Time) *LoginChallenges {
	if now == nil {
		now = time.Now
	}
	return &LoginChallenges{box: box, kv: kv, now: now}
}

// loginAAD binds a sealed sign-in to the browser that got it, so a sealed
// challenge lifted from one browser (a shared computer, a log) is refused
// in another.
func loginAAD(binding string) []byte { return []byte("passkey-login|" + binding) }

// Seal returns the token that carries state to the page, good for the
// ceremony lifetime in the browser whose binding (its CSRF cookie) is
// given.
func (lc *LoginChallenges) Seal(state []byte, binding string) (string, error) {
	if binding == "" {
		return "", errors.New("seal a passkey sign-in: no browser binding")
	}
	b, err := json.Marshal(sealedLogin{Expires: lc.now().Add(ceremonyTTL).Unix(), State: state})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(lc.box.Seal(b, loginAAD(binding))), nil
}

// Open returns the sign-in a token carries. A token that was altered,
// sealed for another browser, or is past its expiry gets ErrNoCeremony.
// Open does not say whether the challenge was spent: Spend does, once the
// answer has verified.
func (lc *LoginChallenges) Open(token, binding string) (LoginChallenge, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || token == "" || binding == "" {
		return LoginChallenge{}, ErrNoCeremony
	}
	plain, err := lc.box.Open(raw, loginAAD(binding))
	if err != nil {
		return LoginChallenge{}, ErrNoCeremony
	}
	var s sealedLogin
	if err := json.Unmarshal(plain, &s); err != nil {
		return LoginChallenge{}, fmt.Errorf("sealed sign-in is corrupt: %w", err)
	}
	c := LoginChallenge{State: s.State, Expires: time.Unix(s.Expires, 0)}
	if !lc.now().Before(c.Expires) {
		return LoginChallenge{}, ErrNoCeremony
	}
	return c, nil
}

// Spend records that c was answered. Of two answers to one challenge (a
// replayed assertion, two racing posts) only the first is taken; the
// others get ErrNoCeremony. Call it only after the answer verified, so
// that only successful sign-ins write.
func (lc *LoginChallenges) Spend(ctx context.Context, c LoginChallenge) error {
	err := kvspace.LoginSpent.At(string(c.State)).Create(ctx, lc.kv, kvspace.Mark{}, c.Expires)
	if errors.Is(err, store.ErrConflict) {
		return ErrNoCeremony
	}
	return err
}
