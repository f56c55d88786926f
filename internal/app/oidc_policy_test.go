package app_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/config"
)

// TestAuthorizeEvaluatesAppPolicies loads policies the way an operator
// does (policy.files) and checks that the authorize endpoint applies the
// ones targeting the client's app: a block policy for one app refuses its
// sign-ins while another app's still work.
func TestAuthorizeEvaluatesAppPolicies(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policies.yaml")
	err := os.WriteFile(file, []byte(`
policies:
  - name: block-other-app
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [other]}}
    grant: block
  - name: block-reporting-job
    state: enabled
    users: {include: {clients: [reporting]}}
    target: {apps: {include: [reporting]}}
    grant: block
  - name: report-webapp
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [webapp]}}
    grant: block
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := startOIDC(t, func(cfg *config.Config) { cfg.Policy.Files = []string{file} })
	// startOIDC swaps in its own test policies; put the file's back.
	if err := s.app.ReloadPolicies(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := browser(t)

	cb := s.follow(t, b, s.authorizeURL(nil))
	if cb.Query().Get("code") == "" {
		t.Fatalf("webapp sign-in (only a report-only block applies) did not get a code: %s", cb)
	}

	_, challenge := pkce()
	cb = s.follow(t, b, s.authorizeURL(url.Values{
		"client_id": {otherClientID}, "redirect_uri": {otherRedirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}))
	if cb.Query().Get("error") != "access_denied" || cb.Query().Get("code") != "" {
		t.Fatalf("a sign-in to a blocked app = %s, want error=access_denied and no code", cb)
	}
	if cb.Query().Get("state") != "st-123" {
		t.Errorf("the error redirect lost the state: %s", cb)
	}

	// A service client (workload identity) under a block policy gets no
	// token either.
	resp, body := post(t, http.DefaultClient, s.base+"/oauth2/token", url.Values{
		"grant_type": {"client_credentials"},
	}, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(svcClientID+":"+svcSecret)))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "unauthorized_client") {
		t.Fatalf("blocked service client: %d %s", resp.StatusCode, body)
	}
}
