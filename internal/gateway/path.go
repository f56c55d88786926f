package gateway

import (
	"errors"
	"net/url"
	"strings"
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
//     ("%2e%2e");
//   - encoded slashes or backslashes ("/admin%2f", "%5c"), which some
//     upstreams decode after routing;
//   - double encoding ("%252e"): a '%' that is still there after decoding;
//   - empty segments ("//admin"), backslashes and control characters.
//
// Case is kept: matching rules ignores case instead (see rule.matches),
// so "/ADMIN" meets the "/admin" rule on an upstream that folds case.
func normalize(rawPath string) (string, error) {
	if rawPath == "" || rawPath[0] != '/' {
		return "", errBadPath
	}
	lower := strings.ToLower(rawPath)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
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
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		last := i == len(segs)-1
		if s == "." || s == ".." || (s == "" && !last) {
			return "", errBadPath
		}
	}
	return p, nil
}

// escapePath is the canonical path as it goes on the wire upstream.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}
