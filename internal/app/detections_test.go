package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/riskservice"
	"github.com/stepgate/stepgate/internal/store"
)

// startDetections is a gateway over the bank app whose policies block a
// high user risk and a high sign-in risk, with the API token set.
func startDetections(t *testing.T) *gatewayRig {
	t.Helper()
	g := startGateway(t, func(cfg *config.Config) { cfg.API.Token = apiToken })
	g.usePolicies(t, `
policies:
  - name: block-high-user-risk
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {user_risk: [high]}
    grant: block
  - name: block-high-sign-in-risk
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {sign_in_risk: [high]}
    grant: block
`)
	return g
}

// report posts a detection with the API token under key.
func (g *gatewayRig) report(t *testing.T, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", g.base+"/api/v1/risk/detections", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(t, resp)
}

// accounts is a GET of the bank's /accounts page in browser b, signing
// in when asked; it returns the final status.
func (g *gatewayRig) accounts(t *testing.T, b *http.Client) int {
	t.Helper()
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), noStepUp)
	return resp.StatusCode
}

// sessionOf is the id of alice's newest live session, as the admin API
// lists it.
func (g *gatewayRig) sessionOf(t *testing.T) string {
	t.Helper()
	st, body := apiCall(t, g.base, apiToken, "GET", "/api/v1/users/alice", "")
	var u struct {
		Sessions []struct {
			ID        string    `json:"id"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(body), &u); st != http.StatusOK || err != nil || len(u.Sessions) == 0 {
		t.Fatalf("GET user: %d %s", st, body)
	}
	newest := u.Sessions[0]
	for _, s := range u.Sessions {
		if s.CreatedAt.After(newest.CreatedAt) {
			newest = s
		}
	}
	return newest.ID
}

func expiresIn(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }

// TestReportedDetectionsDecide: detections reported through the API
// change the next gateway decision. A high sign-in detection blocks only
// the session it names; a high user detection ends every session at
// once (within a second) and blocks the user's next sign-in at the
// gateway and through OIDC, as the built-in high user risk does; revoke: true ends sessions whatever the
// level; the sign-in log shows each with its source; dismissal lets the
// user back in.
func TestReportedDetectionsDecide(t *testing.T) {
	g := startDetections(t)
	first := gatewayBrowser(t, g.server)
	if st := g.accounts(t, first); st != http.StatusOK {
		t.Fatalf("before any detection: %d", st)
	}
	sess := g.sessionOf(t)
	other := gatewayBrowser(t, g.server)
	if st := g.accounts(t, other); st != http.StatusOK {
		t.Fatalf("second browser: %d", st)
	}

	// 1. A high sign-in detection about the first session.
	st, body := g.report(t, "evt-1", fmt.Sprintf(`{"user": "alice", "applies_to": "sign-in", "session_id": %q, "type": "edr-token-theft",
		"level": "high", "reason": "session cookie seen on another host", "evidence": {"host": "lt-042"}, "expires_at": %q}`, sess, expiresIn(time.Hour)))
	if st != http.StatusCreated {
		t.Fatalf("report: %d %s", st, body)
	}
	if st := g.accounts(t, first); st != http.StatusForbidden {
		t.Fatalf("the reported session: %d, want 403", st)
	}
	if st := g.accounts(t, other); st != http.StatusOK {
		t.Fatalf("another session of the user: %d, want 200 (a sign-in detection is about one session)", st)
	}
	assertDetectionLogged(t, g.server.app, "edr-token-theft", "api-token")

	// 2. A high user detection: every session ends at once.
	st, body = g.report(t, "evt-2", fmt.Sprintf(`{"user": "alice", "type": "siem-credential-stuffing", "level": "high",
		"reason": "password seen in a stuffing list", "expires_at": %q}`, expiresIn(time.Hour)))
	reported := time.Now()
	if st != http.StatusCreated || !strings.Contains(body, `"sessions_revoked":true`) || !strings.Contains(body, `"user_risk":"high"`) {
		t.Fatalf("report: %d %s", st, body)
	}
	resp := mustDo(t, other, "GET", g.app+"/accounts", "")
	resp.Body.Close()
	if took := time.Since(reported); resp.StatusCode == http.StatusOK || took > time.Second {
		t.Fatalf("the user's session after a high detection: %d after %s, want refused within 1s", resp.StatusCode, took)
	}
	if st := g.accounts(t, gatewayBrowser(t, g.server)); st != http.StatusForbidden {
		t.Fatalf("a fresh sign-in at high user risk: %d, want 403", st)
	}
	_, challenge := pkce()
	if cb := g.follow(t, browser(t), g.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}})); cb.Query().Get("error") != "access_denied" {
		t.Fatalf("an OIDC sign-in at high user risk: %s, want error=access_denied", cb)
	}
	assertDetectionLogged(t, g.server.app, "siem-credential-stuffing", "api-token")

	// 3. Dismissed as the built-in ones are: the user is back.
	if st, body := apiCall(t, g.base, apiToken, "POST", "/api/v1/users/alice/risk", `{"action": "dismiss", "reason": "false alarm"}`); st != http.StatusOK {
		t.Fatalf("dismiss: %d %s", st, body)
	}
	third := gatewayBrowser(t, g.server)
	if st := g.accounts(t, third); st != http.StatusOK {
		t.Fatalf("after dismissal: %d, want 200", st)
	}

	// 4. revoke: true with a low level ends the sessions too, within 1s.
	st, body = g.report(t, "evt-3", fmt.Sprintf(`{"user": "alice", "type": "fraud-engine", "level": "low", "reason": "payee changed",
		"revoke": true, "expires_at": %q}`, expiresIn(time.Hour)))
	reported = time.Now()
	if st != http.StatusCreated {
		t.Fatalf("report: %d %s", st, body)
	}
	resp = mustDo(t, third, "GET", g.app+"/accounts", "")
	resp.Body.Close()
	if took := time.Since(reported); resp.StatusCode == http.StatusOK || took > time.Second {
		t.Fatalf("the session after revoke: true: %d after %s, want refused within 1s", resp.StatusCode, took)
	}
	if st := g.accounts(t, gatewayBrowser(t, g.server)); st != http.StatusOK {
		t.Fatalf("signing in again after a low detection that revoked: %d, want 200", st)
	}
	entries, err := g.server.app.Audit.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, e := range entries {
		if e.Action == "user.risk-detection" && e.Actor == "api-token" && e.Target == "user:"+testUser {
			audited++
		}
	}
	if audited != 3 {
		t.Fatalf("the audit trail names %d reported detections, want 3", audited)
	}
}

// assertDetectionLogged finds the sign-in log entry of a reported
// detection of type typ and checks it names its source.
func assertDetectionLogged(t *testing.T, a *app.App, typ, source string) {
	t.Helper()
	ctx := context.Background()
	if err := a.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := a.Store.ListSignIns(ctx, store.SignInQuery{Decision: "reported"})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		e, err := audit.Decode(row)
		if err != nil {
			t.Fatal(err)
		}
		if e.Source == app.SourceDetection && len(e.Risk) == 1 && e.Risk[0].Type == typ {
			if e.ClientApp != source || e.Risk[0].Evidence["source"] != source || e.Username != testUser {
				t.Fatalf("the log entry of %s: %+v, want source %s", typ, e, source)
			}
			return
		}
	}
	t.Fatalf("no sign-in log entry of the %s detection among %d", typ, len(rows))
}

// TestDetectionsAPIRefusesBadInput sends malformed, oversized,
// mistaken and unauthorised reports over HTTP: each gets a 4xx naming
// the fix, and none leaves anything stored.
func TestDetectionsAPIRefusesBadInput(t *testing.T) {
	g := startDetections(t)
	valid := fmt.Sprintf(`{"user": "alice", "type": "siem-x", "level": "medium", "reason": "r", "expires_at": %q}`, expiresIn(time.Hour))
	for _, tc := range []struct {
		name, key, body string
		status          int
		says            string
	}{
		{"fail/no-key", "", valid, 400, "Idempotency-Key"},
		{"fail/malformed", "k1", `{"user": "alice",`, 400, "malformed JSON"},
		{"fail/not-an-object", "k2", `[1]`, 400, "JSON object"},
		{"fail/unknown-field", "k3", strings.Replace(valid, `"user"`, `"score": 99, "user"`, 1), 400, `unknown field \"score\"`},
		{"fail/trailing", "k4", valid + `{}`, 400, "exactly one object"},
		{"fail/oversized", "k5", strings.Replace(valid, `"reason": "r"`, `"reason": "`+strings.Repeat("x", 17<<10)+`"`, 1), 413, "larger than 16384 bytes"},
		{"fail/unknown-user", "k6", strings.Replace(valid, `"alice"`, `"mallory"`, 1), 404, "mallory"},
		{"fail/bad-level", "k7", strings.Replace(valid, `"medium"`, `"severe"`, 1), 400, "level must be"},
		{"fail/expiry-past", "k8", strings.Replace(valid, expiresIn(time.Hour)[:4], "2001", 1), 400, "not in the future"},
		{"fail/expiry-far", "k9", fmt.Sprintf(`{"user": "alice", "type": "siem-x", "level": "medium", "reason": "r", "expires_at": %q}`, expiresIn(91*24*time.Hour)), 400, "90 days"},
		{"fail/expiry-not-a-time", "k10", strings.Replace(valid, `"expires_at": "`, `"expires_at": "tomorrow`, 1), 400, "expires_at must be an RFC 3339 time"},
		{"fail/unknown-session", "k11", strings.Replace(valid, `"user": "alice"`, `"user": "alice", "applies_to": "sign-in", "session_id": "feed"`, 1), 404, "no live session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := g.report(t, tc.key, tc.body)
			if st != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%d %s, want %d saying %q", st, body, tc.status, tc.says)
			}
		})
	}
	// Not through this machine's loopback without a token: a change needs
	// an identity for the audit trail and the detection's source.
	req, _ := http.NewRequest("POST", g.base+"/api/v1/risk/detections", strings.NewReader(valid))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k-local")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a local request without a token: %d, want 403", resp.StatusCode)
	}
	d, err := g.server.app.Risk.Detail(context.Background(), g.user.ID)
	if err != nil || len(d.Reported) != 0 || d.Level != "none" {
		t.Fatalf("refused reports left %+v, %v", d, err)
	}

	// The same key: the first answer; another body under it: 409.
	st1, first := g.report(t, "same", valid)
	st2, again := g.report(t, "same", valid)
	if st1 != http.StatusCreated || st2 != http.StatusCreated || first != again {
		t.Fatalf("repeat: %d %s then %d %s", st1, first, st2, again)
	}
	if st, body := g.report(t, "same", strings.Replace(valid, `"medium"`, `"high"`, 1)); st != http.StatusConflict || !strings.Contains(body, "Idempotency-Key") {
		t.Fatalf("another body under the key: %d %s, want 409", st, body)
	}
	if d, _ := g.server.app.Risk.Detail(context.Background(), g.user.ID); len(d.Reported) != 1 || d.Level != "medium" {
		t.Fatalf("after a repeat and a conflict: %+v, want one medium detection", d)
	}
}

// TestReportedTokenDetection: a sign-in detection naming an access
// token's jti blocks the requests that token makes at the gateway, and
// no other token of the user.
func TestReportedTokenDetection(t *testing.T) {
	g := startDetections(t)
	api := gatewayBrowser(t, g.server)
	b := browser(t)
	g.signIn(t, b, "/account")
	token := func() string {
		t.Helper()
		verifier, challenge := pkce()
		q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		cb := g.follow(t, b, g.base+"/oauth2/authorize?"+q.Encode())
		st, tok := g.tokenRequest(t, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {bankRedirect}, "code_verifier": {verifier}}, bankClientID, bankSecret)
		if st != http.StatusOK {
			t.Fatalf("token: %d %s", st, tok.ErrorDescription)
		}
		return tok.AccessToken
	}
	call := func(tok string) int {
		resp := mustDo(t, api, "GET", g.app+"/accounts", "", "Authorization", "Bearer "+tok)
		resp.Body.Close()
		return resp.StatusCode
	}
	stolen, mine := token(), token()
	if call(stolen) != http.StatusOK || call(mine) != http.StatusOK {
		t.Fatal("fresh tokens are refused")
	}
	_, payload, _ := strings.Cut(stolen, ".")
	payload, _, _ = strings.Cut(payload, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	var claims struct {
		JTI string `json:"jti"`
	}
	if err != nil || json.Unmarshal(raw, &claims) != nil || claims.JTI == "" {
		t.Fatalf("no jti in the access token: %s", raw)
	}
	st, body := g.report(t, "tok-1", fmt.Sprintf(`{"user": "alice", "applies_to": "sign-in", "token_id": %q, "type": "siem-token-replay",
		"level": "high", "reason": "token replayed from a hosting provider", "expires_at": %q}`, claims.JTI, expiresIn(time.Hour)))
	if st != http.StatusCreated {
		t.Fatalf("report: %d %s", st, body)
	}
	if got := call(stolen); got != http.StatusForbidden {
		t.Fatalf("the reported token: %d, want 403", got)
	}
	if got := call(mine); got != http.StatusOK {
		t.Fatalf("another token of the user: %d, want 200", got)
	}
}

// TestConsoleShowsReportedDetections: the console's user page lists a
// reported detection with its source, and its Dismiss the risk clears
// it as it clears the built-in ones.
func TestConsoleShowsReportedDetections(t *testing.T) {
	s := startConsole(t)
	ctx := context.Background()
	if _, err := s.app.Risk.Report(ctx, "client:siem", "evt-9", riskservice.Report{User: bobName, Type: "siem-impossible-vpn",
		Level: "medium", Reason: "VPN sign-ins from two continents <script>", Evidence: map[string]string{"vpn": "corp-eu"},
		ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	_, page := get(t, c, s.base+"/admin/users/bob")
	for _, want := range []string{`id="user-risk">medium<`, `id="user-detections"`, "siem-impossible-vpn", "client:siem",
		"VPN sign-ins from two continents &lt;script&gt;", "corp-eu"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the user page lacks %q:\n%s", want, page)
		}
	}
	resp, body := s.postForm(t, c, "/admin/users/bob/risk", url.Values{"action": {"dismiss"}, "confirm": {"yes"}, "reason": {"false alarm"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dismiss: %d\n%s", resp.StatusCode, body)
	}
	_, page = get(t, c, s.base+"/admin/users/bob")
	if !strings.Contains(page, `id="user-risk">none<`) || strings.Contains(page, "siem-impossible-vpn") {
		t.Fatalf("after dismissal the page still shows the detection:\n%s", page)
	}
}
