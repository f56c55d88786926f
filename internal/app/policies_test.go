package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

const goodPolicies = `auth_contexts:
  - id: c2
    name: High-value transaction
named_locations:
  - name: office
    trusted: true
    ip_ranges: [198.51.100.0/24]
policies:
  - name: staff-mfa-outside-office
    state: enabled
    users:
      include: {groups: [staff]}
    target:
      apps: {include: [all]}
    conditions:
      locations:
        include: [all]
        exclude: [office]
    grant:
      controls: [mfa]
  - name: c2-phishing-resistant
    state: enabled
    users:
      include: {users: [all]}
    target:
      auth_contexts: [c2]
    grant:
      controls:
        - strength: phishing-resistant
`

// badPolicies has one mistake of each kind: an unknown key (line 7), an
// invalid CIDR (3), an unknown group (9), a CEL syntax error (15) and a
// CEL type error (16).
const badPolicies = `named_locations:
  - name: hq
    ip_ranges: [10.0.0.0/33]
policies:
  - name: finance-mfa
    state: enabled
    colour: red
    users:
      include: {groups: [finanse]}
    target:
      apps: {include: [all]}
    conditions:
      device_filter:
        mode: include
        rule: 'device.trust_type == '
      expression: 'device.is_compliant + 1'
    grant:
      controls: [mfa]
`

// syncBuffer is a bytes.Buffer the server's goroutines may log to while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writePolicy(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// seed fills the store cfg names before the server starts, as an
// operator would with the CLI.
func seed(t *testing.T, cfg config.Config, fn func(ctx context.Context, svc *users.Service)) {
	t.Helper()
	ctx := context.Background()
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := app.NewUsers(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	fn(ctx, svc)
}

func addStaff(t *testing.T) func(context.Context, *users.Service) {
	return func(ctx context.Context, svc *users.Service) {
		if _, err := svc.AddGroup(ctx, store.Group{Name: "staff"}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Add(ctx, users.NewUser{Username: "alice", Password: "correct horse", Groups: []string{"staff"}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBadPoliciesRefuseToStart(t *testing.T) {
	_, cfg := testConfig(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writePolicy(t, bad, badPolicies)
	writePolicy(t, filepath.Join(dir, "good.yml"), goodPolicies)
	writePolicy(t, filepath.Join(dir, "README.md"), "not a policy file") // skipped: not *.yaml
	cfg.Policy.Files = []string{dir}
	seed(t, cfg, addStaff(t))

	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		a.Close()
		t.Fatal("the server started with a broken policy file")
	}
	var probs policy.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error %v is not a policy.Problems", err)
	}
	msg := err.Error()
	for _, want := range []string{
		bad + ":3: named_locations[0].ip_ranges[0]: ",
		bad + ":7: policies[0].colour: unknown key",
		bad + `:9: policies[0].users.include.groups[0]: unknown group "finanse"`,
		bad + ":15: policies[0].conditions.device_filter.rule: CEL: Syntax error",
		bad + ":16: policies[0].conditions.expression: CEL: found no matching overload",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not report %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "good.yml:") || strings.Contains(msg, "README") {
		t.Errorf("problems reported in files without any:\n%s", msg)
	}
}

func TestMissingPolicyFileRefusesToStart(t *testing.T) {
	_, cfg := testConfig(t)
	cfg.Policy.Files = []string{filepath.Join(t.TempDir(), "nope.yaml")}
	_, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") || !strings.Contains(err.Error(), "fix the path in policy.files") {
		t.Fatalf("err = %v; want one naming the file and the fix", err)
	}
}

func TestUnreadableGeoIPRefusesToStart(t *testing.T) {
	_, cfg := testConfig(t)
	cfg.GeoIP.Database = filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
	writePolicy(t, cfg.GeoIP.Database, "not a database")
	_, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "geoip.database") || !strings.Contains(err.Error(), "not a MaxMind DB") {
		t.Fatalf("err = %v; want one naming geoip.database and the problem", err)
	}
}

func policyNames(e *policy.Engine) []string {
	var out []string
	for _, p := range e.Load().Policies() {
		out = append(out, p.Name)
	}
	return out
}

func TestReloadPolicies(t *testing.T) {
	ln, cfg := testConfig(t)
	path := filepath.Join(t.TempDir(), "policies.yaml")
	writePolicy(t, path, goodPolicies)
	cfg.Policy.Files = []string{path}
	seed(t, cfg, addStaff(t))
	var logs syncBuffer
	s := serve(t, ln, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	first := s.app.Policies.Load()
	if got := policyNames(s.app.Policies); len(got) != 2 {
		t.Fatalf("policies at start = %q", got)
	}

	t.Run("fail/bad-set-keeps-last-good", func(t *testing.T) {
		writePolicy(t, path, badPolicies)
		err := s.app.ReloadPolicies(ctx)
		if err == nil || !strings.Contains(err.Error(), path+":16:") {
			t.Fatalf("ReloadPolicies = %v; want the problems with file:line", err)
		}
		if s.app.Policies.Load() != first {
			t.Fatal("a set with problems replaced the last good one")
		}
		if n := strings.Count(logs.String(), `msg="policy problem"`); n != 5 {
			t.Errorf("logged %d problems, want 5:\n%s", n, logs.String())
		}
	})
	t.Run("ok/good-set-swaps", func(t *testing.T) {
		writePolicy(t, path, strings.Replace(goodPolicies, "staff-mfa-outside-office", "staff-mfa-anywhere", 1))
		if err := s.app.ReloadPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		if got := policyNames(s.app.Policies); got[0] != "staff-mfa-anywhere" {
			t.Fatalf("policies after reload = %q", got)
		}
	})
	t.Run("ok/app-source-makes-app-known", func(t *testing.T) {
		targeted := strings.Replace(goodPolicies, "apps: {include: [all]}", "apps: {include: [payroll]}", 1)
		writePolicy(t, path, targeted)
		if err := s.app.ReloadPolicies(ctx); err == nil || !strings.Contains(err.Error(), "payroll") {
			t.Fatalf("ReloadPolicies with an app nobody defines = %v; want an error naming it", err)
		}
		s.app.RegisterAppSource(func(context.Context) ([]string, error) { return []string{"payroll"}, nil })
		if err := s.app.ReloadPolicies(ctx); err != nil {
			t.Fatalf("ReloadPolicies once payroll is registered: %v", err)
		}
	})
	t.Run("fail/app-source-error", func(t *testing.T) {
		s.app.RegisterAppSource(func(context.Context) ([]string, error) { return nil, errors.New("registry down") })
		before := s.app.Policies.Load()
		if err := s.app.ReloadPolicies(ctx); err == nil || !strings.Contains(err.Error(), "registry down") {
			t.Fatalf("ReloadPolicies = %v; want the source's error", err)
		}
		if s.app.Policies.Load() != before {
			t.Fatal("a failed reload replaced the policies")
		}
	})
}

func TestWhatIfAPI(t *testing.T) {
	ln, cfg := testConfig(t)
	path := filepath.Join(t.TempDir(), "policies.yaml")
	writePolicy(t, path, goodPolicies)
	cfg.Policy.Files = []string{path}
	cfg.API.Token = strings.Repeat("t0k", 12)
	seed(t, cfg, addStaff(t))
	s := serve(t, ln, cfg, nil)
	const body = `{"user": "alice", "app": "payroll", "ip": "203.0.113.9", "auth": "pwd@-5m"}`

	t.Run("ok/loopback-over-tcp", func(t *testing.T) {
		resp, err := http.Post(s.base+"/api/v1/whatif", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d policy.Decision
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		if d.Outcome != policy.OutcomeChallenge || len(d.Missing) != 1 || len(d.Policies) != 2 {
			t.Fatalf("decision %+v; want a challenge for mfa with both policies explained", d)
		}
	})
	for _, tt := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{name: "fail/remote-peer-spoofing-xff", header: map[string]string{"X-Forwarded-For": "127.0.0.1"}, want: http.StatusForbidden},
		{name: "ok/remote-peer-with-token", header: map[string]string{"Authorization": "Bearer " + cfg.API.Token}, want: http.StatusOK},
		{name: "fail/remote-peer-wrong-token", header: map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 36)}, want: http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/whatif", strings.NewReader(body))
			r.RemoteAddr = "198.51.100.20:40000"
			r.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			s.app.Handler().ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
		})
	}
	t.Run("fail/statement-without-class", func(t *testing.T) {
		resp, err := http.Post(s.base+"/api/v1/whatif", "application/json",
			strings.NewReader(`{"user": "alice", "app": "payroll", "statement": {"command": "DROP TABLE", "tables": ["customers"]}}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "statement has no class") {
			t.Fatalf("status %d: %s; want 400 naming the missing class", resp.StatusCode, b)
		}
	})
}
