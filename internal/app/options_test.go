package app

import (
	"context"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gateway"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// fullGateway sets every key of the gateway section.
func fullGateway() config.Gateway {
	return config.Gateway{
		ReplayBodyLimit: 4096, AssertionLifetime: config.Duration(20 * time.Second), UpstreamTimeout: config.Duration(7 * time.Second),
		StripHeaders: []string{"X-Internal"}, TrustedProxies: []string{"10.0.0.0/8", " ::1 "},
		KeptRequests: config.KeptRequests{MaxCount: 9, MaxBytes: 99, PerAddress: 3, Window: config.Duration(time.Minute),
			AnonymousBodyLimit: 11, AnonymousMaxCount: 2, AnonymousMaxBytes: 22, AnonymousPerAddress: 1},
		Routes: []config.GatewayRoute{{
			Name: "bank", From: "https://bank.example/app", To: "http://127.0.0.1:9", App: "bank-app", Challenge: "entra",
			IdentityHeaders: config.IdentityAssertion, AllowPathParameters: true, AllowNonASCIIPaths: true,
			AssertionAudience: "bank-api", AssertionLifetime: config.Duration(5 * time.Second), Environment: "staging",
			Rules: []config.GatewayRule{
				{Path: "/admin/*", Methods: []string{"POST"}, Context: "c3", MaxAge: config.Duration(time.Minute), Elevation: "single-use"},
				{Path: "/public/*", Allow: "anonymous"},
			},
		}, {Name: "wiki", From: "https://wiki.example"}},
	}
}

func TestGatewayOptions(t *testing.T) {
	t.Parallel()
	got, err := GatewayOptions(fullGateway())
	if err != nil {
		t.Fatal(err)
	}
	want := gateway.Options{
		ReplayBodyLimit: 4096, AssertionLifetime: 20 * time.Second, UpstreamTimeout: 7 * time.Second,
		StripHeaders:   []string{"X-Internal"},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		KeptRequests: gateway.KeptRequests{MaxCount: 9, MaxBytes: 99, PerAddress: 3, Window: time.Minute,
			AnonymousBodyLimit: 11, AnonymousMaxCount: 2, AnonymousMaxBytes: 22, AnonymousPerAddress: 1},
		Routes: []gateway.Route{{
			Name: "bank", From: "https://bank.example/app", To: "http://127.0.0.1:9", App: "bank-app", Challenge: gateway.ChallengeEntra,
			IdentityHeaders: gateway.IdentityAssertion, AllowPathParameters: true, AllowNonASCIIPaths: true,
			AssertionAudience: "bank-api", AssertionLifetime: 5 * time.Second, Environment: "staging",
			Rules: []gateway.Rule{
				{Path: "/admin/*", Methods: []string{"POST"}, Context: "c3", MaxAge: time.Minute, SingleUse: true},
				{Path: "/public/*", Anonymous: true},
			},
		}, {Name: "wiki", From: "https://wiki.example", App: "wiki"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GatewayOptions:\n got %+v\nwant %+v", got, want)
	}
}

// TestGatewayOptionsCarryEveryField fails when a field is added to the
// gateway's options (or its routes, rules or kept-request bounds) and the
// translation leaves it unset: a configuration key the gateway would
// silently ignore.
func TestGatewayOptionsCarryEveryField(t *testing.T) {
	t.Parallel()
	got, err := GatewayOptions(fullGateway())
	if err != nil {
		t.Fatal(err)
	}
	assertAllSet(t, "Options", reflect.ValueOf(got))
	assertAllSet(t, "Route", reflect.ValueOf(got.Routes[0]))
	assertAllSet(t, "KeptRequests", reflect.ValueOf(got.KeptRequests))
	// A rule is either anonymous or costs something, never both: the
	// first costs, the second is anonymous.
	unset := map[int]map[string]bool{0: {"Anonymous": true}, 1: {"Methods": true, "Context": true, "MaxAge": true, "SingleUse": true}}
	for i, r := range got.Routes[0].Rules {
		v := reflect.ValueOf(r)
		for j := range v.NumField() {
			name := v.Type().Field(j).Name
			if v.Field(j).IsZero() != unset[i][name] {
				t.Errorf("rules[%d].%s: set %v, want %v", i, name, !v.Field(j).IsZero(), !unset[i][name])
			}
		}
	}
}

func assertAllSet(t *testing.T, what string, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("%s.%s is not translated from the configuration", what, v.Type().Field(i).Name)
		}
	}
}

func TestGatewayIdentityHeadersTranslated(t *testing.T) {
	t.Parallel()
	for word, want := range map[string]string{
		config.IdentityAll: gateway.IdentityAll, config.IdentityAssertion: gateway.IdentityAssertion,
		config.IdentityPlain: gateway.IdentityPlain, config.IdentityNone: gateway.IdentityNone, "": "",
	} {
		cfg := config.Gateway{Routes: []config.GatewayRoute{{Name: "r", From: "https://r.example", IdentityHeaders: word}}}
		got, err := GatewayOptions(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.Routes[0].IdentityHeaders != want {
			t.Errorf("identity_headers %q became %q, want %q", word, got.Routes[0].IdentityHeaders, want)
		}
	}
}

func TestGatewayOptionsRefusesABadTrustedProxy(t *testing.T) {
	t.Parallel()
	cfg := config.Gateway{TrustedProxies: []string{"127.0.0.1", "10.0.0.1/8"}}
	_, err := GatewayOptions(cfg)
	if err == nil || !strings.Contains(err.Error(), "gateway.trusted_proxies[1]") || !strings.Contains(err.Error(), "10.0.0.0/8") {
		t.Fatalf("a trusted proxy with host bits: %v, want an error naming the key and the fix", err)
	}
}

func TestClientsOptions(t *testing.T) {
	t.Parallel()
	if oidc.AdminScope != config.AdminScope {
		t.Fatalf("the provider's admin scope %q is not the configuration's %q", oidc.AdminScope, config.AdminScope)
	}
	o := ClientsOptions([]config.OIDCClient{
		{ID: "spa", Public: true, RedirectURIs: []string{"https://spa.example/cb"}},
		{ID: "web", Secret: strings.Repeat("s", 32), RedirectURIs: []string{"https://web.example/cb"}, Scopes: []string{config.AdminScope}},
	})
	if o.Check == nil || len(o.Declared) != 2 {
		t.Fatalf("options %+v: want two clients and a check", o)
	}
	spa, web := o.Declared[0], o.Declared[1]
	if spa.AuthMethod != oidc.AuthNone || web.AuthMethod != oidc.AuthSecretBasic || web.Secret == "" ||
		!reflect.DeepEqual(web.GrantTypes, []string{oidc.GrantAuthorizationCode, oidc.GrantRefreshToken}) || web.Scopes[0] != oidc.AdminScope {
		t.Fatalf("defaults not applied: %+v %+v", spa, web)
	}
}

// TestAddedClientsAreCheckedAsTheFileIs is an attack: a client added at
// run time with a redirect URI over plain http to another host (where a
// network attacker reads the code) or a private_key_jwt client without
// keys is refused exactly as in the configuration file.
func TestAddedClientsAreCheckedAsTheFileIs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	clients, err := oidc.NewClients(db, ClientsOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		add  oidc.NewClient
		ok   bool
	}{
		{"ok/https-redirect", oidc.NewClient{ID: "good", RedirectURIs: []string{"https://app.example/cb"}}, true},
		{"attack/plain-http-redirect", oidc.NewClient{ID: "evil", RedirectURIs: []string{"http://evil.example/cb"}}, false},
		{"attack/fragment-redirect", oidc.NewClient{ID: "frag", RedirectURIs: []string{"https://app.example/cb#x"}}, false},
		{"fail/public-client-credentials", oidc.NewClient{ID: "pub", Public: true, RedirectURIs: []string{"https://app.example/cb"},
			GrantTypes: []string{oidc.GrantClientCredentials}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := clients.Add(ctx, tc.add)
			if (err == nil) != tc.ok {
				t.Fatalf("Add(%s): %v, want ok=%v", tc.add.ID, err, tc.ok)
			}
		})
	}
}
