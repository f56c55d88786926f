package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// authorizeCode runs an authorization for acr through the browser b and
// reports whether the client got a code without any further proof.
func (s *oidcServer) authorizeCode(t *testing.T, b *http.Client, acr string) bool {
	t.Helper()
	_, challenge := pkce()
	resp, _ := get(t, b, s.authorizeURL(url.Values{"acr_values": {acr}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	loc, _ := resp.Location()
	return loc != nil && strings.HasPrefix(loc.String(), rpRedirect) && loc.Query().Get("code") != ""
}

// addStarts reports whether opening the registration of method started
// one (an enrollment page with a ceremony).
func (s *oidcServer) addStarts(t *testing.T, b *http.Client, method string) (bool, *http.Response) {
	t.Helper()
	resp, body := get(t, b, s.base+"/account/security/add?method="+url.QueryEscape(method))
	started := ceremonyRe.MatchString(body) || strings.Contains(body, `id="webauthn-start"`)
	return resp.StatusCode == http.StatusOK && started, resp
}

// TestStolenPasswordCannotAddAFactor performs the attacks of a thief who
// has a password and nothing else, on a deployment whose accounts are
// past their registration window: alice's own authenticator app must
// come first; admin cannot script a passkey in; bob cannot make
// recovery codes. None of them then passes a grant.
func TestStolenPasswordCannotAddAFactor(t *testing.T) {
	s := startOIDC(t, func(cfg *config.Config) {
		cfg.Registration.Window = 0
		cfg.WebAuthn.RPID = "localhost"
		cfg.WebAuthn.Origins = []string{"http://localhost"}
	})
	ctx := context.Background()
	if _, _, err := s.app.Methods.TOTP.EnrollNow(ctx, s.user, "phone"); err != nil {
		t.Fatal(err)
	}
	b := browser(t)
	s.signIn(t, b, "/account")
	for _, method := range []string{"totp", "webauthn", "recovery-code", "push"} {
		if ok, resp := s.addStarts(t, b, method); ok {
			t.Errorf("attack/alice-adds-%s: the registration started (%d)", method, resp.StatusCode)
		}
	}
	// A made-up ceremony id finishes nothing.
	resp, _ := post(t, b, s.base+"/account/security/add", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "ceremony": {"made-up"}, "code": {"123456"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("attack/made-up-ceremony: %d, want 400", resp.StatusCode)
	}
	if creds, _ := s.app.Store.ListCredentials(ctx, s.user.ID); len(creds) != 1 {
		t.Fatalf("alice has %d methods after the attacks, want her one app", len(creds))
	}
	if s.authorizeCode(t, b, "c2") {
		t.Fatal("attack/alice-transfers: a password-only session met c2")
	}

	// admin and bob: a password only, no pass, past the window.
	for _, name := range []string{"admin", "bob"} {
		addUser(t, s.app.Users, name, name+"-password-for-tests")
		c := browser(t)
		resp, _ := post(t, c, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, c, s.base)}, "username": {name}, "password": {name + "-password-for-tests"}, "return_to": {"/account"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s sign-in: %d", name, resp.StatusCode)
		}
		for _, method := range []string{"webauthn", "totp", "recovery-code"} {
			ok, resp := s.addStarts(t, c, method)
			if ok || resp.StatusCode != http.StatusForbidden {
				t.Errorf("attack/%s-adds-%s: started=%v status %d, want 403", name, method, ok, resp.StatusCode)
			}
		}
	}
}

// TestRecoverySessionPassesNoGrant: a session that used a recovery code
// may register a new method and nothing else: it meets no grant, even
// one a password plus a code would have met before, and a session
// carrying such a proof from an older version meets none either.
func TestRecoverySessionPassesNoGrant(t *testing.T) {
	s := startOIDC(t, nil)
	ctx := context.Background()
	if _, _, err := s.app.Methods.TOTP.EnrollNow(ctx, s.user, "phone"); err != nil {
		t.Fatal(err)
	}
	codes, err := s.app.Methods.Recovery.Generate(ctx, s.user)
	if err != nil {
		t.Fatal(err)
	}
	b := browser(t)
	s.signIn(t, b, "/account")
	resp, _ := post(t, b, s.base+"/account/security/recover", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "code": {codes[0]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("recover: %d", resp.StatusCode)
	}
	if s.authorizeCode(t, b, "c2") {
		t.Fatal("attack/recovery-grant: a recovery code met c2 (MFA)")
	}
	if ok, _ := s.addStarts(t, b, "totp"); !ok {
		t.Fatal("ok/recovery-registers: the recovery code did not open a registration")
	}
	// A proof stored by an older version counts for nothing either.
	sessions, _ := s.app.Store.ListUserSessions(ctx, s.user.ID)
	for _, sess := range sessions {
		_, _ = s.app.Store.UpdateSession(ctx, sess.ID, func(cur store.Session) (store.Session, error) {
			cur.Events = append(cur.Events, store.AuthEvent{Method: "recovery-code", Time: time.Now().UTC(), AMR: []string{"otp"}})
			return cur, nil
		})
	}
	if s.authorizeCode(t, b, "c2") {
		t.Fatal("attack/stored-recovery-event: a recovery-code event met c2 (MFA)")
	}
}

// TestTemporaryAccessPassOpensNoApp: a pass opens the registration and
// nothing else: it is not a password at sign-in or step-up, and the
// session that redeemed it meets no grant it did not meet before.
func TestTemporaryAccessPassOpensNoApp(t *testing.T) {
	s := startOIDC(t, func(cfg *config.Config) { cfg.Registration.Window = 0 })
	ctx := context.Background()
	code, _, err := s.app.Methods.Passes.Issue(ctx, s.user.ID, "root", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	b := browser(t)
	resp, _ := post(t, b, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "username": {testUser}, "password": {code}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("attack/pass-as-password: sign-in %d, want 401", resp.StatusCode)
	}
	s.signIn(t, b, "/account")
	resp, _ = post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "password": {code}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("attack/pass-as-step-up: %d, want 401", resp.StatusCode)
	}
	resp, _ = post(t, b, s.base+"/account/security/tap", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "pass": {code}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeem: %d", resp.StatusCode)
	}
	for _, acr := range []string{"c2", "c3"} {
		if s.authorizeCode(t, b, acr) {
			t.Errorf("attack/pass-opens-%s: the redeemed pass met the grant", acr)
		}
	}
	if ok, _ := s.addStarts(t, b, "totp"); !ok {
		t.Fatal("ok/pass-registers: the pass did not open a registration")
	}
	// The sign-in log has the redemption.
	if err := s.app.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, _ := s.app.Store.ListSignIns(ctx, store.SignInQuery{UserID: s.user.ID})
	var got []string
	for _, r := range rows {
		if e, _ := audit.Decode(r); e.Source == "security-info" {
			got = append(got, e.Decision+":"+string(e.Reason))
		}
	}
	if !slices.Contains(got, "success:registration-unlocked") {
		t.Errorf("security-info entries in the sign-in log: %v", got)
	}
}

// TestAdminAPITemporaryAccessPass: an administrator issues a pass through
// the API (shown in that answer only), a second one is refused while it
// is active, the user's detail shows it without the code, a lifetime out
// of bounds is refused, and revoking it ends it.
func TestAdminAPITemporaryAccessPass(t *testing.T) {
	s := startAdminAPI(t)
	_, ops := s.serviceToken(t, opsClientID, opsSecret, config.AdminScope)
	path := "/api/v1/users/alice/temporary-access-pass"
	for _, body := range []string{`{"lifetime":"5m"}`, `{"lifetime":"200h"}`, `{"lifetime":"soon"}`} {
		if status, out := apiCall(t, s.base, ops.AccessToken, "POST", path, body); status != http.StatusBadRequest {
			t.Errorf("fail/lifetime %s: %d %s, want 400", body, status, out)
		}
	}
	status, body := apiCall(t, s.base, ops.AccessToken, "POST", path, `{"lifetime":"1h","once":true,"reason":"new phone"}`)
	var issued struct {
		Pass      string    `json:"pass"`
		Once      bool      `json:"once"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(body), &issued); status != http.StatusCreated || err != nil || len(issued.Pass) != 24 || !issued.Once {
		t.Fatalf("issue: %d %s", status, body)
	}
	if status, _ := apiCall(t, s.base, ops.AccessToken, "POST", path, `{"lifetime":"1h"}`); status != http.StatusConflict {
		t.Errorf("fail/second-pass: %d, want 409", status)
	}
	status, body = apiCall(t, s.base, ops.AccessToken, "GET", "/api/v1/users/alice", "")
	if status != http.StatusOK || !strings.Contains(body, `"temporary_access_pass"`) || strings.Contains(body, issued.Pass) {
		t.Errorf("user detail: %d %s", status, body)
	}
	if status, body := apiCall(t, s.base, ops.AccessToken, "GET", path, ""); status != http.StatusOK || strings.Contains(body, issued.Pass) || !strings.Contains(body, `"usable":true`) {
		t.Errorf("pass detail: %d %s", status, body)
	}
	if status, body := apiCall(t, s.base, ops.AccessToken, "DELETE", path, `{"reason":"handed over"}`); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if status, _ := apiCall(t, s.base, ops.AccessToken, "GET", path, ""); status != http.StatusNotFound {
		t.Errorf("after revoking: %d, want 404", status)
	}
	entries, _ := s.app.Audit.List(context.Background())
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"user.tap-issue", "user.tap-revoke"} {
		if !slices.Contains(actions, want) {
			t.Errorf("the audit trail %v lacks %s", actions, want)
		}
	}
}

// TestConsoleTemporaryAccessPass: the console shows a pass on the answer
// that issued it and never again, and the pass works on the user's
// security page.
func TestConsoleTemporaryAccessPass(t *testing.T) {
	s := startConsole(t)
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	resp, body := s.postForm(t, c, "/admin/users/bob/tap", url.Values{"confirm": {"yes"}, "lifetime": {"2h"}, "once": {"yes"}, "reason": {"first method"}})
	code := regexp.MustCompile(`<code id="pass-code">([a-z0-9-]{24})</code>`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || code == nil {
		t.Fatalf("issue: %d\n%s", resp.StatusCode, body)
	}
	if _, page := get(t, c, s.base+"/admin/users/bob"); strings.Contains(page, code[1]) || !strings.Contains(page, "single use") {
		t.Fatalf("the user page shows the pass again, or not its state:\n%s", page)
	}
	bob := s.login(t, bobName, bobPassword)
	resp, _ = post(t, bob, s.base+"/account/security/tap", url.Values{"csrf_token": {csrfToken(t, bob, s.base)}, "pass": {code[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob redeems the pass: %d", resp.StatusCode)
	}
}

// TestWasntMeThroughTheServer: with the real wiring, an added method is
// mailed (the development sender writes the mail to the log) with a
// "this wasn't me" link; the link's GET changes nothing, its POST removes
// the method, ends every session and sets the user's risk high, and the
// sign-in log and the audit trail have it all.
func TestWasntMeThroughTheServer(t *testing.T) {
	logs := &syncBuffer{}
	ln, cfg := testConfig(t)
	s := &oidcServer{server: serve(t, ln, cfg, slog.New(slog.NewJSONHandler(logs, nil)))}
	ctx := context.Background()
	u, err := s.app.Users.Add(ctx, users.NewUser{Username: testUser, Email: "alice@example.com", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	s.user = u
	attacker := browser(t)
	s.signIn(t, attacker, "/account")
	s.enrollTOTP(t, attacker)
	var link string
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct {
			To, Subject, Body string
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.To == "alice@example.com" && strings.Contains(rec.Subject, "added") {
			link = regexp.MustCompile(`http://\S+/account/security/report\?t=\S+`).FindString(rec.Body)
			for _, want := range []string{"Authenticator app", "127.0.0.1", "Go-http-client"} {
				if !strings.Contains(rec.Body, want) {
					t.Errorf("the notice lacks %q:\n%s", want, rec.Body)
				}
			}
		}
	}
	if link == "" {
		t.Fatalf("no notice with a link in the log:\n%s", logs.String())
	}
	victim := browser(t)
	resp, body := get(t, victim, link)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "report-confirm") {
		t.Fatalf("GET the link: %d\n%s", resp.StatusCode, body)
	}
	if creds, _ := s.app.Store.ListCredentials(ctx, u.ID); len(creds) != 1 {
		t.Fatal("attack/prefetch: GET removed the method")
	}
	token := csrfRe.FindStringSubmatch(body)[1]
	lu, _ := url.Parse(link)
	resp, body = post(t, victim, s.base+"/account/security/report", url.Values{"csrf_token": {token}, "t": {lu.Query().Get("t")}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "report-done") {
		t.Fatalf("POST the link: %d\n%s", resp.StatusCode, body)
	}
	if creds, _ := s.app.Store.ListCredentials(ctx, u.ID); len(creds) != 0 {
		t.Error("the reported method is still registered")
	}
	if ss, _ := s.app.Store.ListUserSessions(ctx, u.ID); len(ss) != 0 {
		t.Errorf("%d sessions survived the report", len(ss))
	}
	if resp, _ := get(t, attacker, s.base+"/account/security"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the attacker's browser is still signed in: %d", resp.StatusCode)
	}
	if r := s.app.Risk.UserRisk(ctx, u.ID); r != "high" {
		t.Errorf("user risk after the report: %q, want high", r)
	}
	if resp, _ := post(t, victim, s.base+"/account/security/report", url.Values{"csrf_token": {token}, "t": {lu.Query().Get("t")}}); resp.StatusCode != http.StatusGone {
		t.Errorf("fail/used: %d, want 410", resp.StatusCode)
	}
	if err := s.app.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, _ := s.app.Store.ListSignIns(ctx, store.SignInQuery{UserID: u.ID})
	var got []string
	for _, r := range rows {
		if e, _ := audit.Decode(r); e.Source == "security-info" {
			got = append(got, e.Decision+":"+string(e.Reason))
		}
	}
	for _, want := range []string{"success:method-added:registration-window", "reported:change-reported-not-mine"} {
		if !slices.Contains(got, want) {
			t.Errorf("the sign-in log %v lacks %s", got, want)
		}
	}
	entries, _ := s.app.Audit.List(ctx)
	if !slices.ContainsFunc(entries, func(e audit.Entry) bool { return e.Action == "user.method-reported.totp" }) {
		t.Error("the audit trail lacks the report")
	}
}

// TestTemporaryAccessPassOpensNoGatewayRoute: behind the gateway, a
// session that redeemed a pass is refused a route that needs MFA, with
// no step-up offered, and the upstream never sees the request.
func TestTemporaryAccessPassOpensNoGatewayRoute(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) { cfg.Registration.Window = 0 })
	ctx := context.Background()
	code, _, err := g.server.app.Methods.Passes.Issue(ctx, g.user.ID, "root", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	b := gatewayBrowser(t, g.server)
	g.signIn(t, b, "/account")
	resp, _ := post(t, b, g.base+"/account/security/tap", url.Values{"csrf_token": {csrfToken(t, b, g.base)}, "pass": {code}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeem: %d", resp.StatusCode)
	}
	for _, req := range []struct{ method, path, body string }{{"POST", "/transfers", "amount=1"}} {
		resp, body := g.walk(t, b, mustDo(t, b, req.method, g.app+req.path, req.body), func(loc *url.URL) *http.Response {
			t.Fatalf("attack/pass-at-gateway %s %s: a step-up with the pass was offered: %s", req.method, req.path, loc)
			return nil
		})
		if resp.StatusCode != http.StatusForbidden || g.upstream.count(req.method, req.path) != 0 {
			t.Errorf("attack/pass-at-gateway %s %s: %d %q, want 403 and nothing upstream", req.method, req.path, resp.StatusCode, body)
		}
	}
}
