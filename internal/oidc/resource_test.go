package oidc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/store"
)

// newDatabaseProvider is a device provider that serves the databases
// bank and shop.
func newDatabaseProvider(t *testing.T) *deviceProvider {
	t.Helper()
	dp := newDeviceProvider(t, DeviceOptions{})
	dp.Databases = []string{"bank", "shop"}
	dp.Access = (&access.Builder{}).Request
	return dp
}

// startFor asks for a device code as the command line, for resource.
func (dp *deviceProvider) startFor(t *testing.T, scope, resource string) (deviceCode, userCode string) {
	t.Helper()
	r := dp.post(t, pathDeviceAuthorization, cliClientID, url.Values{"scope": {scope}, "resource": {resource}})
	if r.status != http.StatusOK {
		t.Fatalf("device authorization for %s: %d %v", resource, r.status, r.body)
	}
	return r.str("device_code"), r.str("user_code")
}

// databaseTokens runs the device flow for the database bank and returns
// the token response.
func (dp *deviceProvider) databaseTokens(t *testing.T, scope string) oauthReply {
	t.Helper()
	dc, uc := dp.startFor(t, scope, DatabaseResource("bank"))
	dp.approve(t, uc)
	r := dp.poll(t, cliClientID, dc)
	if r.status != http.StatusOK {
		t.Fatalf("redeem the device code: %d %v", r.status, r.body)
	}
	return r
}

func (dp *deviceProvider) userinfo(t *testing.T, token string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, pathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	dp.mux.ServeHTTP(rec, req)
	return rec.Code
}

// TestDatabaseToken: a device authorization with resource
// urn:stepgate:database:bank yields an access token whose only audience
// is bank, for the client that asked; the approval page is told which
// database is asked for.
func TestDatabaseToken(t *testing.T) {
	t.Parallel()
	dp := newDatabaseProvider(t)
	_, uc := dp.startFor(t, "openid", DatabaseResource("bank"))
	req, err := dp.LookupDevice(context.Background(), dp.user.ID, uc)
	if err != nil {
		t.Fatal(err)
	}
	if req.TokenFor != "bank" {
		t.Fatalf("the approval page is told database %q, want bank", req.TokenFor)
	}
	r := dp.databaseTokens(t, "openid")
	c, err := dp.VerifyAccessToken(context.Background(), r.str("access_token"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Audience, []string{"bank"}) || c.ClientID != cliClientID || c.Username != "alice" {
		t.Fatalf("aud %v client_id %q preferred_username %q, want [bank] %s alice", c.Audience, c.ClientID, c.Username, cliClientID)
	}
	if !c.IssuedForResource() {
		t.Fatal("a database token does not count as issued for a resource")
	}
	// The same flow without resource is the client's own token.
	dc, uc := dp.start(t, cliClientID, "openid")
	dp.approve(t, uc)
	own, err := dp.VerifyAccessToken(context.Background(), dp.poll(t, cliClientID, dc).str("access_token"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(own.Audience, []string{cliClientID}) || own.IssuedForResource() {
		t.Fatalf("a token without resource has aud %v", own.Audience)
	}
}

// TestDatabaseTokenAttacks: every way of asking for, or turning a token
// into, one for an audience the user did not approve is refused.
func TestDatabaseTokenAttacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, dp *deviceProvider)
	}{
		{"fail/resource-not-a-served-database", func(t *testing.T, dp *deviceProvider) {
			for _, res := range []string{
				DatabaseResource("payroll"), DatabaseResource(""), DatabaseResource("bank/../shop"), DatabaseResource("BANK"),
				"bank", testClientID, "https://app.example/", "urn:stepgate:database:bank ", "urn:stepgate:client:" + testClientID,
			} {
				r := dp.post(t, pathDeviceAuthorization, cliClientID, url.Values{"scope": {"openid"}, "resource": {res}})
				wantOAuthError(t, r, http.StatusBadRequest, "invalid_target")
				if !strings.Contains(r.str("error_description"), DatabaseResource("bank")) {
					t.Fatalf("resource %q: the refusal does not name the served databases: %q", res, r.str("error_description"))
				}
			}
		}},
		{"fail/resource-repeated", func(t *testing.T, dp *deviceProvider) {
			r := dp.post(t, pathDeviceAuthorization, cliClientID, url.Values{"scope": {"openid"}, "resource": {DatabaseResource("bank"), DatabaseResource("shop")}})
			wantOAuthError(t, r, http.StatusBadRequest, "invalid_request")
		}},
		{"fail/redeem-for-another-database", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.startFor(t, "openid", DatabaseResource("bank"))
			dp.approve(t, uc)
			poll := url.Values{"grant_type": {GrantDeviceCode}, "device_code": {dc}, "resource": {DatabaseResource("shop")}}
			wantOAuthError(t, dp.post(t, pathToken, cliClientID, poll), http.StatusBadRequest, "invalid_target")
			// The refusal spent nothing: the approved code still gives bank.
			r := dp.poll(t, cliClientID, dc)
			c, err := dp.VerifyAccessToken(context.Background(), r.str("access_token"))
			if err != nil || !slices.Equal(c.Audience, []string{"bank"}) {
				t.Fatalf("after the refusal: %v %v", r.body, err)
			}
		}},
		{"fail/redeem-client-code-for-a-database", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.start(t, cliClientID, "openid")
			dp.approve(t, uc)
			poll := url.Values{"grant_type": {GrantDeviceCode}, "device_code": {dc}, "resource": {DatabaseResource("bank")}}
			wantOAuthError(t, dp.post(t, pathToken, cliClientID, poll), http.StatusBadRequest, "invalid_target")
		}},
		{"ok/refresh-keeps-the-database", func(t *testing.T, dp *deviceProvider) {
			rt := dp.databaseTokens(t, "openid offline_access").str("refresh_token")
			for _, form := range []url.Values{
				{"grant_type": {GrantRefreshToken}},
				{"grant_type": {GrantRefreshToken}, "resource": {DatabaseResource("bank")}},
			} {
				form.Set("refresh_token", rt)
				r := dp.post(t, pathToken, cliClientID, form)
				c, err := dp.VerifyAccessToken(context.Background(), r.str("access_token"))
				if err != nil || !slices.Equal(c.Audience, []string{"bank"}) {
					t.Fatalf("refresh %v: %d %v %v", form, r.status, r.body, err)
				}
				rt = r.str("refresh_token")
			}
		}},
		{"fail/refresh-for-another-database", func(t *testing.T, dp *deviceProvider) {
			rt := dp.databaseTokens(t, "openid offline_access").str("refresh_token")
			form := url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {rt}, "resource": {DatabaseResource("shop")}}
			wantOAuthError(t, dp.post(t, pathToken, cliClientID, form), http.StatusBadRequest, "invalid_target")
			// The refused refresh did not use the token up.
			form.Del("resource")
			if r := dp.post(t, pathToken, cliClientID, form); r.status != http.StatusOK {
				t.Fatalf("refresh after the refusal: %d %v", r.status, r.body)
			}
		}},
		{"fail/refresh-client-grant-into-a-database", func(t *testing.T, dp *deviceProvider) {
			dc, uc := dp.start(t, cliClientID, "openid offline_access")
			dp.approve(t, uc)
			rt := dp.poll(t, cliClientID, dc).str("refresh_token")
			form := url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {rt}, "resource": {DatabaseResource("bank")}}
			wantOAuthError(t, dp.post(t, pathToken, cliClientID, form), http.StatusBadRequest, "invalid_target")
		}},
		{"fail/code-for-a-database", func(t *testing.T, dp *deviceProvider) {
			form := url.Values{"grant_type": {GrantAuthorizationCode}, "code": {"c"}, "redirect_uri": {testRedirect}, "resource": {DatabaseResource("bank")}}
			wantOAuthError(t, dp.post(t, pathToken, testClientID, form), http.StatusBadRequest, "invalid_target")
		}},
		{"fail/database-token-at-introspection", func(t *testing.T, dp *deviceProvider) {
			// A resource server trusting "active" alone would accept a
			// database's password replayed at it; every client, the token's
			// own included, is told inactive. The client's own token of the
			// same user and flow stays active, so the refusal is the audience's.
			tok := dp.databaseTokens(t, "openid").str("access_token")
			for _, caller := range []string{testClientID, tvClientID} {
				r := dp.post(t, pathIntrospect, caller, url.Values{"token": {tok}})
				if r.status != http.StatusOK || r.body["active"] != false || len(r.body) != 1 {
					t.Fatalf("%s introspecting a database token: %d %v, want only active false", caller, r.status, r.body)
				}
			}
			dc, uc := dp.start(t, cliClientID, "openid")
			dp.approve(t, uc)
			own := dp.poll(t, cliClientID, dc).str("access_token")
			if r := dp.post(t, pathIntrospect, testClientID, url.Values{"token": {own}}); r.body["active"] != true {
				t.Fatalf("introspecting the client's own token: %d %v, want active", r.status, r.body)
			}
		}},
		{"fail/database-token-at-userinfo", func(t *testing.T, dp *deviceProvider) {
			tok := dp.databaseTokens(t, "openid profile").str("access_token")
			if code := dp.userinfo(t, tok); code != http.StatusUnauthorized {
				t.Fatalf("userinfo with a database token: %d, want 401", code)
			}
			dc, uc := dp.start(t, cliClientID, "openid profile")
			dp.approve(t, uc)
			if code := dp.userinfo(t, dp.poll(t, cliClientID, dc).str("access_token")); code != http.StatusOK {
				t.Fatalf("userinfo with the client's own token: %d, want 200", code)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newDatabaseProvider(t))
		})
	}
}

// TestNoDatabasesServed: a server without databases refuses every
// resource and says why.
func TestNoDatabasesServed(t *testing.T) {
	t.Parallel()
	dp := newDeviceProvider(t, DeviceOptions{})
	r := dp.post(t, pathDeviceAuthorization, cliClientID, url.Values{"scope": {"openid"}, "resource": {DatabaseResource("bank")}})
	wantOAuthError(t, r, http.StatusBadRequest, "invalid_target")
	if !strings.Contains(r.str("error_description"), "serves none") {
		t.Fatalf("description %q", r.str("error_description"))
	}
}

// TestDatabaseTokenRoles: a database token's roles are those the user
// holds for the database (an elevation scoped to bank), not for the
// client that asked; the token expires with the elevation and is refused
// once it is deactivated, as a client's token is for the client's roles.
func TestDatabaseTokenRoles(t *testing.T) {
	t.Parallel()
	dp := newDatabaseProvider(t)
	ctx := context.Background()
	start := dp.clock.Now()
	until := start.Add(3 * time.Minute)
	if _, err := dp.db.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra_1", Role: "db-writer", Kind: store.AssignEligible,
		Principal: store.UserPrincipal(dp.user.ID), Scope: []string{"bank"}}); err != nil {
		t.Fatal(err)
	}
	e, err := dp.db.CreateElevation(ctx, store.Elevation{ID: "elv_1", UserID: dp.user.ID, Role: "db-writer", Scope: []string{"bank"},
		Duration: 3 * time.Minute, State: store.ElevationActive, RequestedAt: start, ActivatedAt: start, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	r := dp.databaseTokens(t, "openid groups")
	c, err := dp.VerifyAccessToken(ctx, r.str("access_token"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.Roles, "db-writer") || c.Expiry.Time().After(until) {
		t.Fatalf("roles %v, exp %v: want db-writer, expiring by %v", c.Roles, c.Expiry.Time(), until)
	}
	dc, uc := dp.start(t, cliClientID, "openid groups")
	dp.approve(t, uc)
	own, err := dp.VerifyAccessToken(ctx, dp.poll(t, cliClientID, dc).str("access_token"))
	if err != nil || slices.Contains(own.Roles, "db-writer") {
		t.Fatalf("the client's own token carries the database's role: %v %v", own.Roles, err)
	}
	if _, err := dp.db.UpdateElevation(ctx, e.ID, func(cur store.Elevation) (store.Elevation, error) {
		cur.State, cur.EndedAt, cur.EndedBy, cur.EndReason = store.ElevationDeactivated, dp.clock.Now(), dp.user.ID, "by-holder"
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := dp.VerifyAccessToken(ctx, r.str("access_token")); err == nil {
		t.Fatal("the database token still verifies after its role ended")
	}
}
