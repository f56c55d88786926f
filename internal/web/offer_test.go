package web

import "testing"

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
