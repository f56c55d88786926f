package gateway

import (
	"net/http"
	"net/url"
	"strings"
)

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
// and Spring do not), a header or query parameter naming another method
// or path, and, unless the route opts in, ';' parameters and characters
// outside ASCII in canonical path p. Both the built-in proxy and forward-auth go
// through it (in handle).
func (rt *route) admit(r *http.Request, p string) *refusal {
	if no := checkMethod(r.Method); no != nil {
		return no
	}
	if rereadHeader(r.Header) != "" {
		return &refusal{"This request names another method or address in a header (such as X-HTTP-Method-Override or X-Original-URL), which applications read differently; send the request with that method and address instead."}
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

// rereadHeader returns the name (as rereadHeaders spells it) of a header
// of rereadHeaders in h, or "". Rack, WSGI and CGI servers read "_" in a
// header name as "-", so X_HTTP_Method_Override counts too.
func rereadHeader(h http.Header) string {
	for k := range h {
		if len(k) < len("X-Http-Method") || (k[0] != 'X' && k[0] != 'x') {
			continue
		}
		name := strings.ReplaceAll(k, "_", "-")
		for _, o := range rereadHeaders {
			if strings.EqualFold(name, o) {
				return o
			}
		}
	}
	return ""
}

// hasQueryKey reports whether the raw query names key, splitting on
// both "&" and ";" (Rack 2 splits on either) and reading each name as
// the most lenient parser does (queryName), so "%5Fmethod",
// "a=1;_method=x" and PHP's ".method" count.
func hasQueryKey(raw, key string) bool {
	for raw != "" {
		var pair string
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		name, _, _ := strings.Cut(pair, "=")
		if queryName(name) == key {
			return true
		}
	}
	return false
}

// queryName is a raw query parameter name as PHP reads it into $_GET,
// where Symfony and Laravel look for _method: decoded, ended at a NUL
// byte (a C string), leading spaces dropped, ended at '[' (an array),
// and ' ' and '.' turned into '_'. So ".method", "+_method",
// "_method%00x" and "_method[]" all name _method there. Every other
// common parser reads a subset of these names as _method.
func queryName(name string) string {
	if strings.ContainsAny(name, "%+") {
		if decoded, err := url.QueryUnescape(name); err == nil {
			name = decoded
		} // a lenient parser keeps what it cannot decode
	}
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimLeft(name, " ")
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	if strings.ContainsAny(name, " .") {
		name = strings.NewReplacer(" ", "_", ".", "_").Replace(name)
	}
	return name
}

// checkMethod accepts only a method in canonical form: an RFC 9110
// token without lower-case letters. Methods are case-sensitive, but
// routers disagree (Werkzeug upper-cases them; nginx, Node and Rails
// refuse lower case; Go's ServeMux and Spring match them as sent), so a
// rule for POST could miss a "post" that an upstream runs as POST.
// Refusing is the one answer all of them agree with.
func checkMethod(m string) *refusal {
	if m == "" {
		return &refusal{"This request has no method."}
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		case c >= 'a' && c <= 'z':
			return &refusal{"The request method is not in upper case; send it in upper case (POST, not post)."}
		default:
			return &refusal{"The request method is not an HTTP token."}
		}
	}
	return nil
}
