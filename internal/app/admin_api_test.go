package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/users"
)

const (
	opsClientID = "ops"
	opsSecret   = "ops-secret-ops-secret-ops-secret-0123456"
	apiToken    = "api-token-api-token-api-token-0123456789"
)

// startAdminAPI starts a server whose policies come from a policy file
// (so stored documents compile beside them), with the service client ops
// allowed the stepgate:admin scope.
func startAdminAPI(t *testing.T) *oidcServer {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(file, []byte(testPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	return startOIDC(t, func(cfg *config.Config) {
		withElevation(cfg)
		cfg.Policy.Files = []string{file}
		cfg.API.Token = apiToken
		cfg.OIDC.Clients = append(cfg.OIDC.Clients, config.OIDCClient{ID: opsClientID, Secret: opsSecret,
			GrantTypes: []string{"client_credentials"}, Scopes: []string{config.AdminScope}})
	})
}

func (s *oidcServer) serviceToken(t *testing.T, clientID, secret, scope string) (int, tokenResponse) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return s.tokenRequest(t, form, clientID, secret)
}

// apiCall sends a JSON request to the API over HTTP.
func apiCall(t *testing.T, base, token, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiPath fills an API route pattern's wildcards.
func apiPath(pattern string) string {
	return strings.NewReplacer("{name}", "alice", "{seq}", "1", "{id}", "elv_X").Replace(pattern)
}

// TestAdminAPIRefusesNonAdmins walks every API route with every kind of
// identity that is not an administrator: nothing answers but 401/403.
// The list comes from the router's own table, so a new route cannot
// escape the walk.
func TestAdminAPIRefusesNonAdmins(t *testing.T) {
	s := startAdminAPI(t)
	if status, tok := s.serviceToken(t, svcClientID, svcSecret, config.AdminScope); status != http.StatusBadRequest || tok.Error != "invalid_scope" {
		t.Fatalf("a client not allowed stepgate:admin asked for it: %d %q, want 400 invalid_scope", status, tok.Error)
	}
	_, svc := s.serviceToken(t, svcClientID, svcSecret, "")
	b := browser(t)
	verifier, challenge := pkce()
	user := s.mustExchange(t, s.code(t, b, url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}), verifier)
	_, ops := s.serviceToken(t, opsClientID, opsSecret, config.AdminScope)

	identities := []struct {
		name, auth, peer string
	}{
		{"anonymous from another machine", "", "203.0.113.7:4000"},
		{"a user's access token", "Bearer " + user.AccessToken, "203.0.113.7:4000"},
		{"a service token without the admin scope", "Bearer " + svc.AccessToken, "203.0.113.7:4000"},
		{"a forged token", "Bearer " + forge(ops.AccessToken), "203.0.113.7:4000"},
		{"a wrong API token", "Bearer " + strings.Repeat("z", 40), "203.0.113.7:4000"},
		{"a request relayed by a proxy on this machine", "", "127.0.0.1:4000"},
	}
	routes := api.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes: the table is not what the router serves", len(routes))
	}
	for _, id := range identities {
		for _, rt := range routes {
			method, pattern, _ := strings.Cut(rt, " ")
			req := httptest.NewRequest(method, "http://127.0.0.1:8080"+apiPath(pattern), strings.NewReader(`{"reason": "x"}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = id.peer
			if id.auth != "" {
				req.Header.Set("Authorization", id.auth)
			}
			if strings.HasPrefix(id.peer, "127.") {
				req.Header.Set("X-Forwarded-For", "198.51.100.3")
			}
			rec := httptest.NewRecorder()
			s.app.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden && rec.Code != http.StatusUnauthorized {
				t.Errorf("%s: %s answered %d, want 401 or 403: %.200s", id.name, rt, rec.Code, rec.Body)
			}
		}
	}
	// A request from this machine may read, never change: a change needs
	// an identity for the audit trail.
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		if method == http.MethodGet || strings.HasSuffix(pattern, "/validate") || strings.HasSuffix(pattern, "/impact") || strings.HasSuffix(pattern, "/review") || pattern == "/api/v1/whatif" {
			continue
		}
		status, body := apiCall(t, s.base, "", method, apiPath(pattern)+"?version=1", `{"reason": "x"}`)
		if status != http.StatusForbidden {
			t.Errorf("anonymous local %s: %d, want 403: %.200s", rt, status, body)
		}
	}
	// The admin client gets through (the sanity check that the walk above
	// was refused for the identity, not for the route).
	if status, body := apiCall(t, s.base, ops.AccessToken, "GET", "/api/v1/users/alice", ""); status != http.StatusOK || !strings.Contains(body, `"username":"alice"`) {
		t.Fatalf("admin client: %d %s", status, body)
	}
}

// forge changes one character inside a JWT's signature. Not the last
// one: its low bits are base64 padding that decoders ignore, so changing
// it may leave the signature's bytes as they were.
func forge(jwt string) string {
	i := len(jwt) - 10
	repl := byte('A')
	if jwt[i] == 'A' {
		repl = 'B'
	}
	return jwt[:i] + string(repl) + jwt[i+1:]
}

// TestAdminAPIPolicyLifecycle: an admin client creates a report-only
// policy in the store, sees what enabling it would change in recent
// decisions, enables it, and the next authorization is refused; edits
// from a stale version are conflicts, bad YAML comes back with its line,
// form posts are refused, and every change is in the audit trail.
func TestAdminAPIPolicyLifecycle(t *testing.T) {
	s := startAdminAPI(t)
	_, ops := s.serviceToken(t, opsClientID, opsSecret, config.AdminScope)
	tok := ops.AccessToken
	b := browser(t)
	authorize := func() *url.URL {
		_, challenge := pkce()
		return s.follow(t, b, s.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	}
	for range 3 { // decisions to replay
		if cb := authorize(); cb.Query().Get("code") == "" {
			t.Fatalf("authorization before any stored policy: %s", cb)
		}
	}
	flushSignIns(t, s.server)

	const doc = `policies:
  - name: webapp-needs-mfa
    description: The web app needs a second factor.
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [webapp]}}
    grant: {controls: [mfa]}
`
	put := func(yaml string, version int) (int, string) {
		body, _ := json.Marshal(map[string]any{"yaml": yaml, "version": version, "reason": "trial"})
		return apiCall(t, s.base, tok, "PUT", "/api/v1/policy-documents/webapp-mfa", string(body))
	}
	if status, body := put("policies:\n  - name: broken\n    state: sometimes\n", 0); status != http.StatusBadRequest || !strings.Contains(body, `"line":3`) || !strings.Contains(body, "store:webapp-mfa") {
		t.Fatalf("invalid document: %d %s, want 400 with the problem at store:webapp-mfa line 3", status, body)
	}
	if status, body := put(doc, 0); status != http.StatusCreated || !strings.Contains(body, `"version":1`) {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, _ := put(doc, 0); status != http.StatusConflict {
		t.Fatalf("creating it again: %d, want 409", status)
	}
	if status, body := apiCall(t, s.base, tok, "GET", "/api/v1/policies/webapp-needs-mfa", ""); status != http.StatusOK ||
		!strings.Contains(body, `"state":"report-only"`) || !strings.Contains(body, `"source":"store:webapp-mfa"`) || !strings.Contains(body, `"editable":true`) {
		t.Fatalf("the stored policy: %d %s", status, body)
	}
	if status, body := apiCall(t, s.base, tok, "GET", "/api/v1/policies/c2-mfa", ""); status != http.StatusOK || !strings.Contains(body, `"editable":false`) {
		t.Fatalf("a file policy: %d %s", status, body)
	}
	// Report-only: the web app still gets codes.
	if cb := authorize(); cb.Query().Get("code") == "" {
		t.Fatalf("authorization under a report-only policy: %s", cb)
	}
	flushSignIns(t, s.server)

	enabled := strings.Replace(doc, "state: report-only", "state: enabled", 1)
	body, _ := json.Marshal(map[string]any{"yaml": enabled, "version": 1, "days": 1})
	status, out := apiCall(t, s.base, tok, "POST", "/api/v1/policy-documents/webapp-mfa/impact", string(body))
	var imp struct {
		Replayed, Changed int
		Transitions       []struct {
			From, To string
			Count    int
		}
	}
	if err := json.Unmarshal([]byte(out), &imp); status != http.StatusOK || err != nil {
		t.Fatalf("impact: %d %s", status, out)
	}
	if imp.Replayed < 4 || imp.Changed < 4 || len(imp.Transitions) == 0 || imp.Transitions[0].From != "allow" || imp.Transitions[0].To == "allow" {
		t.Fatalf("impact of enabling: %+v, want at least the 4 recent allows to change", imp)
	}

	form, _ := http.NewRequest("POST", s.base+"/api/v1/policies/webapp-needs-mfa/state", strings.NewReader("state=enabled"))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	form.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(form); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("a form-encoded change: %v %v, want 415", err, resp)
	}
	if status, out := apiCall(t, s.base, tok, "POST", "/api/v1/policies/webapp-needs-mfa/state", `{"state": "enabled", "reason": "trial went well"}`); status != http.StatusOK {
		t.Fatalf("enable: %d %s", status, out)
	}
	if cb := authorize(); cb.Query().Get("code") != "" {
		t.Fatalf("authorization after enabling an MFA policy alice cannot meet got a code: %s", cb)
	}
	if status, _ := put(doc, 1); status != http.StatusConflict {
		t.Fatalf("a save from a stale version: %d, want 409", status)
	}
	if status, out := apiCall(t, s.base, tok, "GET", "/api/v1/policy-export", ""); status != http.StatusOK ||
		!strings.Contains(out, "name: webapp-needs-mfa") || !strings.Contains(out, "name: c2-mfa") {
		t.Fatalf("export: %d %s", status, out)
	}
	if status, out := apiCall(t, s.base, tok, "GET", "/api/v1/overview?period=7d", ""); status != http.StatusOK || !strings.Contains(out, `"policy":"webapp-needs-mfa"`) {
		t.Fatalf("overview of 7 days: %d %.300s", status, out)
	}
	if status, out := apiCall(t, s.base, tok, "GET", "/api/v1/overview?period=soon", ""); status != http.StatusBadRequest || !strings.Contains(out, "period") {
		t.Fatalf("overview of a bad period: %d %s", status, out)
	}
	if status, out := apiCall(t, s.base, tok, "DELETE", "/api/v1/policy-documents/webapp-mfa?version=2&reason=done", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, out)
	}
	if cb := authorize(); cb.Query().Get("code") == "" {
		t.Fatalf("authorization after deleting the policy: %s", cb)
	}

	entries, err := s.app.Audit.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if e.Actor == "client:"+opsClientID {
			actions = append(actions, e.Action)
		}
	}
	if got := strings.Join(actions, " "); got != "policy.create policy.state policy.delete" {
		t.Fatalf("audit trail of the admin client: %q", got)
	}
}

// flushSignIns waits until every queued sign-in log entry is stored.
func flushSignIns(t *testing.T, s *server) {
	t.Helper()
	if err := s.app.SignIns.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestAdminAPIUsersPages: the users list pages with limit and cursor,
// and a limit out of range is refused with what would be accepted.
func TestAdminAPIUsersPages(t *testing.T) {
	s := startAdminAPI(t)
	_, ops := s.serviceToken(t, opsClientID, opsSecret, config.AdminScope)
	for _, name := range []string{"bob", "carol"} {
		if _, err := s.app.Users.Add(context.Background(), users.NewUser{Username: name, Password: testPassword}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	for path := "/api/v1/users?limit=1"; path != ""; {
		status, body := apiCall(t, s.base, ops.AccessToken, "GET", path, "")
		var page struct {
			Users []struct {
				Username string `json:"username"`
			} `json:"users"`
			Next string `json:"next_cursor"`
		}
		if err := json.Unmarshal([]byte(body), &page); status != http.StatusOK || err != nil || len(page.Users) != 1 {
			t.Fatalf("GET %s: %d %s, want one user", path, status, body)
		}
		seen = append(seen, page.Users[0].Username)
		path = ""
		if page.Next != "" {
			path = "/api/v1/users?limit=1&cursor=" + url.QueryEscape(page.Next)
		}
	}
	if len(seen) < 3 || !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
		t.Fatalf("paged through %v: want every user once, in order", seen)
	}
	for _, bad := range []string{"0", "1001", "ten"} {
		if status, body := apiCall(t, s.base, ops.AccessToken, "GET", "/api/v1/users?limit="+bad, ""); status != http.StatusBadRequest || !strings.Contains(body, "limit must be a whole number from 1 to 1000") {
			t.Errorf("limit=%s: %d %s, want 400 naming the range", bad, status, body)
		}
	}
}

// TestStoredPoliciesReachEveryNode: a policy document saved through one
// node is enforced by another node sharing the store within seconds,
// without a restart or a SIGHUP.
func TestStoredPoliciesReachEveryNode(t *testing.T) {
	a := startAdminAPI(t)
	ln, cfg := testConfig(t)
	cfg.Server.DataDir = a.app.Config.Server.DataDir
	cfg.Policy.Files = a.app.Config.Policy.Files
	cfg.OIDC.Clients = a.app.Config.OIDC.Clients
	b := serve(t, ln, cfg, nil)

	const doc = "policies:\n  - name: block-the-web-app\n    state: enabled\n    users: {include: {users: [all]}}\n    target: {apps: {include: [webapp]}}\n    grant: block\n"
	if _, err := a.app.Admin.Save(t.Context(), "user:root", "incident", admin.Document{Name: "incident", YAML: doc}, ""); err != nil {
		t.Fatal(err)
	}
	has := func(s *server) bool {
		for _, p := range s.app.Policies.Load().Policies() {
			if p.Name == "block-the-web-app" {
				return true
			}
		}
		return false
	}
	if !has(a.server) {
		t.Fatal("the node that saved the document does not enforce it")
	}
	deadline := time.Now().Add(15 * time.Second)
	for !has(b) {
		if time.Now().After(deadline) {
			t.Fatal("the other node still does not enforce the stored document after 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And it decides with it: the web app is blocked on node b.
	bs := &oidcServer{server: b, user: a.user}
	br := browser(t)
	_, challenge := pkce()
	cb := bs.follow(t, br, bs.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	if cb.Query().Get("error") != "access_denied" {
		t.Fatalf("authorization on the other node: %s, want error=access_denied", cb)
	}
}
