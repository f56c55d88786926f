package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestWebAuthnValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		w      WebAuthn
		want   []string // problem paths; nil means valid
		wantIn string   // the first problem's message names the fix
	}{
		{name: "ok/host", w: WebAuthn{RPID: "sso.example.com", RPName: "Acme", Origins: []string{"https://sso.example.com"}}},
		{name: "ok/parent-domain-and-subdomains", w: WebAuthn{RPID: "example.com", RPName: "Acme", Origins: []string{"https://sso.example.com:8443", "https://example.com/"}}},
		{name: "ok/localhost-http", w: WebAuthn{RPID: "localhost", RPName: "Stepgate", Origins: []string{"http://localhost:8080"}}},
		{name: "ok/aaguids", w: WebAuthn{RPID: "example.com", RPName: "x", AllowedAAGUIDs: []string{"CB69481E-8FF7-4039-93EC-0A2729A154A8"}}},
		{name: "ok/off-for-ip-issuer", w: WebAuthn{RPName: "Stepgate"}},

		{name: "fail/rp-id-ipv4", w: WebAuthn{RPID: "192.0.2.1", RPName: "x"}, want: []string{"webauthn.rp_id"}, wantIn: "IP address"},
		{name: "fail/rp-id-ipv6", w: WebAuthn{RPID: "[::1]", RPName: "x"}, want: []string{"webauthn.rp_id"}, wantIn: "host name"},
		{name: "fail/rp-id-url", w: WebAuthn{RPID: "https://sso.example.com", RPName: "x"}, want: []string{"webauthn.rp_id"}, wantIn: "without scheme"},
		{name: "fail/rp-id-port", w: WebAuthn{RPID: "sso.example.com:443", RPName: "x"}, want: []string{"webauthn.rp_id"}},
		{name: "fail/rp-id-label", w: WebAuthn{RPID: "-x.example.com", RPName: "x"}, want: []string{"webauthn.rp_id"}},
		{name: "fail/rp-name-empty", w: WebAuthn{RPID: "example.com", RPName: " "}, want: []string{"webauthn.rp_name"}},
		{name: "fail/origin-other-domain", w: WebAuthn{RPID: "example.com", RPName: "x", Origins: []string{"https://example.net"}}, want: []string{"webauthn.origins[0]"}, wantIn: "subdomain"},
		// "evilexample.com" ends with "example.com" but is not a
		// subdomain of it: a suffix test without the dot would accept it.
		{name: "fail/origin-suffix-lookalike", w: WebAuthn{RPID: "example.com", RPName: "x", Origins: []string{"https://evilexample.com"}}, want: []string{"webauthn.origins[0]"}},
		{name: "fail/origin-http-remote", w: WebAuthn{RPID: "example.com", RPName: "x", Origins: []string{"http://sso.example.com"}}, want: []string{"webauthn.origins[0]"}, wantIn: "https"},
		{name: "fail/origin-path", w: WebAuthn{RPID: "example.com", RPName: "x", Origins: []string{"https://example.com/login"}}, want: []string{"webauthn.origins[0]"}},
		{name: "fail/origin-not-url", w: WebAuthn{RPID: "example.com", RPName: "x", Origins: []string{"example.com"}}, want: []string{"webauthn.origins[0]"}},
		{name: "fail/origins-without-rp-id", w: WebAuthn{RPName: "x", Origins: []string{"https://example.com"}}, want: []string{"webauthn.origins"}, wantIn: "webauthn.rp_id"},
		{name: "fail/aaguid", w: WebAuthn{RPID: "example.com", RPName: "x", AllowedAAGUIDs: []string{"yubikey"}}, want: []string{"webauthn.allowed_aaguids[0]"}, wantIn: "UUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ps problems
			tt.w.validate(&ps)
			var got []string
			for _, p := range ps {
				got = append(got, p.Path)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems = %v, want paths %v", ps, tt.want)
			}
			if tt.wantIn != "" && !strings.Contains(ps[0].Message, tt.wantIn) {
				t.Errorf("message %q does not contain %q", ps[0].Message, tt.wantIn)
			}
		})
	}
}

func TestWebAuthnDerive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		file     string
		environ  []string
		rpID     string
		origins  []string
		warnings int
	}{
		{name: "ok/from-issuer", file: "server:\n  issuer: https://SSO.example.com:8443/sso\n", rpID: "sso.example.com", origins: []string{"https://SSO.example.com:8443"}},
		{name: "ok/explicit-parent-domain", file: "server:\n  issuer: https://sso.example.com\nwebauthn:\n  rp_id: example.com\n", rpID: "example.com", origins: []string{"https://sso.example.com"}},
		{name: "ok/env", environ: []string{"STEPGATE_ISSUER=https://sso.example.com", "STEPGATE_WEBAUTHN_ORIGINS=https://a.sso.example.com,https://sso.example.com"}, rpID: "sso.example.com", origins: []string{"https://a.sso.example.com", "https://sso.example.com"}},
		{name: "ok/ip-issuer-turns-passkeys-off", file: "server:\n  issuer: http://127.0.0.1:8080\n", warnings: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, warnings := mustResolve(t, tt.file, Flags{}, tt.environ)
			if cfg.WebAuthn.RPID != tt.rpID || !reflect.DeepEqual(cfg.WebAuthn.Origins, tt.origins) {
				t.Errorf("rp_id %q origins %q, want %q %q", cfg.WebAuthn.RPID, cfg.WebAuthn.Origins, tt.rpID, tt.origins)
			}
			if len(warnings) != tt.warnings {
				t.Errorf("warnings = %q, want %d", warnings, tt.warnings)
			}
			if tt.warnings > 0 && !strings.Contains(warnings[0], "webauthn.rp_id") {
				t.Errorf("warning %q does not say how to turn passkeys on", warnings[0])
			}
		})
	}
	t.Run("fail/rp-id-ip-explained", func(t *testing.T) {
		t.Parallel()
		ps := problemsOf(t, "webauthn:\n  rp_id: 10.0.0.1\n", Flags{}, nil)
		if len(ps) == 0 || ps[0].Path != "webauthn.rp_id" || ps[0].Line != 2 || !strings.Contains(ps[0].Message, "browsers refuse IP addresses") {
			t.Errorf("problems = %v", ps)
		}
	})
}
