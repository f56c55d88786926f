package app_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// Test clients of every OIDC test server.
const (
	rpClientID    = "webapp"
	rpSecret      = "webapp-secret-webapp-secret-0123456789"
	rpRedirect    = "http://127.0.0.1:9/callback" // nothing listens: tests read the redirect
	rpPostLogout  = "http://127.0.0.1:9/signed-out"
	spaClientID   = "spa"
	spaRedirect   = "http://localhost:9/spa/callback"
	svcClientID   = "reporting"
	svcSecret     = "reporting-secret-reporting-secret-0123"
	testUser      = "alice"
	testPassword  = "correct horse battery"
	otherClientID = "other"
	otherSecret   = "other-secret-other-secret-other-secret-0"
	otherRedirect = "http://127.0.0.1:9/other/callback"
)

// testPolicies declares contexts c1 (a sign-in fresh within minutes),
// c2 (MFA, which a password-only user cannot reach) and c3 (a passkey).
const testPolicies = `
auth_contexts:
  - id: c1
    name: Read PII
  - id: c2
    name: High-value transaction
  - id: c3
    name: Admin action
policies:
  - name: c1-fresh-sign-in
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1]}
    grant: {controls: [{strength: single-factor}]}
    session: {sign_in_frequency: every-time}
  - name: c2-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c2]}
    grant: {controls: [mfa]}
  - name: c3-phishing-resistant
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c3]}
    grant: {controls: [{strength: phishing-resistant}]}
`

// oidcServer is a running Stepgate with test clients, policies and the
// user alice (password testPassword).
type oidcServer struct {
	*server
	user store.User
}

// startOIDC starts a server for OIDC tests; mutate may adjust the
// configuration first.
func startOIDC(t *testing.T, mutate func(*config.Config)) *oidcServer {
	t.Helper()
	return startOIDCOver(t, nil, mutate)
}

// startOIDCOver is startOIDC over a wrapped store.
func startOIDCOver(t *testing.T, wrap storeWrap, mutate func(*config.Config)) *oidcServer {
	t.Helper()
	s := startOver(t, "", wrap, func(cfg *config.Config) {
		cfg.OIDC.Clients = []config.OIDCClient{
			{ID: rpClientID, Name: "Web app", Secret: rpSecret, RedirectURIs: []string{rpRedirect},
				PostLogoutRedirectURIs: []string{rpPostLogout}},
			{ID: spaClientID, Name: "Single-page app", Public: true, RedirectURIs: []string{spaRedirect}},
			{ID: svcClientID, Name: "Reporting job", Secret: svcSecret, GrantTypes: []string{"client_credentials"}},
			{ID: otherClientID, Name: "Another app", Secret: otherSecret, RedirectURIs: []string{otherRedirect}},
		}
		if mutate != nil {
			mutate(cfg)
		}
	})
	doc, probs := policy.Parse("test-policies.yaml", []byte(testPolicies))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if probs := s.app.Policies.Reload(nil, doc); len(probs) > 0 {
		t.Fatal(probs)
	}
	u, err := s.app.Users.Add(context.Background(), users.NewUser{Username: testUser, Email: "alice@example.com", DisplayName: "Alice", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	return &oidcServer{server: s, user: u}
}

var _ = app.New

// usePolicies makes the server enforce the test policies plus extra (a
// policy file's YAML).
func (s *oidcServer) usePolicies(t *testing.T, extra string) {
	t.Helper()
	base, probs := policy.Parse("test-policies.yaml", []byte(testPolicies))
	more, probs2 := policy.Parse("extra.yaml", []byte(extra))
	if len(probs)+len(probs2) > 0 {
		t.Fatal(probs, probs2)
	}
	if probs := s.app.Policies.Reload(nil, base, more); len(probs) > 0 {
		t.Fatal(probs)
	}
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeURL builds an authorization request for the web app client.
func (s *oidcServer) authorizeURL(params url.Values) string {
	q := url.Values{
		"client_id": {rpClientID}, "redirect_uri": {rpRedirect}, "response_type": {"code"},
		"scope": {"openid profile email offline_access"}, "state": {"st-123"}, "nonce": {"n-456"},
	}
	for k, v := range params {
		q[k] = v
	}
	for k, v := range q {
		if len(v) == 1 && v[0] == "" {
			delete(q, k)
		}
	}
	return s.base + "/oauth2/authorize?" + q.Encode()
}

// signIn posts the sign-in form with returnTo.
func (s *oidcServer) signIn(t *testing.T, c *http.Client, returnTo string) *http.Response {
	t.Helper()
	tok := csrfToken(t, c, s.base)
	resp, _ := post(t, c, s.base+"/login", url.Values{
		"csrf_token": {tok}, "username": {testUser}, "password": {testPassword}, "return_to": {returnTo},
	})
	return resp
}

// stepUp posts the step-up form (password re-authentication).
func (s *oidcServer) stepUp(t *testing.T, c *http.Client, returnTo, password string) *http.Response {
	t.Helper()
	_, body := get(t, c, s.base+"/stepup?return_to="+url.QueryEscape(returnTo))
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the step-up page has no CSRF token:\n%s", body)
	}
	resp, _ := post(t, c, s.base+"/stepup", url.Values{"csrf_token": {m[1]}, "password": {password}, "return_to": {returnTo}})
	return resp
}

// follow drives the browser through the flow from u, signing in or
// stepping up with the password when asked, until a redirect leaves the
// server; it returns that redirect's URL.
func (s *oidcServer) follow(t *testing.T, c *http.Client, u string) *url.URL {
	t.Helper()
	for range 10 {
		resp, body := get(t, c, u)
		if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
			t.Fatalf("GET %s: status %d, want a redirect:\n%s", u, resp.StatusCode, body)
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !strings.HasPrefix(loc.String(), s.base):
			return loc
		case loc.Path == "/login":
			resp = s.signIn(t, c, loc.Query().Get("return_to"))
			loc, _ = resp.Location()
		case loc.Path == "/stepup":
			resp = s.stepUp(t, c, loc.Query().Get("return_to"), testPassword)
			loc, _ = resp.Location()
		}
		if loc == nil {
			t.Fatalf("sign-in or step-up did not redirect (status %d)", resp.StatusCode)
		}
		u = loc.String()
		if !strings.HasPrefix(u, "http") {
			u = s.base + u
		}
	}
	t.Fatal("the flow did not finish in 10 redirects")
	return nil
}
