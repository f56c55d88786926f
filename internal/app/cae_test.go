package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/pkg/stepup"
)

// TestContinuousAccessEvaluation: security events end access at once.
// A password change makes the gateway refuse the user's existing access
// tokens on the next request — well within a second, not at expiry —
// with the right challenge, and their refresh tokens and sessions die
// with it; disabling the user does the same.
func TestContinuousAccessEvaluation(t *testing.T) {
	g := startGateway(t)
	api := gatewayBrowser(t, g.server)
	b := browser(t)
	g.signIn(t, b, "/account")
	token := func(extra url.Values) tokenResponse {
		t.Helper()
		verifier, challenge := pkce()
		q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
			"scope": {"openid offline_access"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			q[k] = v
		}
		cb := g.follow(t, b, g.base+"/oauth2/authorize?"+q.Encode())
		st, tok := g.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {bankRedirect}, "code_verifier": {verifier}}, bankClientID, bankSecret)
		if st != http.StatusOK {
			t.Fatalf("token: %d %s", st, tok.ErrorDescription)
		}
		return tok
	}
	call := func(tok string) *http.Response {
		resp := mustDo(t, api, "GET", g.app+"/accounts", "", "Authorization", "Bearer "+tok)
		resp.Body.Close()
		return resp
	}
	plain := token(nil)
	cp1 := token(url.Values{"claims": {`{"access_token":{"xms_cc":{"values":["cp1"]}}}`}})
	if call(plain.AccessToken).StatusCode != http.StatusOK || call(cp1.AccessToken).StatusCode != http.StatusOK {
		t.Fatal("fresh tokens are refused")
	}
	// A token issued in the same second as the event counts as before
	// it; step into the next second so the test knows which side it is on.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))

	changed := time.Now()
	if err := g.server.app.Users.SetPassword(context.Background(), testUser, "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	resp := call(plain.AccessToken)
	if elapsed := time.Since(changed); elapsed > time.Second {
		t.Fatalf("the refusal took %s", elapsed)
	}
	ch, _ := stepup.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || ch.Error != stepup.ErrInsufficientUserAuthentication || !ch.HasMaxAge || ch.MaxAge != 0 {
		t.Fatalf("a token from before the password change: %d %q, want 401 with max_age=0", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = call(cp1.AccessToken)
	ch, _ = stepup.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || ch.Error != stepup.ErrInsufficientClaims ||
		!strings.Contains(ch.Claims, `"nbf":{"essential":true,"value":"`+strconv.FormatInt(changed.Unix(), 10)+`"}`) {
		t.Fatalf("a cp1 token from before the password change: %d %q (claims %s), want Entra's nbf claims challenge",
			resp.StatusCode, resp.Header.Get("WWW-Authenticate"), ch.Claims)
	}
	// The refresh token from before is dead, and so is the session.
	st, out := g.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {plain.RefreshToken}}, bankClientID, bankSecret)
	if st != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Fatalf("refresh after the password change: %d %s", st, out.Error)
	}
	if resp, _ := get(t, b, g.base+"/account"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the old session still works after the password change: %d", resp.StatusCode)
	}

	// Disabling the user: refused at once too.
	g.signInAs(t, b, "a brand new passphrase")
	after := token(nil)
	if call(after.AccessToken).StatusCode != http.StatusOK {
		t.Fatal("a token from after the password change is refused")
	}
	if err := g.server.app.Users.SetDisabled(context.Background(), testUser, true); err != nil {
		t.Fatal(err)
	}
	if resp := call(after.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a disabled user's token: %d, want 401", resp.StatusCode)
	}
}

// signInAs signs alice in with password pw.
func (s *oidcServer) signInAs(t *testing.T, c *http.Client, pw string) {
	t.Helper()
	tok := csrfToken(t, c, s.base)
	resp, _ := post(t, c, s.base+"/login", url.Values{"csrf_token": {tok}, "username": {testUser}, "password": {pw}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
}

// TestAttackRevokedTokenThroughGatewayCache: an access token revoked at
// the revocation endpoint (RFC 7009), or whose refresh token was, is
// refused by the gateway on the next request, though the gateway had just
// looked it up and allowed it: the revocation drops this node's cached
// lookups and allows at once instead of after their half second.
func TestAttackRevokedTokenThroughGatewayCache(t *testing.T) {
	g := startGateway(t)
	api := gatewayBrowser(t, g.server)
	b := browser(t)
	g.signIn(t, b, "/account")
	token := func() tokenResponse {
		t.Helper()
		verifier, challenge := pkce()
		q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
			"scope": {"openid offline_access"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		cb := g.follow(t, b, g.base+"/oauth2/authorize?"+q.Encode())
		st, tok := g.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {bankRedirect}, "code_verifier": {verifier}}, bankClientID, bankSecret)
		if st != http.StatusOK {
			t.Fatalf("token: %d %s", st, tok.ErrorDescription)
		}
		return tok
	}
	call := func(tok string) int {
		resp := mustDo(t, api, "GET", g.app+"/accounts", "", "Authorization", "Bearer "+tok)
		resp.Body.Close()
		return resp.StatusCode
	}
	revoke := func(tok string) {
		t.Helper()
		resp, body := post(t, http.DefaultClient, g.base+"/oauth2/revoke", url.Values{"token": {tok}}, "Authorization", basicAuth(bankClientID, bankSecret))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: status %d: %s", resp.StatusCode, body)
		}
	}
	for _, tc := range []struct {
		name   string
		revoke func(tokenResponse) string
	}{
		{"fail/access-token-revoked", func(t tokenResponse) string { return t.AccessToken }},
		{"fail/refresh-token-revoked", func(t tokenResponse) string { return t.RefreshToken }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := token()
			for range 3 {
				if st := call(tok.AccessToken); st != http.StatusOK {
					t.Fatalf("a fresh token: %d", st)
				}
			}
			revoke(tc.revoke(tok))
			if st := call(tok.AccessToken); st != http.StatusUnauthorized {
				t.Fatalf("the request right after the revocation: %d, want 401", st)
			}
		})
	}
}
