// Package secrets encrypts small secrets at rest — TOTP seeds, one-time
// code state — with XChaCha20-Poly1305 under a key kept outside the
// database, so a copy of the database alone reveals none of them.
//
// Every ciphertext is bound to associated data naming what it belongs to
// (a credential id and its user), so ciphertexts cannot be swapped
// between records by someone who can write to the database.
package secrets

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length of a key in bytes.
const KeySize = chacha20poly1305.KeySize

// version prefixes every ciphertext so the format can change later.
const version byte = 1

// ErrDecrypt means a ciphertext did not open: the wrong key, or data that
// was altered or moved to another record.
var ErrDecrypt = errors.New("secret does not decrypt: wrong key, or the stored value was altered")

// Box seals and opens secrets. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad.
func (b *Box) Seal(plaintext, aad []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	_, _ = rand.Read(nonce)
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, plaintext, aad)
}

// Open decrypts what Seal produced with the same aad.
func (b *Box) Open(ciphertext, aad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(ciphertext) < 1+n+b.aead.Overhead() || ciphertext[0] != version {
		return nil, ErrDecrypt
	}
	pt, err := b.aead.Open(nil, ciphertext[1:1+n], ciphertext[1+n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// FileName is the key file in the data directory.
const FileName = "secrets.key"

// LoadKey returns the key: the configured one (base64, from secrets.key
// or STEPGATE_SECRETS_KEY) when set, otherwise the key file in dataDir,
// created on first use with mode 0600. Several nodes sharing a database
// must share the key, so they must set it in the configuration.
func LoadKey(configured, dataDir string) ([]byte, error) {
	if configured != "" {
		return DecodeKey(configured)
	}
	path := filepath.Join(dataDir, FileName)
	b, err := os.ReadFile(path) //nolint:gosec // our own data directory
	if err == nil {
		key, err := DecodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read secrets key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	// O_EXCL: two processes starting together must not each write a key
	// and encrypt under different ones; the loser reads the winner's.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // our own data directory
	if errors.Is(err, fs.ErrExist) {
		return LoadKey("", dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("create secrets key: %w", err)
	}
	if _, err := f.WriteString(EncodeKey(key) + "\n"); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write secrets key: %w", err)
	}
	return key, f.Close()
}

// EncodeKey writes a key as configuration expects it.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// DecodeKey reads a base64 key and checks its size.
func DecodeKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("the secrets key must be %d random bytes in base64; generate one with: openssl rand -base64 32", KeySize)
	}
	return key, nil
}
