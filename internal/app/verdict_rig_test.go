package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/geoip/geoiptest"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// verdictRig is a Stepgate served in process (no listener) whose
// gateway protects a recording upstream at bank.localhost through the
// built-in proxy and the same rules at fa.localhost for forward-auth,
// both for app bank, which is also an OIDC client.
type verdictRig struct {
	a        *app.App
	h        http.Handler
	upstream chan http.Header
	// upstreamURL is where the upstream listens (its port varies).
	upstreamURL string
	// clock is the instant the session proofs' ages count back from.
	clock time.Time
}

func startVerdictRig(t *testing.T) *verdictRig {
	t.Helper()
	rig := &verdictRig{upstream: make(chan http.Header, 1), clock: time.Now().UTC().Truncate(time.Second)}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case rig.upstream <- r.Header.Clone():
		default:
		}
		io.WriteString(w, "upstream: "+r.Method+" "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	rig.upstreamURL = up.URL
	cfg := config.Default()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.Issuer = verdictIssuer
	cfg.Server.TrustedProxies = []string{verdictProxyPeer}
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1}
	cfg.WebAuthn.RPID = "localhost"
	cfg.WebAuthn.Origins = []string{verdictIssuer}
	cfg.GeoIP.Database = geoiptest.CountryDB(t, map[string]string{"203.0.113.0/24": "DE", "198.51.100.0/24": "KP"})
	cfg.OIDC.Clients = []config.OIDCClient{{ID: bankClientID, Secret: bankSecret, RedirectURIs: []string{bankRedirect}}}
	rules := []config.GatewayRule{
		{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
		{Path: "/vault/*", Context: "c3"},
		{Path: "/admin/*", Context: "c2", Elevation: "single-use"},
		{Path: "/reports/*", Context: "c4"},
		{Path: "/limits", MaxAge: config.Duration(10 * time.Minute)},
		{Path: "/pii/*", Context: "c1"},
		{Path: "/unknown/*", Context: "c9"},
		{Path: "/public/*", Allow: "anonymous"},
	}
	cfg.Gateway.Routes = []config.GatewayRoute{
		{Name: "bank", From: "http://" + verdictBank, To: up.URL, Rules: rules},
		{Name: "fa", App: "bank", From: "http://" + verdictFA, Rules: rules},
	}
	cfg.Gateway.TrustedProxies = []string{verdictProxyPeer}
	if probs := cfg.Validate(); len(probs) > 0 {
		t.Fatalf("verdict rig config: %v", probs)
	}
	ctx := context.Background()
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	src, err := os.ReadFile(filepath.Join(verdictDir, "policies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, probs := policy.Parse("policies.yaml", src)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if probs := a.Policies.Reload(nil, doc); len(probs) > 0 {
		t.Fatal(probs)
	}
	rig.a, rig.h = a, a.Handler()
	return rig
}

// answer runs case c on adapter; ok is false when the case does not
// ask that adapter.
func (r *verdictRig) answer(t *testing.T, c verdictCase, adapter string) (ans string, ok bool) {
	t.Helper()
	if adapter == "authorize" && c.Authorize == nil || adapter != "authorize" && c.Request == nil {
		return "", false
	}
	u := r.addUser(t, c)
	switch adapter {
	case "proxy-browser":
		return r.proxyBrowser(t, c, u), true
	case "proxy-api":
		return r.proxyAPI(t, c, u), true
	case "forward-auth":
		return r.forwardAuth(t, c, u, "/gateway/forward-auth"), true
	case "auth-request":
		return r.forwardAuth(t, c, u, "/gateway/auth-request"), true
	default:
		return r.authorize(t, c, u), true
	}
}

func (r *verdictRig) addUser(t *testing.T, c verdictCase) store.User {
	t.Helper()
	ctx := context.Background()
	u, err := r.a.Users.Add(ctx, users.NewUser{Username: c.User.Name, Email: c.User.Name + "@example.com", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.User.Groups) > 0 {
		if u, err = r.a.Store.UpdateUser(ctx, u.ID, func(cur store.User) (store.User, error) {
			cur.Groups = c.User.Groups
			return cur, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.User.Methods {
		switch m {
		case "totp":
			if _, _, err := r.a.Methods.TOTP.EnrollNow(ctx, u, "phone"); err != nil {
				t.Fatal(err)
			}
		case "webauthn":
			if _, err := r.a.Store.CreateCredential(ctx, store.Credential{
				ID: rand.Text(), UserID: u.ID, Type: "webauthn", Name: "Passkey", Data: []byte("{}"),
			}); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("user method %q: the cases know totp and webauthn", m)
		}
	}
	return u
}

// ssoSession starts a session of u holding the case's proofs, made at
// their ages before the clock, and puts its cookie in browser b's jar
// (none when the case has no session).
func (r *verdictRig) ssoSession(t *testing.T, c verdictCase, u store.User, b *verdictBrowser) {
	t.Helper()
	if len(c.Session) == 0 {
		return
	}
	ctx := context.Background()
	tok, _, err := r.a.Sessions.Start(ctx, httptest.NewRequest("GET", "/", nil), u.ID, r.event(c.Session[0]), session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	b.setSSO(tok)
	for _, p := range c.Session[1:] {
		r.addProof(t, b, r.event(p))
	}
}

func (r *verdictRig) event(p verdictProof) store.AuthEvent {
	return store.AuthEvent{Method: p.Method, AMR: p.AMR, Time: r.clock.Add(-p.Age), PhishingResistant: p.PhishingResistant, Risk: p.Risk}
}

// addProof adds e to b's SSO session as the step-up page does after a
// verified proof, and keeps the rotated cookie.
func (r *verdictRig) addProof(t *testing.T, b *verdictBrowser, e store.AuthEvent) {
	t.Helper()
	req := httptest.NewRequest("POST", "/stepup", nil)
	req.AddCookie(&http.Cookie{Name: r.a.Sessions.CookieName(), Value: b.sso()})
	tok, _, err := r.a.Sessions.StepUp(context.Background(), req, e)
	if err != nil {
		t.Fatal(err)
	}
	b.setSSO(tok)
}

// verdictBrowser is a browser served in process: a cookie jar over the
// rig's handler, from address peer, not following redirects.
type verdictBrowser struct {
	*http.Client
	rig  *verdictRig
	peer string
	ua   string
}

func (r *verdictRig) browser(ua string) *verdictBrowser {
	jar, _ := cookiejar.New(nil)
	b := &verdictBrowser{rig: r, peer: verdictDefaultIP, ua: ua}
	b.Client = &http.Client{Jar: jar, Transport: b,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

// RoundTrip serves req with the rig's handler.
func (b *verdictBrowser) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	in.RemoteAddr = b.peer + ":40000"
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	if in.Body == nil {
		in.Body = http.NoBody // as a server hands every request
	}
	if in.Header.Get("User-Agent") == "" {
		in.Header.Set("User-Agent", b.ua)
	}
	if in.Header.Get("Accept") == "" {
		in.Header.Set("Accept", "text/html")
	}
	rec := httptest.NewRecorder()
	b.rig.h.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func (b *verdictBrowser) do(t *testing.T, method, target string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (b *verdictBrowser) setSSO(tok string) {
	u, _ := url.Parse(verdictIssuer)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: b.rig.a.Sessions.CookieName(), Value: tok, Path: "/"}})
}

func (b *verdictBrowser) sso() string { return b.cookie(verdictIssuer, b.rig.a.Sessions.CookieName()) }

func (b *verdictBrowser) cookie(origin, name string) string {
	u, _ := url.Parse(origin)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// handOff runs the gateway's hand-off for host from the default
// address, as a browser that signed in earlier did, leaving the
// gateway cookie in the jar.
func (r *verdictRig) handOff(t *testing.T, b *verdictBrowser, host string) {
	t.Helper()
	var resp *http.Response
	if host == verdictFA {
		resp = r.forwardAsk(t, b, "/gateway/forward-auth", "GET", "/", verdictDefaultIP)
		u, _ := url.Parse("http://" + host)
		b.Jar.SetCookies(u, resp.Cookies())
	} else {
		resp = b.do(t, "GET", "http://"+host+"/")
	}
	for range 2 {
		resp.Body.Close()
		resp = b.do(t, "GET", resp.Header.Get("Location"))
	}
	resp.Body.Close()
	if b.cookie("http://"+host, "stepgate_gw") == "" {
		t.Fatalf("hand-off to %s: no gateway cookie (status %d)", host, resp.StatusCode)
	}
}

// answerStepUp follows resp's redirects as the browser, answering each
// step-up page with the next of proofs, made now (the point a re-ask counts from is
// the challenge, just before), until an answer that is no redirect
// within Stepgate or the built-in proxy's host. It returns that answer.
func (r *verdictRig) answerStepUp(t *testing.T, b *verdictBrowser, resp *http.Response, proofs []verdictProof) *http.Response {
	t.Helper()
	for range 10 {
		loc, err := resp.Location()
		if err != nil {
			return resp
		}
		switch {
		case loc.Host == "localhost" && loc.Path == "/stepup":
			resp.Body.Close()
			i := slices.IndexFunc(proofs, func(p verdictProof) bool {
				return slices.Contains(strings.Split(loc.Query().Get("methods"), ","), p.Method)
			})
			if i < 0 {
				return resp // the user has no answer left for what is asked
			}
			e := r.event(proofs[i])
			proofs = slices.Delete(slices.Clone(proofs), i, i+1)
			// The user answers in the next second: a proof is told apart
			// from the challenge by the second it was made in (a token's
			// proof_time counts seconds).
			e.Time = time.Now().UTC().Truncate(time.Second).Add(time.Second)
			r.addProof(t, b, e)
			resp = b.do(t, "GET", verdictIssuer+loc.Query().Get("return_to"))
		case strings.HasPrefix(loc.String(), bankRedirect):
			return resp
		case loc.Host == "" || loc.Host == "localhost" || loc.Host == verdictBank || loc.Path == "/.stepgate/callback":
			if loc.Host == "" {
				loc = resp.Request.URL.ResolveReference(loc)
			}
			resp.Body.Close()
			resp = b.do(t, "GET", loc.String())
		default:
			return resp
		}
	}
	t.Fatal("no answer after 10 redirects")
	return nil
}

func (c verdictCase) ip() string {
	if c.IP != "" {
		return c.IP
	}
	return verdictDefaultIP
}

func (c verdictCase) userAgent() string {
	if c.UserAgent != "" {
		return c.UserAgent
	}
	return verdictDefaultUA
}

// first describes, in one line, the answer the request got the first
// time in a repeated case, after its step-up was answered.
func (r *verdictRig) first(resp *http.Response) string {
	var kept []string
	for _, line := range strings.Split(strings.TrimSuffix(r.describe(resp), "\n"), "\n") {
		for _, p := range []string{"status:", "location:", "www-authenticate:", "x-stepgate-login:", "upstream: served", "header x-stepgate-user:"} {
			if strings.HasPrefix(line, p) {
				kept = append(kept, line)
			}
		}
	}
	return "first: " + strings.Join(kept, "; ") + "\n"
}

// proxyBrowser asks the built-in proxy as a browser holding the
// gateway cookie of a fresh session with the case's proofs.
func (r *verdictRig) proxyBrowser(t *testing.T, c verdictCase, u store.User) string {
	t.Helper()
	b := r.browser(c.userAgent())
	r.ssoSession(t, c, u, b)
	if len(c.Session) > 0 {
		r.handOff(t, b, verdictBank)
	}
	b.peer = c.ip()
	target := "http://" + verdictBank + c.Request.Path
	var out strings.Builder
	if c.Repeat {
		r.drain()
		resp := r.answerStepUp(t, b, b.do(t, c.Request.Method, target), c.answers())
		out.WriteString(r.first(resp))
	}
	r.drain()
	out.WriteString(r.logged(t, u.ID, func() string { return r.describe(b.do(t, c.Request.Method, target)) }))
	return out.String()
}

// proxyAPI asks the built-in proxy as an API client, with an access
// token for app bank from the case's session when authorize gives one
// to a plain code request (made from the default address).
func (r *verdictRig) proxyAPI(t *testing.T, c verdictCase, u store.User) string {
	t.Helper()
	b := r.browser(c.userAgent())
	r.ssoSession(t, c, u, b)
	hdr := []string{"Accept", "application/json"}
	var out strings.Builder
	if len(c.Session) > 0 {
		params := url.Values{}
		for k, v := range c.Token {
			params.Set(k, v)
		}
		tok, failed := r.token(t, b, params, nil)
		if failed != "" {
			fmt.Fprintf(&out, "no token: authorize answered %s\n", failed)
		} else {
			hdr = append(hdr, "Authorization", "Bearer "+tok)
		}
	}
	// An API client keeps no cookies.
	api := r.browser(c.userAgent())
	api.peer = c.ip()
	target := "http://" + verdictBank + c.Request.Path
	if c.Repeat {
		// The client follows the challenge (RFC 9470): it asks for a new
		// token with the acr_values and max_age it names, the user steps
		// up, and the call is made again with the new token.
		r.drain()
		resp := api.do(t, c.Request.Method, target, hdr...)
		resp.Body.Close()
		if params := challengeParams(resp.Header.Get("Www-Authenticate")); params.Get("acr_values") != "" && len(hdr) > 2 {
			tok, failed := r.token(t, b, params, c.answers())
			if failed != "" {
				t.Fatalf("re-authorize after the challenge %v: %s", params, failed)
			}
			hdr[3] = "Bearer " + tok
			r.drain()
			resp = api.do(t, c.Request.Method, target, hdr...)
		}
		out.WriteString(r.first(resp))
	}
	r.drain()
	out.WriteString(r.logged(t, u.ID, func() string { return r.describe(api.do(t, c.Request.Method, target, hdr...)) }))
	return out.String()
}

// forwardAsk asks a forward-auth endpoint, as the proxy in front would,
// about b's request to the fa route from address ip.
func (r *verdictRig) forwardAsk(t *testing.T, b *verdictBrowser, endpoint, method, uri, ip string) *http.Response {
	t.Helper()
	hdr := []string{"User-Agent", b.ua, "X-Forwarded-For", ip}
	if endpoint == "/gateway/forward-auth" {
		hdr = append(hdr, "X-Forwarded-Method", method, "X-Forwarded-Proto", "http", "X-Forwarded-Host", verdictFA, "X-Forwarded-Uri", uri)
	} else {
		hdr = append(hdr, "X-Original-Method", method, "X-Original-URI", uri, "X-Original-Host", verdictFA)
	}
	if gw := b.cookie("http://"+verdictFA, "stepgate_gw"); gw != "" {
		hdr = append(hdr, "Cookie", "stepgate_gw="+gw)
	}
	proxy := r.browser(b.ua)
	proxy.peer = verdictProxyPeer
	return proxy.do(t, "GET", verdictIssuer+endpoint, hdr...)
}

// forwardAuth asks a forward-auth endpoint for a browser holding the fa
// route's gateway cookie of a fresh session with the case's proofs.
func (r *verdictRig) forwardAuth(t *testing.T, c verdictCase, u store.User, endpoint string) string {
	t.Helper()
	b := r.browser(c.userAgent())
	r.ssoSession(t, c, u, b)
	if len(c.Session) > 0 {
		r.handOff(t, b, verdictFA)
	}
	var out strings.Builder
	if c.Repeat {
		// The browser goes where the proxy sends it, steps up, comes back
		// and the proxy asks again, until the answer is no redirect.
		answers := c.answers()
		resp := r.forwardAsk(t, b, endpoint, c.Request.Method, c.Request.Path, c.ip())
		for range len(answers) {
			login := resp.Header.Get("X-Stepgate-Login")
			if login == "" && resp.Header.Get("Location") == "" {
				break
			}
			if login != "" {
				resp.Header.Set("Location", login) // nginx sends the browser there
			}
			u, _ := url.Parse("http://" + verdictFA)
			b.Jar.SetCookies(u, resp.Cookies())
			r.answerStepUp(t, b, resp, answers[:1]).Body.Close()
			answers = answers[1:]
			resp = r.forwardAsk(t, b, endpoint, c.Request.Method, c.Request.Path, c.ip())
		}
		out.WriteString(r.first(resp))
	}
	out.WriteString(r.logged(t, u.ID, func() string {
		return r.describe(r.forwardAsk(t, b, endpoint, c.Request.Method, c.Request.Path, c.ip()))
	}))
	return out.String()
}

// authorize sends the case's code request for client bank from the
// case's address with a fresh session, and describes the answer; a code
// is exchanged and its tokens' claims described.
func (r *verdictRig) authorize(t *testing.T, c verdictCase, u store.User) string {
	t.Helper()
	q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "nonce": {"n"}}
	for k, v := range c.Authorize {
		q.Set(k, v)
	}
	b := r.browser(c.userAgent())
	r.ssoSession(t, c, u, b)
	b.peer = c.ip()
	target := verdictIssuer + "/oauth2/authorize?" + q.Encode()
	var out strings.Builder
	if c.Repeat {
		resp := r.answerStepUp(t, b, b.do(t, "GET", target), c.answers())
		out.WriteString(r.first(resp))
		if code := redirectCode(resp); code != "" {
			r.exchange(t, code)
		}
	}
	out.WriteString(r.logged(t, u.ID, func() string {
		resp := b.do(t, "GET", target)
		ans := r.describe(resp)
		if code := redirectCode(resp); code != "" {
			tr := r.exchange(t, code)
			ans += "id_token: " + r.claims(t, tr.IDToken) + "\n"
			ans += "access_token: " + r.claims(t, tr.AccessToken) + "\n"
		}
		return ans
	}))
	return out.String()
}

// token gets an access token for app bank with a code request from the
// default address, with params added, answering step-ups with proofs;
// failed describes the answer when no code came.
func (r *verdictRig) token(t *testing.T, b *verdictBrowser, params url.Values, proofs []verdictProof) (token, failed string) {
	t.Helper()
	q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}}
	for k := range params {
		q.Set(k, params.Get(k))
	}
	peer, ua := b.peer, b.ua
	b.peer, b.ua = verdictDefaultIP, verdictDefaultUA
	defer func() { b.peer, b.ua = peer, ua }()
	resp := r.answerStepUp(t, b, b.do(t, "GET", verdictIssuer+"/oauth2/authorize?"+q.Encode()), proofs)
	code := redirectCode(resp)
	if code == "" {
		return "", strings.TrimSpace(strings.SplitN(r.describe(resp), "\n", 3)[1])
	}
	return r.exchange(t, code).AccessToken, ""
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// challengeParams are the acr_values and max_age of a Bearer challenge.
func challengeParams(h string) url.Values {
	out := url.Values{}
	for _, m := range challengeParam.FindAllStringSubmatch(h, -1) {
		if m[1] == "acr_values" || m[1] == "max_age" {
			out.Set(m[1], m[2])
		}
	}
	return out
}

func redirectCode(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), bankRedirect) {
		return ""
	}
	return loc.Query().Get("code")
}

func (r *verdictRig) exchange(t *testing.T, code string) tokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {bankRedirect}}
	req := httptest.NewRequest("POST", verdictIssuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth(bankClientID, bankSecret))
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token endpoint: %d %s", rec.Code, rec.Body)
	}
	return tr
}
