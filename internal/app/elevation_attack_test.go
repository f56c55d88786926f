package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/pkg/stepup"
)

// elevationPolicies block the bank and the intranet for everyone who
// does not hold bank-admin there.
const elevationPolicies = `
policies:
  - name: bank-admins-only
    state: enabled
    users: {include: {users: [all]}, exclude: {roles: [bank-admin]}}
    target: {apps: {include: [bank, intranet]}}
    grant: block
`

// testClock is a clock tests can stop and set; unset, it is the real
// one.
type testClock struct{ at atomic.Pointer[time.Time] }

func (c *testClock) now() time.Time {
	if t := c.at.Load(); t != nil {
		return *t
	}
	return time.Now()
}

func (c *testClock) set(t time.Time) { c.at.Store(&t) }

// elevationRig is a gateway rig where alice is eligible for bank-admin
// on the bank only and for auditor everywhere; the bank and the
// intranet (a second route) admit bank-admins only. The gateway and the
// provider run on clock.
type elevationRig struct {
	*gatewayRig
	sg       *app.App
	bank     string // the bank's address
	intranet string
	clock    *testClock
}

func startElevation(t *testing.T) *elevationRig {
	t.Helper()
	r := &elevationRig{clock: &testClock{}}
	r.gatewayRig = startGateway(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		r.intranet = "http://intranet.localhost:" + port
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{Name: "intranet", From: r.intranet, To: cfg.Gateway.Routes[0].To})
		cfg.Elevation.Roles = []config.ElevationRole{{Role: "bank-admin", MaxDuration: config.Duration(2 * time.Hour)}}
	})
	r.sg, r.bank = r.server.app, r.app // the App, and the bank route's address
	r.sg.Gateway.Now, r.sg.OIDC.Now = r.clock.now, r.clock.now
	r.usePolicies(t, elevationPolicies)
	ctx := context.Background()
	for _, role := range []string{"bank-admin", "auditor"} {
		if _, err := r.sg.Users.AddRole(ctx, store.Role{Name: role}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []store.RoleAssignment{
		{ID: "ra-bank", Role: "bank-admin", Kind: store.AssignEligible, Principal: store.UserPrincipal(r.user.ID), Scope: []string{"bank"}},
		{ID: "ra-audit", Role: "auditor", Kind: store.AssignEligible, Principal: store.UserPrincipal(r.user.ID)},
	} {
		if _, err := r.sg.Store.CreateRoleAssignment(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// activate asks for role for d and gives the proof activation asks for
// (a password and a TOTP code just now), as the step-up page would.
func (r *elevationRig) activate(t *testing.T, role string, d time.Duration) store.Elevation {
	t.Helper()
	ctx := context.Background()
	u, err := r.sg.Store.GetUser(ctx, r.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.sg.Elevation.Request(ctx, u, elevate.Ask{Role: role, Duration: d, Justification: "incident 42"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sess := store.Session{Events: []store.AuthEvent{
		{Method: "password", Time: now, AMR: []string{"pwd"}},
		{Method: "totp", Time: now, AMR: []string{"otp"}},
	}}
	req := r.sg.Access.Request(httptest.NewRequest("POST", "/account/roles", nil), u, &sess, elevate.App, now)
	e, v, err := r.sg.Elevation.Prove(ctx, e.ID, u, req, nil)
	if err != nil || v.Outcome != policy.OutcomeAllow || e.State != store.ElevationActive {
		t.Fatalf("activate %s: state %q, verdict %+v, %v", role, e.State, v, err)
	}
	return e
}

func (r *elevationRig) deactivate(t *testing.T, e store.Elevation) {
	t.Helper()
	u, err := r.sg.Store.GetUser(context.Background(), r.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.sg.Elevation.Deactivate(context.Background(), e.ID, u, false, "done"); err != nil {
		t.Fatal(err)
	}
}

// open signs the browser in if needed and returns the status of GET u.
func (r *elevationRig) open(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	resp, _ := r.walk(t, c, mustDo(t, c, "GET", u, ""), nil)
	return resp.StatusCode
}

// lastRoles verifies the assertion the upstream last received and
// returns its roles.
func (r *elevationRig) lastRoles(t *testing.T) (roles []string, exp time.Time) {
	t.Helper()
	all := r.upstream.all()
	last := all[len(all)-1]
	v, err := stepup.NewAssertionVerifier(r.base, stepup.WithAudience(r.upURL), stepup.WithOrigin(r.upURL))
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(r.upURL + last.Path)
	a, err := v.Verify(context.Background(), last.Assertion, last.Method, target)
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	c := claimsOf(t, last.Assertion)
	return a.Roles, time.Unix(int64(c["exp"].(float64)), 0)
}

// token runs the code flow for client with scope in browser c and
// returns the token response.
func (r *elevationRig) token(t *testing.T, c *http.Client, client, secret, redirect, scope string) tokenResponse {
	t.Helper()
	verifier, challenge := pkce()
	cb := r.follow(t, c, r.authorizeURL(url.Values{"client_id": {client}, "redirect_uri": {redirect}, "scope": {scope},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	if cb.Query().Get("code") == "" {
		t.Fatalf("authorize for %s: %s", client, cb)
	}
	st, tok := r.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}, client, secret)
	if st != http.StatusOK {
		t.Fatalf("token for %s: %d %s", client, st, tok.ErrorDescription)
	}
	return tok
}

// introspect asks whether tok is active, as client bank.
func (r *elevationRig) introspect(t *testing.T, tok string) bool {
	t.Helper()
	_, body := post(t, http.DefaultClient, r.base+"/oauth2/introspect", url.Values{"token": {tok}}, "Authorization", basicAuth(bankClientID, bankSecret))
	var out struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("introspection: %s", body)
	}
	return out.Active
}

// bearer calls the bank through the gateway with tok.
func (r *elevationRig) bearer(t *testing.T, tok string) (int, string) {
	t.Helper()
	resp := mustDo(t, gatewayBrowser(t, r.server), "GET", r.bank+"/accounts", "", "Authorization", "Bearer "+tok)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// claimsOf is the claims of a JWT, unverified.
func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	_, c := unverifiedClaims(t, raw)
	return c
}

func rolesClaim(c map[string]any) []string {
	var out []string
	list, _ := c["roles"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// TestElevationCountsWhileActive: an active elevation counts where a
// standing role counts, and only in its scope: the bank's policy admits
// alice, the assertion and the bank client's tokens carry the role (and
// expire by its end), What-If shows it active and elevated; the intranet
// and another client's token do not see it.
func TestElevationCountsWhileActive(t *testing.T) {
	r := startElevation(t)
	b := gatewayBrowser(t, r.server)
	if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusForbidden {
		t.Fatalf("fail/not-yet-elevated: bank answered %d, want 403", st)
	}
	e := r.activate(t, "bank-admin", time.Hour)

	t.Run("ok/gateway-admits-and-asserts-role", func(t *testing.T) {
		if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusOK {
			t.Fatalf("bank answered %d, want 200", st)
		}
		roles, exp := r.lastRoles(t)
		if !slices.Contains(roles, "bank-admin") {
			t.Errorf("assertion roles %q lack bank-admin", roles)
		}
		if exp.After(e.Until) {
			t.Errorf("assertion expires %v, after the elevation's end %v", exp, e.Until)
		}
	})
	t.Run("fail/scoped-role-at-other-app", func(t *testing.T) {
		if st := r.open(t, b, r.intranet+"/"); st != http.StatusForbidden {
			t.Fatalf("intranet answered %d, want 403: bank-admin is scoped to the bank", st)
		}
	})
	ob := browser(t)
	t.Run("ok/token-roles-claim-until-end", func(t *testing.T) {
		tok := r.token(t, ob, bankClientID, bankSecret, bankRedirect, "openid groups")
		for name, raw := range map[string]string{"access": tok.AccessToken, "id": tok.IDToken} {
			c := claimsOf(t, raw)
			if !slices.Contains(rolesClaim(c), "bank-admin") {
				t.Errorf("%s token roles %v lack bank-admin", name, c["roles"])
			}
			if exp := time.Unix(int64(c["exp"].(float64)), 0); exp.After(e.Until) {
				t.Errorf("%s token expires %v, after the elevation's end %v", name, exp, e.Until)
			}
		}
	})
	t.Run("fail/scoped-role-in-other-clients-token", func(t *testing.T) {
		tok := r.token(t, ob, rpClientID, rpSecret, rpRedirect, "openid groups")
		if roles := rolesClaim(claimsOf(t, tok.AccessToken)); slices.Contains(roles, "bank-admin") {
			t.Fatalf("the web app's token carries %q: bank-admin is scoped to the bank", roles)
		}
	})
	t.Run("ok/what-if-shows-active-and-eligible-apart", func(t *testing.T) {
		resp, err := http.Post(r.base+"/api/v1/whatif", "application/json", strings.NewReader(`{"user": "alice", "app": "bank"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Outcome policy.Outcome     `json:"outcome"`
			Roles   access.WhatIfRoles `json:"roles"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if out.Outcome != policy.OutcomeAllow || !slices.Equal(out.Roles.Active, []string{"bank-admin"}) ||
			len(out.Roles.Elevated) != 1 || !slices.Equal(out.Roles.Eligible, []string{"auditor"}) {
			t.Fatalf("what-if %+v; want allow, bank-admin active and elevated, auditor eligible", out)
		}
	})
}

// TestElevationExpiryThroughCachedSession performs the attack of using
// an expired role through a cached gateway session: the browser's
// identity, its headers and its allow are cached when the elevation
// ends, and the next request, well within the cache's lifetime, is
// refused. A clock set back before the activation does not bring the
// role back either.
func TestElevationExpiryThroughCachedSession(t *testing.T) {
	r := startElevation(t)
	b := gatewayBrowser(t, r.server)
	e := r.activate(t, "bank-admin", time.Hour)

	r.clock.set(e.Until.Add(-200 * time.Millisecond))
	if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusOK {
		t.Fatalf("ok/just-before-end: %d, want 200", st)
	}
	if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusOK {
		t.Fatalf("ok/cached-before-end: %d, want 200", st)
	}
	// Signed on the set clock, so read rather than verified.
	all := r.upstream.all()
	if exp := time.Unix(int64(claimsOf(t, all[len(all)-1].Assertion)["exp"].(float64)), 0); exp.After(e.Until) {
		t.Errorf("an assertion signed 200ms before the end expires at %v, after it", exp)
	}
	seen := len(r.upstream.all())
	r.clock.set(e.Until)
	if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusForbidden {
		t.Fatalf("fail/at-end-from-cache: %d, want 403", st)
	}
	if n := len(r.upstream.all()); n != seen {
		t.Fatalf("the upstream received %d requests after the end", n-seen)
	}
	r.clock.set(e.ActivatedAt.Add(-time.Second))
	if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusForbidden {
		t.Fatalf("fail/clock-set-back-before-activation: %d, want 403", st)
	}
}

// TestElevationDeactivationAtOnce performs the attack of an old token
// after deactivation, and of a cached browser session: with the gateway's
// clock stopped (so no cache runs out by itself), ending the elevation on
// this node refuses the next browser request, and the token minted while
// it was active is refused by the gateway (invalid_token, saying why),
// introspection and the SDK's revocation check. A refresh gives a token
// without the role. Taking a standing role away does the same to tokens
// that carry it.
func TestElevationDeactivationAtOnce(t *testing.T) {
	r := startElevation(t)
	ctx := context.Background()
	b := gatewayBrowser(t, r.server)
	e := r.activate(t, "bank-admin", time.Hour)
	audit := r.activate(t, "auditor", time.Hour)
	ob := browser(t)
	bankTok := r.token(t, ob, bankClientID, bankSecret, bankRedirect, "openid groups")
	webTok := r.token(t, ob, rpClientID, rpSecret, rpRedirect, "openid groups offline_access")
	if roles := rolesClaim(claimsOf(t, webTok.AccessToken)); !slices.Contains(roles, "auditor") {
		t.Fatalf("the web app's token roles %q lack auditor", roles)
	}
	sdk, err := stepup.NewVerifier(ctx, r.base, stepup.WithAudience(bankClientID), stepup.WithIntrospection(bankClientID, bankSecret, 0))
	if err != nil {
		t.Fatal(err)
	}

	r.clock.set(time.Now())
	if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusOK {
		t.Fatalf("ok/active: browser %d, want 200", st)
	}
	if st, _ := r.bearer(t, bankTok.AccessToken); st != http.StatusOK {
		t.Fatalf("ok/active: bearer %d, want 200", st)
	}
	if !r.introspect(t, bankTok.AccessToken) {
		t.Fatal("ok/active: introspection says inactive")
	}
	if _, err := sdk.Verify(ctx, bankTok.AccessToken); err != nil {
		t.Fatalf("ok/active: SDK: %v", err)
	}

	r.deactivate(t, e)
	t.Run("fail/cached-browser-after-deactivation", func(t *testing.T) {
		if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusForbidden {
			t.Fatalf("browser %d, want 403", st)
		}
	})
	t.Run("fail/old-token-at-gateway", func(t *testing.T) {
		st, www := r.bearer(t, bankTok.AccessToken)
		if st != http.StatusUnauthorized || !strings.Contains(www, `error="invalid_token"`) || !strings.Contains(www, "bank-admin") {
			t.Fatalf("bearer %d %q, want 401 invalid_token naming the role", st, www)
		}
	})
	t.Run("fail/old-token-introspection", func(t *testing.T) {
		if r.introspect(t, bankTok.AccessToken) {
			t.Fatal("introspection says active")
		}
	})
	t.Run("fail/old-token-sdk", func(t *testing.T) {
		if _, err := sdk.Verify(ctx, bankTok.AccessToken); !errors.Is(err, stepup.ErrRejected) {
			t.Fatalf("SDK: %v, want ErrRejected", err)
		}
	})

	r.deactivate(t, audit)
	t.Run("fail/old-token-of-other-role-userinfo", func(t *testing.T) {
		resp := mustDo(t, http.DefaultClient, "GET", r.base+"/oauth2/userinfo", "", "Authorization", "Bearer "+webTok.AccessToken)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("userinfo %d, want 401", resp.StatusCode)
		}
	})
	t.Run("ok/refresh-drops-ended-role", func(t *testing.T) {
		st, tok := r.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {webTok.RefreshToken}}, rpClientID, rpSecret)
		if st != http.StatusOK {
			t.Fatalf("refresh: %d %s", st, tok.ErrorDescription)
		}
		for name, raw := range map[string]string{"access": tok.AccessToken, "id": tok.IDToken} {
			if roles := rolesClaim(claimsOf(t, raw)); slices.Contains(roles, "auditor") {
				t.Errorf("the refreshed %s token carries %q after auditor ended", name, roles)
			}
		}
	})
	t.Run("fail/standing-role-removed", func(t *testing.T) {
		if _, err := r.sg.Users.SetMemberships(ctx, testUser, nil, []string{"auditor"}); err != nil {
			t.Fatal(err)
		}
		tok := r.token(t, browser(t), rpClientID, rpSecret, rpRedirect, "openid groups")
		if !r.introspect(t, tok.AccessToken) {
			t.Fatal("a token with a standing role is inactive")
		}
		if _, err := r.sg.Users.SetMemberships(ctx, testUser, nil, []string{}); err != nil {
			t.Fatal(err)
		}
		if r.introspect(t, tok.AccessToken) {
			t.Fatal("a token naming a standing role taken away is active")
		}
	})
}

// TestElevationEndsWithEligibility: removing the eligibility an active
// elevation rests on ends it (the node's sweep, every second), and the
// gateway stops honouring the role without waiting for its time.
func TestElevationEndsWithEligibility(t *testing.T) {
	r := startElevation(t)
	b := gatewayBrowser(t, r.server)
	e := r.activate(t, "bank-admin", time.Hour)
	if st := r.open(t, b, r.bank+"/accounts"); st != http.StatusOK {
		t.Fatalf("ok/active: %d, want 200", st)
	}
	if err := r.sg.Store.DeleteRoleAssignment(context.Background(), "ra-bank"); err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	for st := r.open(t, b, r.bank+"/accounts"); st != http.StatusForbidden; st = r.open(t, b, r.bank+"/accounts") {
		if time.Since(from) > 3*time.Second {
			t.Fatalf("fail/eligibility-removed: still %d %s later", st, time.Since(from))
		}
		time.Sleep(20 * time.Millisecond) // between polls, not an assertion
	}
	t.Logf("refused %s after the eligibility was removed", time.Since(from))
	// The store stops counting the grant at once; the sweep records the
	// end within its interval.
	for {
		got, err := r.sg.Store.GetElevation(context.Background(), e.ID)
		if err == nil && got.State == store.ElevationDeactivated && got.EndReason == elevate.ReasonNotEligible {
			break
		}
		if time.Since(from) > 5*time.Second {
			t.Fatalf("the elevation is %s (%s), %v; want deactivated as no longer eligible", got.State, got.EndReason, err)
		}
		time.Sleep(20 * time.Millisecond) // between polls, not an assertion
	}
}
