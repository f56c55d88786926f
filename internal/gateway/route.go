package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/config"
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
	rules                      []rule
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
			allowParams: c.AllowPathParameters, allowNonASCII: c.AllowNonASCIIPaths,
		}
		if r.prefixKey, err = ruleKey(r.prefix); err != nil {
			return nil, fmt.Errorf("gateway route %s: from: %w", c.Name, err)
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
		if c.To != "" {
			if r.upstream, err = url.Parse(c.To); err != nil {
				return nil, fmt.Errorf("gateway route %s: %w", c.Name, err)
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

func compileRule(cr config.GatewayRule) (rule, error) {
	path, err := ruleKey(strings.TrimSuffix(cr.Path, "/*"))
	if err != nil {
		return rule{}, fmt.Errorf("rule %s: %w", cr.Path, err)
	}
	if cr.Allow == "anonymous" {
		path = strings.TrimSuffix(narrowKey(strings.TrimSuffix(cr.Path, "/*")), "/")
	}
	ru := rule{
		path: path, wildcard: strings.HasSuffix(cr.Path, "/*"),
		context: cr.Context, maxAge: cr.MaxAge.D(), singleUse: cr.Elevation == "single-use", anonymous: cr.Allow == "anonymous",
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
	return ru.wildcard && strings.HasPrefix(key, ru.path+"/")
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
// prefixes are compared in matchKey form, as rules are, so "/APP;x/admin"
// is not sent past the "/app" route to a route for the whole host.
func find(routes []*route, host, p string) *route {
	host = strings.ToLower(host)
	key, err := matchKey(p)
	if err != nil {
		key = strings.ToLower(p) // refused by the route's admit
	}
	for _, rt := range routes {
		if rt.host == host && (rt.prefixKey == "" || key == rt.prefixKey || strings.HasPrefix(key, rt.prefixKey+"/")) {
			return rt
		}
	}
	return nil
}

// refusal is why a request is refused before any rule is looked at, in
// words for the error page.
type refusal struct{ msg string }

// rereadHeaders are headers with which frameworks let a request name
// another method or path than its own: method overrides (Express's
// method-override, Spring's and Rails' filters, Google's APIs) and URL
// rewrites (Symfony's and Zend's X-Original-URL and X-Rewrite-URL, which
// IIS sets). The gateway judges the request's own method and path, so a
// header naming others could reach a handler its rule does not cover.
var rereadHeaders = []string{
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Original-Url", "X-Rewrite-Url",
}

// admit refuses what upstream routers read differently, whichever rule
// would apply: a method that is not the canonical upper-case token
// (Werkzeug upper-cases "post" and runs the POST handler; Go's ServeMux
// does not), a header or query parameter naming another method or path,
// and, unless the route opts in, ';' parameters and characters outside
// ASCII in canonical path p. Both the
// built-in proxy and forward-auth go through it (in handle).
func (rt *route) admit(r *http.Request, p string) *refusal {
	if no := checkMethod(r.Method); no != nil {
		return no
	}
	if h := rereadHeader(r.Header); h != "" {
		return &refusal{"This request names another method or address in its " + h + " header, which applications read differently; send the request with that method and address instead."}
	}
	if r.URL != nil && r.URL.RawQuery != "" && hasQueryKey(r.URL.RawQuery, "_method") {
		return &refusal{"This request names another method in its _method parameter, which applications read differently; send the request with that method instead."}
	}
	if !rt.allowParams && strings.IndexByte(p, ';') >= 0 {
		return &refusal{"The address of this request has ';' parameters, which applications read differently; the gateway accepts them only on routes with allow_path_parameters."}
	}
	if !rt.allowNonASCII && !isASCII(p) {
		return &refusal{"The address of this request has characters outside ASCII, which applications read differently; the gateway accepts them only on routes with allow_non_ascii_paths."}
	}
	if _, err := matchKey(p); err != nil {
		return &refusal{"The address of this request is not in a form the gateway accepts."}
	}
	return nil
}

// rereadHeader returns the name of a header of rereadHeaders in h, or
// "". Rack, WSGI and CGI servers read "_" in a header name as "-", so
// X_HTTP_Method_Override counts too.
func rereadHeader(h http.Header) string {
	for k := range h {
		if len(k) < len("X-Http-Method") || (k[0] != 'X' && k[0] != 'x') {
			continue
		}
		name := strings.ReplaceAll(k, "_", "-")
		for _, o := range rereadHeaders {
			if strings.EqualFold(name, o) {
				return k
			}
		}
	}
	return ""
}

// hasQueryKey reports whether the raw query names key, splitting on
// both "&" and ";" (Rack 2 splits on either) and decoding names, so
// "%5Fmethod" and "a=1;_method=x" count.
func hasQueryKey(raw, key string) bool {
	for raw != "" {
		var pair string
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		name, _, _ := strings.Cut(pair, "=")
		decoded, err := url.QueryUnescape(name)
		if err != nil {
			decoded = name // a lenient parser keeps what it cannot decode
		}
		if decoded == key {
			return true
		}
	}
	return false
}

// checkMethod accepts only a method in canonical form: an RFC 9110
// token without lower-case letters. Methods are case-sensitive, but
// routers disagree (Werkzeug and Rails upper-case them, nginx and Node
// refuse lower case, Go's ServeMux and Spring match them as sent), so a
// rule for POST could miss a "post" that an upstream runs as POST.
func checkMethod(m string) *refusal {
	if m == "" {
		return &refusal{"This request has no method."}
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		case c >= 'a' && c <= 'z':
			return &refusal{"The request method " + strconv.Quote(m) + " is not in upper case; send it as " + strconv.Quote(strings.ToUpper(m)) + "."}
		default:
			return &refusal{"The request method is not an HTTP token."}
		}
	}
	return nil
}
