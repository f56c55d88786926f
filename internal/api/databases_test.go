package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policytest"
)

// fakeTokens knows a few access tokens by their text.
type fakeTokens map[string]*oidc.AccessClaims

func (f fakeTokens) VerifyAccessToken(_ context.Context, raw string) (*oidc.AccessClaims, error) {
	if c, ok := f[raw]; ok {
		return c, nil
	}
	return nil, errors.New("unknown token")
}

// Tokens of the connection information tests, shaped like JWTs (the API
// only verifies strings with two dots).
const (
	bankToken  = "h.bank.s"
	adminToken = "h.admin.s"
	ownToken   = "h.own.s"
)

func newDatabaseAPI(t *testing.T) *api.API {
	t.Helper()
	user := func(aud, client, scope string) *oidc.AccessClaims {
		return &oidc.AccessClaims{Claims: jwt.Claims{Subject: "u1", Audience: jwt.Audience{aud}}, ClientID: client, Scope: scope}
	}
	return api.New(api.Deps{
		Policies: policy.NewEngine(policytest.Snapshot(t, policies)), Users: fakeUsers{}, Access: &access.Builder{},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Now: func() time.Time { return now },
		Tokens: fakeTokens{
			bankToken:  user("bank", "stepgate-cli", "openid"),
			ownToken:   user("stepgate-cli", "stepgate-cli", "openid"),
			adminToken: {Claims: jwt.Claims{Subject: "ops", Audience: jwt.Audience{"ops"}}, ClientID: "ops", Scope: oidc.AdminScope},
		},
		Databases: []api.Database{
			{Name: "bank", Host: "db.example", Port: 6432, DBName: "bank", SSLMode: "verify-full", CACertificate: "-----BEGIN CERTIFICATE-----\nbank\n"},
			{Name: "shop", Host: "db.example", Port: 6433, DBName: "shop", SSLMode: "verify-full"},
		},
	})
}

// TestDatabaseConnectionInfo: a person reads how to connect to a
// database with the token they connect with, and nothing else with it;
// the API's own callers read any database's.
func TestDatabaseConnectionInfo(t *testing.T) {
	t.Parallel()
	h := newDatabaseAPI(t)
	tests := []struct {
		name, path, bearer string
		want               int
		wantCode           string
	}{
		{"ok/database-token-reads-its-database", "/api/v1/databases/bank", bankToken, 200, ""},
		{"ok/admin-client-reads-any", "/api/v1/databases/shop", adminToken, 200, ""},
		{"fail/admin-client-unknown-database", "/api/v1/databases/payroll", adminToken, 404, "not_found"},
		{"fail/bank-token-at-shop", "/api/v1/databases/shop", bankToken, 403, "insufficient_scope"},
		{"fail/bank-token-at-unknown-database", "/api/v1/databases/payroll", bankToken, 403, "insufficient_scope"},
		{"fail/clients-own-token", "/api/v1/databases/bank", ownToken, 403, "insufficient_scope"},
		{"fail/no-token", "/api/v1/databases/bank", "", 403, "access_denied"},
		{"fail/unknown-token", "/api/v1/databases/bank", "h.forged.s", 401, "invalid_token"},
		{"fail/database-token-at-the-sign-in-log", "/api/v1/signins", bankToken, 403, "insufficient_scope"},
		{"fail/database-token-at-users", "/api/v1/users", bankToken, 403, "insufficient_scope"},
		{"fail/database-token-past-the-name", "/api/v1/databases/bank/x", bankToken, 403, "insufficient_scope"},
		{"fail/database-token-encoded-slash", "/api/v1/databases/bank%2F..%2F..%2Fusers", bankToken, 403, "insufficient_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.RemoteAddr = "198.51.100.7:4000"
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want != 200 {
				var e apiError
				_ = json.Unmarshal(rec.Body.Bytes(), &e)
				if e.Error != tt.wantCode {
					t.Fatalf("error %q, want %q (%s)", e.Error, tt.wantCode, e.Description)
				}
				if tt.wantCode == "not_found" && !strings.Contains(e.Description, "bank, shop") {
					t.Fatalf("the answer does not list the served databases: %q", e.Description)
				}
				return
			}
			var got api.Database
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Host != "db.example" || got.SSLMode != "verify-full" || got.DBName == "" {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
		})
	}
}
