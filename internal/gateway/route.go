package gateway

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// route is a compiled gateway route.
type route struct {
	name     string
	app      string
	host     string // lower-case host[:port] the route answers
	prefix   string // path prefix, "" for the whole host
	scheme   string // of the public URL: cookies are Secure under https
	upstream *url.URL
	// upstreamOrigin is the upstream's scheme://host, host lower-cased.
	upstreamOrigin string
	entra          bool // API challenges in Entra's claims form
	// plain and assertion: which identity headers go upstream.
	plain, assertion bool
	// audience is the aud of the route's assertions; assertionLife how
	// long each is valid (0: gateway.assertion_lifetime).
	audience      string
	assertionLife time.Duration
	rules         []rule
}

// rule is a compiled gateway rule.
type rule struct {
	path      string // lower-case; exact, or a prefix when wildcard
	wildcard  bool
	methods   []string
	context   string
	maxAge    time.Duration
	singleUse bool
	anonymous bool
}

// defaultRule applies when no rule matches: a signed-in user.
var defaultRule = rule{}

func compileRoutes(cfg []config.GatewayRoute) ([]*route, error) {
	out := make([]*route, 0, len(cfg))
	for _, c := range cfg {
		from, err := url.Parse(c.From)
		if err != nil {
			return nil, fmt.Errorf("gateway route %s: %w", c.Name, err)
		}
		r := &route{
			name: c.Name, app: c.AppID(), host: strings.ToLower(from.Host), scheme: from.Scheme,
			prefix: strings.TrimSuffix(from.Path, "/"), entra: c.Challenge == "entra",
		}
		switch c.IdentityHeaders {
		case config.IdentityAssertion:
			r.assertion = true
		case config.IdentityPlain:
			r.plain = true
		case config.IdentityNone:
		default:
			r.plain, r.assertion = true, true
		}
		r.audience, r.assertionLife = c.AssertionAudience, c.AssertionLifetime.D()
		if r.audience == "" {
			r.audience = r.origin() // a forward-auth route's upstream is behind the proxy in front
		}
		if c.To != "" {
			if r.upstream, err = url.Parse(c.To); err != nil {
				return nil, fmt.Errorf("gateway route %s: %w", c.Name, err)
			}
			r.upstreamOrigin = r.upstream.Scheme + "://" + strings.ToLower(r.upstream.Host)
			if c.AssertionAudience == "" {
				// The upstream's own origin: an assertion for one
				// application is refused by every other one.
				r.audience = r.upstreamOrigin
			}
		}
		for _, cr := range c.Rules {
			ru := rule{
				path: strings.ToLower(strings.TrimSuffix(cr.Path, "/*")), wildcard: strings.HasSuffix(cr.Path, "/*"),
				context: cr.Context, maxAge: cr.MaxAge.D(), singleUse: cr.Elevation == "single-use", anonymous: cr.Allow == "anonymous",
			}
			for _, m := range cr.Methods {
				ru.methods = append(ru.methods, strings.ToUpper(m))
			}
			r.rules = append(r.rules, ru)
		}
		out = append(out, r)
	}
	// Longest prefix first, so /app/admin beats /app on the same host.
	slices.SortStableFunc(out, func(a, b *route) int { return len(b.prefix) - len(a.prefix) })
	return out, nil
}

// matches reports whether the rule covers method and canonical path p.
// Paths compare without case: an upstream that folds case must not serve
// "/ADMIN" past the "/admin" rule.
func (ru *rule) matches(method, p string) bool {
	if len(ru.methods) > 0 && !slices.Contains(ru.methods, method) {
		return false
	}
	lp := strings.ToLower(p)
	if !ru.wildcard {
		return lp == ru.path
	}
	return lp == ru.path || strings.HasPrefix(lp, ru.path+"/")
}

// ruleFor returns the first rule that matches, or the default.
func (rt *route) ruleFor(method, p string) *rule {
	for i := range rt.rules {
		if rt.rules[i].matches(method, p) {
			return &rt.rules[i]
		}
	}
	return &defaultRule
}

// origin is the route's public scheme://host.
func (rt *route) origin() string { return rt.scheme + "://" + rt.host }

// find returns the route for host and canonical path p, or nil.
func find(routes []*route, host, p string) *route {
	host = strings.ToLower(host)
	for _, rt := range routes {
		if rt.host == host && (rt.prefix == "" || p == rt.prefix || strings.HasPrefix(p, rt.prefix+"/")) {
			return rt
		}
	}
	return nil
}
