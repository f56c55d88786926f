package app_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// stepClaims are the step-up claims every ID token must carry.
type stepClaims struct {
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
	ACRs     []string `json:"acrs"`
	SID      string   `json:"sid"`
	Nonce    string   `json:"nonce"`
	Email    string   `json:"email"`
}

// TestInteropGoOIDC runs the code flow with PKCE, refresh, userinfo and a
// step-up through golang.org/x/oauth2 and coreos/go-oidc, libraries that
// check discovery, signatures, issuer, audience, expiry and nonce the
// way real relying parties do.
func TestInteropGoOIDC(t *testing.T) {
	s := startOIDC(t, nil)
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{
		ClientID: rpClientID, ClientSecret: rpSecret, RedirectURL: rpRedirect, Endpoint: provider.Endpoint(),
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess},
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: rpClientID})
	b := browser(t)

	// login runs one authorization and returns the verified ID token.
	login := func(nonce string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, *gooidc.IDToken, stepClaims) {
		t.Helper()
		pv := oauth2.GenerateVerifier()
		opts = append(opts, oauth2.S256ChallengeOption(pv), gooidc.Nonce(nonce))
		cb := s.follow(t, b, conf.AuthCodeURL("state-"+nonce, opts...))
		q := cb.Query()
		if q.Get("error") != "" {
			t.Fatalf("authorization failed: %s: %s", q.Get("error"), q.Get("error_description"))
		}
		if q.Get("state") != "state-"+nonce || q.Get("iss") != s.base {
			t.Fatalf("callback state/iss = %q/%q", q.Get("state"), q.Get("iss"))
		}
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pv))
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("ID token does not verify: %v", err)
		}
		var c stepClaims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if c.Nonce != nonce {
			t.Fatalf("nonce = %q, want %q", c.Nonce, nonce)
		}
		return tok, idt, c
	}

	tok, idt, first := login("n1")
	if idt.Subject != s.user.ID || first.Email != "alice@example.com" {
		t.Errorf("sub/email = %q/%q", idt.Subject, first.Email)
	}
	if first.ACR != "single-factor" || !slices.Contains(first.AMR, "pwd") || first.AuthTime == 0 || first.SID == "" {
		t.Errorf("first sign-in claims = %+v; want acr single-factor, amr pwd, auth_time and sid", first)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}

	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != s.user.ID || ui.Email != "alice@example.com" {
		t.Fatalf("userinfo = %+v, %v", ui, err)
	}

	// Refresh: new tokens, same acr and auth_time; the old refresh token
	// is rotated out.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.AccessToken == tok.AccessToken || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not issue new tokens")
	}
	raw, _ := refreshed.Extra("id_token").(string)
	ridt, err := verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	var rc stepClaims
	_ = ridt.Claims(&rc)
	if rc.ACR != first.ACR || rc.AuthTime != first.AuthTime {
		t.Errorf("refresh changed acr/auth_time: %s/%d, want %s/%d", rc.ACR, rc.AuthTime, first.ACR, first.AuthTime)
	}

	// Step-up: the app asks for context c1 with max_age=0. The session
	// must prove itself again; the new token names c1 and a later
	// auth_time.
	time.Sleep(1100 * time.Millisecond) // auth_time has one-second resolution
	_, _, stepped := login("n2", oauth2.SetAuthURLParam("acr_values", "c1"), oauth2.SetAuthURLParam("max_age", "0"))
	if stepped.ACR != "c1" || !slices.Contains(stepped.ACRs, "c1") {
		t.Errorf("step-up acr/acrs = %q/%v, want c1", stepped.ACR, stepped.ACRs)
	}
	if stepped.AuthTime <= first.AuthTime {
		t.Errorf("step-up auth_time %d is not after %d", stepped.AuthTime, first.AuthTime)
	}
	if stepped.SID != first.SID {
		t.Errorf("sid changed across a step-up: %q → %q", first.SID, stepped.SID)
	}

	// A context this user cannot reach (MFA without a second factor)
	// ends the flow with RFC 9470's error, never a weaker token.
	cb := s.follow(t, b, conf.AuthCodeURL("st", oauth2.SetAuthURLParam("acr_values", "c2"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if got := cb.Query().Get("error"); got != "unmet_authentication_requirements" {
		t.Errorf("acr_values=c2: error = %q, want unmet_authentication_requirements", got)
	}
	if cb.Query().Get("code") != "" {
		t.Error("a code was issued for an unmet acr")
	}
	_ = http.StatusOK
}
