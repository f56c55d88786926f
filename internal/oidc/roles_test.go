package oidc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// TestTokenRolesFollowElevation: a token minted while an elevation is
// active carries the role for the client it is scoped to, and both the
// access and the ID token expire by the elevation's end; the role is
// refused by verification once it no longer counts — at its end, after a
// deactivation, or on a clock set back before it began — while a token
// without it stays good.
func TestTokenRolesFollowElevation(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	ctx := context.Background()
	start := tp.clock.Now()
	until := start.Add(30 * time.Minute)
	// The store counts an elevation only while an eligible assignment
	// still names its holder.
	if _, err := tp.db.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra_1", Role: "bank-admin", Kind: store.AssignEligible,
		Principal: store.UserPrincipal(tp.user.ID), Scope: []string{testClientID}}); err != nil {
		t.Fatal(err)
	}
	e, err := tp.db.CreateElevation(ctx, store.Elevation{ID: "elv_1", UserID: tp.user.ID, Role: "bank-admin", Scope: []string{testClientID},
		Duration: 30 * time.Minute, State: store.ElevationActive, RequestedAt: start, ActivatedAt: start, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(scope ...string) issued {
		t.Helper()
		u, err := tp.db.GetUser(ctx, tp.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		grant, err := tp.newGrant(ctx, testClientID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tp.mint(tp.client(t), u, tp.authState(scope...), grant, true)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	claims := func(raw string) (roles []string, exp time.Time) {
		t.Helper()
		tok, err := jwt.ParseSigned(raw, verifyAlgs)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Roles []string `json:"roles"`
			Exp   int64    `json:"exp"`
		}
		if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
			t.Fatal(err)
		}
		return c.Roles, time.Unix(c.Exp, 0)
	}

	// Two minutes before the end: shorter than the access token's life.
	tp.clock.Set(until.Add(-2 * time.Minute))
	elevated := mint("openid", "groups")
	plain := mint("openid")
	for name, raw := range map[string]string{"access": elevated.AccessToken, "id": elevated.IDToken} {
		if roles, exp := claims(raw); !slices.Contains(roles, "bank-admin") || exp.After(until) {
			t.Errorf("ok/%s-token: roles %q, exp %v; want bank-admin, expiring by %v", name, roles, exp, until)
		}
		if _, exp := claims(raw); !exp.Equal(until) {
			t.Errorf("ok/%s-token: exp %v, want the elevation's end %v", name, exp, until)
		}
	}
	if elevated.ExpiresIn != int64(2*time.Minute/time.Second) {
		t.Errorf("expires_in %d, beyond the elevation's end", elevated.ExpiresIn)
	}
	if _, err := tp.VerifyAccessToken(ctx, elevated.AccessToken); err != nil {
		t.Fatalf("ok/while-active: %v", err)
	}

	refused := func(name string) {
		t.Helper()
		_, err := tp.VerifyAccessToken(ctx, elevated.AccessToken)
		var ended *oauth.RoleEndedError
		if !errors.As(err, &ended) || ended.Role != "bank-admin" {
			t.Errorf("fail/%s: %v, want the role refused", name, err)
		}
		if _, err := tp.VerifyAccessToken(ctx, plain.AccessToken); err != nil && !strings.Contains(err.Error(), "expired") {
			t.Errorf("fail/%s: a token without roles was refused: %v", name, err)
		}
	}
	tp.clock.Set(until)
	refused("at-end-within-skew")
	// Set back before the activation the token is not yet valid, let
	// alone its role.
	tp.clock.Set(start.Add(-time.Second))
	if _, err := tp.VerifyAccessToken(ctx, elevated.AccessToken); err == nil {
		t.Error("fail/clock-set-back: the token was accepted")
	}

	tp.clock.Set(until.Add(-2 * time.Minute))
	if _, err := tp.db.UpdateElevation(ctx, e.ID, func(cur store.Elevation) (store.Elevation, error) {
		cur.State, cur.EndedAt, cur.EndedBy, cur.EndReason = store.ElevationDeactivated, tp.clock.Now(), tp.user.ID, "by-holder"
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	refused("deactivated")
	if roles, _ := claims(mint("openid", "groups").AccessToken); slices.Contains(roles, "bank-admin") {
		t.Errorf("fail/minted-after-deactivation: roles %q", roles)
	}
}
