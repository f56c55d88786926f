package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Gateway is the identity-aware reverse proxy: routes from a public host
// (and optional path prefix) to an upstream, with step-up rules.
type Gateway struct {
	Routes []GatewayRoute `yaml:"routes,omitempty"`
	// ReplayBodyLimit is the largest request body (bytes) kept across a
	// step-up so the user's form is replayed after it.
	ReplayBodyLimit int `yaml:"replay_body_limit"`
	// AssertionLifetime bounds the signed identity assertion upstreams get.
	AssertionLifetime Duration `yaml:"assertion_lifetime"`
	// UpstreamTimeout bounds waiting for an upstream's response headers.
	UpstreamTimeout Duration `yaml:"upstream_timeout"`
	// StripHeaders are removed from every incoming request before the
	// identity headers are added (X-Stepgate-* always are).
	StripHeaders []string `yaml:"strip_headers,omitempty"`
	// TrustedProxies are the peers (CIDRs or single addresses) that may
	// ask the forward-auth endpoints for a decision. The TCP peer address
	// is checked, never a header: anyone else could otherwise ask what a
	// request of their choosing would get, and collect identity headers.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// KeptRequests bounds the requests kept across a sign-in or step-up.
	KeptRequests KeptRequests `yaml:"kept_requests"`
}

// KeptRequests bounds what the gateway stores for requests waiting for a
// sign-in or step-up. Anyone can make it keep one (a form posted to a
// signed-in page without a session), so the bounds are counted in the
// store, across every node, and requests from clients with no session
// get a smaller budget.
type KeptRequests struct {
	// MaxCount and MaxBytes bound all kept requests at once: how many,
	// and their stored (encrypted) size.
	MaxCount int `yaml:"max_count"`
	MaxBytes int `yaml:"max_bytes"`
	// PerAddress is how many requests one client address (an IPv6 /64)
	// may have kept in each Window.
	PerAddress int      `yaml:"per_address"`
	Window     Duration `yaml:"window"`
	// Anonymous* are the smaller budget of requests from clients with no
	// session: largest body, share of the totals, and per address.
	AnonymousBodyLimit  int `yaml:"anonymous_body_limit"`
	AnonymousMaxCount   int `yaml:"anonymous_max_count"`
	AnonymousMaxBytes   int `yaml:"anonymous_max_bytes"`
	AnonymousPerAddress int `yaml:"anonymous_per_address"`
}

func defaultKeptRequests() KeptRequests {
	return KeptRequests{MaxCount: 1000, MaxBytes: 64 << 20, PerAddress: 30, Window: Duration(10 * time.Minute),
		AnonymousBodyLimit: 64 << 10, AnonymousMaxCount: 200, AnonymousMaxBytes: 8 << 20, AnonymousPerAddress: 10}
}

func (k KeptRequests) validate(ps *problems) {
	const path = "gateway.kept_requests."
	for _, f := range []struct {
		key string
		v   int
	}{{"max_count", k.MaxCount}, {"max_bytes", k.MaxBytes}, {"per_address", k.PerAddress}, {"anonymous_body_limit", k.AnonymousBodyLimit},
		{"anonymous_max_count", k.AnonymousMaxCount}, {"anonymous_max_bytes", k.AnonymousMaxBytes}, {"anonymous_per_address", k.AnonymousPerAddress}} {
		if f.v < 0 {
			ps.add(path+f.key, "must not be negative (0 keeps none); got %d", f.v)
		}
	}
	ps.positive(path+"window", k.Window, "10m")
	if k.AnonymousMaxCount > k.MaxCount {
		ps.add(path+"anonymous_max_count", "%d is more than max_count (%d); the anonymous budget is a share of the total: set it to %d or less", k.AnonymousMaxCount, k.MaxCount, k.MaxCount)
	}
	if k.AnonymousMaxBytes > k.MaxBytes {
		ps.add(path+"anonymous_max_bytes", "%d is more than max_bytes (%d); the anonymous budget is a share of the total: set it to %d or less", k.AnonymousMaxBytes, k.MaxBytes, k.MaxBytes)
	}
	if k.AnonymousPerAddress > k.PerAddress {
		ps.add(path+"anonymous_per_address", "%d is more than per_address (%d); the anonymous budget is a share of the total: set it to %d or less", k.AnonymousPerAddress, k.PerAddress, k.PerAddress)
	}
}

// GatewayRoute is one protected application.
type GatewayRoute struct {
	Name string `yaml:"name"`
	// From is the public URL the route answers: scheme, host (with port
	// when not the default) and an optional path prefix.
	From string `yaml:"from"`
	// To is the upstream URL. Empty for a route used only through
	// forward-auth (the proxy in front forwards the request itself).
	To string `yaml:"to"`
	// App is the app id policies target (defaults to the route name).
	App string `yaml:"app"`
	// Environment is the policy environment the route's requests are
	// evaluated against (default production).
	Environment string `yaml:"environment,omitempty"`
	// Challenge is the form of API challenges: rfc9470 (default) or
	// entra (insufficient_claims with a claims parameter).
	Challenge string `yaml:"challenge"`
	// IdentityHeaders is what the upstream is told of the user: all (the
	// default: the plain X-Stepgate-* headers and the signed assertion),
	// assertion (only X-Stepgate-Assertion, for an application that
	// verifies it), plain (the headers without the assertion, for an
	// application that trusts the network to the gateway) or none.
	IdentityHeaders string `yaml:"identity_headers,omitempty"`
	// AllowPathParameters lets paths with ';' parameters ("/a;v=1/b")
	// through; rules then match each segment without its parameters, as
	// Tomcat and Spring route. Refused with 400 otherwise.
	AllowPathParameters bool `yaml:"allow_path_parameters,omitempty"`
	// AllowNonASCIIPaths lets paths with characters outside ASCII (raw
	// or percent-encoded UTF-8) through; rules then match them folded
	// (NFKC and case). Refused with 400 otherwise.
	AllowNonASCIIPaths bool `yaml:"allow_non_ascii_paths,omitempty"`
	// AssertionAudience is the aud of the route's X-Stepgate-Assertion
	// (default: the origin of To, or of From for a forward-auth route).
	AssertionAudience string `yaml:"assertion_audience,omitempty"`
	// AssertionLifetime overrides gateway.assertion_lifetime for the route.
	AssertionLifetime Duration      `yaml:"assertion_lifetime,omitempty"`
	Rules             []GatewayRule `yaml:"rules,omitempty"`
}

// Bounds of an assertion's lifetime: long enough for the upstream to
// receive it, short enough that a captured one is soon worthless.
const (
	minAssertionLifetime = time.Second
	maxAssertionLifetime = 5 * time.Minute
)

// Identity header choices of a route.
const (
	IdentityAll       = "all"
	IdentityAssertion = "assertion"
	IdentityPlain     = "plain"
	IdentityNone      = "none"
)

// GatewayRule says what a path costs. The first matching rule wins; a
// request no rule matches needs a signed-in user.
type GatewayRule struct {
	// Path is exact ("/transfers", which also matches "/transfers/" and
	// "/transfers.json") or a prefix ending in "/*" ("/admin/*", which
	// also matches "/admin"); see docs/gateway.md, "How rules match".
	Path string `yaml:"path"`
	// Methods limits the rule to these HTTP methods; empty means all.
	Methods []string `yaml:"methods"`
	// Context is the authentication context the rule requests.
	Context string `yaml:"context"`
	// MaxAge requires a proof at most this old.
	MaxAge Duration `yaml:"max_age"`
	// Elevation single-use: a fresh proof authorizes exactly the request
	// that asked for it, nothing after it.
	Elevation string `yaml:"elevation"`
	// Allow anonymous: no sign-in needed.
	Allow string `yaml:"allow"`
}

// AppID is the app policies target for the route.
func (r GatewayRoute) AppID() string {
	if r.App != "" {
		return r.App
	}
	return r.Name
}

func defaultGateway() Gateway {
	return Gateway{ReplayBodyLimit: 1 << 20, AssertionLifetime: Duration(30 * time.Second), UpstreamTimeout: Duration(30 * time.Second),
		TrustedProxies: []string{"127.0.0.0/8", "::1/128"}, KeptRequests: defaultKeptRequests()}
}

// ParseTrustedProxy reads one gateway.trusted_proxies entry: a CIDR
// ("10.0.0.0/8") or a single address ("10.0.0.7", "::1").
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, fmt.Errorf("%q is not a CIDR; write it like 10.0.0.0/8, fd00::/8 or a single address like 10.0.0.7", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return p, fmt.Errorf("%q is not an IP address or CIDR; write it like 10.0.0.7 or 10.0.0.0/8", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		// Peers are compared in their IPv4 form, so a mapped range would
		// never match: say so rather than trust nobody silently.
		return p, fmt.Errorf("%q is an IPv4-mapped IPv6 range; write the IPv4 form, like 10.0.0.0/8", s)
	}
	if p.Masked() != p {
		return p, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func (g Gateway) validate(ps *problems, issuer string) {
	if g.ReplayBodyLimit < 0 || g.ReplayBodyLimit > 64<<20 {
		ps.add("gateway.replay_body_limit", "must be from 0 to 67108864 bytes (64 MiB); got %d", g.ReplayBodyLimit)
	}
	checkAssertionLifetime(ps, "gateway.assertion_lifetime", g.AssertionLifetime)
	ps.positive("gateway.upstream_timeout", g.UpstreamTimeout, "30s")
	for i, tp := range g.TrustedProxies {
		if _, err := ParseTrustedProxy(strings.TrimSpace(tp)); err != nil {
			ps.add(fmt.Sprintf("gateway.trusted_proxies[%d]", i), "%s", err)
		}
	}
	g.KeptRequests.validate(ps)
	if g.KeptRequests.AnonymousBodyLimit > g.ReplayBodyLimit {
		ps.add("gateway.kept_requests.anonymous_body_limit", "%d is more than gateway.replay_body_limit (%d); anonymous requests get the smaller budget: set it to %d or less", g.KeptRequests.AnonymousBodyLimit, g.ReplayBodyLimit, g.ReplayBodyLimit)
	}
	names, froms := map[string]int{}, map[string]int{}
	for i, r := range g.Routes {
		path := fmt.Sprintf("gateway.routes[%d]", i)
		if r.Name == "" {
			ps.add(path+".name", "is required; name the route, like bank")
		} else if first, dup := names[r.Name]; dup {
			ps.add(path+".name", "route %q is declared twice (also gateway.routes[%d])", r.Name, first)
		}
		names[r.Name] = i
		if err := checkFrom(r.From); err != nil {
			ps.add(path+".from", "%s", err)
		} else if shadowsIssuer(r.From, issuer) {
			ps.add(path+".from", "%q would take over Stepgate's own address %s; give the route its own host name or a path prefix that Stepgate does not use, like /apps/bank", r.From, issuer)
		} else if first, dup := froms[r.From]; dup {
			ps.add(path+".from", "%q is already the from of gateway.routes[%d]", r.From, first)
		}
		froms[r.From] = i
		if r.To != "" {
			if u, err := url.Parse(r.To); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				ps.add(path+".to", "%q is not an upstream URL; write it like http://127.0.0.1:9001", r.To)
			}
		}
		if r.Challenge != "" && r.Challenge != "rfc9470" && r.Challenge != "entra" {
			ps.add(path+".challenge", "%q is not a challenge form; use rfc9470 or entra", r.Challenge)
		}
		switch r.IdentityHeaders {
		case "", IdentityAll, IdentityAssertion, IdentityPlain, IdentityNone:
		default:
			ps.add(path+".identity_headers", "%q is not an identity header choice; use all, assertion, plain or none", r.IdentityHeaders)
		}
		if r.AssertionLifetime != 0 {
			checkAssertionLifetime(ps, path+".assertion_lifetime", r.AssertionLifetime)
		}
		if r.AssertionAudience != "" && strings.TrimSpace(r.AssertionAudience) != r.AssertionAudience {
			ps.add(path+".assertion_audience", "%q has surrounding spaces; write the audience exactly as the upstream checks it, like https://bank.internal", r.AssertionAudience)
		}
		for j, rule := range r.Rules {
			rule.validate(ps, fmt.Sprintf("%s.rules[%d]", path, j))
			if !r.AllowNonASCIIPaths && !isASCII(rule.Path) {
				ps.add(fmt.Sprintf("%s.rules[%d].path", path, j), "%q has characters outside ASCII, which the route refuses in requests; set allow_non_ascii_paths: true on the route or write the path in ASCII", rule.Path)
			}
		}
	}
}

func checkFrom(from string) error {
	u, err := url.Parse(from)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%q is not a URL a route can answer; write it like https://bank.example.com or http://bank.localhost:8080/app", from)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q may have only a scheme, a host and a path prefix", from)
	}
	return nil
}

func (r GatewayRule) validate(ps *problems, path string) {
	switch {
	case r.Path == "" || !strings.HasPrefix(r.Path, "/"):
		ps.add(path+".path", "%q must start with /, like /transfers or /admin/*", r.Path)
	case strings.Contains(strings.TrimSuffix(r.Path, "/*"), "*"):
		ps.add(path+".path", "%q: * is allowed only as a final /*", r.Path)
	case strings.Contains(r.Path, "..") || strings.Contains(r.Path, "//") || strings.Contains(r.Path, "%"):
		ps.add(path+".path", "%q must be a plain, normalized path (no .., //, or percent-encoding)", r.Path)
	case strings.Contains(r.Path, ";") || strings.Contains(r.Path, "\\"):
		ps.add(path+".path", "%q may not contain ; or a backslash: rules match paths without their ; parameters", r.Path)
	}
	for k, m := range r.Methods {
		if !slices.Contains(httpMethods, strings.ToUpper(m)) {
			ps.add(fmt.Sprintf("%s.methods[%d]", path, k), "%q is not an HTTP method; use %s", m, strings.Join(httpMethods, ", "))
		}
	}
	if r.Elevation != "" && r.Elevation != "single-use" {
		ps.add(path+".elevation", "%q is not an elevation; use single-use or leave it out", r.Elevation)
	}
	if r.Allow != "" && r.Allow != "anonymous" {
		ps.add(path+".allow", "%q is not supported; use anonymous or leave it out", r.Allow)
	}
	if r.Allow == "anonymous" && (r.Context != "" || r.Elevation != "" || r.MaxAge > 0) {
		ps.add(path+".allow", "an anonymous rule cannot also ask for a context, elevation or max_age")
	}
	if r.MaxAge < 0 {
		ps.add(path+".max_age", "must not be negative")
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// shadowsIssuer reports whether a route without a path prefix answers on
// the issuer's own host, which would hide Stepgate's pages behind it.
func shadowsIssuer(from, issuer string) bool {
	f, err1 := url.Parse(from)
	i, err2 := url.Parse(issuer)
	return err1 == nil && err2 == nil && issuer != "" && strings.EqualFold(f.Host, i.Host) && strings.Trim(f.Path, "/") == ""
}

func checkAssertionLifetime(ps *problems, path string, d Duration) {
	if d.D() < minAssertionLifetime || d.D() > maxAssertionLifetime {
		ps.add(path, "must be from %s to %s (got %s); the default is 30s", minAssertionLifetime, maxAssertionLifetime, d)
	}
}
