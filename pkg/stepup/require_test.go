package stepup_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/pkg/stepup"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newClock()
	v := newVerifier(t, ti, clk)
	now := clk.now()
	base := stepup.Claims{Subject: "user-1", Scope: "openid read", AuthTime: now.Add(-10 * time.Minute),
		ACR: "single-factor", ACRs: []string{"c1"}}
	with := func(f func(*stepup.Claims)) *stepup.Claims {
		c := base
		f(&c)
		return &c
	}
	authorize := ti.srv.URL + "/oauth2/authorize"
	tests := []struct {
		name   string
		claims *stepup.Claims
		reqs   []stepup.Requirement
		want   *stepup.Challenge
	}{
		{"ok/no-requirements", &base, nil, nil},
		{"ok/context", &base, []stepup.Requirement{stepup.Context("c1")}, nil},
		{"ok/acr", &base, []stepup.Requirement{stepup.ACR("mfa", "single-factor")}, nil},
		{"ok/max-age", &base, []stepup.Requirement{stepup.MaxAge(15 * time.Minute)}, nil},
		{"ok/scope", &base, []stepup.Requirement{stepup.Scope("read")}, nil},
		{"fail/no-claims", nil, nil, &stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInvalidToken, Description: "no valid access token"}},
		{"fail/context", &base, []stepup.Requirement{stepup.Context("c1"), stepup.Context("c2")},
			&stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInsufficientUserAuthentication,
				Description: "this request needs authentication context c2", ACRValues: []string{"c2"}}},
		{"fail/context-cp1-claims-challenge", with(func(c *stepup.Claims) { c.Capabilities = []string{"cp1"} }),
			[]stepup.Requirement{stepup.Context("c2")},
			&stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInsufficientClaims, AuthorizationURI: authorize,
				Description: "this request needs authentication context c2",
				Claims:      `{"access_token":{"acrs":{"essential":true,"value":"c2"}}}`}},
		{"fail/cp1-with-max-age-uses-rfc9470", with(func(c *stepup.Claims) { c.Capabilities = []string{"cp1"} }),
			[]stepup.Requirement{stepup.Context("c2"), stepup.MaxAge(5 * time.Minute)},
			&stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInsufficientUserAuthentication,
				Description: "this request needs authentication context c2 and a more recent sign-in",
				ACRValues:   []string{"c2"}, MaxAge: 5 * time.Minute, HasMaxAge: true}},
		{"fail/acr", &base, []stepup.Requirement{stepup.ACR("mfa")},
			&stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInsufficientUserAuthentication,
				Description: "this request needs acr mfa", ACRValues: []string{"mfa"}}},
		{"fail/max-age", &base, []stepup.Requirement{stepup.MaxAge(5 * time.Minute), stepup.MaxAge(time.Minute)},
			&stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInsufficientUserAuthentication,
				Description: "this request needs a more recent sign-in", MaxAge: time.Minute, HasMaxAge: true}},
		{"ok/max-age-proof-time", with(func(c *stepup.Claims) { c.ProofTime = now.Add(-12 * time.Minute) }),
			[]stepup.Requirement{stepup.MaxAge(15 * time.Minute)}, nil},
		// A password retyped a minute ago beside a passkey from an hour
		// ago: the passkey behind the token is not fresh.
		{"fail/max-age-old-proof-behind-fresh-auth-time", with(func(c *stepup.Claims) {
			c.AuthTime, c.ProofTime = now.Add(-time.Minute), now.Add(-time.Hour)
		}), []stepup.Requirement{stepup.MaxAge(5 * time.Minute)},
			&stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInsufficientUserAuthentication,
				Description: "this request needs a more recent sign-in", MaxAge: 5 * time.Minute, HasMaxAge: true}},
		{"fail/max-age-without-auth-time", with(func(c *stepup.Claims) { c.AuthTime = time.Time{} }),
			[]stepup.Requirement{stepup.MaxAge(time.Hour)},
			&stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInsufficientUserAuthentication,
				Description: "this request needs a more recent sign-in", MaxAge: time.Hour, HasMaxAge: true}},
		{"fail/scope-wins-over-step-up", &base, []stepup.Requirement{stepup.Context("c2"), stepup.Scope("write")},
			&stepup.Challenge{Realm: ti.srv.URL, Error: stepup.ErrInsufficientScope,
				Description: "the access token lacks scope write", Scope: []string{"write"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := v.Check(tt.claims, tt.reqs...)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Check =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newClock()
	v := newVerifier(t, ti, clk, stepup.WithRealm("reports"))
	k1 := ti.key(t, "k1")
	now := clk.now()

	var seen *stepup.Claims
	api := v.Require(stepup.Context("c1"), stepup.Scope("read"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := stepup.ClaimsFrom(r.Context())
		if !ok {
			t.Error("no claims in the request context")
		}
		seen = c
		io.WriteString(w, "ok")
	}))
	good := ti.claimsAt(now)
	good.ACRs = []string{"c1"}
	weak := ti.claimsAt(now)
	cp1 := ti.claimsAt(now)
	cp1.Capabilities = []string{"cp1"}
	narrow := ti.claimsAt(now)
	narrow.ACRs, narrow.Scope = []string{"c1"}, "openid"

	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantHeader string // "" for none
	}{
		{"ok/step-up-done", func() *http.Request { return bearer(sign(t, k1, "at+jwt", good)) }, 200, ""},
		{"ok/lowercase-scheme", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "bearer "+sign(t, k1, "at+jwt", good))
			return r
		}, 200, ""},
		{"fail/no-token", func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, 401, `Bearer realm="reports"`},
		{"fail/token-in-query", func() *http.Request {
			return httptest.NewRequest("GET", "/?access_token="+sign(t, k1, "at+jwt", good), nil)
		}, 401, `Bearer realm="reports"`},
		{"fail/two-authorization-headers", func() *http.Request {
			r := bearer(sign(t, k1, "at+jwt", good))
			r.Header.Add("Authorization", "Bearer x")
			return r
		}, 401, `Bearer realm="reports"`},
		{"fail/invalid-token", func() *http.Request { return bearer(sign(t, k1, "JWT", good)) }, 401,
			`Bearer realm="reports", error="invalid_token", error_description="the access token is invalid or expired"`},
		{"fail/step-up-needed", func() *http.Request { return bearer(sign(t, k1, "at+jwt", weak)) }, 401,
			`Bearer realm="reports", error="insufficient_user_authentication", error_description="this request needs authentication context c1", acr_values="c1"`},
		{"fail/step-up-needed-cp1", func() *http.Request { return bearer(sign(t, k1, "at+jwt", cp1)) }, 401,
			`Bearer realm="reports", authorization_uri="` + ti.srv.URL + `/oauth2/authorize", error="insufficient_claims", error_description="this request needs authentication context c1", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19"`},
		{"fail/scope", func() *http.Request { return bearer(sign(t, k1, "at+jwt", narrow)) }, 403,
			`Bearer realm="reports", error="insufficient_scope", error_description="the access token lacks scope read", scope="read"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = nil
			w := httptest.NewRecorder()
			api.ServeHTTP(w, tt.req())
			if w.Code != tt.wantStatus || w.Header().Get("WWW-Authenticate") != tt.wantHeader {
				t.Fatalf("status %d, WWW-Authenticate %q\nwant %d, %q", w.Code, w.Header().Get("WWW-Authenticate"), tt.wantStatus, tt.wantHeader)
			}
			if tt.wantStatus == 200 && (seen == nil || !slices.Contains(seen.ACRs, "c1")) {
				t.Fatalf("handler saw claims %+v", seen)
			}
			if tt.wantStatus != 200 && seen != nil {
				t.Fatal("the handler ran for a refused request")
			}
		})
	}
}

func bearer(raw string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	return r
}

func TestChallengeFrom(t *testing.T) {
	t.Parallel()
	resp := func(status int, headers ...string) *http.Response {
		r := &http.Response{StatusCode: status, Header: http.Header{}}
		for _, h := range headers {
			r.Header.Add("WWW-Authenticate", h)
		}
		return r
	}
	tests := []struct {
		name string
		resp *http.Response
		want []string // acr_values; nil when no challenge
	}{
		{"ok/401", resp(401, `Bearer error="insufficient_user_authentication", acr_values="c1 c2"`), []string{"c1", "c2"}},
		{"ok/second-header-line", resp(401, `Basic realm="x"`, `Bearer acr_values="c1"`), []string{"c1"}},
		{"ok/403", resp(403, `Bearer error="insufficient_scope", acr_values="c1"`), []string{"c1"}},
		{"fail/200", resp(200, `Bearer acr_values="c1"`), nil},
		{"fail/no-header", resp(401), nil},
		{"fail/basic-only", resp(401, `Basic realm="x"`), nil},
		{"fail/nil", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, ok := stepup.ChallengeFrom(tt.resp)
			if ok != (tt.want != nil) || !slices.Equal(c.ACRValues, tt.want) {
				t.Fatalf("ChallengeFrom = %+v, %v; want acr_values %v", c, ok, tt.want)
			}
		})
	}
}
