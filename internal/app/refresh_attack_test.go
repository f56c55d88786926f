package app_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
)

// TestAttackRefreshPastTheGrantsFacts keeps refreshing a grant, through
// the real server, past what it was made on: a context whose policy asks
// for MFA within the hour, refreshed after the hour with no new proof;
// and a grant refreshed from a country the administrator blocked since.
// The grant carries the proofs of the sign-in, and the refresh is judged
// from where it comes, so both are refused.
func TestAttackRefreshPastTheGrantsFacts(t *testing.T) {
	rig := startVerdictRig(t)

	t.Run("fail/context-past-its-sign-in-frequency", func(t *testing.T) {
		var c verdictCase
		c.User.Name, c.User.Methods = "reporter", []string{"totp"}
		c.Session = []verdictProof{{Method: "password", AMR: []string{"pwd"}, Age: 50 * time.Minute}, {Method: "totp", AMR: []string{"otp"}, Age: 50 * time.Minute}}
		rt := rig.refreshToken(t, c, url.Values{"acr_values": {"c4"}})
		st, out := rig.refresh(t, rt, verdictDefaultIP, "")
		if st != 200 {
			t.Fatalf("refresh within the hour: %d %s", st, out.ErrorDescription)
		}
		// A quarter of an hour on, the MFA proof is 65 minutes old.
		rig.a.OIDC.Now = func() time.Time { return time.Now().Add(15 * time.Minute) }
		t.Cleanup(func() { rig.a.OIDC.Now = time.Now })
		if st, out = rig.refresh(t, out.RefreshToken, verdictDefaultIP, ""); st != 400 || out.Error != "invalid_grant" ||
			!strings.Contains(out.ErrorDescription, string(reason.ControlsNotSatisfied)) {
			t.Errorf("refresh of c4 past its sign-in frequency: %d %s %q, want invalid_grant for %s", st, out.Error, out.ErrorDescription, reason.ControlsNotSatisfied)
		}
	})

	t.Run("fail/confidential-client-from-a-country-blocked-since", func(t *testing.T) {
		var c verdictCase
		c.User.Name = "traveller-de"
		c.Session = []verdictProof{{Method: "password", AMR: []string{"pwd"}, Age: time.Minute}}
		rt := rig.refreshToken(t, c, nil)
		rig.usePolicies(t, `named_locations:
  - name: germany
    countries: [DE]
policies:
  - name: block-germany
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {locations: {include: [germany]}}
    grant: block
`)
		// The client's server asks through the trusted proxy, which
		// forwards its address in Germany.
		if st, out := rig.refresh(t, rt, verdictProxyPeer, verdictDefaultIP); st != 400 || out.Error != "invalid_grant" ||
			!strings.Contains(out.ErrorDescription, string(reason.Blocked)) {
			t.Errorf("refresh from DE, DE now blocked: %d %s %q, want invalid_grant for %s", st, out.Error, out.ErrorDescription, reason.Blocked)
		}
	})
}

// TestAttackRefreshFromAnotherPlatform: the administrator blocks a
// platform (a mobile OS with an exploited flaw, say); a grant made on it
// must not keep refreshing. A confidential client refreshes from its own
// server, whose User-Agent says nothing about the user's device: the
// platform the user signed in on counts, as the address does.
func TestAttackRefreshFromAnotherPlatform(t *testing.T) {
	rig := startVerdictRig(t)
	const android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
	var c verdictCase
	c.User.Name, c.UserAgent = "on-android", android
	c.Session = []verdictProof{{Method: "password", AMR: []string{"pwd"}, Age: time.Minute}}
	rt := rig.refreshToken(t, c, nil)
	rig.usePolicies(t, `policies:
  - name: block-android
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {platforms: {include: [android]}}
    grant: block
`)
	if st, out := rig.refresh(t, rt, verdictDefaultIP, ""); st != 400 || out.Error != "invalid_grant" ||
		!strings.Contains(out.ErrorDescription, string(reason.Blocked)) {
		t.Errorf("confidential refresh of a grant made on Android, Android now blocked: %d %s %q, want invalid_grant for %s",
			st, out.Error, out.ErrorDescription, reason.Blocked)
	}
}

// refreshToken makes a user as c describes, with an SSO session of c's
// proofs, and gets a refresh token of client bank for a code request
// with params, made from the default address with c's User-Agent.
func (r *verdictRig) refreshToken(t *testing.T, c verdictCase, params url.Values) string {
	t.Helper()
	u := r.addUser(t, c)
	b := r.browser(c.userAgent())
	r.ssoSession(t, c, u, b)
	q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"},
		"scope": {"openid offline_access"}, "state": {"st"}}
	for k := range params {
		q.Set(k, params.Get(k))
	}
	code := redirectCode(b.do(t, "GET", verdictIssuer+"/oauth2/authorize?"+q.Encode()))
	if code == "" {
		t.Fatal("authorize gave no code")
	}
	tr := r.exchange(t, code)
	if tr.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return tr.RefreshToken
}

// refresh uses rt as client bank from address peer, with an
// X-Forwarded-For of forwarded when it is not empty.
func (r *verdictRig) refresh(t *testing.T, rt, peer, forwarded string) (int, tokenResponse) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req := httptest.NewRequest("POST", verdictIssuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.RemoteAddr = peer + ":40000"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth(bankClientID, bankSecret))
	if forwarded != "" {
		req.Header.Set("X-Forwarded-For", forwarded)
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		t.Fatalf("token endpoint: %d %s", rec.Code, rec.Body)
	}
	return rec.Code, tr
}

// usePolicies makes the rig enforce its policies plus extra.
func (r *verdictRig) usePolicies(t *testing.T, extra string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(verdictDir, "policies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base, probs := policy.Parse("policies.yaml", src)
	more, probs2 := policy.Parse("extra.yaml", []byte(extra))
	if len(probs)+len(probs2) > 0 {
		t.Fatal(probs, probs2)
	}
	if probs := r.a.Policies.Reload(nil, base, more); len(probs) > 0 {
		t.Fatal(probs)
	}
}

// TestAttackSignInLogReasonIsACode: a client that names acr values no
// session can reach gets them refused, and the sign-in log's reason is
// the catalogue's code, never the client's words (the refusal once
// recorded the error description, which quotes the acr values: a client
// could write "approved by the administrator" into the reason column).
func TestAttackSignInLogReasonIsACode(t *testing.T) {
	rig := startVerdictRig(t)
	var c verdictCase
	c.User.Name = "quoted"
	c.Session = []verdictProof{{Method: "password", AMR: []string{"pwd"}, Age: time.Minute}}
	u := rig.addUser(t, c)
	b := rig.browser(verdictDefaultUA)
	rig.ssoSession(t, c, u, b)
	const words = "approved-by-the-administrator"
	for _, params := range []url.Values{
		{"acr_values": {words}},
		{"claims": {`{"id_token":{"acr":{"essential":true,"values":["` + words + `"]}}}`}},
	} {
		q := url.Values{"client_id": {bankClientID}, "redirect_uri": {bankRedirect}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"}}
		for k := range params {
			q.Set(k, params.Get(k))
		}
		before := len(rig.signIns(t, u.ID))
		resp := b.do(t, "GET", verdictIssuer+"/oauth2/authorize?"+q.Encode())
		resp.Body.Close()
		if redirectCode(resp) != "" {
			t.Fatalf("%v: a code for an acr nobody declared", params)
		}
		entries := rig.signIns(t, u.ID)[before:]
		if len(entries) == 0 {
			t.Fatalf("%v: the refusal is not in the sign-in log", params)
		}
		for _, e := range entries {
			if !e.Reason.Known() || strings.Contains(string(e.Reason), words) {
				t.Errorf("%v: sign-in log reason %q, want a code of the catalogue", params, e.Reason)
			}
		}
	}
}
