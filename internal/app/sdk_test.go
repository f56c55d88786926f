package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/pkg/stepup"
)

// A client that declared the cp1 capability: it gets Entra's claims
// challenges.
const (
	cp1ClientID = "cp1-app"
	cp1Secret   = "cp1-app-secret-cp1-app-secret-0123456789"
	cp1Redirect = "http://127.0.0.1:9/cp1/callback"
)

// TestSDKStepUp protects an API with the SDK against a real Stepgate and
// runs the whole loop a client goes through: a token without step-up,
// the API's challenge, a new authorization built from it, a token that
// passes. Once with RFC 9470's challenge, once with Entra's claims
// challenge for a cp1 client.
func TestSDKStepUp(t *testing.T) {
	s := startOIDC(t, func(cfg *config.Config) {
		cfg.OIDC.Clients = append(cfg.OIDC.Clients, config.OIDCClient{ID: cp1ClientID, Name: "Claims-challenge app",
			Secret: cp1Secret, RedirectURIs: []string{cp1Redirect}, Capabilities: []string{"cp1"}})
	})
	ctx := context.Background()
	verifier, err := stepup.NewVerifier(ctx, s.base, stepup.WithAudience(rpClientID, cp1ClientID), stepup.WithRealm("pii"))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(verifier.Require(stepup.Context("c1"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := stepup.ClaimsFrom(r.Context())
		if !ok {
			http.Error(w, "no claims", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(c)
	})))
	t.Cleanup(api.Close)
	b := browser(t)

	// authorize runs the code flow for conf with extra parameters and
	// returns the tokens.
	authorize := func(t *testing.T, conf oauth2.Config, extra url.Values) *oauth2.Token {
		t.Helper()
		pv := oauth2.GenerateVerifier()
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pv)}
		for k := range extra {
			opts = append(opts, oauth2.SetAuthURLParam(k, extra.Get(k)))
		}
		cb := s.follow(t, b, conf.AuthCodeURL("st", opts...))
		if e := cb.Query().Get("error"); e != "" {
			t.Fatalf("authorization failed: %s: %s", e, cb.Query().Get("error_description"))
		}
		tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pv))
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		return tok
	}
	call := func(t *testing.T, token string) (*http.Response, *stepup.Claims) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/customers/42", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp, nil
		}
		var c stepup.Claims
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			t.Fatal(err)
		}
		return resp, &c
	}
	clientConf := func(id, secret, redirect string) oauth2.Config {
		return oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect, Scopes: []string{"openid", "profile"},
			Endpoint: oauth2.Endpoint{AuthURL: s.base + "/oauth2/authorize", TokenURL: s.base + "/oauth2/token"}}
	}

	tests := []struct {
		name      string
		conf      oauth2.Config
		wantError string
		check     func(t *testing.T, ch stepup.Challenge)
	}{
		{"ok/rfc9470", clientConf(rpClientID, rpSecret, rpRedirect), stepup.ErrInsufficientUserAuthentication,
			func(t *testing.T, ch stepup.Challenge) {
				if !slices.Equal(ch.ACRValues, []string{"c1"}) || ch.Realm != "pii" {
					t.Fatalf("challenge = %+v, want acr_values c1 in realm pii", ch)
				}
			}},
		{"ok/entra-claims-challenge", clientConf(cp1ClientID, cp1Secret, cp1Redirect), stepup.ErrInsufficientClaims,
			func(t *testing.T, ch stepup.Challenge) {
				if ch.Claims != `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}` || ch.AuthorizationURI != s.base+"/oauth2/authorize" {
					t.Fatalf("challenge = %+v, want the claims request for c1 and the authorization endpoint", ch)
				}
				if len(ch.ACRValues) != 0 {
					t.Fatalf("claims challenge also has acr_values %v", ch.ACRValues)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := authorize(t, tt.conf, nil)
			resp, _ := call(t, first.AccessToken)
			ch, ok := stepup.ChallengeFrom(resp)
			if resp.StatusCode != http.StatusUnauthorized || !ok || ch.Error != tt.wantError {
				t.Fatalf("before step-up: status %d, challenge %+v (%v); want 401 %s", resp.StatusCode, ch, ok, tt.wantError)
			}
			tt.check(t, ch)

			// The user must prove it again now (c1 is a sign-in fresh
			// within minutes): max_age=0 beside what the challenge asks.
			params := ch.AuthorizeParams()
			params.Set("max_age", "0")
			stepped := authorize(t, tt.conf, params)
			resp, claims := call(t, stepped.AccessToken)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("after step-up: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if !slices.Contains(claims.ACRs, "c1") || claims.Subject != s.user.ID || claims.ClientID != tt.conf.ClientID {
				t.Fatalf("the handler saw %+v; want acrs with c1 for alice via %s", claims, tt.conf.ClientID)
			}

			// The ID token is signed by the same keys but is no access
			// token.
			idt, _ := stepped.Extra("id_token").(string)
			if resp, _ := call(t, idt); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("an ID token as access token: status %d, want 401", resp.StatusCode)
			}
		})
	}

	t.Run("fail/other-audience", func(t *testing.T) {
		other := authorize(t, clientConf(otherClientID, otherSecret, otherRedirect), url.Values{"acr_values": {"c1"}, "max_age": {"0"}})
		resp, _ := call(t, other.AccessToken)
		ch, _ := stepup.ChallengeFrom(resp)
		if resp.StatusCode != http.StatusUnauthorized || ch.Error != stepup.ErrInvalidToken {
			t.Fatalf("token of client other: status %d, challenge %+v; want 401 invalid_token", resp.StatusCode, ch)
		}
		webappOnly, err := stepup.NewVerifier(ctx, s.base, stepup.WithAudience(rpClientID))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := webappOnly.Verify(ctx, other.AccessToken); !errors.Is(err, stepup.ErrRejected) {
			t.Fatalf("Verify of client other's token for webapp: err = %v, want ErrRejected", err)
		}
	})
}

// TestSDKIntrospectionSeesSecurityEvents: with WithIntrospection, a
// token revoked by a security event at Stepgate (here a password change)
// is refused by the SDK at once, not at its expiry.
func TestSDKIntrospectionSeesSecurityEvents(t *testing.T) {
	s := startOIDC(t, nil)
	ctx := context.Background()
	verifier, err := stepup.NewVerifier(ctx, s.base, stepup.WithAudience(rpClientID), stepup.WithIntrospection(rpClientID, rpSecret, 0))
	if err != nil {
		t.Fatal(err)
	}
	b := browser(t)
	verifierCode, challenge := pkce()
	cb := s.follow(t, b, s.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	st, tok := s.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
		"redirect_uri": {rpRedirect}, "code_verifier": {verifierCode}}, rpClientID, rpSecret)
	if st != http.StatusOK {
		t.Fatalf("token: %d", st)
	}
	if _, err := verifier.Verify(ctx, tok.AccessToken); err != nil {
		t.Fatalf("a fresh token: %v", err)
	}
	if err := s.app.Users.SetPassword(ctx, testUser, "another good passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(ctx, tok.AccessToken); !errors.Is(err, stepup.ErrRejected) {
		t.Fatalf("a token from before the password change: %v, want it rejected", err)
	}
}
