package app_test

import (
	"context"
	"encoding/json"
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
)

// Device clients: a public command line and a confidential TV app, both
// with the device authorization grant.
const (
	deviceGrant  = "urn:ietf:params:oauth:grant-type:device_code"
	cliClientID  = "cli"
	tvClientID   = "tv"
	tvSecret     = "tv-secret-tv-secret-tv-secret-tv-secret-0"
	devicePolicy = `
policies:
  - name: cli-needs-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [cli]}}
    grant: {controls: [mfa]}
`
)

// startDevice starts an OIDC test server with the device clients, polled
// every second.
func startDevice(t *testing.T) *oidcServer {
	t.Helper()
	return startOIDC(t, func(cfg *config.Config) {
		cfg.OIDC.Device.Interval = config.Duration(time.Second)
		cfg.OIDC.Clients = append(cfg.OIDC.Clients,
			config.OIDCClient{ID: cliClientID, Name: "Command line", Public: true, GrantTypes: []string{deviceGrant, "refresh_token"}},
			config.OIDCClient{ID: tvClientID, Name: "TV", Secret: tvSecret, GrantTypes: []string{deviceGrant}},
		)
	})
}

// deviceStart asks for a device code as the command line client.
func (s *oidcServer) deviceStart(t *testing.T, scope string) (deviceCode, userCode string) {
	t.Helper()
	resp, body := post(t, http.DefaultClient, s.base+"/oauth2/device_authorization", url.Values{"client_id": {cliClientID}, "scope": {scope}})
	var out struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("device authorization: %d %s", resp.StatusCode, body)
	}
	return out.DeviceCode, out.UserCode
}

// devicePoll polls for the command line client.
func (s *oidcServer) devicePoll(t *testing.T, deviceCode string) (int, tokenResponse) {
	t.Helper()
	return s.tokenRequest(t, url.Values{"grant_type": {deviceGrant}, "device_code": {deviceCode}, "client_id": {cliClientID}}, cliClientID, "")
}

// deviceForm opens the device page of code in b and returns its CSRF
// token, failing unless it asks to approve or deny.
func (s *oidcServer) deviceForm(t *testing.T, b *http.Client, code string) string {
	t.Helper()
	resp, body := get(t, b, s.base+"/device?user_code="+url.QueryEscape(code))
	m := csrfRe.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(body, `id="device-approve"`) || !strings.Contains(body, "Command line") {
		t.Fatalf("device page for %s: %d\n%s", code, resp.StatusCode, body)
	}
	return m[1]
}

// deviceAnswer posts an answer with csrf.
func (s *oidcServer) deviceAnswer(t *testing.T, b *http.Client, csrf, code, decision string) (*http.Response, string) {
	t.Helper()
	return post(t, b, s.base+"/device", url.Values{"csrf_token": {csrf}, "user_code": {code}, "decision": {decision}})
}

// deviceLog returns the sign-in log's oidc entries of the command line
// client, oldest first, as decision:reason.
func (s *oidcServer) deviceLog(t *testing.T) []string {
	t.Helper()
	if err := s.app.SignIns.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.app.Store.ListSignIns(context.Background(), store.SignInQuery{App: cliClientID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(rows) - 1; i >= 0; i-- {
		if e, _ := audit.Decode(rows[i]); e.Source == "oidc" {
			out = append(out, e.Decision+":"+string(e.Reason))
		}
	}
	return out
}

// TestDeviceApprovalStepsUp: a policy asks for MFA for the command line
// client. Approving with a password-only session is challenged: the page
// sends the user to step up with the authenticator app, the device is
// still pending meanwhile, and after the step-up the page asks again;
// the approval then gives tokens that carry the new proof. The sign-in
// log has the challenge and the allow.
func TestDeviceApprovalStepsUp(t *testing.T) {
	s := startDevice(t)
	s.usePolicies(t, devicePolicy)
	b := browser(t)
	s.signIn(t, b, "/account")
	secret := s.enrollTOTP(t, b)
	dc, uc := s.deviceStart(t, "openid offline_access")

	// The page with the Approve button cannot be framed (clickjacking).
	if resp, _ := get(t, b, s.base+"/device?user_code="+url.QueryEscape(uc)); resp.Header.Get("X-Frame-Options") != "DENY" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("device page headers %v: want it unframeable", resp.Header)
	}
	resp, _ := s.deviceAnswer(t, b, s.deviceForm(t, b, uc), uc, "approve")
	loc, _ := resp.Location()
	back := "/device?user_code=" + url.QueryEscape(uc)
	if loc == nil || loc.Path != "/stepup" || loc.Query().Get("return_to") != back || loc.Query().Get("methods") != "totp" {
		t.Fatalf("approval with a password only: redirect %v, want the step-up page with totp, back to %s", loc, back)
	}
	if status, tok := s.devicePoll(t, dc); status != http.StatusBadRequest || tok.Error != "authorization_pending" {
		t.Fatalf("poll during the step-up: %d %s", status, tok.Error)
	}
	_, body := get(t, b, s.base+loc.RequestURI())
	csrf, cer := formOf(t, body)
	resp, _ = post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
		"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {back}})
	if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != back {
		t.Fatalf("step-up: %d to %q, want back to %s", resp.StatusCode, got, back)
	}
	resp, body = s.deviceAnswer(t, b, s.deviceForm(t, b, uc), uc, "approve")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Device signed in") {
		t.Fatalf("approval after the step-up: %d\n%s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond) // the interval
	status, tok := s.devicePoll(t, dc)
	if status != http.StatusOK || tok.RefreshToken == "" {
		t.Fatalf("poll after approval: %d %s %s", status, tok.Error, tok.ErrorDescription)
	}
	claims := jwtPart(t, tok.AccessToken, 1)
	prf, _ := json.Marshal(claims["prf"])
	if claims["sub"] != s.user.ID || !strings.Contains(string(prf), `"m":"totp"`) {
		t.Fatalf("access token claims %v: want alice with the totp proof in prf", claims)
	}
	// The refresh is judged by the same policy on the same proofs.
	status, ref := s.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {cliClientID}}, cliClientID, "")
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %s %s", status, ref.Error, ref.ErrorDescription)
	}
	if got, want := s.deviceLog(t), []string{"challenge:controls-not-satisfied", "allow:"}; !slices.Equal(got, want) {
		t.Fatalf("sign-in log %v, want %v", got, want)
	}
}

// TestDeviceApprovalBlockedByPolicy: with no method that can give the
// MFA the policy asks for, approving is refused, the page says why and
// leads on, the device hears access_denied at once, and the sign-in log
// has the block.
func TestDeviceApprovalBlockedByPolicy(t *testing.T) {
	s := startDevice(t)
	s.usePolicies(t, devicePolicy)
	b := browser(t)
	s.signIn(t, b, "/account")
	dc, uc := s.deviceStart(t, "openid")
	resp, body := s.deviceAnswer(t, b, s.deviceForm(t, b, uc), uc, "approve")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "does not allow this") || !strings.Contains(body, `href="/account"`) {
		t.Fatalf("blocked approval: %d\n%s", resp.StatusCode, body)
	}
	if status, tok := s.devicePoll(t, dc); status != http.StatusBadRequest || tok.Error != "access_denied" {
		t.Fatalf("poll after a block: %d %s", status, tok.Error)
	}
	if got := s.deviceLog(t); len(got) != 1 || !strings.HasPrefix(got[0], "block:") {
		t.Fatalf("sign-in log %v, want one block", got)
	}
}

// TestDeviceAnswerFormAttacks: the answer needs the CSRF token; a
// replayed approval (the same form posted again) finds the request
// answered and issues nothing more; a denial is final and logged with
// its reason.
func TestDeviceAnswerFormAttacks(t *testing.T) {
	s := startDevice(t)
	b := browser(t)
	s.signIn(t, b, "/account")

	dc, uc := s.deviceStart(t, "openid")
	csrf := s.deviceForm(t, b, uc)
	if resp, _ := s.deviceAnswer(t, b, "forged", uc, "approve"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("approval without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if status, tok := s.devicePoll(t, dc); tok.Error != "authorization_pending" {
		t.Fatalf("after a forged approval: %d %s, want still pending", status, tok.Error)
	}
	if resp, body := s.deviceAnswer(t, b, csrf, uc, "approve"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Device signed in") {
		t.Fatalf("approval: %d\n%s", resp.StatusCode, body)
	}
	resp, body := s.deviceAnswer(t, b, csrf, uc, "approve")
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "already approved or denied") || !strings.Contains(body, `name="user_code"`) {
		t.Fatalf("replayed approval: %d\n%s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond)
	if status, _ := s.devicePoll(t, dc); status != http.StatusOK {
		t.Fatalf("redemption: %d", status)
	}
	if status, tok := s.devicePoll(t, dc); tok.Error != "invalid_grant" {
		t.Fatalf("second redemption: %d %s, want invalid_grant", status, tok.Error)
	}

	dc2, uc2 := s.deviceStart(t, "openid")
	if resp, body := s.deviceAnswer(t, b, s.deviceForm(t, b, uc2), uc2, "deny"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Request denied") {
		t.Fatalf("denial: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := s.deviceAnswer(t, b, csrf, uc2, "approve"); resp.StatusCode != http.StatusGone {
		t.Fatalf("approval after a denial: %d, want 410", resp.StatusCode)
	}
	if status, tok := s.devicePoll(t, dc2); tok.Error != "access_denied" {
		t.Fatalf("poll after a denial: %d %s", status, tok.Error)
	}
	if got, want := s.deviceLog(t), []string{"allow:", "block:device-denied-by-user"}; !slices.Equal(got, want) {
		t.Fatalf("sign-in log %v, want %v", got, want)
	}
}

// TestDevicePagesLeadOn: the page is behind sign-in and comes back to
// the code; an unknown, malformed or expired code each has its own page
// with the form to enter another.
func TestDevicePagesLeadOn(t *testing.T) {
	s := startDevice(t)
	b := browser(t)
	resp, _ := get(t, b, s.base+"/device?user_code=BCDF-GHJK")
	if loc := resp.Header.Get("Location"); loc != "/login?return_to="+url.QueryEscape("/device?user_code=BCDF-GHJK") {
		t.Fatalf("signed out: redirect %q, want sign-in and back", loc)
	}
	s.signIn(t, b, "/account")
	for _, tc := range []struct {
		name, code string
		status     int
		says       string
	}{
		{"fail/unknown", "BCDF-GHJK", http.StatusNotFound, "No device is waiting"},
		{"fail/malformed", "HELLO", http.StatusBadRequest, "a code has 8 letters"},
		{"ok/empty", "", http.StatusOK, "Enter the code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, b, s.base+"/device?user_code="+url.QueryEscape(tc.code))
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) || !strings.Contains(body, `name="user_code"`) {
				t.Fatalf("%s: %d\n%s", tc.code, resp.StatusCode, body)
			}
		})
	}
}

var deviceErrorRe = regexp.MustCompile(`id="device-error">([^<]*)<`)

// TestDeviceUserCodeBruteForce performs the guessing of user codes
// through the page: a signed-in attacker gets six wrong codes, then
// every code is refused, even the victim's real one, which stays
// pending for its device.
func TestDeviceUserCodeBruteForce(t *testing.T) {
	s := startDevice(t)
	dc, victim := s.deviceStart(t, "openid")
	b := browser(t)
	s.signIn(t, b, "/account")
	refusedAt := 0
	for i := range 10 {
		guess := strings.Repeat(string("BCDFGHJKLM"[i]), 4) + "-ZZZZ"
		resp, body := get(t, b, s.base+"/device?user_code="+guess)
		if resp.StatusCode == http.StatusTooManyRequests {
			refusedAt = i
			if m := deviceErrorRe.FindStringSubmatch(body); m == nil || !strings.Contains(m[1], "Too many wrong codes") {
				t.Fatalf("throttled page:\n%s", body)
			}
			break
		}
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	if refusedAt != 6 {
		t.Fatalf("refused from guess %d, want after 6 wrong codes", refusedAt)
	}
	if resp, _ := get(t, b, s.base+"/device?user_code="+url.QueryEscape(victim)); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the victim's code after the limit: %d, want 429", resp.StatusCode)
	}
	if status, tok := s.devicePoll(t, dc); tok.Error != "authorization_pending" {
		t.Fatalf("the victim's device: %d %s, want still pending", status, tok.Error)
	}
	// The guessing is in the sign-in log: six wrong codes, then the
	// throttle.
	if err := s.app.SignIns.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.app.Store.ListSignIns(context.Background(), store.SignInQuery{UserID: s.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, row := range rows {
		if e, _ := audit.Decode(row); e.Source == "oidc" {
			counts[e.Decision+":"+string(e.Reason)]++
		}
	}
	if counts["failure:invalid-proof"] != 6 || counts["throttled:too-many-failures"] != 2 {
		t.Fatalf("sign-in log of the guessing: %v, want 6 wrong codes and 2 throttled", counts)
	}
}

// TestDeviceApprovalRevokedBeforeRedemption: the user approves, then
// their sessions and tokens are revoked (sign-out everywhere, a stolen
// account) before the device polls: the device gets nothing.
func TestDeviceApprovalRevokedBeforeRedemption(t *testing.T) {
	s := startDevice(t)
	b := browser(t)
	s.signIn(t, b, "/account")
	dc, uc := s.deviceStart(t, "openid")
	if resp, _ := s.deviceAnswer(t, b, s.deviceForm(t, b, uc), uc, "approve"); resp.StatusCode != http.StatusOK {
		t.Fatalf("approval: %d", resp.StatusCode)
	}
	if err := s.app.Revoker.RevokeUser(context.Background(), s.user.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if status, tok := s.devicePoll(t, dc); status != http.StatusBadRequest || tok.Error != "invalid_grant" {
		t.Fatalf("poll after the revocation: %d %s, want invalid_grant", status, tok.Error)
	}
}
