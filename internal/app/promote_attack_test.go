package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
)

// TestBuiltinAppsAreStepgatesOwn: the app ids the configuration keeps
// in production are those of the console and of role activation.
func TestBuiltinAppsAreStepgatesOwn(t *testing.T) {
	if !slices.Equal(config.BuiltinApps, []string{admin.ConsoleApp, elevate.App}) {
		t.Fatalf("config.BuiltinApps %q are not the console's and role activation's", config.BuiltinApps)
	}
}

// TestAttackAPIEnvironmentIsReadOneWay: a script means to change staging
// but names it in a way the policy endpoints would not read (another
// spelling of env, env twice, a pair url.ParseQuery drops at a
// semicolon): the change used to land in production without a word.
// Each is refused with the problem named, and nothing reaches either
// environment; the one spelling that is read lands in staging alone.
func TestAttackAPIEnvironmentIsReadOneWay(t *testing.T) {
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
	doc, _ := json.Marshal(map[string]any{"yaml": reportOnlyDoc, "version": 0, "reason": "try on staging"})
	for _, tc := range []struct {
		name, query string
		status      int
		says        string
	}{
		{"fail/capital-env", "?Env=staging", http.StatusBadRequest, `Env\" is not a parameter`},
		{"fail/environment", "?environment=staging", http.StatusBadRequest, `environment\" is not a parameter`},
		{"fail/env-twice", "?env=staging&env=production", http.StatusBadRequest, "more than once"},
		{"fail/env-twice-same", "?env=staging&env=staging", http.StatusBadRequest, "more than once"},
		{"fail/semicolon", "?x=1;env=staging", http.StatusBadRequest, "one way only"},
		{"fail/bad-escape", "?env=stag%zzing", http.StatusBadRequest, "one way only"},
		{"fail/capital-value", "?env=Staging", http.StatusNotFound, "not configured"},
		{"fail/trailing-space", "?env=staging%20", http.StatusNotFound, "not configured"},
		{"fail/lookalike", "?env=%D1%95taging", http.StatusNotFound, "not configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := call("PUT", "/api/v1/policy-documents/webapp"+tc.query, string(doc))
			if st != tc.status || !strings.Contains(out, tc.says) {
				t.Errorf("PUT %s: %d %s", tc.query, st, out)
			}
			for _, env := range []string{"", "?env=staging"} {
				if st, out := call("GET", "/api/v1/policy-documents/webapp"+env, ""); st != http.StatusNotFound {
					t.Fatalf("the refused PUT %s stored the document (GET%s: %d %s)", tc.query, env, st, out)
				}
			}
		})
	}
	if st, out := call("PUT", "/api/v1/policy-documents/webapp?env=staging", string(doc)); st != http.StatusCreated {
		t.Fatalf("ok/env-staging: %d %s", st, out)
	}
	if st, _ := call("GET", "/api/v1/policy-documents/webapp", ""); st != http.StatusNotFound {
		t.Fatalf("the staging document landed in production")
	}
	if st, out := call("DELETE", "/api/v1/policy-documents/webapp?env=staging&env=production&version=1&reason=x", ""); st != http.StatusBadRequest {
		t.Fatalf("fail/delete-env-twice: %d %s", st, out)
	}
	if st, out := call("DELETE", "/api/v1/policy-documents/webapp?env=staging&version=1&reason=done", ""); st != http.StatusNoContent {
		t.Fatalf("ok/delete-in-staging: %d %s", st, out)
	}
}
