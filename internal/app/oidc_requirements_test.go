package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// The tests in this file ask for an acr in more than one place at once
// (acr_values and the claims parameter's id_token, userinfo and
// access_token members), and check that each is a requirement of its
// own: a password-only session is sent to step up, never given a token
// because one of the requests is already met.

// authorizeOnce sends an authorization request in browser c, signing in
// with the password if asked, and returns where the flow goes next: the
// step-up page or the client's redirect URI.
func (s *oidcServer) authorizeOnce(t *testing.T, c *http.Client, params url.Values) *url.URL {
	t.Helper()
	u := s.authorizeURL(params)
	for range 6 {
		resp, body := get(t, c, u)
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("GET %s: status %d, want a redirect:\n%s", u, resp.StatusCode, body)
		}
		if loc.Path != "/login" {
			return loc
		}
		resp = s.signIn(t, c, loc.Query().Get("return_to"))
		if loc, err = resp.Location(); err != nil {
			t.Fatalf("sign-in: status %d", resp.StatusCode)
		}
		u = loc.String()
	}
	t.Fatal("no step-up or answer after several redirects")
	return nil
}

// passTOTPStepUp passes the step-up page at loc with a code of secret and
// returns where the flow goes next.
func (s *oidcServer) passTOTPStepUp(t *testing.T, c *http.Client, loc *url.URL, secret string, at time.Time) *url.URL {
	t.Helper()
	_, page := get(t, c, s.base+loc.RequestURI())
	csrf, cer := formOf(t, page)
	resp, _ := post(t, c, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
		"code": {totpCode(t, secret, at)}, "return_to": {loc.Query().Get("return_to")}})
	next, err := resp.Location()
	if err != nil {
		t.Fatalf("TOTP step-up: status %d", resp.StatusCode)
	}
	return s.follow(t, c, s.base+next.RequestURI())
}

// TestEveryRequestedACRIsMandatory: the claims parameter asking for c2
// (MFA) beside acr_values=single-factor, which a password meets, still
// sends a password-only session to step up, in every member of claims
// and whether the claim is essential or voluntary.
func TestEveryRequestedACRIsMandatory(t *testing.T) {
	s := startOIDC(t, nil)
	enroll := browser(t)
	s.signIn(t, enroll, "/account")
	secret := s.enrollTOTP(t, enroll) // so c2 is reachable: a step-up, not a refusal, is the answer

	for _, tc := range []struct {
		name    string
		params  url.Values
		stepUp  bool
		wantACR string // of the ID token, when no step-up is asked for
	}{
		{"fail/essential-id-token-c2-and-acr-values-single-factor", url.Values{
			"claims": {`{"id_token":{"acr":{"essential":true,"values":["c2"]}}}`}, "acr_values": {"single-factor"}}, true, ""},
		{"fail/voluntary-id-token-c2-and-acr-values-single-factor", url.Values{
			"claims": {`{"id_token":{"acr":{"values":["c2"]}}}`}, "acr_values": {"single-factor"}}, true, ""},
		{"fail/userinfo-c2-and-acr-values-single-factor", url.Values{
			"claims": {`{"userinfo":{"acr":{"value":"c2"}}}`}, "acr_values": {"single-factor"}}, true, ""},
		{"fail/access-token-acrs-c2-and-acr-values-single-factor", url.Values{
			"claims": {`{"access_token":{"acrs":{"essential":true,"value":"c2"}}}`}, "acr_values": {"single-factor"}}, true, ""},
		{"fail/access-token-acr-mfa-and-id-token-single-factor", url.Values{
			"claims": {`{"access_token":{"acr":{"value":"mfa"}},"id_token":{"acr":{"essential":true,"value":"single-factor"}}}`}}, true, ""},
		{"fail/acr-values-c2-and-id-token-single-factor", url.Values{
			"claims": {`{"id_token":{"acr":{"essential":true,"values":["single-factor"]}}}`}, "acr_values": {"c2"}}, true, ""},
		{"ok/both-met-by-the-password", url.Values{
			"claims": {`{"id_token":{"acr":{"essential":true,"values":["single-factor"]}}}`}, "acr_values": {"single-factor"}}, false, "single-factor"},
		{"ok/one-of-the-values-of-each", url.Values{
			"claims": {`{"id_token":{"acr":{"values":["c2","single-factor"]}}}`}, "acr_values": {"mfa single-factor"}}, false, "single-factor"},
		{"ok/acr-claim-without-values", url.Values{
			"claims": {`{"id_token":{"acr":{"essential":true}}}`}, "acr_values": {"single-factor"}}, false, "single-factor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := s.authorizeOnce(t, browser(t), tc.params)
			if tc.stepUp {
				if loc.Path != "/stepup" || loc.Query().Get("methods") != "totp" {
					t.Fatalf("a password-only session went to %s, want the step-up page offering totp", loc)
				}
				return
			}
			if loc.Query().Get("code") == "" {
				t.Fatalf("went to %s, want a code", loc)
			}
			tok := s.mustExchange(t, loc.Query().Get("code"), "")
			if _, c := unverifiedClaims(t, tok.IDToken); c["acr"] != tc.wantACR {
				t.Fatalf("ID token acr %v, want %s", c["acr"], tc.wantACR)
			}
		})
	}

	t.Run("ok/after-the-step-up-the-token-reflects-both", func(t *testing.T) {
		b := browser(t)
		loc := s.authorizeOnce(t, b, url.Values{
			"claims": {`{"id_token":{"acr":{"essential":true,"values":["c2"]}}}`}, "acr_values": {"single-factor"}})
		if loc.Path != "/stepup" {
			t.Fatalf("went to %s, want the step-up page", loc)
		}
		cb := s.passTOTPStepUp(t, b, loc, secret, time.Now().Add(30*time.Second))
		if cb.Query().Get("code") == "" {
			t.Fatalf("after the step-up: %s, want a code", cb)
		}
		tok := s.mustExchange(t, cb.Query().Get("code"), "")
		_, c := unverifiedClaims(t, tok.IDToken)
		acrs, _ := c["acrs"].([]any)
		if c["acr"] != "c2" || !slices.Contains(acrs, any("c2")) {
			t.Fatalf("ID token acr %v acrs %v, want c2 (the essential claim's value) in both", c["acr"], c["acrs"])
		}
	})
}

// TestMaxAgeBindsTheRequestedACR: acr_values=mfa with max_age=600, as an
// RFC 9470 challenge asks for "MFA within 10 minutes", is not met by a
// second factor used an hour ago and a password typed now: the user is
// asked for the second factor again.
func TestMaxAgeBindsTheRequestedACR(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	s.signIn(t, b, "/account")
	secret := s.enrollTOTP(t, b)
	loc := s.authorizeOnce(t, b, url.Values{"acr_values": {"mfa"}})
	if loc.Path != "/stepup" {
		t.Fatalf("mfa with a password only: %s, want the step-up page", loc)
	}
	if cb := s.passTOTPStepUp(t, b, loc, secret, time.Now().Add(30*time.Second)); cb.Query().Get("code") == "" {
		t.Fatalf("after the TOTP step-up: %s, want a code", cb)
	}

	// An hour passes: every proof of the session is that old.
	sessions, err := s.app.Store.ListUserSessions(t.Context(), s.user.ID)
	if err != nil || len(sessions) == 0 {
		t.Fatalf("alice's sessions: %v %v", sessions, err)
	}
	for _, ss := range sessions {
		if _, err := s.app.Store.UpdateSession(t.Context(), ss.ID, func(x store.Session) (store.Session, error) {
			for i := range x.Events {
				x.Events[i].Time = x.Events[i].Time.Add(-time.Hour)
			}
			return x, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	loc = s.authorizeOnce(t, b, url.Values{"acr_values": {"mfa"}, "max_age": {"600"}})
	if loc.Path != "/stepup" {
		t.Fatalf("mfa within 10 minutes after an hour: %s, want the step-up page", loc)
	}
	// The password alone, typed now, is not MFA within 10 minutes.
	resp := s.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
	next, err := resp.Location()
	if err != nil {
		t.Fatalf("password step-up: status %d", resp.StatusCode)
	}
	resp, _ = get(t, b, s.base+next.RequestURI())
	again, err := resp.Location()
	if err != nil || again.Path != "/stepup" || !strings.Contains(again.Query().Get("methods"), "totp") {
		t.Fatalf("after a fresh password with an hour-old TOTP: %v, want the step-up page offering totp", again)
	}
}
