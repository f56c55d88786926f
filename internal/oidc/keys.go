package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// keyringKey is where the signing keys live in the store. One entry
// updated by compare-and-swap keeps nodes that rotate at the same moment
// from each adding a key.
// keyrings is the stored ring of signing keys.
var keyrings = kvspace.JSON[[]keyRecord](kvspace.OIDCKeyring)

// verifyAlgs are the only algorithms Stepgate signs with, and so the only
// ones it accepts on its own tokens: "none" and HMAC never verify, which
// stops both the unsigned-token and the public-key-as-HMAC-secret attacks.
var verifyAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// KeyPolicy says how keys rotate.
type KeyPolicy struct {
	Alg string // ES256 or EdDSA, for new keys
	// Rotation is how long a key signs before its successor takes over.
	Rotation time.Duration
	// PublishAhead is how long a new key is published before it signs.
	PublishAhead time.Duration
	// Retain is how long a key stays published after it stopped signing:
	// the longest lifetime of a token it signed, plus clock skew.
	Retain time.Duration
}

// keyRecord is one signing key as stored.
type keyRecord struct {
	ID        string    `json:"kid"`
	Alg       string    `json:"alg"`
	Private   []byte    `json:"private"` // PKCS #8 DER
	CreatedAt time.Time `json:"created_at"`
	// SignFrom is when the key starts signing; it is published from
	// CreatedAt on, so caches of the JWKS learn it first.
	SignFrom time.Time `json:"sign_from"`
}

// KeyInfo describes a key for "stepgate keys list".
type KeyInfo struct {
	ID        string    `json:"kid"`
	Alg       string    `json:"alg"`
	State     string    `json:"state"` // next, signing, retired
	CreatedAt time.Time `json:"created_at"`
	SignFrom  time.Time `json:"sign_from"`
	// Until is, for a retired key, when it leaves the JWKS.
	Until time.Time `json:"until,omitzero"`
}

// loadedKey is a parsed key with its signers.
type loadedKey struct {
	keyRecord
	signer crypto.Signer
	public jose.JSONWebKey
	jwt    jose.Signer // typ JWT (ID tokens)
	at     jose.Signer // typ at+jwt (RFC 9068 access tokens)
	// assertion signs the gateway's identity assertions (typ
	// AssertionType).
	assertion jose.Signer
}

// Token types (the JOSE typ header, RFC 8725 section 3.11). Every kind
// of token Stepgate signs has its own, and every verifier accepts only
// the one it expects: the keys are shared, so without it an ID token, an
// access token and an upstream assertion would pass for one another.
const (
	// IDTokenType is the typ of ID tokens. OpenID Connect defines none;
	// JWT is what relying parties expect.
	IDTokenType = "JWT"
	// AccessTokenType is the typ of access tokens (RFC 9068).
	AccessTokenType = "at+jwt"
	// AssertionType is the typ of the gateway's X-Stepgate-Assertion.
	AssertionType = "stepgate-assertion+jwt"
)

// KeyRing holds the provider's signing keys, cached from the store.
type KeyRing struct {
	kv     store.KV
	policy KeyPolicy
	now    func() time.Time

	mu     sync.RWMutex // guards the fields below
	keys   []*loadedKey // ordered by SignFrom
	loaded time.Time
}

// NewKeyRing returns a key ring over kv. Call Maintain before use.
func NewKeyRing(kv store.KV, p KeyPolicy, now func() time.Time) *KeyRing {
	if now == nil {
		now = time.Now
	}
	return &KeyRing{kv: kv, policy: p, now: now}
}

// Maintain makes the stored ring match the rotation policy — a first
// key, a successor published ahead of its time, old keys dropped once no
// token they signed can still be valid — and reloads the cache.
func (k *KeyRing) Maintain(ctx context.Context) error {
	now := k.now()
	err := k.update(ctx, func(ring []keyRecord) ([]keyRecord, error) {
		return k.plan(ring, now)
	})
	if err != nil {
		return fmt.Errorf("maintain signing keys: %w", err)
	}
	return k.reload(ctx)
}

// plan returns the ring as the policy wants it at now.
func (k *KeyRing) plan(ring []keyRecord, now time.Time) ([]keyRecord, error) {
	cur, pending := currentAndPending(ring, now)
	switch {
	case cur == nil && pending == nil:
		// First start: nothing can have cached a JWKS yet, so the key
		// signs at once.
		rec, err := newKeyRecord(k.policy.Alg, now, now)
		if err != nil {
			return nil, err
		}
		ring = append(ring, rec)
	case pending == nil && !now.Before(cur.SignFrom.Add(k.policy.Rotation-k.policy.PublishAhead)):
		rec, err := newKeyRecord(k.policy.Alg, now, now.Add(k.policy.PublishAhead))
		if err != nil {
			return nil, err
		}
		ring = append(ring, rec)
	}
	return dropRetired(ring, now, k.policy.Retain), nil
}

// Rotate publishes a new key that starts signing after the publish-ahead
// time and returns it. It refuses while another key is waiting.
func (k *KeyRing) Rotate(ctx context.Context) (KeyInfo, error) {
	now := k.now()
	var added keyRecord
	err := k.update(ctx, func(ring []keyRecord) ([]keyRecord, error) {
		if _, pending := currentAndPending(ring, now); pending != nil {
			return nil, fmt.Errorf("key %s is already published and starts signing at %s; rotate again after that",
				pending.ID, pending.SignFrom.UTC().Format(time.RFC3339))
		}
		rec, err := newKeyRecord(k.policy.Alg, now, now.Add(k.policy.PublishAhead))
		added = rec
		return append(ring, rec), err
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return KeyInfo{ID: added.ID, Alg: added.Alg, State: "next", CreatedAt: added.CreatedAt, SignFrom: added.SignFrom}, k.reload(ctx)
}

// List describes every stored key.
func (k *KeyRing) List(ctx context.Context) ([]KeyInfo, error) {
	ring, err := k.read(ctx)
	if err != nil {
		return nil, err
	}
	now := k.now()
	cur, _ := currentAndPending(ring, now)
	out := make([]KeyInfo, 0, len(ring))
	for i, r := range ring {
		info := KeyInfo{ID: r.ID, Alg: r.Alg, CreatedAt: r.CreatedAt, SignFrom: r.SignFrom}
		switch {
		case r.SignFrom.After(now):
			info.State = "next"
		case cur != nil && r.ID == cur.ID:
			info.State = "signing"
		default:
			info.State = "retired"
			if i+1 < len(ring) {
				info.Until = ring[i+1].SignFrom.Add(k.policy.Retain)
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// currentAndPending returns the key signing at now and the one waiting
// to take over, either of which may be nil. ring is ordered by SignFrom.
func currentAndPending(ring []keyRecord, now time.Time) (cur, pending *keyRecord) {
	for i := range ring {
		if ring[i].SignFrom.After(now) {
			pending = &ring[i]
			continue
		}
		cur = &ring[i]
	}
	return cur, pending
}

// dropRetired removes keys whose successor has signed for longer than
// retain: every token they signed has expired.
func dropRetired(ring []keyRecord, now time.Time, retain time.Duration) []keyRecord {
	keep := ring[:0:0]
	for i, r := range ring {
		if i+1 < len(ring) && !ring[i+1].SignFrom.After(now.Add(-retain)) {
			continue
		}
		keep = append(keep, r)
	}
	return keep
}

func newKeyRecord(alg string, now, signFrom time.Time) (keyRecord, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case string(jose.ES256):
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case string(jose.EdDSA):
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return keyRecord{}, fmt.Errorf("signing algorithm %q is not supported; use ES256 or EdDSA", alg)
	}
	if err != nil {
		return keyRecord{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return keyRecord{}, err
	}
	// The key id is the RFC 7638-style thumbprint's prefix: stable, unique,
	// and reveals nothing.
	pub := jose.JSONWebKey{Key: priv.Public()}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return keyRecord{}, err
	}
	return keyRecord{
		ID: base64.RawURLEncoding.EncodeToString(tp)[:16], Alg: alg, Private: der,
		CreatedAt: now.UTC(), SignFrom: signFrom.UTC(),
	}, nil
}

// update applies fn to the stored ring with compare-and-swap, creating
// the entry on first use.
func (k *KeyRing) update(ctx context.Context, fn func([]keyRecord) ([]keyRecord, error)) error {
	ring := keyrings.At()
	err := ring.Update(ctx, k.kv, fn)
	if errors.Is(err, kvspace.ErrCorrupt) {
		return fmt.Errorf("stored signing keys are corrupt: %w", err)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	next, err := fn(nil)
	if err != nil {
		return err
	}
	if err = ring.Create(ctx, k.kv, next, time.Time{}); errors.Is(err, store.ErrConflict) {
		return k.update(ctx, fn) // another node created it first
	}
	return err
}

func (k *KeyRing) read(ctx context.Context) ([]keyRecord, error) {
	ring, err := keyrings.At().Get(ctx, k.kv)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if errors.Is(err, kvspace.ErrCorrupt) {
		return nil, fmt.Errorf("stored signing keys are corrupt: %w", err)
	}
	return ring, err
}

// reload replaces the cache with the stored ring.
func (k *KeyRing) reload(ctx context.Context) error {
	ring, err := k.read(ctx)
	if err != nil {
		return err
	}
	keys := make([]*loadedKey, 0, len(ring))
	for _, r := range ring {
		lk, err := loadKey(r)
		if err != nil {
			return err
		}
		keys = append(keys, lk)
	}
	slices.SortStableFunc(keys, func(a, b *loadedKey) int { return a.SignFrom.Compare(b.SignFrom) })
	k.mu.Lock()
	k.keys, k.loaded = keys, k.now()
	k.mu.Unlock()
	return nil
}

func loadKey(r keyRecord) (*loadedKey, error) {
	p, err := x509.ParsePKCS8PrivateKey(r.Private)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", r.ID, err)
	}
	signer, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing key %s is not a signing key", r.ID)
	}
	alg := jose.SignatureAlgorithm(r.Alg)
	priv := jose.JSONWebKey{Key: signer, KeyID: r.ID, Algorithm: r.Alg}
	lk := &loadedKey{keyRecord: r, signer: signer,
		public: jose.JSONWebKey{Key: signer.Public(), KeyID: r.ID, Algorithm: r.Alg, Use: "sig"}}
	for _, s := range []struct {
		dst *jose.Signer
		typ jose.ContentType
	}{{&lk.jwt, IDTokenType}, {&lk.at, AccessTokenType}, {&lk.assertion, AssertionType}} {
		if *s.dst, err = jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv}, (&jose.SignerOptions{}).WithType(s.typ)); err != nil {
			return nil, err
		}
	}
	return lk, nil
}

// signing returns the key that signs now.
func (k *KeyRing) signing() (*loadedKey, error) {
	now := k.now()
	k.mu.RLock()
	defer k.mu.RUnlock()
	var cur *loadedKey
	for _, lk := range k.keys {
		if !lk.SignFrom.After(now) {
			cur = lk
		}
	}
	if cur == nil {
		return nil, errors.New("no signing key is active; the key ring has not been loaded")
	}
	return cur, nil
}

// verificationKey returns the public key with id kid. A miss reloads the
// ring from the store, at most every few seconds, so a key another node
// just created is found without letting junk kids hammer the store.
func (k *KeyRing) verificationKey(ctx context.Context, kid string) (*loadedKey, bool) {
	if lk := k.find(kid); lk != nil {
		return lk, true
	}
	k.mu.RLock()
	stale := k.now().Sub(k.loaded) > 5*time.Second
	k.mu.RUnlock()
	if stale && k.reload(ctx) == nil {
		if lk := k.find(kid); lk != nil {
			return lk, true
		}
	}
	return nil, false
}

func (k *KeyRing) find(kid string) *loadedKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, lk := range k.keys {
		if lk.ID == kid {
			return lk
		}
	}
	return nil
}

// JWKS returns the published public keys.
func (k *KeyRing) JWKS() jose.JSONWebKeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(k.keys))}
	for i := len(k.keys) - 1; i >= 0; i-- { // newest first
		set.Keys = append(set.Keys, k.keys[i].public)
	}
	return set
}

// SignAssertion signs claims as a gateway identity assertion (typ
// AssertionType) with the current key, so upstreams verify it against
// the same JWKS as tokens — and, by its typ, never mistake an ID token
// or access token for one, nor one of these for a token.
func (k *KeyRing) SignAssertion(claims any) (string, error) {
	key, err := k.signing()
	if err != nil {
		return "", err
	}
	return jwt.Signed(key.assertion).Claims(claims).Serialize()
}
