package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

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
	_, call := startEnvironmentsAPI(t)
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

// TestAttackConsoleEnvironmentNamedOnce: a console request naming the
// policy environment twice (query and form, or twice in one) is refused
// before any page runs, and changes nothing; a page reading the first
// and a proxy in front reading the last would disagree on where a
// change lands. Named once, the change lands in that environment alone.
func TestAttackConsoleEnvironmentNamedOnce(t *testing.T) {
	s := startConsole(t)
	s.registerPasskey(t, s.admin)
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	staging, err := s.app.Admin.In("staging")
	if err != nil {
		t.Fatal(err)
	}
	save := url.Values{"action": {"save"}, "name": {"twice"}, "yaml": {reportOnlyDoc}, "reason": {"try"}}
	for _, tc := range []struct{ name, path, env string }{
		{"fail/query-and-form-disagree", "/admin/documents?env=production", "staging"},
		{"fail/query-and-form-agree", "/admin/documents?env=staging", "staging"},
		{"fail/query-twice", "/admin/documents?env=staging&env=production", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := cloneValues(save)
			if tc.env != "" {
				form.Set("env", tc.env)
			}
			resp, body := s.postForm(t, c, tc.path, form)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "more than once") {
				t.Errorf("POST %s env=%s: %d", tc.path, tc.env, resp.StatusCode)
			}
		})
	}
	form := cloneValues(save)
	form["env"] = []string{"staging", "production"}
	if resp, _ := s.postForm(t, c, "/admin/documents", form); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("fail/form-twice: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, s.base+"/admin/policies?env=staging&env=production"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("fail/page-twice: %d", resp.StatusCode)
	}
	for _, svc := range []*admin.Service{s.app.Admin, staging} {
		if _, err := svc.Documents.Get(t.Context(), "twice"); err == nil {
			t.Fatalf("a refused request stored the document in %s", svc.Environment())
		}
	}
	form = cloneValues(save)
	form.Set("env", "staging")
	if resp, body := s.postForm(t, c, "/admin/documents", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ok/env-once: %d %s", resp.StatusCode, body)
	}
	if _, err := staging.Documents.Get(t.Context(), "twice"); err != nil {
		t.Fatalf("the document is not in staging: %v", err)
	}
	if _, err := s.app.Admin.Documents.Get(t.Context(), "twice"); err == nil {
		t.Fatal("the staging document landed in production")
	}
}
