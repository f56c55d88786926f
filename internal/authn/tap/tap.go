// Package tap is the Temporary Access Pass: a time-limited code an
// administrator issues so a user who has nothing but a password (or who
// lost every other method) can register a sign-in method.
//
// A pass is good for registering methods and nothing else. It is shown
// once when issued and stored only as a hash; it expires, it can be made
// single use, an administrator can revoke it, and a user has at most one
// active pass at a time (a quota: issuing another while one is active is
// refused, so passes cannot pile up unnoticed).
//
// A pass carries 100 random bits, so a plain SHA-256 is enough to keep a
// stolen database from revealing it, as for recovery codes.
package tap

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Method is the name a pass goes by in logs and registration proofs.
const Method = "temporary-access-pass"

// Bounds of a pass's lifetime. Ten minutes is the shortest that leaves
// time to read a pass out over the phone and use it; a week the longest
// a code that opens registration may lie in someone's mailbox.
const (
	MinLifetime = 10 * time.Minute
	MaxLifetime = 7 * 24 * time.Hour
)

// Errors of the pass store.
var (
	// ErrActive means the user already has an active pass: revoke it
	// before issuing another.
	ErrActive = errors.New("the user already has an active temporary access pass; revoke it first")
	// ErrNone means the user has no active pass.
	ErrNone = errors.New("the user has no active temporary access pass")
	// ErrInvalid means the pass typed is not the user's active pass.
	ErrInvalid = errors.New("the temporary access pass is not valid")
	// ErrUsed means a single-use pass was used already.
	ErrUsed = errors.New("the temporary access pass was already used")
	// ErrLifetime means the lifetime asked for is out of bounds.
	ErrLifetime = fmt.Errorf("a temporary access pass lives between %s and %s", MinLifetime, "168h (7 days)")
)

// alphabet is 32 symbols without the look-alikes i, l, o and 1: passes
// are read out and typed by hand.
const alphabet = "abcdefghjkmnpqrstuvwxyz023456789"

// Pass is an issued pass as stored: never the code itself.
type Pass struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Hash      []byte    `json:"hash"`
	Once      bool      `json:"once"`
	IssuedBy  string    `json:"issued_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// UsedAt is when the pass was last redeemed; zero when never.
	UsedAt time.Time `json:"used_at,omitzero"`
}

// Usable reports whether the pass can still be redeemed at now.
func (p Pass) Usable(now time.Time) bool {
	spent := p.Once && !p.UsedAt.IsZero()
	return now.Before(p.ExpiresAt) && !spent
}

// Store issues, redeems and revokes passes, in a key/value space with
// expiry (one entry per user, which is the quota).
type Store struct {
	KV  store.KV
	Now func() time.Time
}

// New returns a pass store over kv; now nil means time.Now.
func New(kv store.KV, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{KV: kv, Now: now}
}

// passes are the passes, one per user.
var passes = kvspace.JSON[Pass](kvspace.AccessPass)

func hash(code string) []byte {
	sum := sha256.Sum256([]byte("stepgate-tap|" + normalize(code)))
	return sum[:]
}

// normalize drops separators and case, so "K7DQ 9XME-..." works.
func normalize(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, strings.TrimSpace(code))
}

// generate makes a pass like "k7dq-9xme-24vb-hnt3-wq8r" (20 symbols of
// 5 bits: 100 bits).
func generate() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	var sb strings.Builder
	for i, v := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[v&31])
	}
	return sb.String()
}

// Issue makes a pass for userID that lives for lifetime, and returns the
// code (to show once) with the stored record. A user with an active pass
// gets ErrActive.
func (s *Store) Issue(ctx context.Context, userID, issuedBy string, lifetime time.Duration, once bool) (string, Pass, error) {
	if lifetime < MinLifetime || lifetime > MaxLifetime {
		return "", Pass{}, ErrLifetime
	}
	now := s.Now().UTC()
	code := generate()
	p := Pass{ID: rand.Text(), UserID: userID, Hash: hash(code), Once: once, IssuedBy: issuedBy, CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	// A spent single-use pass still holds the slot until it expires;
	// it no longer counts as active, so it makes way for a new one.
	if cur, err := s.Get(ctx, userID); err == nil && !cur.Usable(now) {
		_ = passes.At(userID).Delete(ctx, s.KV)
	}
	err := passes.At(userID).Create(ctx, s.KV, p, p.ExpiresAt)
	if errors.Is(err, store.ErrConflict) {
		return "", Pass{}, ErrActive
	}
	if err != nil {
		return "", Pass{}, fmt.Errorf("store the temporary access pass: %w", err)
	}
	return code, p, nil
}

// Get returns the user's live pass (spent single-use passes included,
// until they expire), or ErrNone.
func (s *Store) Get(ctx context.Context, userID string) (Pass, error) {
	p, err := passes.At(userID).Get(ctx, s.KV)
	if errors.Is(err, store.ErrNotFound) {
		return Pass{}, ErrNone
	}
	if err != nil {
		return Pass{}, fmt.Errorf("read the temporary access pass: %w", err)
	}
	// The store's own expiry runs on its clock; the pass's on ours.
	if !s.Now().Before(p.ExpiresAt) {
		return Pass{}, ErrNone
	}
	return p, nil
}

// Redeem checks code against the user's pass and records its use. A
// single-use pass is spent by the first correct answer, even when two
// arrive at once (compare-and-swap).
func (s *Store) Redeem(ctx context.Context, userID, code string) (Pass, error) {
	var out Pass
	err := passes.At(userID).Update(ctx, s.KV, func(p Pass) (Pass, error) {
		now := s.Now().UTC()
		switch {
		case subtle.ConstantTimeCompare(p.Hash, hash(code)) != 1:
			return p, ErrInvalid
		case !now.Before(p.ExpiresAt):
			return p, ErrInvalid
		case p.Once && !p.UsedAt.IsZero():
			return p, ErrUsed
		}
		p.UsedAt = now
		out = p
		return p, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return Pass{}, ErrInvalid
	}
	return out, err
}

// Valid reports whether the pass id is still the user's and not expired
// or revoked: a registration made on the strength of a pass is refused
// the moment an administrator revokes it.
func (s *Store) Valid(ctx context.Context, userID, id string) bool {
	p, err := s.Get(ctx, userID)
	return err == nil && p.ID == id
}

// Revoke removes the user's pass; ErrNone when there is none.
func (s *Store) Revoke(ctx context.Context, userID string) error {
	if _, err := s.Get(ctx, userID); err != nil {
		return err
	}
	err := passes.At(userID).Delete(ctx, s.KV)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNone
	}
	return err
}
