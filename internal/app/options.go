package app

import (
	"fmt"
	"strings"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gateway"
	"github.com/stepgate/stepgate/internal/oidc"
)

// GatewayOptions translates the gateway section of the configuration
// into the gateway's own options. The configuration is checked first
// (config.Validate); only a trusted proxy that does not parse is an
// error here, named by its key.
func GatewayOptions(cfg config.Gateway) (gateway.Options, error) {
	k := cfg.KeptRequests
	o := gateway.Options{
		ReplayBodyLimit: cfg.ReplayBodyLimit, AssertionLifetime: cfg.AssertionLifetime.D(), UpstreamTimeout: cfg.UpstreamTimeout.D(),
		StripHeaders: cfg.StripHeaders,
		KeptRequests: gateway.KeptRequests{MaxCount: k.MaxCount, MaxBytes: k.MaxBytes, PerAddress: k.PerAddress, Window: k.Window.D(),
			AnonymousBodyLimit: k.AnonymousBodyLimit, AnonymousMaxCount: k.AnonymousMaxCount,
			AnonymousMaxBytes: k.AnonymousMaxBytes, AnonymousPerAddress: k.AnonymousPerAddress},
	}
	for i, s := range cfg.TrustedProxies {
		p, err := config.ParseTrustedProxy(strings.TrimSpace(s))
		if err != nil {
			return gateway.Options{}, fmt.Errorf("gateway.trusted_proxies[%d]: %w", i, err)
		}
		o.TrustedProxies = append(o.TrustedProxies, p)
	}
	for _, r := range cfg.Routes {
		o.Routes = append(o.Routes, gatewayRoute(r))
	}
	return o, nil
}

// identityHeaders translates a route's identity_headers; the default
// (left out) is the gateway's default too.
var identityHeaders = map[string]string{
	config.IdentityAll: gateway.IdentityAll, config.IdentityAssertion: gateway.IdentityAssertion,
	config.IdentityPlain: gateway.IdentityPlain, config.IdentityNone: gateway.IdentityNone,
}

func gatewayRoute(r config.GatewayRoute) gateway.Route {
	out := gateway.Route{
		Name: r.Name, From: r.From, To: r.To, App: r.AppID(), IdentityHeaders: identityHeaders[r.IdentityHeaders],
		AllowPathParameters: r.AllowPathParameters, AllowNonASCIIPaths: r.AllowNonASCIIPaths,
		AssertionAudience: r.AssertionAudience, AssertionLifetime: r.AssertionLifetime.D(),
		Environment: r.Environment,
	}
	if r.Challenge == "entra" {
		out.Challenge = gateway.ChallengeEntra
	}
	for _, cr := range r.Rules {
		out.Rules = append(out.Rules, gateway.Rule{
			Path: cr.Path, Methods: cr.Methods, Context: cr.Context, MaxAge: cr.MaxAge.D(),
			SingleUse: cr.Elevation == "single-use", Anonymous: cr.Allow == "anonymous",
		})
	}
	return out
}

// ClientsOptions translates the configuration's oidc.clients into the
// client registry's options, with the configuration's check of a client
// for the ones added at run time.
func ClientsOptions(declared []config.OIDCClient) oidc.ClientsOptions {
	o := oidc.ClientsOptions{Check: checkClient}
	for _, c := range declared {
		o.Declared = append(o.Declared, oidc.ClientOptions{
			ID: c.ID, Name: c.Name, Secret: c.Secret, AuthMethod: c.EffectiveAuthMethod(), Public: c.Public, JWKSFile: c.JWKSFile,
			RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			GrantTypes: c.EffectiveGrantTypes(), Capabilities: c.Capabilities, Scopes: c.Scopes,
		})
	}
	return o
}

// checkClient validates a client added at run time as the file's
// clients are validated.
func checkClient(c oidc.ClientOptions) error {
	return config.CheckClient(config.OIDCClient{
		ID: c.ID, Name: c.Name, Secret: c.Secret, AuthMethod: c.AuthMethod, Public: c.Public, JWKSFile: c.JWKSFile,
		RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, Capabilities: c.Capabilities, Scopes: c.Scopes,
	})
}
