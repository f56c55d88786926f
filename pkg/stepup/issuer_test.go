package stepup_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testIssuer is a stand-in for Stepgate's discovery document and JWKS,
// with keys the test controls.
type testIssuer struct {
	srv       *httptest.Server
	jwksHits  atomic.Int64
	claimsIss string // the issuer the discovery document claims

	mu   sync.Mutex // guards keys
	keys []testKey
}

type testKey struct {
	kid    string
	alg    jose.SignatureAlgorithm
	signer crypto.Signer
}

// newTestIssuer starts an issuer with one ES256 key, "k1", for a test.
func newTestIssuer(tb testing.TB) *testIssuer {
	tb.Helper()
	ti := startIssuer()
	tb.Cleanup(ti.srv.Close)
	return ti
}

// startIssuer starts an issuer with one ES256 key, "k1"; the caller
// closes ti.srv.
func startIssuer() *testIssuer {
	ti := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		iss := ti.claimsIss
		if iss == "" {
			iss = ti.srv.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": iss, "jwks_uri": ti.srv.URL + "/oauth2/jwks", "authorization_endpoint": ti.srv.URL + "/oauth2/authorize",
		})
	})
	mux.HandleFunc("GET /oauth2/jwks", func(w http.ResponseWriter, _ *http.Request) {
		ti.jwksHits.Add(1)
		ti.mu.Lock()
		defer ti.mu.Unlock()
		var set jose.JSONWebKeySet
		for _, k := range ti.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.signer.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		_ = json.NewEncoder(w).Encode(set)
	})
	ti.srv = httptest.NewServer(mux)
	ti.keys = append(ti.keys, mustKey("k1", jose.ES256))
	return ti
}

// addKey publishes a new key.
func (ti *testIssuer) addKey(tb testing.TB, kid string, alg jose.SignatureAlgorithm) testKey {
	tb.Helper()
	k := newKey(tb, kid, alg)
	ti.mu.Lock()
	ti.keys = append(ti.keys, k)
	ti.mu.Unlock()
	return k
}

func newKey(tb testing.TB, kid string, alg jose.SignatureAlgorithm) testKey {
	tb.Helper()
	return mustKey(kid, alg)
}

// mustKey generates a key; it panics where a test would fail, for the
// examples, which have no testing.TB.
func mustKey(kid string, alg jose.SignatureAlgorithm) testKey {
	var signer crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("no test keys for %s", alg)
	}
	if err != nil {
		panic(err)
	}
	return testKey{kid: kid, alg: alg, signer: signer}
}

func (ti *testIssuer) key(tb testing.TB, kid string) testKey {
	tb.Helper()
	ti.mu.Lock()
	defer ti.mu.Unlock()
	for _, k := range ti.keys {
		if k.kid == kid {
			return k
		}
	}
	tb.Fatalf("no key %q", kid)
	return testKey{}
}

// tokenClaims are what tests put in access tokens.
type tokenClaims struct {
	jwt.Claims
	ClientID     string   `json:"client_id,omitempty"`
	Scope        string   `json:"scope,omitempty"`
	AuthTime     int64    `json:"auth_time,omitempty"`
	ACR          string   `json:"acr,omitempty"`
	AMR          []string `json:"amr,omitempty"`
	ACRs         []string `json:"acrs,omitempty"`
	SID          string   `json:"sid,omitempty"`
	Capabilities []string `json:"xms_cc,omitempty"`
	Username     string   `json:"preferred_username,omitempty"`
}

// claimsAt returns valid claims for client "api-client", issued at now.
func (ti *testIssuer) claimsAt(now time.Time) tokenClaims {
	return tokenClaims{
		Claims: jwt.Claims{
			Issuer: ti.srv.URL, Subject: "user-1", Audience: jwt.Audience{"api-client"}, ID: "jti-1",
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
		},
		ClientID: "api-client", Scope: "openid read", AuthTime: now.Unix(), ACR: "single-factor",
		AMR: []string{"pwd"}, SID: "s-1", Username: "alice",
	}
}

// sign signs c with key k and header typ.
func sign(tb testing.TB, k testKey, typ string, c any) string {
	tb.Helper()
	raw, err := signToken(k, typ, c)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func signToken(k testKey, typ string, c any) (string, error) {
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.signer, KeyID: k.kid}}, opts)
	if err != nil {
		return "", err
	}
	return jwt.Signed(s).Claims(c).Serialize()
}

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
