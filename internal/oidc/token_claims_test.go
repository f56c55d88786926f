package oidc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// signAccess signs claims as an access token with the provider's current
// key: the forger here holds the real key, so every check but the
// signature is on trial.
func (tp *testProvider) signAccess(t *testing.T, c AccessClaims) string {
	t.Helper()
	key, err := tp.Keys.signing()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(key.at).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestVerifyAccessTokenTimes(t *testing.T) {
	t.Parallel()
	life := 5 * time.Minute
	tests := []struct {
		name     string
		mintAt   time.Duration // from the start
		verifyAt time.Duration
		wantOK   bool
	}{
		{"ok/fresh", 0, 0, true},
		{"ok/just-before-expiry", 0, life - time.Second, true},
		// Other nodes' clocks may be off by up to clockSkew.
		{"ok/expired-within-skew", 0, life + clockSkew - time.Second, true},
		{"fail/expired-beyond-skew", 0, life + clockSkew + time.Second, false},
		{"fail/expired-long-ago", 0, 24 * time.Hour, false},
		{"ok/nbf-within-skew", clockSkew - time.Second, 0, true},
		// A token from the future: a node with a runaway clock, or one
		// minted to be used later.
		{"fail/nbf-beyond-skew", clockSkew + time.Second, 0, false},
		{"fail/nbf-far-future", time.Hour, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp := newTestProvider(t)
			start := tp.clock.Now()
			tp.clock.Set(start.Add(tc.mintAt))
			raw := tp.accessToken(t)
			tp.clock.Set(start.Add(tc.verifyAt))
			c, err := tp.VerifyAccessToken(context.Background(), raw)
			if tc.wantOK {
				if err != nil || c.Subject != tp.user.ID {
					t.Fatalf("VerifyAccessToken: %v, want the token accepted", err)
				}
				return
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != "invalid_token" || oe.Status != 401 {
				t.Fatalf("VerifyAccessToken: %v, want invalid_token (401)", err)
			}
		})
	}
}

func TestVerifyAccessTokenClaims(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	ctx := context.Background()
	now := tp.clock.Now()
	grant, err := tp.newGrant(ctx, testClientID, tp.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	valid := func() AccessClaims {
		return AccessClaims{
			Claims: jwt.Claims{
				Issuer: testIssuer, Subject: tp.user.ID, Audience: jwt.Audience{testClientID},
				IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
				Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: jtiFor(grant),
			},
			ClientID: testClientID, Scope: "openid",
		}
	}
	tests := []struct {
		name   string
		edit   func(*AccessClaims)
		wantOK bool
	}{
		{"ok/valid", func(*AccessClaims) {}, true},
		{"fail/other-issuer", func(c *AccessClaims) { c.Issuer = "https://evil.example" }, false},
		{"fail/no-issuer", func(c *AccessClaims) { c.Issuer = "" }, false},
		// Without exp a token would never die; without jti it could not
		// be revoked.
		{"fail/no-exp", func(c *AccessClaims) { c.Expiry = nil }, false},
		{"fail/no-jti", func(c *AccessClaims) { c.ID = "" }, false},
		{"fail/iat-in-future", func(c *AccessClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) }, false},
		// A jti naming a grant that does not exist: revocation would be
		// checked against nothing.
		{"fail/unknown-grant", func(c *AccessClaims) { c.ID = jtiFor("no-such-grant") }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			_, err := tp.VerifyAccessToken(ctx, tp.signAccess(t, c))
			if tc.wantOK != (err == nil) {
				t.Fatalf("VerifyAccessToken: %v, want accepted=%t", err, tc.wantOK)
			}
		})
	}

	t.Run("fail/revoked-grant", func(t *testing.T) {
		raw := tp.signAccess(t, valid())
		if _, err := tp.VerifyAccessToken(ctx, raw); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		if err := tp.revokeGrant(ctx, grant, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := tp.VerifyAccessToken(ctx, raw); err == nil {
			t.Fatal("a token of a revoked grant verifies")
		}
	})
	t.Run("fail/id-token-typ", func(t *testing.T) {
		out, err := tp.mint(tp.client(t), tp.user, tp.authState("openid"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, typ := tokenKID(t, out.IDToken); typ != "JWT" {
			t.Fatalf("ID token typ %q, want JWT", typ)
		}
		if _, err := tp.VerifyAccessToken(ctx, out.AccessToken); err != nil {
			t.Fatalf("the access token minted with it: %v", err)
		}
		if _, err := tp.VerifyAccessToken(ctx, out.IDToken); err == nil {
			t.Fatal("an ID token verifies as an access token")
		}
	})
	// The gateway's assertion, the access token and the ID token share the
	// keys; each verifier accepts its own typ only.
	t.Run("fail/one-type-for-another", func(t *testing.T) {
		out, err := tp.mint(tp.client(t), tp.user, tp.authState("openid"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		assertion, err := tp.Keys.SignAssertion(valid())
		if err != nil {
			t.Fatal(err)
		}
		if _, typ := tokenKID(t, assertion); typ != AssertionType {
			t.Fatalf("assertion typ %q, want %s", typ, AssertionType)
		}
		if _, err := tp.VerifyAccessToken(ctx, assertion); err == nil {
			t.Error("an assertion verifies as an access token")
		}
		if _, err := tp.verifyIDTokenHint(ctx, out.IDToken); err != nil {
			t.Errorf("the ID token as id_token_hint: %v", err)
		}
		for name, raw := range map[string]string{"access token": out.AccessToken, "assertion": assertion} {
			if _, err := tp.verifyIDTokenHint(ctx, raw); err == nil {
				t.Errorf("an %s is accepted as id_token_hint", name)
			}
		}
	})
}
