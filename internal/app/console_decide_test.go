package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestConsoleLivePolicyNoUsableMethod: the console's policy asks for a
// passkey and the administrator has a password and TOTP. Someone holding
// both (a phished password and code) is refused with a 403 that says
// what to add, on pages and forms alike, before and after a TOTP
// step-up: the console never offers the proofs it has as if they could
// meet the policy, and never lets them through. Once a passkey is
// registered the step-up page asks for it, and the passkey opens the
// console.
func TestConsoleLivePolicyNoUsableMethod(t *testing.T) {
	s := startConsole(t)
	secret, _, err := s.app.Methods.TOTP.EnrollNow(context.Background(), s.admin, "phone")
	if err != nil {
		t.Fatal(err)
	}
	s.saveDoc(t, "console", `policies:
  - name: console-needs-a-passkey
    state: enabled
    users: {include: {roles: [stepgate-admin]}}
    target: {apps: {include: [stepgate-console]}}
    grant: {controls: [{strength: phishing-resistant}]}
`)
	c := s.login(t, adminName, adminPassword)
	refused := func(what string) {
		t.Helper()
		resp, body := get(t, c, s.base+"/admin/users?q=b")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "/account/security") {
			t.Fatalf("%s: page status %d to %q, want a 403 that sends to the security page", what, resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = s.postForm(t, c, "/admin/users/bob/revoke", url.Values{"confirm": {"yes"}, "back": {"/admin/users/bob"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: form status %d to %q, want 403", what, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	refused("password only")
	s.stepUpTOTP(t, c, secret, "/admin/users?q=b")
	refused("password and TOTP")

	s.registerPasskey(t, s.admin)
	resp, _ := get(t, c, s.base+"/admin/users?q=b")
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/stepup" || loc.Query().Get("methods") != "webauthn" {
		t.Fatalf("with a passkey registered: status %d to %v, want the step-up page for the passkey alone", resp.StatusCode, loc)
	}
	s.passkeyProof(t, c, time.Second)
	if resp, body := get(t, c, s.base+"/admin/users?q=b"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the passkey: status %d\n%s", resp.StatusCode, body)
	}
}
