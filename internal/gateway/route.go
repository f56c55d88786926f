package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/policy"
)

// route is a compiled gateway route.
type route struct {
	name   string
	app    string
	host   string // lower-case host[:port] the route answers
	prefix string // path prefix, "" for the whole host
	// prefixKey is prefix in matchKey form, which find compares.
	prefixKey string
	scheme    string // of the public URL: cookies are Secure under https
	upstream  *url.URL
	entra     bool // API challenges in Entra's claims form
	// plain and assertion: which identity headers go upstream.
	plain, assertion bool
	// allowParams and allowNonASCII are the route's opt-ins to paths
	// with ';' parameters and with characters outside ASCII, which
	// upstream routers read differently and are refused otherwise.
	allowParams, allowNonASCII bool
	// upstreamOrigin is the upstream's scheme://host, host lower-cased.
	upstreamOrigin string
	// audience is the aud of the route's assertions; assertionLife how
	// long each is valid (0: gateway.assertion_lifetime).
	audience      string
	assertionLife time.Duration
	rules         []rule
	// policies is the set of the route's policy environment; nil is
	// production's, Deps.Policies.
	policies interface{ Load() *policy.Snapshot }
}

// snapshot returns the policy set the route's requests are decided by:
// its environment's, so a staging route never borrows production's
// policies nor the other way round.
func (g *Gateway) snapshot(rt *route) *policy.Snapshot {
	if rt.policies != nil {
		return rt.policies.Load()
	}
	return g.Policies.Load()
}

// rule is a compiled gateway rule.
type rule struct {
	// path is in matchKey form without a trailing slash ("" for "/"):
	// exact, or a prefix when wildcard.
	path      string
	wildcard  bool
	methods   []string // upper case; GET brings HEAD with it
	context   string
	maxAge    time.Duration
	singleUse bool
	anonymous bool
}

// defaultRule applies when no rule matches: a signed-in user.
var defaultRule = rule{}

func compileRoutes(cfg []Route) ([]*route, error) {
	out := make([]*route, 0, len(cfg))
	for _, c := range cfg {
		from, err := url.Parse(c.From)
		if err != nil {
			return nil, fmt.Errorf("gateway route %s: %w", c.Name, err)
		}
		r := &route{
			name: c.Name, app: c.app(), host: strings.ToLower(from.Host), scheme: from.Scheme,
			prefix: strings.TrimSuffix(from.Path, "/"), entra: c.Challenge == ChallengeEntra,
			allowParams: c.AllowPathParameters, allowNonASCII: c.AllowNonASCIIPaths,
		}
		if r.prefixKey, err = ruleKey(r.prefix); err != nil {
			return nil, fmt.Errorf("gateway route %s: from: %w", c.Name, err)
		}
		switch c.IdentityHeaders {
		case IdentityAssertion:
			r.assertion = true
		case IdentityPlain:
			r.plain = true
		case IdentityNone:
		default:
			r.plain, r.assertion = true, true
		}
		r.audience, r.assertionLife = c.AssertionAudience, c.AssertionLifetime
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
			ru, err := compileRule(cr)
			if err != nil {
				return nil, fmt.Errorf("gateway route %s: %w", c.Name, err)
			}
			r.rules = append(r.rules, ru)
		}
		out = append(out, r)
	}
	// Longest prefix first, so /app/admin beats /app on the same host.
	slices.SortStableFunc(out, func(a, b *route) int { return len(b.prefix) - len(a.prefix) })
	return out, nil
}

func compileRule(cr Rule) (rule, error) {
	path, err := ruleKey(strings.TrimSuffix(cr.Path, "/*"))
	if err != nil {
		return rule{}, fmt.Errorf("rule %s: %w", cr.Path, err)
	}
	if cr.Anonymous {
		path = strings.TrimSuffix(narrowKey(strings.TrimSuffix(cr.Path, "/*")), "/")
	}
	ru := rule{
		path: path, wildcard: strings.HasSuffix(cr.Path, "/*"),
		context: cr.Context, maxAge: cr.MaxAge, singleUse: cr.SingleUse, anonymous: cr.Anonymous,
	}
	for _, m := range cr.Methods {
		ru.methods = append(ru.methods, strings.ToUpper(m))
	}
	// Go's ServeMux, Werkzeug, Express, Rails and Spring all answer HEAD
	// with the GET handler, which runs (and has its side effects) even
	// though the body is dropped.
	if slices.Contains(ru.methods, http.MethodGet) && !slices.Contains(ru.methods, http.MethodHead) {
		ru.methods = append(ru.methods, http.MethodHead)
	}
	return ru, nil
}

// ruleKey is a configured path in matchKey form, without a trailing
// slash ("" for the root).
func ruleKey(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	key, err := matchKey(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(key, "/"), nil
}

// matches reports whether the rule covers method and a request's
// canonical path, compared as key (matchKey) or, for an anonymous rule,
// as narrow (narrowKey). The path of a rule that asks for something
// covers everything an upstream router may serve under it:
//
//   - "/x" covers "/x/" (Express and Spring match either; Flask and Go's
//     ServeMux redirect one to the other), and a rule written "/x/"
//     covers "/x";
//   - "/x" covers "/x.json", "/x.csv" and every "/x.<ext>" (Rails'
//     optional "(.:format)", Spring's suffix pattern matching);
//   - a wildcard "/x/*" covers "/x", "/x/", "/x.<ext>" and everything
//     under "/x/".
//
// An anonymous rule covers only its own path, with or without a slash
// (and below it when a wildcard), so that the widening serves the rules
// that protect and never the ones that open.
func (ru *rule) matches(method, key, narrow string) bool {
	if len(ru.methods) > 0 && !slices.Contains(ru.methods, method) {
		return false
	}
	if ru.anonymous {
		key = narrow
	}
	stem := strings.TrimSuffix(key, "/")
	if stem == ru.path || (!ru.anonymous && isFormatOf(stem, ru.path)) {
		return true
	}
	return ru.wildcard && isBelow(key, ru.path)
}

// isBelow reports whether key is under path: path, a slash, and more.
func isBelow(key, path string) bool {
	return len(key) > len(path) && key[len(path)] == '/' && strings.HasPrefix(key, path)
}

// isFormatOf reports whether stem is path with a format suffix,
// "/x.json" for "/x".
func isFormatOf(stem, path string) bool {
	return path != "" && len(stem) > len(path) && stem[len(path)] == '.' &&
		strings.HasPrefix(stem, path) && !strings.Contains(stem[len(path):], "/")
}

// ruleFor returns the first rule that matches canonical path p, or the
// default. p has been admitted (route.admit), so it has a key.
func (rt *route) ruleFor(method, p string) *rule {
	key, err := matchKey(p)
	if err != nil {
		key = strings.ToLower(p)
	}
	narrow := narrowKey(p)
	for i := range rt.rules {
		if rt.rules[i].matches(method, key, narrow) {
			return &rt.rules[i]
		}
	}
	return &defaultRule
}

// origin is the route's public scheme://host.
func (rt *route) origin() string { return rt.scheme + "://" + rt.host }

// find returns the route for host and canonical path p, or nil. Path
// prefixes are compared in matchKey form and cover what a wildcard rule
// for the prefix covers (the prefix, with a trailing slash or a format
// suffix, and everything below it), so neither "/APP;x/admin" nor
// "/app.json" (which Rails and Spring serve as "/app") is sent past the
// "/app" route to a route for the whole host, whose app may meet weaker
// policies.
func find(routes []*route, host, p string) *route {
	host = strings.ToLower(host)
	key, err := matchKey(p)
	if err != nil {
		key = strings.ToLower(p) // refused by the route's admit
	}
	for _, rt := range routes {
		if rt.host == host && (rt.prefixKey == "" || key == rt.prefixKey || isBelow(key, rt.prefixKey) ||
			isFormatOf(strings.TrimSuffix(key, "/"), rt.prefixKey)) {
			return rt
		}
	}
	return nil
}
