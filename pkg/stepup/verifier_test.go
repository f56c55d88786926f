package stepup_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/pkg/stepup"
)

func newVerifier(t testing.TB, ti *testIssuer, clk *clock, opts ...stepup.Option) *stepup.Verifier {
	t.Helper()
	opts = append([]stepup.Option{stepup.WithAudience("api-client"), stepup.WithClock(clk.now)}, opts...)
	v, err := stepup.NewVerifier(context.Background(), ti.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// unsigned returns header.payload. with the given header, no signature.
func unsigned(t *testing.T, header map[string]any, claims any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

func TestVerify(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.addKey(t, "k2", jose.EdDSA)
	clk := newClock()
	now := clk.now()
	k1, k2 := ti.key(t, "k1"), ti.key(t, "k2")

	with := func(f func(*tokenClaims)) tokenClaims {
		c := ti.claimsAt(now)
		f(&c)
		return c
	}
	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  string // "" for success, else a fragment of the error
	}{
		{"ok/es256", func(t *testing.T) string { return sign(t, k1, "at+jwt", ti.claimsAt(now)) }, ""},
		{"ok/eddsa", func(t *testing.T) string { return sign(t, k2, "at+jwt", ti.claimsAt(now)) }, ""},
		{"ok/media-type-typ", func(t *testing.T) string { return sign(t, k1, "application/at+jwt", ti.claimsAt(now)) }, ""},
		{"ok/expired-within-leeway", func(t *testing.T) string {
			return sign(t, k1, "at+jwt", with(func(c *tokenClaims) { c.Expiry = jwt.NewNumericDate(now.Add(-20 * time.Second)) }))
		}, ""},
		{"fail/alg-none", func(t *testing.T) string {
			return unsigned(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "k1"}, ti.claimsAt(now))
		}, "unexpected signature algorithm"},
		{"fail/HS256-with-the-public-key", func(t *testing.T) string {
			// The attack: the verifier is tricked into using the public
			// key, which anyone can fetch, as an HMAC secret.
			pub, err := x509.MarshalPKIXPublicKey(k1.signer.Public())
			if err != nil {
				t.Fatal(err)
			}
			h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "k1"})
			c, _ := json.Marshal(ti.claimsAt(now))
			input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
			mac := hmac.New(sha256.New, pub)
			mac.Write([]byte(input))
			return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		}, "unexpected signature algorithm"},
		{"fail/alg-not-the-keys", func(t *testing.T) string {
			// An Ed25519 signature presented under the ES256 key's kid.
			return sign(t, testKey{kid: "k1", alg: jose.EdDSA, signer: k2.signer}, "at+jwt", ti.claimsAt(now))
		}, "does not match key"},
		{"fail/unpublished-key-with-a-known-kid", func(t *testing.T) string {
			return sign(t, newKey(t, "k1", jose.ES256), "at+jwt", ti.claimsAt(now))
		}, "cryptographic"},
		{"fail/tampered", func(t *testing.T) string {
			raw := sign(t, k1, "at+jwt", ti.claimsAt(now))
			parts := strings.Split(raw, ".")
			c, _ := json.Marshal(with(func(c *tokenClaims) { c.ACRs = []string{"c2"} }))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
		}, "cryptographic"},
		{"fail/other-issuer", func(t *testing.T) string {
			return sign(t, k1, "at+jwt", with(func(c *tokenClaims) { c.Issuer = "https://evil.example" }))
		}, "issuer"},
		{"fail/other-audience", func(t *testing.T) string {
			return sign(t, k1, "at+jwt", with(func(c *tokenClaims) { c.Audience = jwt.Audience{"other-client"} }))
		}, "audience"},
		{"fail/a-database-token-named-like-this-api", func(t *testing.T) string {
			// A token Stepgate issued for its database "api-client" (to the
			// command line client): the database keeps it as a password.
			return sign(t, k1, "at+jwt", with(func(c *tokenClaims) { c.ClientID = "stepgate-cli" }))
		}, "not for a client"},
		{"fail/expired", func(t *testing.T) string {
			return sign(t, k1, "at+jwt", with(func(c *tokenClaims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) }))
		}, "expired"},
		{"fail/not-yet-valid", func(t *testing.T) string {
			return sign(t, k1, "at+jwt", with(func(c *tokenClaims) { c.NotBefore = jwt.NewNumericDate(now.Add(2 * time.Minute)) }))
		}, "not valid yet"},
		{"fail/no-exp", func(t *testing.T) string {
			return sign(t, k1, "at+jwt", with(func(c *tokenClaims) { c.Expiry = nil }))
		}, "no exp"},
		{"fail/ID-token-typ", func(t *testing.T) string { return sign(t, k1, "JWT", ti.claimsAt(now)) }, "not at+jwt"},
		{"fail/no-typ", func(t *testing.T) string { return sign(t, k1, "", ti.claimsAt(now)) }, "not at+jwt"},
		{"fail/unknown-kid", func(t *testing.T) string { return sign(t, newKey(t, "k9", jose.ES256), "at+jwt", ti.claimsAt(now)) }, "unknown key id"},
		{"fail/garbage", func(*testing.T) string { return "not.a.jwt" }, "rejected"},
		{"fail/too-long", func(*testing.T) string { return strings.Repeat("a", 20<<10) }, "longer than"},
	}
	v := newVerifier(t, ti, clk)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.token(t)
			for range 2 { // the second time may come from the cache
				c, err := v.Verify(context.Background(), raw)
				switch {
				case tt.want == "" && err != nil:
					t.Fatalf("Verify: %v", err)
				case tt.want == "" && (c.Subject != "user-1" || c.ClientID != "api-client" || c.AuthTime.Unix() != now.Unix()):
					t.Fatalf("claims = %+v", c)
				case tt.want != "" && err == nil:
					t.Fatalf("Verify accepted the token: %+v", c)
				case tt.want != "" && (!errors.Is(err, stepup.ErrRejected) || !strings.Contains(err.Error(), tt.want)):
					t.Fatalf("error = %v, want ErrRejected mentioning %q", err, tt.want)
				}
			}
		})
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newClock()
	v := newVerifier(t, ti, clk)
	ctx := context.Background()
	if got := ti.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", got)
	}

	// Stepgate rotates: a token arrives signed by a key published after
	// the Verifier fetched the JWKS.
	next := ti.addKey(t, "k2", jose.EdDSA)
	raw := sign(t, next, "at+jwt", ti.claimsAt(clk.now()))
	clk.add(stepup.DefaultRefetchInterval)
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if got := ti.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (one refetch)", got)
	}
	// The old key still verifies.
	if _, err := v.Verify(ctx, sign(t, ti.key(t, "k1"), "at+jwt", ti.claimsAt(clk.now()))); err != nil {
		t.Fatalf("token of the old key: %v", err)
	}
}

func TestVerifyRefetchRateLimit(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newClock()
	v := newVerifier(t, ti, clk, stepup.WithRefetchInterval(time.Minute))
	ctx := context.Background()

	junk := func() {
		t.Helper()
		for i := range 50 {
			raw := sign(t, newKey(t, fmt.Sprintf("junk-%d", i), jose.EdDSA), "at+jwt", ti.claimsAt(clk.now()))
			if _, err := v.Verify(ctx, raw); err == nil {
				t.Fatal("a token of an unpublished key verified")
			}
		}
	}
	junk()
	if got := ti.jwksHits.Load(); got != 1 {
		t.Fatalf("50 unknown kids within the interval fetched the JWKS %d times, want only the first fetch", got)
	}

	// A genuinely new key inside the interval waits for it...
	k2 := ti.addKey(t, "k2", jose.ES256)
	raw := sign(t, k2, "at+jwt", ti.claimsAt(clk.now()))
	if _, err := v.Verify(ctx, raw); err == nil {
		t.Fatal("the JWKS was refetched inside the interval")
	}
	// ...and after it, one refetch finds it.
	clk.add(time.Minute)
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	junk()
	if got := ti.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", got)
	}
}

func TestVerifyCache(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ctx := context.Background()
	for _, name := range []string{"cached", "uncached"} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			var opts []stepup.Option
			if name == "uncached" {
				opts = append(opts, stepup.WithoutCache())
			}
			v := newVerifier(t, ti, clk, opts...)
			c := ti.claimsAt(clk.now())
			c.ACRs = []string{"c1"}
			raw := sign(t, ti.key(t, "k1"), "at+jwt", c)
			got, err := v.Verify(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			// Callers may change what they get; the cached entry must
			// not change with it.
			got.ACRs[0] = "changed"
			again, err := v.Verify(ctx, raw)
			if err != nil || !slices.Equal(again.ACRs, []string{"c1"}) {
				t.Fatalf("second Verify = %+v, %v; want acrs [c1]", again, err)
			}
			// Past exp (and the leeway) the token is refused, cached or not.
			clk.add(5*time.Minute + stepup.DefaultLeeway + time.Second)
			if _, err := v.Verify(ctx, raw); !errors.Is(err, stepup.ErrRejected) {
				t.Fatalf("expired token: err = %v, want ErrRejected", err)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("fail/issuer-mismatch", func(t *testing.T) {
		t.Parallel()
		ti := newTestIssuer(t)
		ti.claimsIss = "https://evil.example"
		_, err := stepup.NewVerifier(ctx, ti.srv.URL, stepup.WithAudience("api-client"))
		if err == nil || !strings.Contains(err.Error(), "names issuer") {
			t.Fatalf("err = %v, want an issuer mismatch", err)
		}
	})
	t.Run("fail/trailing-slash-is-another-issuer", func(t *testing.T) {
		t.Parallel()
		ti := newTestIssuer(t)
		if _, err := stepup.NewVerifier(ctx, ti.srv.URL+"/", stepup.WithAudience("api-client")); err == nil {
			t.Fatal("an issuer differing by a slash was accepted")
		}
	})
	t.Run("fail/no-audience", func(t *testing.T) {
		t.Parallel()
		ti := newTestIssuer(t)
		_, err := stepup.NewVerifier(ctx, ti.srv.URL)
		if err == nil || !strings.Contains(err.Error(), "WithAudience") {
			t.Fatalf("err = %v, want one naming WithAudience", err)
		}
	})
	t.Run("fail/no-discovery", func(t *testing.T) {
		t.Parallel()
		ti := newTestIssuer(t)
		if _, err := stepup.NewVerifier(ctx, ti.srv.URL+"/nothing", stepup.WithAudience("api-client")); err == nil {
			t.Fatal("NewVerifier succeeded without a discovery document")
		}
	})
}

// BenchmarkVerify measures Verify of an ES256 token with and without the
// cache of verified tokens.
func BenchmarkVerify(b *testing.B) {
	ti := newTestIssuer(b)
	clk := newClock()
	raw := sign(b, ti.key(b, "k1"), "at+jwt", ti.claimsAt(clk.now()))
	ctx := context.Background()
	for _, name := range []string{"cached", "uncached"} {
		b.Run(name, func(b *testing.B) {
			opts := []stepup.Option{}
			if name == "uncached" {
				opts = append(opts, stepup.WithoutCache())
			}
			v := newVerifier(b, ti, clk, opts...)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
