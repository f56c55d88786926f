// Package httpx holds small HTTP helpers shared by every feature: security
// headers, client IP resolution behind trusted proxies, and the one place
// where errors become HTTP statuses (StatusOf, over the kind each sentinel
// error declares with package errkind; Fail for a server fault's log line
// and incident id).
package httpx

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// secureHeader is a header SecureHeaders sets on every response. Its
// name is canonical and its value a slice whose length is its capacity,
// shared by every response: setting it allocates nothing, and a
// handler's Add copies it before appending, Set replaces it, so no
// response can change another's.
type secureHeader struct {
	name  string
	value []string
}

func newSecureHeader(name, value string) secureHeader {
	return secureHeader{name: http.CanonicalHeaderKey(name), value: []string{value}[:1:1]}
}

var (
	secureHeaders = [...]secureHeader{
		newSecureHeader("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
		newSecureHeader("X-Frame-Options", "DENY"),
		newSecureHeader("X-Content-Type-Options", "nosniff"),
		newSecureHeader("Referrer-Policy", "no-referrer"),
		newSecureHeader("Cross-Origin-Opener-Policy", "same-origin"),
	}
	hstsHeader = newSecureHeader("Strict-Transport-Security", "max-age=63072000")
)

// SecureHeaders sets the headers every Stepgate response carries. The CSP
// allows only our own scripts and styles and forbids framing, which stops
// clickjacking of the sign-in and step-up pages.
//
// It sets no form-action: browsers apply it to every redirect that follows
// a form post, and a sign-in form's post ends, by design, in a redirect to
// the application's registered redirect URI (OIDC) or the protected page
// (gateway). Forms cannot be injected anyway: every page is rendered by
// html/template, which escapes what it interpolates.
func SecureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, sh := range secureHeaders {
			h[sh.name] = sh.value
		}
		if r.TLS != nil {
			h[hstsHeader.name] = hstsHeader.value
		}
		next.ServeHTTP(w, r)
	})
}

// NoStore marks a response as never cacheable: sign-in pages, anything
// showing account data.
func NoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// ClientIP finds the address of the client behind r. X-Forwarded-For is
// believed only hop by hop from the right while the hop is a trusted
// proxy, so a client cannot claim an address by sending the header itself.
type ClientIP struct {
	Trusted []netip.Prefix
}

// Of returns the client address of r.
func (c ClientIP) Of(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if !c.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // malformed chain: trust only what we saw
		}
		addr = addr.Unmap()
		if !c.trusted(addr) {
			return addr
		}
		peer = addr
	}
	return peer
}

func (c ClientIP) trusted(a netip.Addr) bool {
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// ParsePrefixes parses CIDRs or single addresses (as /32 or /128).
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// AddressBucket is the unit a per-address limit counts: an IPv4 address,
// or an IPv6 /64, which one client usually holds whole (counting single
// IPv6 addresses would give it 2^64 budgets).
func AddressBucket(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}
