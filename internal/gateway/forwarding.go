package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// A client can claim to be somewhere else, or to have asked for
// something else, through the headers proxies use to tell an
// application about the original request: its address (X-Real-IP,
// True-Client-IP, X-Forwarded-For), its scheme, host and port
// (X-Forwarded-Proto, Forwarded), its path and method (X-Original-URL,
// X-Rewrite-URL, X-HTTP-Method-Override), or who it is from as another
// authenticating proxy would say (Remote-User, X-Auth-Request-Email).
// Applications and their frameworks believe them: an IP allow list
// passes a forged X-Real-IP, Symfony and IIS serve the path in
// X-Original-URL rather than the one the gateway judged, Express's
// method-override turns a judged POST into a DELETE. So none of them
// passes from a client to an upstream: the gateway removes every one,
// then sends its own X-Forwarded-For, X-Real-IP, X-Forwarded-Host and
// X-Forwarded-Proto.

// forwardingPrefixes are the lower-case name prefixes of client
// addressing and request-rewriting headers, and of the identity headers
// other authenticating proxies assert (an application moved behind
// Stepgate from oauth2-proxy, Authelia, Pomerium, Cloudflare Access,
// Google IAP, an AWS load balancer or Azure App Service may still
// believe them).
var forwardingPrefixes = []string{
	"x-forwarded", "x-original", "x-real-", "x-remote-", "x-originating-", "x-rewrite-",
	"x-cluster-client-", "true-client-", "cf-connecting-", "fastly-client-", "akamai-client-",
	"x-envoy-", "x-azure-", "x-appengine-", "x-arr-", "x-proxyuser-",
	"remote-", "x-auth-request-", "x-webauth-", "x-authenticated-", "x-pomerium-", "cf-access-",
	"x-goog-authenticated-", "x-goog-iap-", "x-amzn-oidc-", "x-ms-client-principal",
}

// forwardingNames are the other such headers, lower case.
var forwardingNames = []string{
	"forwarded", "forwarded-for", "client-ip", "x-client-ip", "x-host", "x-ip", "cf-pseudo-ipv4", "cf-visitor", "cf-ipcountry",
	"x-http-method-override", "x-http-method", "x-method-override", "x-http-destinationurl", "x-auth-user",
}

// clientForwarding reports whether header k is a client addressing or
// request-rewriting header that never passes from a client to an
// upstream. Case is ignored and an underscore counts as a dash, since
// CGI-style servers (WSGI, Rack, PHP) read X_Real_IP as X-Real-IP. It
// allocates nothing: it runs on every header of every proxied request.
func clientForwarding(k string) bool {
	if k == "" || !forwardingFirst[k[0]|0x20] {
		return false
	}
	for _, n := range forwardingNames {
		if len(k) == len(n) && headerFold(k, n) {
			return true
		}
	}
	for _, p := range forwardingPrefixes {
		if len(k) >= len(p) && headerFold(k[:len(p)], p) {
			return true
		}
	}
	return false
}

// forwardingFirst holds the first letters of forwardingPrefixes and
// forwardingNames, so most header names are passed at one lookup.
var forwardingFirst = func() (first [256]bool) {
	for _, list := range [][]string{forwardingPrefixes, forwardingNames} {
		for _, s := range list {
			first[s[0]] = true
		}
	}
	return first
}()

// headerFold reports whether header name k equals lower, a lower-case
// name of the same length, ignoring ASCII case and reading '_' as '-'.
func headerFold(k, lower string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// underscored reports whether header k has an underscore in its name.
// Such a header never passes from a client, as nginx drops it by
// default: CGI-style servers turn '_' and '-' into the same variable, so
// X_Stepgate_User would reach them as the identity header the gateway
// sets, and X_Forwarded_For as the address it sets.
func underscored(k string) bool { return strings.IndexByte(k, '_') >= 0 }

// clientAddr is the client's address as the gateway computes it: the
// peer, or behind trusted proxies the address they report.
func (g *Gateway) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if g.ClientIP != nil {
		if a := g.ClientIP(r); a.IsValid() {
			return addrText(a, host)
		}
		return ""
	}
	if err != nil {
		return ""
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return addrText(a.Unmap(), host)
	}
	return ""
}

// addrText is a's text: peer itself, without allocating, when that is
// how peer (the TCP peer's address, as r.RemoteAddr has it) spells a —
// the common case of a client with no proxy in front, on every request.
func addrText(a netip.Addr, peer string) string {
	var buf [64]byte
	if text := a.AppendTo(buf[:0]); string(text) == peer {
		return peer
	}
	return a.String()
}

// forwardingHeaders sets, through set, the gateway's own account of the
// request: the client's address, and the route's public host and
// scheme (as configured, whatever case or form the client's Host had).
func (g *Gateway) forwardingHeaders(r *http.Request, rt *route, set func(k, v string)) {
	if ip := g.clientAddr(r); ip != "" {
		set("X-Forwarded-For", ip)
		set("X-Real-Ip", ip)
	}
	set("X-Forwarded-Host", rt.host)
	set("X-Forwarded-Proto", rt.scheme)
}
