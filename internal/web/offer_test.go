package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// deepReturn nests target n times in /login?return_to=.
func deepReturn(n int, target string) string {
	for range n {
		target = "/login?" + url.Values{"return_to": {target}}.Encode()
	}
	return target
}

// TestEnrollReturn: a registration goes on to a local path only, and
// never to the security pages or the offer, whatever the spelling, so no
// link can send a browser off site or round a loop of registrations.
func TestEnrollReturn(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"ok/client-authorization", "/oauth2/authorize/resume?flow=abc", "/oauth2/authorize/resume?flow=abc"},
		{"ok/gateway-route", "/gateway/start?rd=x", "/gateway/start?rd=x"},
		{"ok/empty-is-the-security-page", "", ""},
		{"fail/other-site", "https://evil.example/", ""},
		{"fail/scheme-relative", "//evil.example/x", ""},
		{"fail/backslash", "/\\evil.example", ""},
		{"fail/the-account-page", "/account", ""},
		{"fail/the-security-page", "/account/security?added", ""},
		{"fail/another-registration", "/account/security/add?method=totp", ""},
		{"fail/dot-segments-to-a-registration", "/x/../account/security/add?method=totp", ""},
		{"fail/percent-encoded-registration", "/account/%73ecurity/add?method=totp", ""},
		{"fail/the-offer", "/account/register-offer?return_to=/x", ""},
		{"fail/the-offer-dotted", "/account/./register-offer", ""},
		{"fail/control-character", "/x\n/y", ""},
		// A page that forwards by its own return_to leads on as surely.
		{"ok/nested-way-on-to-an-application", "/login?return_to=%2Foauth2%2Fauthorize%2Fresume%3Fflow%3Dabc", "/login?return_to=%2Foauth2%2Fauthorize%2Fresume%3Fflow%3Dabc"},
		{"fail/step-up-into-another-registration", "/stepup?return_to=%2Faccount%2Fsecurity%2Fadd%3Fmethod%3Dtotp", ""},
		{"fail/sign-in-into-the-offer", "/login?return_to=%2Faccount%2Fregister-offer%3Freturn_to%3D%252Fx", ""},
		{"fail/second-return-to", "/stepup?return_to=%2Fx&return_to=%2Faccount%2Fsecurity%2Fadd%3Fmethod%3Dtotp", ""},
		{"fail/nested-twice", "/login?" + url.Values{"return_to": {"/stepup?" + url.Values{"return_to": {"/account/security/add?method=totp"}}.Encode()}}.Encode(), ""},
		{"fail/nested-off-site-falls-back-to-the-account", "/stepup?return_to=https%3A%2F%2Fevil.example%2F", ""},
		{"fail/nested-too-deep", deepReturn(6, "/x"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := enrollReturn(tc.in); got != tc.want {
				t.Errorf("enrollReturn(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestAttackEnrollWayOn: through the pages themselves, a registration
// started with a hostile return_to (off site, into another registration,
// markup) shows it nowhere and finishes on the security page; the form
// post's own return_to is checked again, since a client writes it as it
// likes; a way on to an application is kept through the page and the
// finish.
func TestAttackEnrollWayOn(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	bob := rg.addUser("bob")
	secret := rg.enrollTOTP(bob)
	b := rg.browser()
	b.signIn("bob")
	b.stepUpTOTP(secret)
	for _, tc := range []struct{ name, returnTo, want string }{
		{"ok/application", "/oauth2/authorize/resume?flow=a%22b", "/oauth2/authorize/resume?flow=a%22b"},
		{"fail/other-site", "https://evil.example/", "/account/security?added"},
		{"fail/scheme-relative", "//evil.example/", "/account/security?added"},
		{"fail/backslash", "/\\evil.example/", "/account/security?added"},
		{"fail/tab-scheme-relative", "/\t/evil.example/", "/account/security?added"},
		// A local path with markup leads on, escaped in the page.
		{"ok/markup-escaped", "/x\"><script>alert(1)</script>", "/x\"><script>alert(1)</script>"},
		{"fail/step-up-into-another-registration", "/stepup?return_to=%2Faccount%2Fsecurity%2Fadd%3Fmethod%3Dtotp", "/account/security?added"},
		{"fail/the-offer", "/account/register-offer?return_to=%2Fx", "/account/security?added"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.do("GET", "/account/security/add?"+url.Values{"method": {"recovery-code"}, "return_to": {tc.returnTo}}.Encode(), nil)
			cer := rigCeremonyRe.FindStringSubmatch(body)
			if resp.StatusCode != http.StatusOK || cer == nil {
				t.Fatalf("the registration did not start: %d\n%s", resp.StatusCode, body)
			}
			if strings.Contains(body, "<script>alert") || strings.Contains(body, "evil.example") {
				t.Fatalf("the page shows the hostile way on:\n%s", body)
			}
			hidden := regexp.MustCompile(`name="return_to" value="([^"]*)"`).FindStringSubmatch(body)
			if tc.want == "/account/security?added" && hidden != nil {
				t.Fatalf("the page carries a refused way on: %q", hidden[1])
			}
			if tc.want != "/account/security?added" && (hidden == nil || html.UnescapeString(hidden[1]) != tc.want) {
				t.Fatalf("the page's way on is %q, want %q", hidden, tc.want)
			}
			// The client posts the hostile value itself, whatever the
			// page carried.
			resp, body = b.do("POST", "/account/security/add", url.Values{"ceremony": {cer[1]}, "return_to": {tc.returnTo}})
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.want {
				t.Fatalf("finish: %d to %q, want %q\n%s", resp.StatusCode, resp.Header.Get("Location"), tc.want, body)
			}
		})
	}
}
