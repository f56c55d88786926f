package app_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// reaskRules adds single-use rules for a passkey (c3) and an MFA (c2)
// action, and a five-minute max_age rule for an MFA action.
func reaskRules(cfg *config.Config) {
	// Passkeys are on: they need a host name for their relying party.
	cfg.WebAuthn.RPID = "localhost"
	cfg.WebAuthn.Origins = []string{"http://localhost"}
	r := &cfg.Gateway.Routes[0]
	r.Rules = append([]config.GatewayRule{
		{Path: "/vault/*", Context: "c3", Elevation: "single-use"},
		{Path: "/approve", Context: "c2", Elevation: "single-use"},
		{Path: "/limits", Context: "c2", MaxAge: config.Duration(5 * time.Minute)},
	}, r.Rules...)
}

// addProof adds to c's Stepgate session what the step-up page adds after
// a verified proof made age ago (relative to now, never a fixed date),
// and takes the rotated session cookie, as the browser would.
func (s *oidcServer) addProof(t *testing.T, c *http.Client, e store.AuthEvent, age time.Duration) {
	t.Helper()
	name := s.app.Sessions.CookieName()
	r := httptest.NewRequest(http.MethodPost, "/stepup", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: sessionCookie(c, s.base, name)})
	e.Time = time.Now().Add(-age).UTC()
	tok, _, err := s.app.Sessions.StepUp(context.Background(), r, e)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: tok, Path: "/"}})
}

var passkeyEvent = store.AuthEvent{Method: "webauthn", AMR: []string{"hwk", "user"}, PhishingResistant: true}

// TestGatewayReaskPasskeyRuleRefusesPassword: the administrator used a
// passkey once for a single-use passkey rule; re-opening it later by
// retyping the password is refused, and neither the challenge nor the
// step-up page offers the password.
func TestGatewayReaskPasskeyRuleRefusesPassword(t *testing.T) {
	g := startGateway(t, reaskRules)
	b := gatewayBrowser(t, g.server)
	if _, err := g.server.app.Store.CreateCredential(context.Background(), store.Credential{
		ID: rand.Text(), UserID: g.user.ID, Type: "webauthn", Name: "Passkey", Data: []byte("{}"),
	}); err != nil {
		t.Fatal(err)
	}
	passkey := func(loc *url.URL) *http.Response {
		if m := loc.Query().Get("methods"); m != "webauthn" {
			t.Errorf("the step-up for a passkey rule offers %q, want webauthn only", m)
		}
		g.addProof(t, b, passkeyEvent, 0)
		resp, _ := get(t, b, g.base+loc.Query().Get("return_to"))
		return resp
	}
	resp, body := g.walk(t, b, mustDo(t, b, "GET", g.app+"/vault/keys", ""), passkey)
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /vault/keys" {
		t.Fatalf("ok/passkey-once: %d %q", resp.StatusCode, body)
	}

	// Later: the attacker at this browser knows only the password.
	attempts := 0
	resp, _ = g.walk(t, b, mustDo(t, b, "GET", g.app+"/vault/keys", ""), func(loc *url.URL) *http.Response {
		attempts++
		if m := loc.Query().Get("methods"); m != "webauthn" {
			t.Errorf("attempt %d: the step-up offers %q, want webauthn only", attempts, m)
		}
		page, body := get(t, b, loc.String())
		if page.StatusCode != http.StatusOK || strings.Contains(body, `method=password`) || strings.Contains(body, `name="password"`) {
			t.Errorf("the step-up page (status %d) offers the password for a passkey rule:\n%s", page.StatusCode, body)
		}
		if attempts > 2 {
			// Give up, as the attacker must; report where it ends.
			return &http.Response{StatusCode: http.StatusForbidden, Body: http.NoBody}
		}
		return g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
	})
	if n := g.upstream.count("GET", "/vault/keys"); n != 1 || resp.StatusCode == http.StatusOK {
		t.Fatalf("fail/reopened-with-password: the upstream served /vault/keys %d times (last status %d), want once", n, resp.StatusCode)
	}
	if attempts != 3 {
		t.Fatalf("the password step-up was asked %d times, want the challenge repeated after each password", attempts)
	}
}

// TestGatewayReaskMFARuleRefusesPassword: a single-use MFA rule met
// once with TOTP is not met again by the password alone.
func TestGatewayReaskMFARuleRefusesPassword(t *testing.T) {
	g := startGateway(t, reaskRules)
	b := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	secret := g.enrollTOTP(t, b)
	// The re-ask needs both factors anew: the TOTP code, then the
	// password the next challenge asks for.
	totp := func(loc *url.URL) *http.Response {
		if !strings.Contains(loc.Query().Get("methods"), "totp") {
			return g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
		}
		g.stepUpTOTP(t, b, secret, loc.Query().Get("return_to"))
		resp, _ := get(t, b, g.base+loc.Query().Get("return_to"))
		return resp
	}
	if resp, body := g.walk(t, b, mustDo(t, b, "POST", g.app+"/approve", "id=1"), totp); resp.StatusCode != http.StatusOK {
		t.Fatalf("ok/totp-once: %d %q", resp.StatusCode, body)
	}
	tries := 0
	resp, _ := g.walk(t, b, mustDo(t, b, "POST", g.app+"/approve", "id=2"), func(loc *url.URL) *http.Response {
		tries++
		if tries > 2 {
			return &http.Response{StatusCode: http.StatusForbidden, Body: http.NoBody}
		}
		return g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
	})
	if n := g.upstream.count("POST", "/approve"); n != 1 || resp.StatusCode == http.StatusOK {
		t.Fatalf("fail/reopened-with-password: the upstream ran /approve %d times, want once", n)
	}
}

// TestGatewayReaskMaxAgeNeedsFreshMFA: a max_age rule whose policy asks
// for MFA is not met by a fresh password beside a stale second factor.
func TestGatewayReaskMaxAgeNeedsFreshMFA(t *testing.T) {
	g := startGateway(t, reaskRules)
	b := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	g.enrollTOTP(t, b)
	// The second factor was proven 10 minutes ago; the password is fresh.
	g.addProof(t, b, store.AuthEvent{Method: "totp", AMR: []string{"otp"}}, 10*time.Minute)
	g.stepUp(t, b, "/account", testPassword).Body.Close()
	// The gateway sees the session as it is now (the step-up rotated it).
	g.server.app.Gateway.Forget("")
	asked := ""
	resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/limits", ""), func(loc *url.URL) *http.Response {
		asked = loc.Query().Get("methods")
		return &http.Response{StatusCode: http.StatusForbidden, Body: http.NoBody}
	})
	if resp.StatusCode == http.StatusOK || asked != "totp" || g.upstream.count("GET", "/limits") != 0 {
		t.Fatalf("fail/fresh-password-stale-totp: %d, step-up for %q, served %d times; want a step-up for TOTP",
			resp.StatusCode, asked, g.upstream.count("GET", "/limits"))
	}
	// A fresh TOTP proof beside the fresh password meets it.
	resp, body := g.walk(t, b, mustDo(t, b, "GET", g.app+"/limits", ""), func(loc *url.URL) *http.Response {
		g.addProof(t, b, store.AuthEvent{Method: "totp", AMR: []string{"otp"}}, 0)
		r, _ := get(t, b, g.base+loc.Query().Get("return_to"))
		return r
	})
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /limits" {
		t.Fatalf("ok/fresh-mfa: %d %q", resp.StatusCode, body)
	}
}

// TestGatewayTokenSingleUseSpendsTheProof: a refreshed token has a new
// jti but the same proof; it passes a single-use rule only if no token
// with that proof did. A token issued after a new proof passes once.
func TestGatewayTokenSingleUseSpendsTheProof(t *testing.T) {
	g := startGateway(t)
	api := gatewayBrowser(t, g.server)
	b := browser(t)
	g.signIn(t, b, "/account")
	token := func() tokenResponse {
		t.Helper()
		verifier, challenge := pkce()
		q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
			"scope": {"openid offline_access"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
			"acr_values": {"c1"}, "max_age": {"0"}}
		cb := g.follow(t, b, g.base+"/oauth2/authorize?"+q.Encode())
		st, tok := g.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {bankRedirect}, "code_verifier": {verifier}}, bankClientID, bankSecret)
		if st != http.StatusOK {
			t.Fatalf("token: %d %s", st, tok.ErrorDescription)
		}
		return tok
	}
	call := func(tok string) int {
		resp := mustDo(t, api, "GET", g.app+"/admin/users", "", "Authorization", "Bearer "+tok)
		resp.Body.Close()
		return resp.StatusCode
	}
	first := token()
	if st := call(first.AccessToken); st != http.StatusOK {
		t.Fatalf("ok/first-token: %d", st)
	}
	if st := call(first.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("fail/same-token-again: %d", st)
	}
	st, refreshed := g.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, bankClientID, bankSecret)
	if st != http.StatusOK || refreshed.AccessToken == first.AccessToken {
		t.Fatalf("refresh: %d", st)
	}
	if st := call(refreshed.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("fail/refreshed-token: %d, want 401 (no new proof behind it)", st)
	}
	// auth_time counts seconds: a new proof in the next second is new.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	second := token()
	if st := call(second.AccessToken); st != http.StatusOK {
		t.Fatalf("ok/token-after-new-proof: %d", st)
	}
	if st := call(second.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("fail/token-after-new-proof-twice: %d", st)
	}
}

// TestForwardAuthSingleUse: through forward-auth, a single-use rule lets
// exactly one request through per step-up made in answer to its
// challenge; the sign-in a moment ago does not count.
func TestForwardAuthSingleUse(t *testing.T) {
	g := startGateway(t, withForwardRoute)
	b := gatewayBrowser(t, g.server)
	host := forwardHost(g)
	g.forwardSignIn(t, b, host)
	appURL, _ := url.Parse("http://" + host)
	ask := func(ep string) *http.Response {
		t.Helper()
		hdr := []string{"X-Original-Method", "GET", "X-Original-URI", "/admin/users", "X-Original-Host", host}
		if ep == "/gateway/forward-auth" {
			hdr = []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", host, "X-Forwarded-Uri", "/admin/users"}
		}
		var cookies []string
		for _, c := range b.Jar.Cookies(appURL) {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		hdr = append(hdr, "Cookie", strings.Join(cookies, "; "))
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest(http.MethodGet, g.base+ep, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, ep := range []string{"/gateway/forward-auth", "/gateway/auth-request"} {
		// A proof is told apart by the second it was made in (a token's
		// proof_time counts seconds): the next endpoint's step-up is in
		// the next one.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		// The sign-in was a moment ago: not an answer to this rule.
		resp := ask(ep)
		start := resp.Header.Get("Location") + resp.Header.Get("X-Stepgate-Login")
		if resp.StatusCode == http.StatusOK || !strings.Contains(start, "stepup=") {
			t.Fatalf("%s fail/sign-in-proof: %d %s, want a step-up", ep, resp.StatusCode, start)
		}
		// Step up as the browser does, and come back through the callback.
		next := mustDo(t, b, "GET", start, "")
		for range 6 {
			loc, err := next.Location()
			next.Body.Close()
			if err != nil {
				t.Fatalf("%s: the hand-off stopped with %d", ep, next.StatusCode)
			}
			if strings.HasPrefix(loc.String(), g.base+"/stepup") {
				next = g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
				continue
			}
			if strings.Contains(loc.Path, "/.stepgate/callback") {
				// The proxy passes the callback to Stepgate; the gateway
				// cookie it sets is what the browser sends from now on.
				cb := mustDo(t, b, "GET", loc.String(), "")
				cb.Body.Close()
				break
			}
			next = mustDo(t, b, "GET", loc.String(), "")
		}
		if resp := ask(ep); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s ok/one-request-after-the-step-up: %d %s", ep, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp := ask(ep); resp.StatusCode == http.StatusOK {
			t.Fatalf("%s fail/second-request-same-step-up: 200", ep)
		}
	}
}

// TestTokenReaskRestsOnTheProof: tokens for a single-use passkey rule.
// The user at the keyboard knows only the password: retyping it and
// asking for a new token without max_age (the authorize URL is the
// browser's to edit) gets a token with a fresh auth_time, but its
// passkey proof is the one already spent, so the rule refuses it; and
// following the rule's challenge (max_age=0) asks for the passkey, never
// the password.
func TestTokenReaskRestsOnTheProof(t *testing.T) {
	g := startGateway(t, reaskRules)
	api := gatewayBrowser(t, g.server)
	b := browser(t)
	g.signIn(t, b, "/account")
	if _, err := g.server.app.Store.CreateCredential(context.Background(), store.Credential{
		ID: rand.Text(), UserID: g.user.ID, Type: "webauthn", Name: "Passkey", Data: []byte("{}"),
	}); err != nil {
		t.Fatal(err)
	}
	g.addProof(t, b, passkeyEvent, time.Minute)
	authorize := func(extra url.Values) string {
		verifier, challenge := pkce()
		q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "acr_values": {"c3"}}
		for k, v := range extra {
			q[k] = v
		}
		return g.base + "/oauth2/authorize?" + q.Encode() + "#" + verifier
	}
	token := func() string {
		t.Helper()
		u, verifier, _ := strings.Cut(authorize(nil), "#")
		cb := g.follow(t, b, u)
		st, tok := g.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {bankRedirect}, "code_verifier": {verifier}}, bankClientID, bankSecret)
		if st != http.StatusOK {
			t.Fatalf("token: %d %s", st, tok.ErrorDescription)
		}
		return tok.AccessToken
	}
	call := func(tok string) int {
		resp := mustDo(t, api, "GET", g.app+"/vault/keys", "", "Authorization", "Bearer "+tok)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := call(token()); st != http.StatusOK {
		t.Fatalf("ok/passkey-token-once: %d", st)
	}
	// auth_time counts seconds: retype the password in the next one.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	g.stepUp(t, b, "/account", testPassword).Body.Close()
	if st := call(token()); st != http.StatusUnauthorized {
		t.Fatalf("fail/password-retyped-new-token: %d, want 401 (the passkey behind it is spent)", st)
	}
	// Following the challenge: max_age=0 must be met by a new passkey.
	u, _, _ := strings.Cut(authorize(url.Values{"max_age": {"0"}}), "#")
	for range 2 {
		resp, _ := get(t, b, u)
		loc, err := resp.Location()
		if err != nil || loc.Path != "/stepup" || loc.Query().Get("methods") != "webauthn" {
			t.Fatalf("fail/max-age-0-for-a-passkey-context: %d %v, want a step-up offering the passkey only", resp.StatusCode, loc)
		}
		// The password, retyped anyway, does not end the re-ask.
		resp = g.stepUp(t, b, loc.Query().Get("return_to"), testPassword)
		resp.Body.Close()
		u = g.base + resp.Header.Get("Location")
	}
}

// TestGatewayTokenSingleUseWhateverTheAcr: one passkey proof, then
// tokens for the same session asked with other acr_values ("c3", then
// "phishing-resistant c3", "c3 c2"): no new proof, so none after the
// first passes the single-use passkey rule, though each carries another
// acr or acrs than the first.
func TestGatewayTokenSingleUseWhateverTheAcr(t *testing.T) {
	g := startGateway(t, reaskRules)
	api := gatewayBrowser(t, g.server)
	b := browser(t)
	g.signIn(t, b, "/account")
	if _, err := g.server.app.Store.CreateCredential(context.Background(), store.Credential{
		ID: rand.Text(), UserID: g.user.ID, Type: "webauthn", Name: "Passkey", Data: []byte("{}"),
	}); err != nil {
		t.Fatal(err)
	}
	g.addProof(t, b, passkeyEvent, time.Minute)
	token := func(acrValues string) string {
		t.Helper()
		verifier, challenge := pkce()
		q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "acr_values": {acrValues}}
		cb := g.follow(t, b, g.base+"/oauth2/authorize?"+q.Encode())
		st, tok := g.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {bankRedirect}, "code_verifier": {verifier}}, bankClientID, bankSecret)
		if st != http.StatusOK {
			t.Fatalf("token for %q: %d %s", acrValues, st, tok.ErrorDescription)
		}
		return tok.AccessToken
	}
	call := func(tok string) int {
		resp := mustDo(t, api, "GET", g.app+"/vault/keys", "", "Authorization", "Bearer "+tok)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := call(token("c3")); st != http.StatusOK {
		t.Fatalf("ok/passkey-token-once: %d", st)
	}
	for _, values := range []string{"phishing-resistant c3", "c3 c2", "c3 phishing-resistant"} {
		if st := call(token(values)); st != http.StatusUnauthorized {
			t.Errorf("fail/same-proof-acr-values-%q: %d, want 401 (the passkey behind it is spent)", values, st)
		}
	}
}

// TestGatewaySingleUseRaceOfKeptRequests: six tabs each open a page
// under a single-use rule and are kept; the user steps up once, and the
// six hand-offs back (the step-up flag dropped from the others' links,
// as a browser can) arrive at the same moment. One proof authorizes one
// request: exactly one reaches the upstream.
func TestGatewaySingleUseRaceOfKeptRequests(t *testing.T) {
	g := startGateway(t)
	b := gatewayBrowser(t, g.server)
	g.signedInAt(t, b, g.app)
	const tabs = 6
	var starts []*url.URL
	for i := range tabs {
		resp := mustDo(t, b, "GET", fmt.Sprintf("%s/admin/tab%d", g.app, i), "")
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil || loc.Query().Get("kept") == "" || loc.Query().Get("stepup") == "" {
			t.Fatalf("tab %d: %d %v, want a step-up with the request kept", i, resp.StatusCode, loc)
		}
		starts = append(starts, loc)
	}
	resp := mustDo(t, b, "GET", starts[0].String(), "")
	resp.Body.Close()
	stepup, err := resp.Location()
	if err != nil || stepup.Path != "/stepup" {
		t.Fatalf("start: %d %v, want the step-up page", resp.StatusCode, stepup)
	}
	g.stepUp(t, b, stepup.Query().Get("return_to"), testPassword).Body.Close()
	var callbacks []string
	for _, s := range starts {
		q := s.Query()
		q.Del("stepup")
		s.RawQuery = q.Encode()
		resp := mustDo(t, b, "GET", s.String(), "")
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil || !strings.Contains(loc.Path, "/.stepgate/callback") {
			t.Fatalf("start without the step-up flag: %d %v, want the callback", resp.StatusCode, loc)
		}
		callbacks = append(callbacks, loc.String())
	}
	codes := make(chan int, tabs)
	var wg sync.WaitGroup
	for _, cb := range callbacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, cb, nil)
			resp, err := b.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			if replayed(resp) {
				codes <- http.StatusOK
				return
			}
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	passed := 0
	for c := range codes {
		if c == http.StatusOK {
			passed++
		}
	}
	reached := 0
	for _, s := range g.upstream.all() {
		if strings.HasPrefix(s.Path, "/admin/") {
			reached++
		}
	}
	if passed != 1 || reached != 1 {
		t.Fatalf("one step-up, %d kept requests at once: %d answered 200, %d reached the upstream; want exactly one", tabs, passed, reached)
	}
}

// replayed reports whether a callback's answer is the kept request
// carried out: the upstream's answer passed on (200), or held for the
// browser at the request's own address (a 303 there), rather than a new
// challenge (a 303 to Stepgate's hand-off).
func replayed(resp *http.Response) bool {
	if resp.StatusCode == http.StatusOK {
		return true
	}
	loc := resp.Header.Get("Location")
	return resp.StatusCode == http.StatusSeeOther && loc != "" && !strings.Contains(loc, "/gateway/start") && !strings.Contains(loc, "stepup=")
}

// TestGatewaySingleUseAcrossHostsOfOneApp: the bank is reachable on two
// hosts (two routes of one app, one upstream). A request kept on each,
// then one step-up: one proof authorizes one request, so the second
// host's is asked again rather than carried out.
func TestGatewaySingleUseAcrossHostsOfOneApp(t *testing.T) {
	g, bank, open := startVariantGateway(t, "")
	b := gatewayBrowser(t, g.server)
	g.signedInAt(t, b, bank)
	g.signedInAt(t, b, open)
	keep := func(origin string) *url.URL {
		t.Helper()
		resp := mustDo(t, b, "GET", origin+"/admin/users", "")
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil || loc.Query().Get("kept") == "" {
			t.Fatalf("%s/admin/users: %d %v, want a step-up with the request kept", origin, resp.StatusCode, loc)
		}
		return loc
	}
	here, there := keep(bank), keep(open)
	resp := mustDo(t, b, "GET", here.String(), "")
	resp.Body.Close()
	stepup, err := resp.Location()
	if err != nil || stepup.Path != "/stepup" {
		t.Fatalf("start: %d %v, want the step-up page", resp.StatusCode, stepup)
	}
	g.stepUp(t, b, stepup.Query().Get("return_to"), testPassword).Body.Close()
	back := func(start *url.URL) *http.Response {
		t.Helper()
		q := start.Query()
		q.Del("stepup")
		start.RawQuery = q.Encode()
		resp := mustDo(t, b, "GET", start.String(), "")
		resp.Body.Close()
		cb, err := resp.Location()
		if err != nil || !strings.Contains(cb.Path, "/.stepgate/callback") {
			t.Fatalf("start without the step-up flag: %d %v, want the callback", resp.StatusCode, cb)
		}
		resp = mustDo(t, b, "GET", cb.String(), "")
		resp.Body.Close()
		return resp
	}
	if resp := back(here); !replayed(resp) {
		t.Fatalf("ok/first-host: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := back(there); replayed(resp) || !strings.Contains(resp.Header.Get("Location"), "stepup=") {
		t.Fatalf("fail/second-host-same-proof: %d %s, want a new step-up", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := g.upstream.count("GET", "/admin/users"); n != 1 {
		t.Fatalf("the upstream ran /admin/users %d times on one proof, want once", n)
	}
}

// TestGatewaySingleUseProofAcrossBrowserAndToken: the administrator's
// passkey proof carries one request under the single-use passkey rule
// in the browser; a token the bank's client then gets from the same
// session (no new proof, so the same proof_time) does not carry another.
func TestGatewaySingleUseProofAcrossBrowserAndToken(t *testing.T) {
	g := startGateway(t, reaskRules)
	b := gatewayBrowser(t, g.server)
	if _, err := g.server.app.Store.CreateCredential(context.Background(), store.Credential{
		ID: rand.Text(), UserID: g.user.ID, Type: "webauthn", Name: "Passkey", Data: []byte("{}"),
	}); err != nil {
		t.Fatal(err)
	}
	passkey := func(loc *url.URL) *http.Response {
		g.addProof(t, b, passkeyEvent, 0)
		resp, _ := get(t, b, g.base+loc.Query().Get("return_to"))
		return resp
	}
	resp, body := g.walk(t, b, mustDo(t, b, "GET", g.app+"/vault/keys", ""), passkey)
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /vault/keys" {
		t.Fatalf("ok/browser-passkey-once: %d %q", resp.StatusCode, body)
	}
	verifier, challenge := pkce()
	q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "acr_values": {"c3"}}
	cb := g.follow(t, b, g.base+"/oauth2/authorize?"+q.Encode())
	st, tok := g.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
		"redirect_uri": {bankRedirect}, "code_verifier": {verifier}}, bankClientID, bankSecret)
	if st != http.StatusOK {
		t.Fatalf("token: %d %s", st, tok.ErrorDescription)
	}
	api := gatewayBrowser(t, g.server)
	resp = mustDo(t, api, "GET", g.app+"/vault/keys", "", "Authorization", "Bearer "+tok.AccessToken)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("fail/token-on-the-spent-proof: %d, want 401 (the passkey behind it carried the browser's request)", resp.StatusCode)
	}
	if n := g.upstream.count("GET", "/vault/keys"); n != 1 {
		t.Fatalf("the upstream served /vault/keys %d times on one passkey proof, want once", n)
	}
}
