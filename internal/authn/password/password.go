// Package password hashes and verifies passwords with argon2id, encoded
// as PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash) so cost
// parameters can be raised later without invalidating stored hashes.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// MaxBytes caps accepted password length. NIST SP 800-63B asks for at
// least 64 characters; the cap keeps hashing cost independent of
// attacker-chosen input size.
const MaxBytes = 1024

const (
	saltLen = 16
	keyLen  = 32
)

// Errors.
var (
	// ErrMalformedHash means a stored hash is not a PHC argon2id string.
	ErrMalformedHash = errors.New("malformed password hash")
	// ErrTooLong means the password exceeds MaxBytes.
	ErrTooLong = fmt.Errorf("password is longer than %d bytes", MaxBytes)
)

// Params are argon2id cost parameters.
type Params struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// Hasher hashes and verifies passwords. Each argon2id run takes
// Params.MemoryKiB of memory, so the number of concurrent runs is bounded:
// a burst of sign-ins (or an attacker's) queues instead of exhausting RAM.
type Hasher struct {
	params Params
	slots  chan struct{}
	// dummy is verified against when a user does not exist, so a missing
	// account costs the same time as a wrong password (no enumeration by
	// timing).
	dummy string
}

// NewHasher returns a Hasher for p.
func NewHasher(p Params) *Hasher {
	h := &Hasher{params: p, slots: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
	h.dummy, _ = h.hash(context.Background(), rand.Text())
	return h
}

// Hash returns the PHC encoding of password under the current parameters.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxBytes {
		return "", ErrTooLong
	}
	return h.hash(ctx, password)
}

func (h *Hasher) hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key, err := h.derive(ctx, password, salt, h.params, keyLen)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.MemoryKiB, h.params.Time, h.params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded. needsRehash is true
// when the hash was made with other parameters than the current ones, so
// the caller can store a fresh hash after a successful sign-in.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	if len(password) > MaxBytes {
		return false, false, nil
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got, err := h.derive(ctx, password, salt, p, uint32(len(want))) //nolint:gosec // decode bounds the key length far below 2^32
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p != h.params, nil
}

// VerifyDummy spends the time of one verification and always fails; call
// it when the account does not exist.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) {
	_, _, _ = h.Verify(ctx, password, h.dummy)
}

func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p Params, n uint32) ([]byte, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.slots }()
	// NFKC so the same password typed on different keyboards (composed vs
	// decomposed accents) hashes the same, as NIST SP 800-63B advises.
	return argon2.IDKey([]byte(norm.NFKC.String(password)), salt, p.Time, p.MemoryKiB, p.Threads, n), nil
}

// decode parses $argon2id$v=19$m=M,t=T,p=P$salt$hash.
func decode(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, parts[2])
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil ||
		p.Time == 0 || p.Threads == 0 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > 1<<20 || p.Time > 64 {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q", ErrMalformedHash, parts[3])
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return Params{}, nil, nil, fmt.Errorf("%w: salt or key", ErrMalformedHash)
	}
	return p, salt, key, nil
}
