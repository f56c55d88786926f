package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// gatewayBench is Stepgate's handler with a route to a real upstream, a
// browser's gateway cookie and an access token of client bank, obtained
// the way a browser and a client obtain them.
type gatewayBench struct {
	h              http.Handler
	issuer, bank   string // hosts
	public         string // the host of a route that asks for no sign-in
	cookie, bearer string
	// fa is the host of a route used through forward-auth only, and
	// faCookie the browser's gateway cookie for it.
	fa, faCookie string
}

func newGatewayBench(b *testing.B) *gatewayBench {
	b.Helper()
	ctx := context.Background()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "user="+r.Header.Get("X-Stepgate-User"))
	}))
	b.Cleanup(up.Close)
	g := &gatewayBench{issuer: "localhost", bank: "bank.localhost", public: "public.localhost", fa: "fa.localhost"}
	cfg := config.Default()
	cfg.Server.DataDir = b.TempDir()
	cfg.Server.Issuer = "http://" + g.issuer
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1}
	cfg.OIDC.Clients = []config.OIDCClient{{ID: bankClientID, Secret: bankSecret, RedirectURIs: []string{bankRedirect}}}
	cfg.Gateway.Routes = []config.GatewayRoute{
		{Name: "bank", From: "http://" + g.bank, To: up.URL},
		{Name: "public", From: "http://" + g.public, To: up.URL, Rules: []config.GatewayRule{{Path: "/*", Allow: "anonymous"}}},
		{Name: "fa", From: "http://" + g.fa},
	}
	// httptest's requests come from 192.0.2.1, which stands in for the
	// proxy that asks for forward-auth decisions;
	// BenchmarkForwardAuthDecision asks over loopback.
	cfg.Gateway.TrustedProxies = []string{"192.0.2.1", "127.0.0.1"}
	if probs := cfg.Validate(); len(probs) > 0 {
		b.Fatal(probs)
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	g.h = a.Handler()
	u, err := a.Users.Add(ctx, users.NewUser{Username: testUser, Password: testPassword})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := a.Sessions.Start(ctx, httptest.NewRequest("GET", "/", nil), u.ID,
		store.AuthEvent{Method: "password", Time: time.Now().UTC(), AMR: []string{"pwd"}}, session.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	sso := a.Sessions.CookieName() + "=" + tok

	g.cookie = g.handOff(b, "http://"+g.bank+"/", sso)
	g.faCookie = g.handOff(b, "http://"+g.fa+"/", sso)

	// The code flow with PKCE for client bank, in the same browser.
	verifier, challenge := pkce()
	next := "http://" + g.issuer + "/oauth2/authorize?" + url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	code := ""
	for range 8 {
		resp := g.do("GET", next, sso, nil)
		loc, err := resp.Location()
		if err != nil {
			b.Fatalf("authorize: status %d", resp.StatusCode)
		}
		if code = loc.Query().Get("code"); code != "" {
			break
		}
		next = "http://" + g.issuer + loc.RequestURI()
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {bankRedirect}, "code_verifier": {verifier}}
	req := httptest.NewRequest("POST", "http://"+g.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth(bankClientID, bankSecret))
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, req)
	var out tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.AccessToken == "" {
		b.Fatalf("token endpoint: %d %s", rec.Code, rec.Body)
	}
	g.bearer = out.AccessToken
	return g
}

// handOff runs the hand-off for the route at u and returns the gateway
// cookie: the route sends the browser to /gateway/start with a binding
// cookie, /gateway/start mints a ticket, and the route's callback (with
// the binding cookie) turns it into the gateway cookie.
func (g *gatewayBench) handOff(b *testing.B, u, sso string) string {
	b.Helper()
	resp := g.do("GET", u, "", nil)
	binding := ""
	for _, c := range resp.Cookies() {
		binding += c.Name + "=" + c.Value + "; "
	}
	resp = g.do("GET", resp.Header.Get("Location"), sso, nil)
	if resp.StatusCode != http.StatusSeeOther {
		body, _ := io.ReadAll(resp.Body)
		b.Fatalf("/gateway/start: status %d: %.300s", resp.StatusCode, body)
	}
	resp = g.do("GET", resp.Header.Get("Location"), strings.TrimSuffix(binding, "; "), nil)
	for _, c := range resp.Cookies() {
		if c.Name == "stepgate_gw" {
			return "stepgate_gw=" + c.Value
		}
	}
	b.Fatalf("no gateway cookie from the callback of %s (status %d)", u, resp.StatusCode)
	return ""
}

func (g *gatewayBench) do(method, u, cookie string, header http.Header) *http.Response {
	req := httptest.NewRequest(method, u, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, req)
	return rec.Result()
}

// run serves req in parallel and checks every answer: a broken path
// cannot post good numbers.
func (g *gatewayBench) run(b *testing.B, u string, header http.Header, ok func(*httptest.ResponseRecorder) bool) {
	b.Helper()
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	defer func() {
		b.StopTimer()
		// CPU time (user and system, the upstream's included) per request:
		// steadier than ns/op, which on loopback mostly measures waiting.
		b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		// One request per goroutine, served again and again: the handler
		// does not modify it, and parsing it is no part of the decision.
		req := httptest.NewRequest("GET", u, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		for pb.Next() {
			rec := httptest.NewRecorder()
			g.h.ServeHTTP(rec, req)
			if !ok(rec) {
				b.Errorf("status %d, body %q, X-Stepgate-User %q", rec.Code, rec.Body, rec.Header().Get("X-Stepgate-User"))
				return
			}
		}
	})
}

func upstreamSawUser(rec *httptest.ResponseRecorder) bool {
	return rec.Code == http.StatusOK && rec.Body.String() == "user="+testUser
}

// BenchmarkGatewaySession: a browser request through the gateway with a
// valid session: cookie to session and user, policy evaluation, identity
// headers and signed assertion, proxied to a loopback upstream.
func BenchmarkGatewaySession(b *testing.B) {
	g := newGatewayBench(b)
	g.run(b, "http://"+g.bank+"/", http.Header{"Cookie": {g.cookie}}, upstreamSawUser)
}

// BenchmarkGatewayNoSignIn: the same request on a route that asks for no
// sign-in, so no decision and no identity: set beside
// BenchmarkGatewaySession, what the decision costs.
func BenchmarkGatewayNoSignIn(b *testing.B) {
	g := newGatewayBench(b)
	g.run(b, "http://"+g.public+"/", nil, func(rec *httptest.ResponseRecorder) bool {
		return rec.Code == http.StatusOK && rec.Body.String() == "user="
	})
}

// BenchmarkGatewayBearer: the same request with client bank's access token.
func BenchmarkGatewayBearer(b *testing.B) {
	g := newGatewayBench(b)
	g.run(b, "http://"+g.bank+"/", http.Header{"Authorization": {"Bearer " + g.bearer}}, upstreamSawUser)
}

// BenchmarkForwardAuth: the decision alone, as Traefik or Caddy ask for
// it, with the identity headers in the answer.
func BenchmarkForwardAuth(b *testing.B) {
	g := newGatewayBench(b)
	g.run(b, "http://"+g.issuer+"/gateway/forward-auth", http.Header{"Cookie": {g.faCookie},
		"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {g.fa}, "X-Forwarded-Uri": {"/"}},
		func(rec *httptest.ResponseRecorder) bool {
			return rec.Code == http.StatusOK && rec.Header().Get("X-Stepgate-User") == testUser && rec.Header().Get("X-Stepgate-Assertion") != ""
		})
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkForwardAuthDecision: the decision alone as nginx's
// auth_request asks for it (/gateway/auth-request with the X-Original-*
// headers of the documented snippet), for a signed-in browser, with the
// identity headers in the answer, over kept-alive loopback connections
// to a real server: the row "forward-auth decision alone".
func BenchmarkForwardAuthDecision(b *testing.B) {
	g := newGatewayBench(b)
	srv := httptest.NewServer(g.h)
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(client.CloseIdleConnections)
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequest("GET", srv.URL+"/gateway/auth-request", nil)
		if err != nil {
			b.Error(err)
			return
		}
		req.Host = g.issuer
		req.Header = http.Header{"Cookie": {g.faCookie}, "X-Original-Method": {"GET"}, "X-Original-Host": {g.fa}, "X-Original-Uri": {"/"}}
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Stepgate-User") != testUser || resp.Header.Get("X-Stepgate-Assertion") == "" {
				b.Errorf("status %d, X-Stepgate-User %q", resp.StatusCode, resp.Header.Get("X-Stepgate-User"))
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	// CPU per request, the client's share included: what the loopback
	// client costs is the same before and after a change.
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
