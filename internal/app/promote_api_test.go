package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/config"
)

// TestPolicyPromotionAPI drives the environments endpoints as a script
// would: a document saved in staging with ?env=staging, the review of
// its promotion, the promotion with the reviewed versions, the history,
// and a rollback. Bad input is refused with the problem named and
// nothing changed: an unknown environment, a missing reason, versions
// that are not the reviewed ones, unknown fields, a caller the audit
// trail cannot name.
func TestPolicyPromotionAPI(t *testing.T) {
	s, call := startEnvironmentsAPI(t)
	doc, _ := json.Marshal(map[string]any{"yaml": reportOnlyDoc, "version": 0, "reason": "try on staging"})
	if st, out := call("PUT", "/api/v1/policy-documents/webapp?env=staging", string(doc)); st != http.StatusCreated {
		t.Fatalf("PUT in staging: %d %s", st, out)
	}
	if st, out := call("GET", "/api/v1/policy-documents/webapp", ""); st != http.StatusNotFound {
		t.Fatalf("the staging document is readable in production: %d %s", st, out)
	}
	if st, out := call("GET", "/api/v1/policies?env=preview", ""); st != http.StatusNotFound || !strings.Contains(out, "policy.environments") {
		t.Fatalf("fail/unknown-env: %d %s", st, out)
	}

	st, out := call("POST", "/api/v1/policy-environments/production/promotion/review", `{"from":"staging","days":7}`)
	var rev struct {
		Version, FromVersion int64
		Changes              []struct{ Name, Kind string }
	}
	if st != http.StatusOK || json.Unmarshal([]byte(out), &rev) != nil || len(rev.Changes) != 1 || rev.Changes[0].Kind != "added" {
		t.Fatalf("review: %d %s", st, out)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(out), &raw)
	rev.Version, rev.FromVersion = int64(raw["version"].(float64)), int64(raw["from_version"].(float64))

	good := func(extra string) string {
		return `{"from":"staging","from_version":` + strconv.FormatInt(rev.FromVersion, 10) + `,"to_version":` + strconv.FormatInt(rev.Version, 10) + extra + `}`
	}
	for name, c := range map[string]struct {
		token, path, body string
		status            int
		says              string
	}{
		"fail/no-reason":        {apiToken, "/api/v1/policy-environments/production/promotion", good(""), 400, "needs a reason"},
		"fail/stale-target":     {apiToken, "/api/v1/policy-environments/production/promotion", strings.Replace(good(`,"reason":"x"`), `"to_version":0`, `"to_version":5`, 1), 409, "review"},
		"fail/stale-source":     {apiToken, "/api/v1/policy-environments/production/promotion", strings.Replace(good(`,"reason":"x"`), `"from_version":1`, `"from_version":9`, 1), 409, "review"},
		"fail/unknown-field":    {apiToken, "/api/v1/policy-environments/production/promotion", good(`,"reason":"x","force":true`), 400, "force"},
		"fail/unknown-env":      {apiToken, "/api/v1/policy-environments/preview/promotion", good(`,"reason":"x"`), 404, "not configured"},
		"fail/to-mismatch":      {apiToken, "/api/v1/policy-environments/production/promotion", good(`,"reason":"x","to":"staging"`), 400, "to"},
		"fail/anonymous-caller": {"", "/api/v1/policy-environments/production/promotion", good(`,"reason":"x"`), 403, "audit trail"},
	} {
		st, out := apiCall(t, s.base, c.token, "POST", c.path, c.body)
		if st != c.status || !strings.Contains(out, c.says) {
			t.Errorf("%s: %d %s, want %d naming %q", name, st, out, c.status, c.says)
		}
	}
	if got := policyNames(s.app.Policies); strings.Contains(strings.Join(got, ","), "webapp-mfa") {
		t.Fatalf("a refused promotion reached production: %q", got)
	}

	if st, out := call("POST", "/api/v1/policy-environments/production/promotion", good(`,"reason":"CHG-7"`)); st != http.StatusOK || !strings.Contains(out, `"action":"policy.promote"`) {
		t.Fatalf("promote: %d %s", st, out)
	}
	if got := policyNames(s.app.Policies); !strings.Contains(strings.Join(got, ","), "webapp-mfa") {
		t.Fatalf("after the promotion production has %q", got)
	}
	st, out = call("GET", "/api/v1/policy-environments/production/history", "")
	if st != http.StatusOK || strings.Count(out, `"action":`) != 1 || !strings.Contains(out, `"from_env":"staging"`) {
		t.Fatalf("history: %d %s", st, out)
	}
	if st, out := call("GET", "/api/v1/policy-environments", ""); st != http.StatusOK || !strings.Contains(out, `{"name":"production","version":1,"documents":1}`) {
		t.Fatalf("environments: %d %s", st, out)
	}
	// Production's only version is the promotion: there is nothing earlier.
	if st, out := call("POST", "/api/v1/policy-environments/production/rollback", `{"version":1,"head_version":1,"reason":"x"}`); st != http.StatusBadRequest || !strings.Contains(out, "earlier version") {
		t.Fatalf("fail/rollback-to-current: %d %s", st, out)
	}
	if st, out := call("POST", "/api/v1/policy-environments/production/rollback/review", `{"version":0}`); st != http.StatusBadRequest || !strings.Contains(out, "version") {
		t.Fatalf("fail/rollback-review-no-version: %d %s", st, out)
	}
}

// startEnvironmentsAPI starts a server with a policy file, a staging
// environment and the API token, and returns it with a function that
// calls the API with that token.
func startEnvironmentsAPI(t *testing.T) (*oidcServer, func(method, path, body string) (int, string)) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(file, []byte(testPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startOIDC(t, func(cfg *config.Config) {
		cfg.Policy.Files = []string{file}
		cfg.Policy.Environments = map[string]config.PolicyEnvironment{"staging": {}}
		cfg.API.Token = apiToken
	})
	call := func(method, path, body string) (int, string) {
		t.Helper()
		return apiCall(t, s.base, apiToken, method, path, body)
	}
	return s, call
}
