package oidc

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// jwksIDs lists the published key ids, newest first.
func jwksIDs(k *KeyRing) []string {
	var ids []string
	for _, key := range k.JWKS().Keys {
		ids = append(ids, key.KeyID)
	}
	return ids
}

// tokenKID reads the kid and typ of a compact JWS without verifying it.
func tokenKID(t *testing.T, raw string) (kid, typ string) {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, verifyAlgs)
	if err != nil || len(tok.Headers) != 1 {
		t.Fatalf("not a signed JWT: %v", err)
	}
	typ, _ = tok.Headers[0].ExtraHeaders["typ"].(string)
	return tok.Headers[0].KeyID, typ
}

func signingID(t *testing.T, k *KeyRing) string {
	t.Helper()
	lk, err := k.signing()
	if err != nil {
		t.Fatal(err)
	}
	return lk.ID
}

func TestKeyRingRotation(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	ctx := context.Background()
	k, clk := tp.Keys, tp.clock
	pol := k.policy
	start := clk.Now()
	maintain := func(t *testing.T) {
		t.Helper()
		if err := k.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// First start: nothing can have cached a JWKS, so the key signs at
	// once.
	first := signingID(t, k)
	if ids := jwksIDs(k); !slices.Equal(ids, []string{first}) {
		t.Fatalf("JWKS after the first start = %v, want just %s", ids, first)
	}

	// Just before the successor is due, nothing changes.
	clk.Set(start.Add(pol.Rotation - pol.PublishAhead - time.Second))
	maintain(t)
	if ids := jwksIDs(k); len(ids) != 1 {
		t.Fatalf("JWKS before the successor is due = %v, want one key", ids)
	}

	// The successor is published ahead, but does not sign: relying
	// parties that cached the JWKS must learn it before its first token.
	clk.Set(start.Add(pol.Rotation - pol.PublishAhead))
	maintain(t)
	ids := jwksIDs(k)
	if len(ids) != 2 || ids[1] != first {
		t.Fatalf("JWKS after publish-ahead = %v, want the new key and %s", ids, first)
	}
	next := ids[0]
	if got := signingID(t, k); got != first {
		t.Fatalf("signing key while the successor waits = %s, want %s", got, first)
	}
	if _, err := k.Rotate(ctx); err == nil || !strings.Contains(err.Error(), next) {
		t.Fatalf("Rotate while %s waits: %v, want a refusal naming it", next, err)
	}
	maintain(t) // a second maintenance must not publish a third key
	if ids := jwksIDs(k); len(ids) != 2 {
		t.Fatalf("JWKS after maintaining twice = %v, want two keys", ids)
	}

	// The switch.
	clk.Set(start.Add(pol.Rotation - time.Second))
	if got := signingID(t, k); got != first {
		t.Fatalf("signing key a moment before the switch = %s, want %s", got, first)
	}
	oldToken := tp.accessToken(t)
	clk.Set(start.Add(pol.Rotation))
	switchedAt := clk.Now()
	if got := signingID(t, k); got != next {
		t.Fatalf("signing key at the switch = %s, want %s", got, next)
	}
	infos, err := k.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].State != "retired" || infos[1].State != "signing" || !infos[0].Until.Equal(switchedAt.Add(pol.Retain)) {
		t.Fatalf("List after the switch = %+v, want %s retired until %s and %s signing", infos, first, switchedAt.Add(pol.Retain), next)
	}

	// A token the old key signed just before the switch still verifies
	// after it, while the key is published.
	clk.Set(switchedAt.Add(time.Minute))
	if _, err := tp.VerifyAccessToken(ctx, oldToken); err != nil {
		t.Fatalf("a token of the retired key, within its lifetime: %v", err)
	}
	if kid, _ := tokenKID(t, oldToken); kid != first {
		t.Fatalf("the token was signed by %s, want %s; the check above proves nothing", kid, first)
	}

	// The old key stays published until Retain after the switch...
	clk.Set(switchedAt.Add(pol.Retain - time.Second))
	maintain(t)
	if ids := jwksIDs(k); !slices.Equal(ids, []string{next, first}) {
		t.Fatalf("JWKS just before Retain passes = %v, want %s and %s", ids, next, first)
	}
	// ...and is dropped then: every token it signed has expired.
	clk.Set(switchedAt.Add(pol.Retain))
	maintain(t)
	if ids := jwksIDs(k); !slices.Equal(ids, []string{next}) {
		t.Fatalf("JWKS once Retain passed = %v, want just %s", ids, next)
	}
	if _, ok := k.verificationKey(ctx, first); ok {
		t.Fatal("a dropped key is still found for verification")
	}
}

func TestKeyRingManualRotate(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	ctx := context.Background()
	k, clk := tp.Keys, tp.clock
	first := signingID(t, k)

	clk.Add(time.Hour)
	info, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "next" || !info.SignFrom.Equal(clk.Now().Add(k.policy.PublishAhead)) {
		t.Fatalf("Rotate = %+v, want a next key signing after publish-ahead", info)
	}
	if got := signingID(t, k); got != first {
		t.Fatalf("signing key right after Rotate = %s, want %s (the new one is not yet known to caches)", got, first)
	}
	if _, err := k.Rotate(ctx); err == nil {
		t.Fatal("a second Rotate while a key waits succeeded")
	}
	clk.Add(k.policy.PublishAhead)
	if got := signingID(t, k); got != info.ID {
		t.Fatalf("signing key after publish-ahead = %s, want %s", got, info.ID)
	}
	// With nothing waiting, rotating is allowed again.
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatalf("Rotate after the switch: %v", err)
	}
}

// TestKeyRingOtherNode checks that a key another node published is
// found for verification without a restart.
func TestKeyRingOtherNode(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	ctx := context.Background()
	other := NewKeyRing(tp.db, tp.Keys.policy, tp.clock.Now)
	if err := other.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := other.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tp.Keys.find(info.ID) != nil {
		t.Fatal("the key is cached before anything asked for it; the test proves nothing")
	}
	tp.clock.Add(10 * time.Second) // past the reload throttle
	if _, ok := tp.Keys.verificationKey(ctx, info.ID); !ok {
		t.Fatal("a key another node published is not found")
	}
}
