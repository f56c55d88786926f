package gateway

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
)

// plainRead reports whether r takes the direct path: GET or HEAD, no
// body, no protocol upgrade. Reads are most of what an application
// serves, and the ones a client may safely send twice.
func plainRead(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.ContentLength == 0 && len(r.TransferEncoding) == 0 && r.Header.Get("Upgrade") == ""
}

// serveDirect proxies a plain read over pool: the request is written
// straight from the incoming one (canonical path, end-to-end headers,
// X-Forwarded-*, identity) and the answer copied back, with no copy of
// the request and no hand-off between goroutines. What reaches the
// upstream is what httputil.ReverseProxy would send.
func (g *Gateway) serveDirect(w http.ResponseWriter, r *http.Request, rt *route, pool *connPool, id *identity, p string) {
	resp, err := pool.roundTrip(r, func(bw *bufio.Writer) error {
		return g.writeRequest(bw, r, rt, pool.host, id, p)
	})
	if err != nil {
		g.upstreamFailed(w, r, rt, err)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	rt.dropOwnSetCookies(resp.Header)
	copyEndToEnd(h, resp.Header)
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	if err := g.copyBody(w, resp); err != nil {
		g.Log.WarnContext(r.Context(), "upstream answer cut short", "route", rt.name, "err", err)
		// Abort the connection, so the client sees a cut answer rather
		// than a short one that looks whole.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[k] = vv
	}
}

// copyBody copies the answer's body, flushing each piece at once for a
// stream (server-sent events, or no announced length), as
// httputil.ReverseProxy does.
func (g *Gateway) copyBody(w http.ResponseWriter, resp *http.Response) error {
	buf := g.buffers.Get()
	defer g.buffers.Put(buf)
	stream := resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	rc := http.NewResponseController(w)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if stream {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeRequest writes the upstream request for r: the canonical path
// joined to the upstream's, the query, the end-to-end headers a client
// may send, then X-Forwarded-* and the verified identity. A
// bufio.Writer keeps its first error, so only the last write (and the
// flush after it) needs checking.
func (g *Gateway) writeRequest(bw *bufio.Writer, r *http.Request, rt *route, host string, id *identity, p string) error {
	_, _ = bw.WriteString(r.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(upstreamTarget(rt, p, r.URL.RawQuery))
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	connection := r.Header["Connection"]
	for k, vv := range r.Header {
		if !g.forwards(k, connection) {
			continue
		}
		if k == "Cookie" {
			vv = rt.withoutOwnCookies(vv)
		}
		for _, v := range vv {
			writeHeader(bw, k, v)
		}
	}
	g.forwardingHeaders(r, rt, func(k, v string) { writeHeader(bw, k, v) })
	g.identityHeaders(rt, id, rt.upstreamRequest(r.Method, p), func(k, v string) { writeHeader(bw, k, v) })
	_, err := bw.WriteString("\r\n")
	return err
}

// upstreamTarget is the request target: the upstream URL's path joined
// with the canonical path, and both queries.
func upstreamTarget(rt *route, p, query string) string {
	target := upstreamPath(rt, p)
	switch q := rt.upstream.RawQuery; {
	case q != "" && query != "":
		return target + "?" + q + "&" + query
	case q != "":
		return target + "?" + q
	case query != "":
		return target + "?" + query
	}
	return target
}

// upstreamPath is the escaped path the upstream receives for canonical
// path p: the upstream URL's path joined with p.
func upstreamPath(rt *route, p string) string {
	base := rt.upstream.EscapedPath()
	target := escapePath(p)
	switch {
	case base == "" || base == "/":
	case strings.HasSuffix(base, "/"):
		target = base + target[1:]
	default:
		target = base + target
	}
	return target
}

// forwards reports whether the client's header k goes upstream: not a
// hop-by-hop header (nor one the Connection header names), not an
// identity header or a configured strip header, not a forwarding or
// rewriting header (the gateway sets its own; see forwarding.go), not an
// underscored name, not a body header on a bodiless request.
func (g *Gateway) forwards(k string, connection []string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length":
		return false
	}
	return !strings.HasPrefix(k, headerPrefix) && !g.strip[k] && !clientForwarding(k) && !underscored(k) && !listed(connection, k)
}

// writeHeader writes one header line; a line break in a value (which a
// stored display name or group could hold) becomes a space, so no value
// can add a header of its own.
func writeHeader(bw *bufio.Writer, k, v string) {
	_, _ = bw.WriteString(k)
	_, _ = bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	_, _ = bw.WriteString(v)
	_, _ = bw.WriteString("\r\n")
}

// copyEndToEnd adds the upstream's answer headers to dst, without the
// hop-by-hop ones, which describe the upstream connection only. Headers
// the gateway set itself before proxying (a cookie it hands over) stay.
func copyEndToEnd(dst, src http.Header) {
	connection := src["Connection"]
	for k, vv := range src {
		switch k {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
			continue
		}
		if listed(connection, k) {
			continue
		}
		if own := dst[k]; len(own) > 0 {
			dst[k] = append(own, vv...)
			continue
		}
		dst[k] = vv
	}
}

// listed reports whether the Connection header values name header k.
func listed(connection []string, k string) bool {
	for _, v := range connection {
		for _, name := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(name)) == k {
				return true
			}
		}
	}
	return false
}

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
