package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
)

// stagingPolicies differ from goodPolicies by name, so a test sees which
// set an engine holds.
var stagingPolicies = strings.Replace(goodPolicies, "staff-mfa-outside-office", "staging-staff-mfa", 1)

func TestPolicyEnvironments(t *testing.T) {
	ln, cfg := testConfig(t)
	dir := t.TempDir()
	prodFile, stagingFile := filepath.Join(dir, "production.yaml"), filepath.Join(dir, "staging.yaml")
	writePolicy(t, prodFile, goodPolicies)
	writePolicy(t, stagingFile, stagingPolicies)
	cfg.Policy.Files = []string{prodFile}
	cfg.Policy.Environments = map[string]config.PolicyEnvironment{"staging": {Files: []string{stagingFile}}}
	seed(t, cfg, addStaff(t))
	s := serve(t, ln, cfg, slog.New(slog.DiscardHandler))
	ctx := context.Background()

	staging, ok := s.app.PoliciesFor("staging")
	if !ok {
		t.Fatal("no engine for staging")
	}
	if prod, _ := s.app.PoliciesFor(""); prod != s.app.Policies {
		t.Fatal("the empty environment is not production")
	}
	if _, ok := s.app.PoliciesFor("preview"); ok {
		t.Fatal("an environment nobody configured has an engine")
	}
	if got := policyNames(staging); got[0] != "staging-staff-mfa" {
		t.Fatalf("staging policies = %q", got)
	}
	if got := policyNames(s.app.Policies); got[0] != "staff-mfa-outside-office" {
		t.Fatalf("production policies = %q", got)
	}

	t.Run("ok/stored-document-stays-in-its-environment", func(t *testing.T) {
		doc := admin.Document{Name: "staging-only", YAML: "policies:\n  - name: staging-extra\n    state: report-only\n    users: {include: {users: [all]}}\n    target: {apps: {include: [all]}}\n    grant: {controls: [mfa]}\n"}
		if _, err := s.app.Documents.InEnvironment("staging").Put(ctx, doc, 0, "user:root"); err != nil {
			t.Fatal(err)
		}
		if err := s.app.ReloadPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		if got := policyNames(staging); !strings.Contains(strings.Join(got, ","), "staging-extra") {
			t.Errorf("staging policies after the save = %q", got)
		}
		if got := policyNames(s.app.Policies); strings.Contains(strings.Join(got, ","), "staging-extra") {
			t.Errorf("a staging document reached production: %q", got)
		}
	})
	t.Run("fail/broken-staging-keeps-both-sets", func(t *testing.T) {
		before, beforeProd := staging.Load(), s.app.Policies.Load()
		writePolicy(t, prodFile, strings.Replace(goodPolicies, "staff-mfa-outside-office", "renamed", 1))
		writePolicy(t, stagingFile, badPolicies)
		err := s.app.ReloadPolicies(ctx)
		if err == nil || !strings.Contains(err.Error(), "policy.environments.staging.files") {
			t.Fatalf("ReloadPolicies = %v; want the problems naming the environment's key", err)
		}
		if staging.Load() != before || s.app.Policies.Load() != beforeProd {
			t.Fatal("a reload that failed in one environment swapped a set")
		}
	})
}

func TestLoadEnvironmentUnknown(t *testing.T) {
	_, cfg := testConfig(t)
	seed(t, cfg, addStaff(t))
	st, err := app.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = app.LoadEnvironment(context.Background(), cfg, "staging", st, app.AppSources(cfg, st))
	if err == nil || !strings.Contains(err.Error(), "policy.environments") {
		t.Fatalf("LoadEnvironment(staging) = %v; want an error naming policy.environments", err)
	}
}

// blockForwardApps blocks every user on both forward-auth routes' apps:
// only the routes whose environment holds it are blocked.
const blockForwardApps = `policies:
  - name: block-fa
    state: enabled
    users:
      include: {users: [all]}
    target:
      apps: {include: [fa, fa-staging]}
    grant: block
`

// TestRouteEnvironments runs a production and a staging route on the
// same server, signed in to both, and proves each is decided by its own
// environment's set: a policy in one set never reaches the other
// environment's route, whichever way round.
func TestRouteEnvironments(t *testing.T) {
	dir := t.TempDir()
	prodFile, stagingFile := filepath.Join(dir, "production.yaml"), filepath.Join(dir, "staging.yaml")
	writePolicy(t, prodFile, "policies: []\n")
	writePolicy(t, stagingFile, "policies: []\n")
	g := startGateway(t, withForwardRoute, func(cfg *config.Config) {
		fa := cfg.Gateway.Routes[len(cfg.Gateway.Routes)-1]
		u, _ := url.Parse(fa.From)
		staging := fa
		staging.Name, staging.From, staging.Environment = "fa-staging", "http://fa-staging.localhost:"+u.Port(), "staging"
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, staging)
		cfg.Policy.Files = []string{prodFile}
		cfg.Policy.Environments = map[string]config.PolicyEnvironment{"staging": {Files: []string{stagingFile}}}
	})
	u, _ := url.Parse(g.app)
	hosts := map[string]string{"production": forwardHost(g), "staging": "fa-staging.localhost:" + u.Port()}
	cookies := map[string]string{}
	for env, host := range hosts {
		cookies[env] = g.forwardSignIn(t, gatewayBrowser(t, g.server), host)
	}
	ask := func(env string) int {
		t.Helper()
		resp := mustDo(t, &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
			"GET", g.base+"/gateway/forward-auth", "",
			"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", hosts[env], "X-Forwarded-Uri", "/accounts",
			"Cookie", cookies[env])
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, blocked, allowed string
	}{
		{name: "ok/production-set-blocks-only-production", blocked: "production", allowed: "staging"},
		{name: "ok/staging-set-blocks-only-staging", blocked: "staging", allowed: "production"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"production": prodFile, "staging": stagingFile}
			writePolicy(t, files[tc.blocked], blockForwardApps)
			writePolicy(t, files[tc.allowed], "policies: []\n")
			if err := g.server.app.ReloadPolicies(context.Background()); err != nil {
				t.Fatal(err)
			}
			if code := ask(tc.allowed); code != http.StatusOK {
				t.Errorf("%s route: %d, want 200: the other environment's block reached it", tc.allowed, code)
			}
			if code := ask(tc.blocked); code != http.StatusForbidden {
				t.Errorf("%s route: %d, want 403 from its own set's block", tc.blocked, code)
			}
		})
	}
}

// blockServices blocks both service clients' tokens.
const blockServices = `policies:
  - name: block-services
    state: enabled
    users:
      include: {clients: [ops-prod, ops-staging]}
    target:
      apps: {include: [ops-prod, ops-staging]}
    grant: block
`

// TestClientEnvironments proves an OIDC client is decided by its own
// environment's set: production's block refuses the production client's
// token and leaves the staging client's alone.
func TestClientEnvironments(t *testing.T) {
	dir := t.TempDir()
	prodFile, stagingFile := filepath.Join(dir, "production.yaml"), filepath.Join(dir, "staging.yaml")
	writePolicy(t, prodFile, blockServices)
	writePolicy(t, stagingFile, "policies: []\n")
	const secret = "0123456789abcdef0123456789abcdef-ops"
	s := startOIDC(t, func(cfg *config.Config) {
		cfg.Policy.Files = []string{prodFile}
		cfg.Policy.Environments = map[string]config.PolicyEnvironment{"staging": {Files: []string{stagingFile}}}
		for _, c := range []config.OIDCClient{{ID: "ops-prod"}, {ID: "ops-staging", Environment: "staging"}} {
			c.Secret, c.GrantTypes = secret, []string{"client_credentials"}
			cfg.OIDC.Clients = append(cfg.OIDC.Clients, c)
		}
	})
	// startOIDC swaps in its own test policies; put the files' back.
	if err := s.app.ReloadPolicies(t.Context()); err != nil {
		t.Fatal(err)
	}
	if status, _ := s.serviceToken(t, "ops-staging", secret, ""); status != http.StatusOK {
		t.Errorf("staging client: %d, want 200: production's block reached it", status)
	}
	if status, tok := s.serviceToken(t, "ops-prod", secret, ""); status != http.StatusBadRequest || tok.Error != "unauthorized_client" {
		t.Errorf("production client: %d %q, want 400 unauthorized_client from its own set's block", status, tok.Error)
	}
}

// TestUnknownEnvironmentRefusesToStart: a client or database naming an
// environment nobody configured stops the start (even without the
// configuration check), rather than being decided by production's set.
func TestUnknownEnvironmentRefusesToStart(t *testing.T) {
	_, cfg := testConfig(t)
	cfg.OIDC.Clients = append(cfg.OIDC.Clients, config.OIDCClient{ID: "ops", Secret: "0123456789abcdef0123456789abcdef-ops",
		GrantTypes: []string{"client_credentials"}, Environment: "qa"})
	_, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "oidc.clients[0].environment") {
		t.Fatalf("app.New = %v; want an error naming the client's environment key", err)
	}
}
