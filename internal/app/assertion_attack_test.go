package app_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/demo"
	"github.com/stepgate/stepgate/pkg/stepup"
)

// bankRig is the demo bank behind the gateway, reachable on its own port
// too, as an attacker on the network would reach it; and a second route,
// payroll, whose upstream only records what it gets.
type bankRig struct {
	*gatewayRig
	bankURL string // the bank's own port: http://127.0.0.1:PORT
	payroll string // http://payroll.localhost:PORT, through the gateway
	// offset moves the bank's clock ahead of the real one.
	offset atomic.Int64

	mu sync.Mutex // guards seen
	// seen are the assertions that reached the bank and payroll, by
	// "METHOD path" and by route.
	seen map[string]string
}

func (b *bankRig) record(key, assertion string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if assertion != "" {
		b.seen[key] = assertion
	}
}

func (b *bankRig) assertion(t *testing.T, key string) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.seen[key]
	if a == "" {
		t.Fatalf("no assertion reached %s", key)
	}
	return a
}

func startBankRig(t *testing.T) *bankRig {
	t.Helper()
	bankLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rig := &bankRig{bankURL: "http://" + bankLn.Addr().String(), seen: map[string]string{}}
	payroll := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.record("payroll "+r.Method+" "+r.URL.Path, r.Header.Get(stepup.AssertionHeader))
		_, _ = w.Write([]byte("payroll"))
	}))
	t.Cleanup(payroll.Close)
	rig.gatewayRig = startGateway(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		rig.payroll = "http://payroll.localhost:" + port
		cfg.Gateway.Routes[0].To = rig.bankURL
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{Name: "payroll", From: rig.payroll, To: payroll.URL})
		for i := range cfg.OIDC.Clients {
			if cfg.OIDC.Clients[i].ID == bankClientID {
				// As in the demo: the bank's client may get tokens of its own.
				cfg.OIDC.Clients[i].GrantTypes = []string{"authorization_code", "client_credentials"}
			}
		}
	})
	bank, err := demo.NewBank(demo.BankOptions{
		Issuer: rig.base, JWKSURL: rig.base + "/oauth2/jwks", Upstream: rig.bankURL, PublicURL: rig.app,
		Now: func() time.Time { return time.Now().Add(time.Duration(rig.offset.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.record("bank "+r.Method+" "+r.URL.Path, r.Header.Get(stepup.AssertionHeader))
		bank.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(bankLn) }()
	t.Cleanup(func() { _ = srv.Close() })
	return rig
}

// direct sends a request straight to the bank's own port, going around
// the gateway, with token as the assertion.
func (b *bankRig) direct(t *testing.T, method, path, form, token string) (int, string) {
	t.Helper()
	resp := mustDo(t, http.DefaultClient, method, b.bankURL+path, form, stepup.AssertionHeader, token)
	body := readAll(t, resp)
	return resp.StatusCode, body
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

// TestAssertionReplayAroundTheGateway performs, against the demo bank's
// own port, every way of reusing what the gateway or Stepgate handed
// out: alice's assertion for GET / replayed on POST /transfers and on
// other paths, an access token and an ID token in its place, an expired
// assertion, and another route's assertion. The bank refuses each.
func TestAssertionReplayAroundTheGateway(t *testing.T) {
	rig := startBankRig(t)
	b := gatewayBrowser(t, rig.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }

	// alice, password only, reads her accounts through the gateway: the
	// bank verifies the real assertion.
	resp, body := rig.walk(t, b, mustDo(t, b, "GET", rig.app+"/", ""), noStepUp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<dd id="user">alice`) {
		t.Fatalf("GET / through the gateway: %d\n%s", resp.StatusCode, body)
	}
	aliceGET := rig.assertion(t, "bank GET /")
	// The same browser on the payroll route: that route's assertion.
	resp, _ = rig.walk(t, b, mustDo(t, b, "GET", rig.payroll+"/transfers", ""), noStepUp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("payroll through the gateway: %d", resp.StatusCode)
	}
	payrollTransfers := rig.assertion(t, "payroll GET /transfers")
	payrollRoot := payrollTransfers
	resp, _ = rig.walk(t, b, mustDo(t, b, "GET", rig.payroll+"/", ""), noStepUp)
	if resp.StatusCode == http.StatusOK {
		payrollRoot = rig.assertion(t, "payroll GET /")
	}

	// Tokens of every other kind Stepgate signs with the same keys.
	status, cc := rig.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}}, bankClientID, bankSecret)
	if status != http.StatusOK {
		t.Fatalf("client_credentials of the bank client: %d %s", status, cc.Error)
	}
	tokens := rig.mustExchange(t, rig.code(t, browser(t), nil), "")

	const transfer = "amount=4242.00&to=DE89370400440532013000"
	for _, tc := range []struct {
		name, method, path, form, token string
		want                            int
	}{
		{"ok/the-same-request-within-its-life", "GET", "/", "", aliceGET, http.StatusOK},
		{"fail/get-assertion-replayed-on-post-transfers", "POST", "/transfers", transfer, aliceGET, http.StatusUnauthorized},
		{"fail/get-assertion-on-another-path", "GET", "/customers/", "", aliceGET, http.StatusUnauthorized},
		{"fail/get-assertion-on-admin", "GET", "/admin/", "", aliceGET, http.StatusUnauthorized},
		{"fail/get-assertion-as-head", "HEAD", "/", "", aliceGET, http.StatusUnauthorized},
		{"fail/client-credentials-access-token", "GET", "/", "", cc.AccessToken, http.StatusUnauthorized},
		{"fail/client-credentials-access-token-on-transfers", "POST", "/transfers", transfer, cc.AccessToken, http.StatusUnauthorized},
		{"fail/user-access-token", "GET", "/", "", tokens.AccessToken, http.StatusUnauthorized},
		{"fail/id-token", "GET", "/", "", tokens.IDToken, http.StatusUnauthorized},
		{"fail/another-routes-assertion-same-path", "GET", "/transfers", "", payrollTransfers, http.StatusUnauthorized},
		{"fail/another-routes-assertion", "GET", "/", "", payrollRoot, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rig.direct(t, tc.method, tc.path, tc.form, tc.token)
			if status != tc.want {
				t.Fatalf("%s %s on the bank's own port: %d, want %d\n%s", tc.method, tc.path, status, tc.want, body)
			}
			if tc.want != http.StatusOK && strings.Contains(body, "Transfer done") {
				t.Fatalf("the transfer was carried out:\n%s", body)
			}
		})
	}

	t.Run("fail/transfer-assertion-replayed-with-another-body", func(t *testing.T) {
		// alice steps up with her authenticator app and transfers through
		// the gateway; someone who saw that request on the network sends
		// it again, to the bank's own port, with their own IBAN.
		secret := rig.enrollTOTP(t, b)
		_, page := rig.walk(t, b, mustDo(t, b, "GET", rig.app+"/transfers/new", ""), noStepUp)
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no transfer form:\n%s", page)
		}
		form := url.Values{"csrf": {m[1]}, "amount": {"10.00"}, "to": {"DE89370400440532013000"}}
		resp, body := rig.walk(t, b, mustDo(t, b, "POST", rig.app+"/transfers", form.Encode()), func(loc *url.URL) *http.Response {
			_, page := get(t, b, loc.String())
			csrf, cer := formOf(t, page)
			r, _ := post(t, b, rig.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
				"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {loc.Query().Get("return_to")}})
			return r
		})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Transfer done") {
			t.Fatalf("alice's transfer through the gateway: %d\n%s", resp.StatusCode, body)
		}
		transfer := rig.assertion(t, "bank POST /transfers")
		form.Set("to", "GB33BUKB20201555555555")
		form.Set("amount", "4242.00")
		status, body := rig.direct(t, "POST", "/transfers", form.Encode(), transfer)
		if status != http.StatusUnauthorized || strings.Contains(body, "Transfer done") {
			t.Fatalf("the transfer's assertion replayed with another body: %d\n%s", status, body)
		}
	})

	t.Run("fail/expired-assertion", func(t *testing.T) {
		rig.offset.Store(int64(31*time.Second + stepup.DefaultAssertionLeeway + time.Second))
		defer rig.offset.Store(0)
		if status, body := rig.direct(t, "GET", "/", "", aliceGET); status != http.StatusUnauthorized {
			t.Fatalf("alice's assertion after its 30 s: %d\n%s", status, body)
		}
	})
}

// TestAssertionClaims: the assertion the gateway sends names its own
// typ, the upstream's origin as audience, the request it authorizes and
// a 30-second life; ID and access tokens carry their own typ.
func TestAssertionClaims(t *testing.T) {
	rig := startBankRig(t)
	b := gatewayBrowser(t, rig.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	resp, _ := rig.walk(t, b, mustDo(t, b, "GET", rig.app+"/?q=1", ""), noStepUp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	typ, c := unverifiedClaims(t, rig.assertion(t, "bank GET /"))
	if typ != stepup.AssertionType {
		t.Errorf("assertion typ %q, want %s", typ, stepup.AssertionType)
	}
	var aud []string
	switch v := c["aud"].(type) {
	case string:
		aud = []string{v}
	case []any:
		for _, a := range v {
			s, _ := a.(string)
			aud = append(aud, s)
		}
	}
	if !slices.Equal(aud, []string{rig.bankURL}) || c["htm"] != "GET" || c["htu"] != rig.bankURL+"/" {
		t.Errorf("aud %v htm %v htu %v, want [%s] GET %s/", aud, c["htm"], c["htu"], rig.bankURL, rig.bankURL)
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if exp-iat != 30 {
		t.Errorf("assertion lives %vs, want 30", exp-iat)
	}
	tokens := rig.mustExchange(t, rig.code(t, browser(t), nil), "")
	if typ, _ := unverifiedClaims(t, tokens.IDToken); typ != "JWT" {
		t.Errorf("ID token typ %q, want JWT", typ)
	}
	if typ, _ := unverifiedClaims(t, tokens.AccessToken); typ != "at+jwt" {
		t.Errorf("access token typ %q, want at+jwt", typ)
	}
}

// unverifiedClaims reads a JWS's typ and claims without checking it.
func unverifiedClaims(t *testing.T, raw string) (string, map[string]any) {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		t.Fatalf("%q is not a signed JWT: %v", raw, err)
	}
	var c map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	typ, _ := tok.Headers[0].ExtraHeaders[jose.HeaderType].(string)
	return typ, c
}

// TestAssertionForReadsAndWrites: for reads and for writes, with an
// upstream URL that has a base path and a query, each request's
// assertion authorizes exactly the
// request the upstream received, and never another — the assertion
// cache hands no request another's.
func TestAssertionForReadsAndWrites(t *testing.T) {
	g, b, addr := startEchoGateway(t, http.HandlerFunc(echoHandler), nil)
	origin := "http://" + addr
	v, err := stepup.NewAssertionVerifier(g.base, stepup.WithAudience(origin), stepup.WithOrigin(origin))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{} // assertion -> "METHOD target" it came with
	for range 2 {               // twice: the second round is served from the cache
		for _, method := range []string{"GET", "POST", "PUT", "DELETE"} {
			for _, path := range []string{"/accounts", "/accounts/", "/a%20b/c", "/transfers"} {
				resp := mustDo(t, b, method, g.app+path+"?x=1", "")
				var e echoed
				if err := jsonUnmarshal(readAll(t, resp), &e); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, err)
				}
				raw := e.Header.Get(stepup.AssertionHeader)
				target, _ := url.Parse(origin + e.Target)
				if _, err := v.Verify(t.Context(), raw, e.Method, target); err != nil {
					t.Fatalf("%s %s (upstream got %s %s): %v", method, path, e.Method, e.Target, err)
				}
				req := e.Method + " " + target.EscapedPath()
				if prev, ok := seen[raw]; ok && prev != req {
					t.Fatalf("one assertion for %s and %s", prev, req)
				}
				seen[raw] = req
				other, _ := url.Parse(origin + "/base/elsewhere")
				if _, err := v.Verify(t.Context(), raw, e.Method, other); err == nil {
					t.Fatalf("%s %s: the assertion also authorizes %s", method, path, other)
				}
			}
		}
	}
}

// BenchmarkGatewaySessionUniquePaths: as BenchmarkGatewaySession, but
// every request asks for a path not asked before, so no assertion can
// come from the cache: the cost of signing one per request, the worst
// case of binding assertions to the request.
func BenchmarkGatewaySessionUniquePaths(b *testing.B) {
	g := newGatewayBench(b)
	b.ReportAllocs()
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "http://"+g.bank+"/p/"+strconv.FormatInt(n.Add(1), 10), nil)
			req.Header.Set("Cookie", g.cookie)
			rec := httptest.NewRecorder()
			g.h.ServeHTTP(rec, req)
			if !upstreamSawUser(rec) {
				b.Errorf("status %d, body %q", rec.Code, rec.Body)
				return
			}
		}
	})
}

// TestForwardAuthAssertionNamesTheOriginalRequest: through forward-auth,
// the assertion authorizes the request the proxy in front received —
// its method and public URL — for the route's public origin, and a
// request that changes something is authorized once.
func TestForwardAuthAssertionNamesTheOriginalRequest(t *testing.T) {
	var public string
	g := startGateway(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		public = "http://wiki.localhost:" + port
		// Served only through forward-auth; the bank client's tokens are
		// for its app.
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{Name: "wiki", From: public, App: bankClientID})
		for i := range cfg.OIDC.Clients {
			if cfg.OIDC.Clients[i].ID == bankClientID {
				cfg.OIDC.Clients[i].GrantTypes = []string{"authorization_code", "client_credentials"}
			}
		}
	})
	status, cc := g.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}}, bankClientID, bankSecret)
	if status != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", status, cc.Error)
	}
	resp := mustDo(t, http.DefaultClient, "GET", g.base+"/gateway/forward-auth", "",
		"X-Forwarded-Method", "DELETE", "X-Forwarded-Proto", "http", "X-Forwarded-Host", strings.TrimPrefix(public, "http://"),
		"X-Forwarded-Uri", "/pages/7?x=1", "Authorization", "Bearer "+cc.AccessToken)
	resp.Body.Close()
	raw := resp.Header.Get(stepup.AssertionHeader)
	if resp.StatusCode != http.StatusOK || raw == "" {
		t.Fatalf("forward-auth: %d, assertion %q", resp.StatusCode, raw)
	}
	_, c := unverifiedClaims(t, raw)
	if c["htm"] != "DELETE" || c["htu"] != public+"/pages/7" || c["aud"] != public {
		t.Fatalf("htm %v htu %v aud %v, want DELETE %s/pages/7 and %s", c["htm"], c["htu"], c["aud"], public, public)
	}
	v, err := stepup.NewAssertionVerifier(g.base, stepup.WithAudience(public), stepup.WithOrigin(public))
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(public + "/pages/7")
	if _, err := v.Verify(t.Context(), raw, "DELETE", target); err != nil {
		t.Fatalf("the upstream behind the proxy: %v", err)
	}
	if _, err := v.Verify(t.Context(), raw, "DELETE", target); err == nil {
		t.Fatal("the same DELETE assertion was accepted twice")
	}
}
