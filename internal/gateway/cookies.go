package gateway

import (
	"net/http"
	"slices"
	"strings"
)

// dropOwnSetCookies removes from an upstream's answer headers every
// Set-Cookie that would set or clear the gateway's own cookies: an
// application shares its host with the gateway, and must not be able to
// plant a gateway session of its choosing in a user's browser (or end
// one). Its other cookies pass untouched.
//
// The name is the one the browser will send the cookie back under
// (setCookieSentName), not the one the header appears to give: a
// nameless "=stepgate_gw=x" is stored with an empty name and sent back
// as "stepgate_gw=x", and under a longer Path it is sent before the real
// cookie, so the gateway would read the application's value first.
func (rt *route) dropOwnSetCookies(h http.Header) {
	values := h["Set-Cookie"]
	if !mayNameOwnCookie(values) {
		return
	}
	kept := slices.DeleteFunc(slices.Clone(values), func(v string) bool {
		return isOwnCookie(setCookieSentName(v))
	})
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// setCookieSentName is the name under which a browser sends back the
// cookie a Set-Cookie value sets, parsed as RFC 6265bis section 5.6
// parses it: the name-value pair ends at the first ';'; a pair without
// '=' is a nameless cookie whose value is the whole pair; name and value
// lose their surrounding whitespace. A nameless cookie goes back as its
// value alone, so its value's own name-value split is what a server
// reads.
func setCookieSentName(v string) string {
	pair, _, _ := strings.Cut(v, ";")
	name, value, ok := strings.Cut(pair, "=")
	if !ok {
		name, value = "", pair
	}
	if name = trimCookieName(name); name != "" {
		return name
	}
	sent, _, _ := strings.Cut(trimCookieName(value), "=")
	return trimCookieName(sent)
}

// trimCookieName removes what cookie parsers strip around a name or
// value: whitespace, control characters and double quotes. Trimming more
// than a browser does only ever removes more cookies.
func trimCookieName(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' })
}

// withoutOwnCookies returns the Cookie header values without the
// gateway's own cookies: the application never receives the credential
// that signs its users in through the gateway, so neither it nor its
// logs can replay one. Other cookies pass untouched.
func (rt *route) withoutOwnCookies(values []string) []string {
	if !mayNameOwnCookie(values) {
		return values
	}
	var out []string
	for _, v := range values {
		var kept strings.Builder
		for pair := range strings.SplitSeq(v, ";") {
			pair = strings.TrimSpace(pair)
			// Trimmed as cookie parsers trim it: "stepgate_gw =x" is the
			// gateway's cookie to them too.
			if name, _, _ := strings.Cut(pair, "="); pair == "" || isOwnCookie(trimCookieName(name)) {
				continue
			}
			if kept.Len() > 0 {
				kept.WriteString("; ")
			}
			kept.WriteString(pair)
		}
		if kept.Len() > 0 {
			out = append(out, kept.String())
		}
	}
	return out
}

// Names of the gateway's cookies on a route's host: its session cookie,
// the hand-off's binding cookie and the held answer's cookie, each with
// the __Host- prefix on an https route.
const (
	ownSessionCookie = "stepgate_gw"
	ownBindCookie    = "stepgate_gw_bind"
	ownAnswerCookie  = "stepgate_gw_answer"
)

// isOwnCookie reports whether name is, or could be read as, one of the
// gateway's cookies on any route: either name with or without a
// __Host- or __Secure- prefix, in any case. Browsers match those
// prefixes without regard to case, and a server that folds case would
// read "STEPGATE_GW" as the gateway's, so every such spelling is
// reserved; "my_stepgate_gw" is the application's own.
func isOwnCookie(name string) bool {
	for _, prefix := range []string{"__host-", "__secure-"} {
		if len(name) > len(prefix) && foldASCII(name[:len(prefix)], prefix) {
			name = name[len(prefix):]
			break
		}
	}
	return foldASCII(name, ownSessionCookie) || foldASCII(name, ownBindCookie) || foldASCII(name, ownAnswerCookie)
}

// foldASCII reports whether s is lower, a lower-case ASCII string, in
// any ASCII case. Unlike strings.EqualFold it does not read the long s
// or the Kelvin sign as ASCII letters, as no cookie parser does.
func foldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// mayNameOwnCookie is the quick check that lets headers which cannot
// name a gateway cookie through untouched (and unallocated): every
// spelling isOwnCookie accepts contains "stepgate_gw" in some case.
func mayNameOwnCookie(values []string) bool {
	return slices.ContainsFunc(values, func(v string) bool { return containsFold(v, ownSessionCookie) })
}

// containsFold reports whether s contains lower, a lower-case ASCII
// string, in any case, without allocating.
func containsFold(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		if foldASCII(s[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}
