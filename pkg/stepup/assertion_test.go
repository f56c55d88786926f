package stepup_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/pkg/stepup"
)

// upstreamOrigin is where the gateway reaches the application under test.
const upstreamOrigin = "http://127.0.0.1:9001"

// assertionClaims are what the gateway puts in an assertion.
type assertionClaims struct {
	jwt.Claims
	Method   string   `json:"htm,omitempty"`
	URL      string   `json:"htu,omitempty"`
	Username string   `json:"preferred_username,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	ACRs     []string `json:"acrs,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
}

// assertionAt is alice's assertion for GET / on the upstream, issued at
// now for 30 seconds, as the gateway makes it.
func (ti *testIssuer) assertionAt(now time.Time) assertionClaims {
	return assertionClaims{
		Claims: jwt.Claims{
			Issuer: ti.srv.URL, Subject: "user-1", Audience: jwt.Audience{upstreamOrigin},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(30 * time.Second)),
		},
		Method: "GET", URL: upstreamOrigin + "/", Username: "alice", ACR: "single-factor", AuthTime: now.Unix(),
	}
}

func newAssertionVerifier(t testing.TB, ti *testIssuer, clk *clock, opts ...stepup.Option) *stepup.AssertionVerifier {
	t.Helper()
	opts = append([]stepup.Option{stepup.WithAudience(upstreamOrigin), stepup.WithOrigin(upstreamOrigin), stepup.WithClock(clk.now)}, opts...)
	v, err := stepup.NewAssertionVerifier(ti.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAssertionVerify performs the attacks on an application behind the
// gateway that someone who reaches its own port can try: replaying an
// assertion on another request, and presenting every other kind of
// token Stepgate's keys sign.
func TestAssertionVerify(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.addKey(t, "k2", jose.EdDSA)
	clk := newClock()
	now := clk.now()
	k1, k2 := ti.key(t, "k1"), ti.key(t, "k2")
	with := func(f func(*assertionClaims)) assertionClaims {
		c := ti.assertionAt(now)
		f(&c)
		return c
	}
	at := ti.claimsAt(now)
	at.Audience = jwt.Audience{upstreamOrigin} // even with the upstream's audience
	tests := []struct {
		name, method, path string
		token              func(t *testing.T) string
		want               string // "" for success, else a fragment of the error
	}{
		{"ok/es256", "GET", "/", func(t *testing.T) string { return sign(t, k1, stepup.AssertionType, ti.assertionAt(now)) }, ""},
		{"ok/eddsa", "GET", "/", func(t *testing.T) string { return sign(t, k2, stepup.AssertionType, ti.assertionAt(now)) }, ""},
		{"ok/post-transfers", "POST", "/transfers", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.Method, c.URL, c.ID = "POST", upstreamOrigin+"/transfers", "jti-post" }))
		}, ""},
		{"fail/post-without-jti", "POST", "/transfers", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.Method, c.URL = "POST", upstreamOrigin+"/transfers" }))
		}, "jti"},
		{"ok/escaped-path", "GET", "/a%20b", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.URL = upstreamOrigin + "/a%20b" }))
		}, ""},
		{"ok/within-leeway", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) {
				c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-33*time.Second)), jwt.NewNumericDate(now.Add(-3*time.Second))
			}))
		}, ""},
		// alice's assertion for GET / replayed to carry out a transfer.
		{"fail/replayed-on-another-method", "POST", "/", func(t *testing.T) string { return sign(t, k1, stepup.AssertionType, ti.assertionAt(now)) }, "authorizes"},
		{"fail/replayed-on-post-transfers", "POST", "/transfers", func(t *testing.T) string { return sign(t, k1, stepup.AssertionType, ti.assertionAt(now)) }, "authorizes"},
		{"fail/replayed-on-another-path", "GET", "/admin/", func(t *testing.T) string { return sign(t, k1, stepup.AssertionType, ti.assertionAt(now)) }, "authorizes"},
		{"fail/path-prefix", "GET", "/transfers/x", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.URL = upstreamOrigin + "/transfers" }))
		}, "authorizes"},
		{"fail/encoded-slash", "GET", "/a/b", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.URL = upstreamOrigin + "/a%2Fb" }))
		}, "authorizes"},
		{"fail/lower-case-method", "post", "/transfers", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.Method, c.URL = "POST", upstreamOrigin+"/transfers" }))
		}, "authorizes"},
		{"fail/another-host", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.URL = "http://127.0.0.1:9002/" }))
		}, "authorizes"},
		{"fail/another-scheme", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.URL = "https://127.0.0.1:9001/" }))
		}, "authorizes"},
		{"fail/htu-with-query", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.URL = upstreamOrigin + "/?x=1" }))
		}, "htu"},
		{"fail/no-htm", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.Method = "" }))
		}, "authorizes"},
		{"fail/no-htu", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.URL = "" }))
		}, "htu"},
		// Another route's assertion: made for another upstream.
		{"fail/another-routes-assertion", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.Audience = jwt.Audience{"http://127.0.0.1:9002"} }))
		}, "aud"},
		{"fail/expired", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) {
				c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)), jwt.NewNumericDate(now.Add(-30*time.Second))
			}))
		}, "exp"},
		{"fail/issued-in-the-future", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) {
				c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(time.Minute)), jwt.NewNumericDate(now.Add(90*time.Second))
			}))
		}, "future"},
		{"fail/long-lived", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.Expiry = jwt.NewNumericDate(now.Add(time.Hour)) }))
		}, "lives"},
		{"fail/no-iat", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.IssuedAt = nil }))
		}, "iat"},
		{"fail/another-issuer", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.Issuer = "http://evil.example" }))
		}, "iss"},
		{"fail/nobody", "GET", "/", func(t *testing.T) string {
			return sign(t, k1, stepup.AssertionType, with(func(c *assertionClaims) { c.Username = "" }))
		}, "nobody"},
		// Every other token the same keys sign.
		{"fail/access-token", "GET", "/", func(t *testing.T) string { return sign(t, k1, "at+jwt", at) }, "typ"},
		{"fail/id-token", "GET", "/", func(t *testing.T) string { return sign(t, k1, "JWT", ti.assertionAt(now)) }, "typ"},
		{"fail/no-typ", "GET", "/", func(t *testing.T) string { return sign(t, k1, "", ti.assertionAt(now)) }, "typ"},
		{"fail/unsigned", "GET", "/", func(t *testing.T) string {
			return unsigned(t, map[string]any{"alg": "none", "typ": stepup.AssertionType, "kid": "k1"}, ti.assertionAt(now))
		}, ""},
		{"fail/alg-swapped", "GET", "/", func(t *testing.T) string {
			return sign(t, testKey{kid: "k2", alg: jose.ES256, signer: k1.signer}, stepup.AssertionType, ti.assertionAt(now))
		}, "alg"},
		{"fail/unknown-key", "GET", "/", func(t *testing.T) string {
			return sign(t, newKey(t, "k9", jose.ES256), stepup.AssertionType, ti.assertionAt(now))
		}, "key"},
	}
	v := newAssertionVerifier(t, ti, clk)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://127.0.0.1:9001"+tc.path, nil)
			r.Header.Set(stepup.AssertionHeader, tc.token(t))
			a, err := v.VerifyRequest(r)
			switch {
			case tc.want == "" && strings.HasPrefix(tc.name, "ok/"):
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if a.Username != "alice" || a.Method != tc.method {
					t.Fatalf("assertion %+v", a)
				}
			case err == nil:
				t.Fatalf("accepted: %+v", a)
			case !errors.Is(err, stepup.ErrRejected):
				t.Fatalf("error %v does not wrap ErrRejected", err)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestAssertionSpentOnce: an assertion for a request that changes
// something (POST /transfers) is accepted once, so one seen on the
// network cannot carry out a second transfer with another body; a
// read's is accepted again for the same read; a request refused for
// another reason does not use up the real one's.
func TestAssertionSpentOnce(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newClock()
	v := newAssertionVerifier(t, ti, clk)
	now := clk.now()
	post := ti.assertionAt(now)
	post.Method, post.URL, post.ID = "POST", upstreamOrigin+"/transfers", "jti-transfer"
	rawPost := sign(t, ti.key(t, "k1"), stepup.AssertionType, post)
	get := ti.assertionAt(now)
	get.ID = "jti-read"
	rawGet := sign(t, ti.key(t, "k1"), stepup.AssertionType, get)
	verify := func(raw, method, path string) error {
		_, err := v.Verify(context.Background(), raw, method, mustURL(t, upstreamOrigin+path))
		return err
	}
	if err := verify(rawPost, "POST", "/elsewhere"); err == nil {
		t.Fatal("the POST assertion authorized another path")
	}
	if err := verify(rawPost, "POST", "/transfers"); err != nil {
		t.Fatalf("first use, after a refused attempt: %v", err)
	}
	if err := verify(rawPost, "POST", "/transfers"); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second use: %v, want already used", err)
	}
	for range 3 {
		if err := verify(rawGet, "GET", "/"); err != nil {
			t.Fatalf("a read's assertion for the same read: %v", err)
		}
	}
}

// TestAssertionExpiresWithTheClock: an assertion accepted now is refused
// once its 30 seconds and the leeway have passed.
func TestAssertionExpiresWithTheClock(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newClock()
	v := newAssertionVerifier(t, ti, clk)
	raw := sign(t, ti.key(t, "k1"), stepup.AssertionType, ti.assertionAt(clk.now()))
	check := func() error {
		_, err := v.Verify(context.Background(), raw, "GET", mustURL(t, upstreamOrigin+"/"))
		return err
	}
	if err := check(); err != nil {
		t.Fatalf("fresh: %v", err)
	}
	clk.add(30*time.Second + stepup.DefaultAssertionLeeway + time.Second)
	if err := check(); err == nil || !strings.Contains(err.Error(), "exp") {
		t.Fatalf("after its life: %v, want expired", err)
	}
}

// TestAssertionOrigin: with WithOrigin, the Host header a direct client
// sends is not what htu is compared with; without it, the request's Host
// is.
func TestAssertionOrigin(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newClock()
	raw := sign(t, ti.key(t, "k1"), stepup.AssertionType, ti.assertionAt(clk.now()))
	req := func(host string) *http.Request {
		r := httptest.NewRequest("GET", "http://"+host+"/", nil)
		r.Header.Set(stepup.AssertionHeader, raw)
		return r
	}
	pinned := newAssertionVerifier(t, ti, clk)
	if _, err := pinned.VerifyRequest(req("bank.example")); err != nil {
		t.Fatalf("pinned origin, another Host header: %v", err)
	}
	fromRequest, err := stepup.NewAssertionVerifier(ti.srv.URL, stepup.WithAudience(upstreamOrigin), stepup.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fromRequest.VerifyRequest(req("127.0.0.1:9001")); err != nil {
		t.Fatalf("origin from the request: %v", err)
	}
	if _, err := fromRequest.VerifyRequest(req("127.0.0.1:9002")); err == nil {
		t.Fatal("origin from the request: another host accepted")
	}
	twice := req("127.0.0.1:9001")
	twice.Header.Add(stepup.AssertionHeader, raw)
	if _, err := fromRequest.VerifyRequest(twice); err == nil {
		t.Fatal("two assertion headers accepted")
	}
}

// TestNewAssertionVerifierNeeds: the settings that make it safe are
// required, with errors that say what to pass.
func TestNewAssertionVerifierNeeds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, issuer string
		opts         []stepup.Option
		want         string
	}{
		{"fail/no-audience", "http://id.example", nil, "WithAudience"},
		{"fail/no-issuer", "", []stepup.Option{stepup.WithAudience(upstreamOrigin)}, "issuer"},
		{"fail/origin-with-path", "http://id.example", []stepup.Option{stepup.WithAudience(upstreamOrigin), stepup.WithOrigin("http://a.example/x")}, "origin"},
		{"fail/leeway", "http://id.example", []stepup.Option{stepup.WithAudience(upstreamOrigin), stepup.WithLeeway(time.Hour)}, "leeway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := stepup.NewAssertionVerifier(tc.issuer, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestVerifierRefusesAssertion: the access token verifier refuses an
// assertion, even one whose audience is an accepted client id.
func TestVerifierRefusesAssertion(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newClock()
	v := newVerifier(t, ti, clk)
	c := ti.claimsAt(clk.now())
	if _, err := v.Verify(context.Background(), sign(t, ti.key(t, "k1"), stepup.AssertionType, c)); err == nil || !strings.Contains(err.Error(), "typ") {
		t.Fatalf("assertion accepted as an access token: %v", err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
