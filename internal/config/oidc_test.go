package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOIDCClients(t *testing.T) {
	cfg, _ := mustResolve(t, `
oidc:
  access_token_lifetime: 5m
  clients:
    - id: bank
      secret: 0123456789abcdef0123456789abcdef
      redirect_uris: [https://bank.example.com/cb]
      capabilities: [cp1]
    - id: spa
      public: true
      redirect_uris: [http://localhost:3000/cb, com.example.app:/cb]
`, Flags{}, nil)
	if len(cfg.OIDC.Clients) != 2 || cfg.OIDC.AccessTokenLifetime.D().Minutes() != 5 {
		t.Fatalf("oidc = %+v", cfg.OIDC)
	}
	bank, spa := cfg.OIDC.Clients[0], cfg.OIDC.Clients[1]
	if bank.EffectiveAuthMethod() != "client_secret_basic" || !slices.Equal(bank.Capabilities, []string{"cp1"}) {
		t.Errorf("bank = %+v", bank)
	}
	if !spa.Public || spa.EffectiveAuthMethod() != "none" {
		t.Errorf("spa = %+v", spa)
	}
}

// TestOIDCClientProblems: every mistake in the client list is reported
// at once, with its key path.
func TestOIDCClientProblems(t *testing.T) {
	probs := problemsOf(t, `
oidc:
  signing_alg: HS256
  clients:
    - id: bank
      secret: short
      redirect_uris: [http://bank.example.com/cb, "https://bank.example.com/cb#frag"]
      colour: blue
    - id: spa
      public: "yes"
      redirect_uris: [https://spa.example.com/cb]
    - id: bank
      public: true
      secret: 0123456789abcdef0123456789abcdef
      redirect_uris: [https://x.example.com/cb]
`, Flags{}, nil)
	var got []string
	for _, p := range probs {
		got = append(got, p.Path)
	}
	for _, want := range []string{
		"oidc.signing_alg", "oidc.clients[0].secret", "oidc.clients[0].redirect_uris[0]",
		"oidc.clients[0].redirect_uris[1]", "oidc.clients[0].colour", "oidc.clients[1].public",
		"oidc.clients[2].id", "oidc.clients[2].secret",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no problem reported at %s; got %s", want, strings.Join(got, ", "))
		}
	}
}

func TestCheckRedirectURI(t *testing.T) {
	for _, ok := range []string{"https://app.example.com/cb", "http://localhost:8080/cb", "http://127.0.0.1/cb", "http://[::1]:9/cb", "com.example.app:/oauth"} {
		if err := CheckRedirectURI(ok); err != nil {
			t.Errorf("ok/%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/cb", "http://app.example.com/cb", "https://app.example.com/cb#x", "https://u@app.example.com/cb", "javascript:alert(1)", "https:///cb"} {
		if err := CheckRedirectURI(bad); err == nil {
			t.Errorf("fail/%q was accepted", bad)
		}
	}
}

// TestRefreshLifetimeWithinRevocation: a refresh token family may not
// outlive the record of its user's revocation, or a family revoked early
// in its life would work again once the record lapsed.
func TestRefreshLifetimeWithinRevocation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, lifetime string
		wantProblem    bool
	}{
		{name: "ok/default", lifetime: "720h"},
		{name: "ok/as-long-as-revocation-record", lifetime: "2160h"},
		{name: "fail/outlives-revocation-record", lifetime: "2161h", wantProblem: true},
		{name: "fail/a-year", lifetime: "8760h", wantProblem: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			content := "oidc:\n  refresh_token_lifetime: " + tc.lifetime + "\n"
			if !tc.wantProblem {
				cfg, _ := mustResolve(t, content, Flags{}, nil)
				if want, _ := time.ParseDuration(tc.lifetime); cfg.OIDC.RefreshTokenLifetime.D() != want {
					t.Fatalf("%s: lifetime %s", tc.lifetime, cfg.OIDC.RefreshTokenLifetime)
				}
				return
			}
			probs := problemsOf(t, content, Flags{}, nil)
			var msgs []string
			for _, p := range probs {
				if p.Path == "oidc.refresh_token_lifetime" {
					msgs = append(msgs, p.Message)
				}
			}
			if len(msgs) != 1 || !strings.Contains(msgs[0], "revocation") || !strings.Contains(msgs[0], "Use at most 2160h") {
				t.Fatalf("%s: problems %v, want one at oidc.refresh_token_lifetime naming the revocation record and the fix", tc.lifetime, probs)
			}
		})
	}
}
