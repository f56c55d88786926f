package gateway

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// errBadPath is the one answer to every path trick: the request is
// refused rather than guessed at.
var errBadPath = errors.New("the request path is not in canonical form")

// normalize turns a request's raw path into the one canonical form used
// both to match rules and to forward upstream, so the gateway and the
// upstream can never disagree about which resource is asked for. It
// decodes percent-escapes once and refuses, rather than repairs, every
// form that different servers read differently:
//
//   - dot segments ("/admin/../admin", "/./admin"), also percent-encoded
//     ("%2e%2e") and behind ';' parameters ("/x/..;/admin", which Tomcat
//     and Spring read as "/x/../admin", so as "/admin");
//   - encoded slashes or backslashes ("/admin%2f", "%5c"), which some
//     upstreams decode after routing;
//   - double encoding ("%252e"): a '%' that is still there after decoding;
//   - a raw '#', which no browser sends and which nginx and Werkzeug end
//     the path at ("/admin#x" is "/admin" to them);
//   - empty segments ("//admin", also "/;x/admin"), backslashes, control
//     characters and bytes that are not UTF-8 (Werkzeug would turn them
//     into U+FFFD, another path than the one the rules saw).
//
// Case is kept: matching rules ignores case instead (see matchKey), so
// "/ADMIN" meets the "/admin" rule on an upstream that folds case.
// Whether a route accepts ';' parameters and non-ASCII characters at all
// is the route's decision (route.admit), made after the route is found.
func normalize(rawPath string) (string, error) {
	if rawPath == "" || rawPath[0] != '/' {
		return "", errBadPath
	}
	lower := strings.ToLower(rawPath)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.IndexByte(rawPath, '#') >= 0 {
		return "", errBadPath
	}
	p, err := url.PathUnescape(rawPath)
	if err != nil {
		return "", errBadPath
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' || c == '%' {
			return "", errBadPath
		}
	}
	if !utf8.ValidString(p) || !canonicalSegments(p, true) {
		return "", errBadPath
	}
	return p, nil
}

// canonicalSegments reports whether path p has no dot segments and no
// empty segment but a final one. With params, a segment's ';' parameters
// are taken off first, as Tomcat, Jetty and Spring do before routing.
// It walks the segments in place: it runs on every request, and a
// split would allocate.
func canonicalSegments(p string, params bool) bool {
	rest := p[1:]
	for {
		s, after, more := strings.Cut(rest, "/")
		if params {
			s, _, _ = strings.Cut(s, ";")
		}
		if s == "." || s == ".." || (s == "" && more) {
			return false
		}
		if !more {
			return true
		}
		rest = after
	}
}

// matchKey is the form of canonical path p that rules and route prefixes
// are compared in. It is at least as wide as every common router's
// reading of p, so no router can serve p under a rule the key misses:
//
//   - every segment's ';' parameters are dropped, as Tomcat, Jetty and
//     Spring do ("/transfers;x=1" is "/transfers"), and so are spaces
//     around it and dots at its end;
//   - case is folded, as case-insensitive routers (Express's default,
//     Spring's and ASP.NET's options, IIS) do;
//   - beyond ASCII, compatibility forms are folded first (NFKC: the long
//     s "ſ" is "s", the Kelvin sign is "K", fullwidth letters are ASCII)
//     and case through upper then lower case, so "ı" and "İ" are "i", as
//     Java's equalsIgnoreCase reads them.
//
// A key that folding turned into a dot or empty segment is refused.
// Anonymous rules use narrowKey instead: what they let through without
// a sign-in must be narrow, not wide.
func matchKey(p string) (string, error) {
	key := p
	if !isASCII(key) {
		key = norm.NFKC.String(key)
		key = strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, key)
		key = norm.NFKC.String(key)
		// Folding can make what normalize refuses: fullwidth "％２ｆ"
		// is "%2f", "＼" a backslash, "＃" and "？" end the path.
		if key == "" || key[0] != '/' || strings.ContainsAny(key, "%\\") || hasControl(key) ||
			strings.Count(key, "#") > strings.Count(p, "#") || strings.Count(key, "?") > strings.Count(p, "?") {
			return "", errBadPath
		}
	} else {
		key = strings.ToLower(key)
	}
	if strings.ContainsAny(key, "; ") || strings.Contains(key, "./") || strings.HasSuffix(key, ".") {
		segs := strings.Split(key, "/")
		for i, s := range segs {
			s, _, _ = strings.Cut(s, ";")
			// Spring's AntPathMatcher trimmed the spaces around segments
			// (CVE-2016-5007), and Windows servers drop a segment's
			// trailing dots and spaces: "/admin%20" and "/admin." are
			// "/admin" to them.
			segs[i] = strings.TrimRight(strings.TrimLeft(s, " "), ". ")
		}
		key = strings.Join(segs, "/")
	}
	if key != p && !canonicalSegments(key, false) {
		return "", errBadPath
	}
	return key, nil
}

// narrowKey is the form of canonical path p that anonymous rules are
// compared in: ASCII letters folded, nothing else. A request that only
// some router reads as an anonymous path ("/public;x/admin", "/PUBLİC")
// does not get in without a sign-in.
func narrowKey(p string) string {
	var b []byte
	for i := 0; i < len(p); i++ {
		if c := p[i]; c >= 'A' && c <= 'Z' {
			if b == nil {
				b = []byte(p)
			}
			b[i] = c + 'a' - 'A'
		}
	}
	if b == nil {
		return p
	}
	return string(b)
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// escapePath is the canonical path as it goes on the wire upstream.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}
