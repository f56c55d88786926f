package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/users"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/pkg/stepup"
)

// Gateway test clients and routes.
const (
	bankClientID = "bank"
	bankSecret   = "bank-secret-bank-secret-bank-secret-0123"
	bankRedirect = "http://127.0.0.1:9/bank/callback"
)

// upstreamLog records what the protected application received.
type upstreamLog struct {
	mu   sync.Mutex
	reqs []seen
	// conns counts the connections the upstream accepted, where the
	// upstream counts them (recordingUpstream).
	conns atomic.Int64
}

type seen struct {
	Method, Path, Body, User, Groups, Assertion, Acr string
	// Underscored names the headers with '_' that CGI-style servers
	// (Rack, uWSGI, older Gunicorn) read as X-Stepgate-* headers.
	Underscored string
}

func (u *upstreamLog) all() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func (u *upstreamLog) count(method, path string) int {
	n := 0
	for _, s := range u.all() {
		if s.Method == method && s.Path == path {
			n++
		}
	}
	return n
}

// gatewayRig is a Stepgate whose gateway protects a recording upstream at
// http://bank.localhost:PORT (the same listener as Stepgate itself).
type gatewayRig struct {
	*oidcServer
	app      string // http://bank.localhost:PORT
	upstream *upstreamLog
	upURL    string // where the gateway reaches the recording upstream
}

func startGateway(t *testing.T, mutate ...func(*config.Config)) *gatewayRig {
	t.Helper()
	return startGatewayOver(t, nil, mutate...)
}

// startGatewayOver is startGateway over a wrapped store.
func startGatewayOver(t *testing.T, wrap storeWrap, mutate ...func(*config.Config)) *gatewayRig {
	t.Helper()
	log := &upstreamLog{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		log.mu.Lock()
		log.reqs = append(log.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(), Body: string(b),
			User: r.Header.Get("X-Stepgate-User"), Groups: r.Header.Get("X-Stepgate-Groups"), Assertion: r.Header.Get("X-Stepgate-Assertion"), Acr: r.Header.Get("X-Stepgate-Acr")})
		log.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "upstream: "+r.Method+" "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	g := &gatewayRig{upstream: log, upURL: up.URL}
	g.oidcServer = startOIDCOver(t, wrap, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		g.app = "http://bank.localhost:" + port
		cfg.OIDC.Clients = append(cfg.OIDC.Clients, config.OIDCClient{ID: bankClientID, Secret: bankSecret, RedirectURIs: []string{bankRedirect}})
		cfg.Gateway.Routes = []config.GatewayRoute{{
			Name: "bank", From: g.app, To: up.URL,
			Rules: []config.GatewayRule{
				{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
				{Path: "/admin/*", Context: "c1", Elevation: "single-use"},
				{Path: "/statements", MaxAge: config.Duration(2 * time.Second)},
				{Path: "/public/*", Allow: "anonymous"},
			},
		}}
		for _, m := range mutate {
			m(cfg)
		}
	})
	return g
}

// gatewayBrowser is a cookie-keeping client that reaches every host name
// on this machine's loopback listener, as a browser resolving
// *.localhost does, and does not follow redirects.
func gatewayBrowser(t *testing.T, s *server) *http.Client {
	t.Helper()
	addr := strings.TrimPrefix(s.base, "http://")
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}},
	}
}

// walk follows redirects from u, signing in or stepping up (answer
// decides how) when Stepgate asks, until a page that is not a redirect.
func (g *gatewayRig) walk(t *testing.T, c *http.Client, resp *http.Response, answer func(loc *url.URL) *http.Response) (*http.Response, string) {
	t.Helper()
	for range 12 {
		if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, string(b)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(loc.String(), g.base+"/login"):
			resp = g.signIn(t, c, loc.Query().Get("return_to"))
			continue
		case strings.HasPrefix(loc.String(), g.base+"/stepup"):
			resp = answer(loc)
			continue
		}
		r, err := c.Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		resp = r
	}
	t.Fatal("no page after 12 redirects")
	return nil, ""
}

func mustDo(t *testing.T, c *http.Client, method, u, body string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestGatewayBrowserStepUp: sign in through the gateway, submit a
// transfer that needs MFA, step up with TOTP, and the upstream receives
// the original POST body exactly once; identity headers cannot be
// spoofed and are signed.
func TestGatewayBrowserStepUp(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }

	// 1. Sign in through the gateway; a spoofed identity header is replaced.
	resp, body := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", "", "X-Stepgate-User", "mallory", "X-Stepgate-Groups", "admins"), noStepUp)
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /accounts" {
		t.Fatalf("first visit: %d %q", resp.StatusCode, body)
	}
	last := g.upstream.all()[len(g.upstream.all())-1]
	if last.User != testUser || last.Groups != "" {
		t.Fatalf("upstream saw X-Stepgate-User %q and -Groups %q, want %q and none (a client's own headers must never pass)", last.User, last.Groups, testUser)
	}
	g.checkAssertion(t, last)

	// 2. Enroll an authenticator app (on Stepgate's host, same browser).
	secret := g.enrollTOTP(t, b)

	// 3. POST a transfer: c2 needs MFA; the form survives the step-up.
	const form = "amount=100&to=DE89370400440532013000"
	steps := 0
	resp, body = g.walk(t, b, mustDo(t, b, "POST", g.app+"/transfers", form), func(loc *url.URL) *http.Response {
		steps++
		if loc.Query().Get("methods") != "totp" {
			t.Errorf("step-up offers %q, want totp", loc.Query().Get("methods"))
		}
		_, page := get(t, b, loc.String())
		csrf, cer := formOf(t, page)
		r, _ := post(t, b, g.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
			"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {loc.Query().Get("return_to")}})
		return r
	})
	if resp.StatusCode != http.StatusOK || body != "upstream: POST /transfers" || steps != 1 {
		t.Fatalf("transfer after step-up: %d %q (%d step-ups)", resp.StatusCode, body, steps)
	}
	var transfers []seen
	for _, s := range g.upstream.all() {
		if s.Path == "/transfers" {
			transfers = append(transfers, s)
		}
	}
	if len(transfers) != 1 || transfers[0].Body != form || transfers[0].Method != "POST" {
		t.Fatalf("upstream received %+v, want the original POST body exactly once", transfers)
	}

	// 4. Anonymous paths need nothing; nobody's identity is sent.
	anon := gatewayBrowser(t, g.server)
	resp = mustDo(t, anon, "GET", g.app+"/public/rates", "", "X-Stepgate-User", "alice")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || g.upstream.all()[len(g.upstream.all())-1].User != "" {
		t.Fatalf("anonymous path: %d, user header %q", resp.StatusCode, g.upstream.all()[len(g.upstream.all())-1].User)
	}
}

// checkAssertion verifies the X-Stepgate-Assertion the upstream saw
// with the SDK, for the request it came with.
func (g *gatewayRig) checkAssertion(t *testing.T, last seen) {
	t.Helper()
	v, err := stepup.NewAssertionVerifier(g.base, stepup.WithAudience(g.upURL), stepup.WithOrigin(g.upURL))
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(g.upURL + last.Path)
	a, err := v.Verify(context.Background(), last.Assertion, last.Method, target)
	if err != nil || a.Username != testUser {
		t.Fatalf("assertion %q for %s %s: %+v, %v", last.Assertion, last.Method, target, a, err)
	}
}

// TestGatewaySingleUseElevation: a fresh proof for /admin authorizes the
// one request that asked for it, not the next.
func TestGatewaySingleUseElevation(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server)
	steps := 0
	password := func(loc *url.URL) *http.Response {
		steps++
		return g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
	}
	resp, body := g.walk(t, b, mustDo(t, b, "GET", g.app+"/admin/users", ""), password)
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /admin/users" || steps != 1 {
		t.Fatalf("first admin request: %d %q after %d step-ups", resp.StatusCode, body, steps)
	}
	// The same session, a second request: a new proof is needed.
	resp = mustDo(t, b, "GET", g.app+"/admin/users", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "stepup=") {
		t.Fatalf("second admin request: %d %s, want a new step-up", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := g.upstream.count("GET", "/admin/users"); n != 1 {
		t.Fatalf("upstream served /admin/users %d times, want once", n)
	}
	// Path tricks reach neither the admin pages nor around the rule.
	for _, p := range []string{"/admin/../admin/users", "//admin/users", "/admin%2fusers", "/%2e%2e/admin/users", "/admin/%252e%252e/x"} {
		resp := mustDo(t, b, "GET", g.app+p, "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("fail/path %s: status %d, want 400", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"/%61dmin/users", "/ADMIN/users", "/Admin"} {
		resp := mustDo(t, b, "GET", g.app+p, "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "stepup=") {
			t.Errorf("fail/path %s: status %d %s, want the admin rule's step-up", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if n := g.upstream.count("GET", "/admin/users"); n != 1 {
		t.Fatalf("a path trick reached the admin pages: served %d times", n)
	}
	// The return address cannot leave the application's host.
	for _, target := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example"} {
		resp := mustDo(t, b, "GET", g.base+"/gateway/start?"+url.Values{"route": {"bank"}, "target": {target}}.Encode(), "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("fail/open redirect via target %q: status %d %s", target, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// TestGatewayAPIChallenges: bearer tokens without the context get RFC
// 9470's challenge, which the client follows to a token that passes; a
// token for another app and a stale sign-in are refused.
func TestGatewayAPIChallenges(t *testing.T) {
	g := startGateway(t)
	api := gatewayBrowser(t, g.server)
	b := browser(t)
	secret := func() string { g.signIn(t, b, "/account"); return g.enrollTOTP(t, b) }()

	// token runs the code flow for client with extra authorize parameters,
	// answering a step-up with the next TOTP code.
	token := func(client, secretVal, redirect string, extra url.Values) string {
		t.Helper()
		verifier, challenge := pkce()
		q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			q[k] = v
		}
		resp, _ := get(t, b, g.base+"/oauth2/authorize?"+q.Encode())
		for range 8 {
			loc, _ := resp.Location()
			if loc == nil {
				t.Fatalf("authorize stopped with %d", resp.StatusCode)
			}
			if loc.Query().Get("code") != "" || loc.Query().Get("error") != "" {
				if loc.Query().Get("error") != "" {
					t.Fatalf("authorize: %s", loc.Query().Get("error_description"))
				}
				st, tok := g.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
					"redirect_uri": {redirect}, "code_verifier": {verifier}}, client, secretVal)
				if st != http.StatusOK {
					t.Fatalf("token: %d %s", st, tok.ErrorDescription)
				}
				return tok.AccessToken
			}
			if loc.Path == "/stepup" && !strings.Contains(loc.Query().Get("methods"), "totp") {
				resp = g.stepUp(t, b, loc.Query().Get("return_to"), testPassword) // a fresh sign-in
				continue
			}
			if loc.Path == "/stepup" {
				_, page := get(t, b, g.base+loc.RequestURI()+"&method=totp")
				csrf, cer := formOf(t, page)
				resp, _ = post(t, b, g.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
					"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {loc.Query().Get("return_to")}})
				continue
			}
			resp, _ = get(t, b, g.base+loc.RequestURI())
		}
		t.Fatal("authorize did not finish")
		return ""
	}
	call := func(tok string) *http.Response {
		resp := mustDo(t, api, "POST", g.app+"/transfers", "amount=5", "Authorization", "Bearer "+tok)
		resp.Body.Close()
		return resp
	}

	plain := token(bankClientID, bankSecret, bankRedirect, nil)
	resp := call(plain)
	ch, err := stepup.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || err != nil || ch.Error != stepup.ErrInsufficientUserAuthentication || strings.Join(ch.ACRValues, " ") != "c2" {
		t.Fatalf("a token without c2: %d %q (%v)", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), err)
	}
	// The client follows the challenge and retries with the new token.
	stepped := token(bankClientID, bankSecret, bankRedirect, ch.AuthorizeParams())
	if resp := call(stepped); resp.StatusCode != http.StatusOK {
		t.Fatalf("after following the challenge: %d", resp.StatusCode)
	}
	// Both decisions are in the sign-in log: the challenge, then the allow.
	if e := g.gatewayEntries(t); len(e) != 2 ||
		e[0].Decision != "challenge" || e[0].Reason != "token-lacks-auth-context" || !slices.Equal(e[0].Contexts, []string{"c2"}) ||
		e[0].UserID != g.user.ID || e[0].IP != "127.0.0.1" || e[1].Decision != "allow" || !slices.Equal(e[1].Contexts, []string{"c2"}) {
		t.Fatalf("gateway entries for the two API calls: %+v, want a challenge for c2, then an allow", e)
	}

	// A client that declares the cp1 capability gets Entra's claims
	// challenge instead, and follows it with the claims parameter.
	cp1 := token(bankClientID, bankSecret, bankRedirect, url.Values{"claims": {`{"access_token":{"xms_cc":{"values":["cp1"]}}}`}})
	resp = call(cp1)
	ch, err = stepup.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || err != nil || ch.Error != stepup.ErrInsufficientClaims ||
		!strings.Contains(ch.Claims, `"acrs"`) || ch.AuthorizationURI != g.base+"/oauth2/authorize" {
		t.Fatalf("a cp1 token without c2: %d %q (%v)", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), err)
	}
	if resp := call(token(bankClientID, bankSecret, bankRedirect, ch.AuthorizeParams())); resp.StatusCode != http.StatusOK {
		t.Fatalf("after following the claims challenge: %d", resp.StatusCode)
	}

	// A valid token for another app is not a token for this one.
	other := token(rpClientID, rpSecret, rpRedirect, url.Values{"acr_values": {"c2"}})
	resp = call(other)
	if ch, _ := stepup.ParseChallenge(resp.Header.Get("WWW-Authenticate")); resp.StatusCode != http.StatusUnauthorized || ch.Error != stepup.ErrInvalidToken {
		t.Fatalf("a token for another audience: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A forged token is refused too.
	if resp := call("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("alg none token: %d", resp.StatusCode)
	}
	// /statements needs a sign-in at most two seconds old: a token whose
	// auth_time is older is refused with max_age in the challenge.
	fresh := token(bankClientID, bankSecret, bankRedirect, url.Values{"max_age": {"0"}})
	resp = mustDo(t, api, "GET", g.app+"/statements", "", "Authorization", "Bearer "+fresh)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a fresh token on /statements: %d", resp.StatusCode)
	}
	time.Sleep(3 * time.Second)
	resp = mustDo(t, api, "GET", g.app+"/statements", "", "Authorization", "Bearer "+fresh)
	resp.Body.Close()
	ch, _ = stepup.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || !ch.HasMaxAge || ch.MaxAge != 2*time.Second {
		t.Fatalf("a stale auth_time on /statements: %d %q, want 401 with max_age=2", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestGatewaySignOut: the gateway reuses identity lookups for a couple
// of seconds; signing out of Stepgate must still end access through the
// gateway within that bound, never later.
func TestGatewaySignOut(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, body := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed-in visit: %d %q", resp.StatusCode, body)
	}
	tok := csrfToken(t, b, g.base)
	if resp, _ := post(t, b, g.base+"/logout", url.Values{"csrf_token": {tok}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /logout = %d", resp.StatusCode)
	}
	signedOut := time.Now()
	for {
		resp := mustDo(t, b, "GET", g.app+"/accounts", "")
		resp.Body.Close()
		if resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "/gateway/start") {
			return
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after sign-out: %d %s, want 200 (still cached) or a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
		}
		if time.Since(signedOut) > 3*time.Second { // the gateway's identityTTL is 2s
			t.Fatal("the gateway still lets the browser through 3s after signing out")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestGatewayRefusesCrossSiteKeep: a form another site makes the browser
// post is not kept for replay after sign-in (that would carry it out
// with the user's identity); a same-origin one is.
func TestGatewayRefusesCrossSiteKeep(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server) // no gateway session yet
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"},
		{"Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost"},
		{"Origin", "https://evil.example"},
	} {
		resp := mustDo(t, b, "POST", g.app+"/transfers", "amount=1000000&to=attacker", hdr...)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("fail/cross-site POST %v: status %d %s, want 403", hdr, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp := mustDo(t, b, "POST", g.app+"/transfers", "amount=1", "Sec-Fetch-Site", "same-origin", "Origin", g.app)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "kept=") {
		t.Fatalf("ok/same-origin POST: %d %s, want it kept for after sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestGatewayHandOffIsBoundToTheBrowser: a hand-off started in one
// browser cannot be completed in another. An attacker cannot sign a
// victim in to the application as the attacker (login CSRF), nor have
// the victim's sign-in carry out a form the attacker kept (forged
// transfer).
func TestGatewayHandOffIsBoundToTheBrowser(t *testing.T) {
	g := startGateway(t)
	if _, err := g.server.app.Users.Add(context.Background(), users.NewUser{Username: "mallory", Email: "m@example.com", Password: "mallory's own passphrase"}); err != nil {
		t.Fatal(err)
	}
	attacker, victim := gatewayBrowser(t, g.server), gatewayBrowser(t, g.server)
	g.signIn(t, victim, "/account") // the victim is signed in to Stepgate

	// 1. Login CSRF: the attacker gets a ticket for their own session and
	// sends the victim the callback link.
	resp := mustDo(t, attacker, "GET", g.app+"/accounts", "")
	resp.Body.Close()
	start := resp.Header.Get("Location")
	resp = mustDo(t, attacker, "GET", start, "")
	resp.Body.Close()
	loginURL, _ := resp.Location()
	tok := csrfToken(t, attacker, g.base)
	resp, _ = post(t, attacker, g.base+"/login", url.Values{"csrf_token": {tok}, "username": {"mallory"},
		"password": {"mallory's own passphrase"}, "return_to": {loginURL.Query().Get("return_to")}})
	resp = mustDo(t, attacker, "GET", g.base+resp.Header.Get("Location"), "")
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if !strings.Contains(callback, "/.stepgate/callback?") {
		t.Fatalf("no callback link: %d %s", resp.StatusCode, callback)
	}
	resp = mustDo(t, victim, "GET", callback, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("fail/login-csrf: the victim's browser completed the attacker's hand-off: %d", resp.StatusCode)
	}
	appURL, _ := url.Parse(g.app)
	for _, c := range victim.Jar.Cookies(appURL) {
		if c.Name == "stepgate_gw" {
			t.Fatal("fail/login-csrf: the victim got a gateway cookie for the attacker's session")
		}
	}

	// 2. Forged transfer: the attacker keeps a form (a script, no Origin)
	// and sends the victim the start link that would replay it.
	resp = mustDo(t, attacker, "POST", g.app+"/transfers", "amount=9999&to=mallory")
	resp.Body.Close()
	start = resp.Header.Get("Location")
	if !strings.Contains(start, "kept=") {
		t.Fatalf("no kept request: %d %s", resp.StatusCode, start)
	}
	resp = mustDo(t, victim, "GET", start, "")
	resp.Body.Close()
	cb := resp.Header.Get("Location")
	resp = mustDo(t, victim, "GET", cb, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("fail/forged-transfer: the victim's hand-off replayed the attacker's form: %d", resp.StatusCode)
	}
	if n := g.upstream.count("POST", "/transfers"); n != 0 {
		t.Fatalf("the upstream received %d forged transfers", n)
	}
}
