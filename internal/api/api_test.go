package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policytest"
	"github.com/stepgate/stepgate/internal/store"
)

const policies = `policies:
  - name: staff-mfa
    state: enabled
    users:
      include: {groups: [staff]}
    target:
      apps: {include: [all]}
    grant:
      controls: [mfa]
`

const token = "0123456789abcdef0123456789abcdef"

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type fakeUsers map[string]store.User

func (f fakeUsers) GetUserByName(_ context.Context, name string) (store.User, error) {
	if u, ok := f[name]; ok {
		return u, nil
	}
	return store.User{}, store.ErrNotFound
}

func newAPI(t *testing.T) *api.API {
	t.Helper()
	snap := policytest.Snapshot(t, policies)
	return api.New(api.Deps{
		Policies:       policy.NewEngine(snap),
		Users:          fakeUsers{"alice": {ID: "u1", Username: "alice", Groups: []string{"staff"}}},
		Access:         &access.Builder{},
		Token:          token,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		Now:            func() time.Time { return now },
	})
}

type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func TestWhatIf(t *testing.T) {
	t.Parallel()
	h := newAPI(t)
	const body = `{"user": "alice", "app": "payroll", "auth": "pwd@-5m"}`
	tests := []struct {
		name        string
		method      string
		path        string
		peer        string
		host        string
		header      map[string]string
		body        string
		wantStatus  int
		wantError   string // error code
		wantInDesc  string
		wantOutcome string
	}{
		{name: "ok/loopback", peer: "127.0.0.1:5000", body: body, wantStatus: 200, wantOutcome: "challenge"},
		{name: "ok/loopback-ipv6-localhost", peer: "[::1]:5000", host: "localhost:8080", body: body, wantStatus: 200, wantOutcome: "challenge"},
		{name: "ok/mfa-satisfied", peer: "127.0.0.1:5000", body: `{"user": "alice", "app": "payroll", "auth": "pwd@-5m,totp@-1m"}`, wantStatus: 200, wantOutcome: "allow"},
		{name: "ok/token-from-anywhere", peer: "203.0.113.5:5000", host: "sso.example.com",
			header: map[string]string{"Authorization": "Bearer " + token}, body: body, wantStatus: 200, wantOutcome: "challenge"},
		{name: "fail/remote-peer", peer: "203.0.113.5:5000", body: body, wantStatus: 403, wantError: "access_denied", wantInDesc: "api.token"},
		// X-Forwarded-For is chosen by the client: it must never make a
		// remote peer look local.
		{name: "fail/remote-peer-spoofed-xff", peer: "203.0.113.5:5000",
			header: map[string]string{"X-Forwarded-For": "127.0.0.1"}, body: body, wantStatus: 403, wantError: "access_denied"},
		// A proxy on the same machine connects from loopback on behalf of
		// remote clients.
		{name: "fail/loopback-proxy-relaying", peer: "127.0.0.1:5000",
			header: map[string]string{"X-Forwarded-For": "203.0.113.5"}, body: body, wantStatus: 403, wantError: "access_denied"},
		{name: "fail/loopback-trusted-proxy", peer: "127.0.0.2:5000", body: body, wantStatus: 403, wantError: "access_denied"},
		// DNS rebinding: a page on evil.example resolved to 127.0.0.1.
		{name: "fail/loopback-foreign-host", peer: "127.0.0.1:5000", host: "evil.example:8080", body: body, wantStatus: 403, wantError: "access_denied"},
		{name: "fail/wrong-token", peer: "127.0.0.1:5000", header: map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 32)},
			body: body, wantStatus: 401, wantError: "invalid_token", wantInDesc: "does not match"},
		{name: "fail/not-bearer", peer: "203.0.113.5:5000", header: map[string]string{"Authorization": "Basic YWxpY2U6cHc="},
			body: body, wantStatus: 401, wantError: "invalid_token", wantInDesc: "Bearer"},
		{name: "fail/malformed-json", peer: "127.0.0.1:5000", body: `{"user": "alice",`, wantStatus: 400, wantError: "invalid_request", wantInDesc: "malformed JSON"},
		{name: "fail/syntax-error", peer: "127.0.0.1:5000", body: `{"user" "alice"}`, wantStatus: 400, wantError: "invalid_request", wantInDesc: "malformed JSON at byte 9: invalid character"},
		{name: "fail/unknown-field", peer: "127.0.0.1:5000", body: `{"user": "alice", "sign_in_risc": "high"}`,
			wantStatus: 400, wantError: "invalid_request", wantInDesc: `unknown field "sign_in_risc"; the fields are user, client`},
		{name: "fail/wrong-type", peer: "127.0.0.1:5000", body: `{"user": "alice", "contexts": "c2"}`,
			wantStatus: 400, wantError: "invalid_request", wantInDesc: `field "contexts" must be a list of strings`},
		{name: "fail/two-objects", peer: "127.0.0.1:5000", body: body + body, wantStatus: 400, wantInDesc: "exactly one object"},
		{name: "fail/empty-body", peer: "127.0.0.1:5000", body: "", wantStatus: 400, wantInDesc: "body is empty"},
		{name: "fail/bad-value", peer: "127.0.0.1:5000", body: `{"user": "alice", "ip": "10.0.0.300", "sign_in_risk": "mediun"}`,
			wantStatus: 400, wantError: "invalid_request", wantInDesc: `ip "10.0.0.300" is not an IP address; sign_in_risk "mediun" is not one of`},
		{name: "fail/unknown-user", peer: "127.0.0.1:5000", body: `{"user": "mallory", "app": "payroll"}`,
			wantStatus: 400, wantError: "invalid_request", wantInDesc: `unknown user "mallory"`},
		{name: "fail/form-post", peer: "127.0.0.1:5000", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body: "user=alice", wantStatus: 415, wantInDesc: "Content-Type: application/json"},
		{name: "fail/too-large", peer: "127.0.0.1:5000", body: `{"user": "` + strings.Repeat("a", 70<<10) + `"}`, wantStatus: 413},
		{name: "fail/get", method: "GET", peer: "127.0.0.1:5000", wantStatus: 405},
		{name: "fail/unknown-endpoint", path: "/api/v1/nope", peer: "127.0.0.1:5000", body: body, wantStatus: 404, wantError: "not_found"},
		{name: "fail/unknown-endpoint-remote-is-403", path: "/api/v1/nope", peer: "203.0.113.5:5000", body: body, wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method, path := tt.method, tt.path
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/api/v1/whatif"
			}
			r := httptest.NewRequest(method, path, strings.NewReader(tt.body))
			r.RemoteAddr = tt.peer
			r.Host = "127.0.0.1:8080"
			if tt.host != "" {
				r.Host = tt.host
			}
			r.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			resp := w.Result()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.wantStatus != 200 {
				var e apiError
				if err := json.Unmarshal(b, &e); err != nil || e.Error == "" || e.Description == "" {
					t.Fatalf("error body %s is not {error, error_description} (%v)", b, err)
				}
				if tt.wantError != "" && e.Error != tt.wantError {
					t.Errorf("error = %q, want %q", e.Error, tt.wantError)
				}
				if !strings.Contains(e.Description, tt.wantInDesc) {
					t.Errorf("error_description %q does not contain %q", e.Description, tt.wantInDesc)
				}
				if tt.wantStatus == 401 && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			var d policy.Decision
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if d.Outcome.String() != tt.wantOutcome {
				t.Errorf("outcome %s, want %s; body %s", d.Outcome, tt.wantOutcome, b)
			}
			if len(d.Policies) != 1 || d.Policies[0].Policy != "staff-mfa" {
				t.Errorf("policies = %+v; want the explained result of staff-mfa", d.Policies)
			}
		})
	}
}
