package gateway

import (
	"bufio"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
)

// The gateway's one proxy path. Every request a rule lets through goes
// upstream through forward, on the route's pool of kept-alive HTTP/1.1
// connections (upstream.go): reads and writes, with or without a body,
// and protocol upgrades (WebSockets). What goes upstream is decided in
// one place, outgoing.writeHead; what comes back in one place,
// route.answerHeaders. net/http parses both sides (the client's request
// in its server, the upstream's answer with http.ReadResponse) and the
// request body is framed anew (Content-Length, or chunks written by
// httputil.NewChunkedWriter), so the upstream never sees the client's
// own framing: a request the client frames ambiguously (Content-Length
// beside Transfer-Encoding, say) reaches it as the one request Go's
// server read, and nothing a client sends can be read upstream as a
// second request.

// upstream is how a route reaches its application: its pool of
// connections, and the pass step that proxies to it, made once.
type upstream struct {
	pool *connPool
	pass pass
}

func (g *Gateway) newUpstream(rt *route) *upstream {
	pool := newConnPool(rt.upstream, g.Options.UpstreamTimeout)
	return &upstream{pool: pool, pass: func(w http.ResponseWriter, r *http.Request, id *identity, p string) {
		g.forward(w, r, rt, pool, id, p)
	}}
}

// proxyTo returns the pass step that forwards to rt's upstream.
func (g *Gateway) proxyTo(rt *route) pass {
	if up := g.upstreams[rt]; up != nil {
		return up.pass
	}
	return func(w http.ResponseWriter, r *http.Request, _ *identity, _ string) {
		g.refuse(w, r, http.StatusNotFound, "This address is served through forward-auth only.")
	}
}

// outgoing is one request on its way upstream: the client's request r
// after the decision, from id (nil: anonymous), for canonical path path.
type outgoing struct {
	g    *Gateway
	r    *http.Request
	w    http.ResponseWriter
	rt   *route
	host string // the Host header: the upstream URL's host
	id   *identity
	path string
	// length frames the body: 0 none, above 0 Content-Length, -1 chunked.
	length int64
	// upgrade is the protocol the client asks to switch to ("" none).
	upgrade string
	// replayable: a read without a body, which may be sent again on
	// another connection when a kept-alive one turns out closed.
	replayable bool
}

// forward proxies r to rt's upstream and copies the answer back.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, rt *route, pool *connPool, id *identity, p string) {
	o := &outgoing{g: g, r: r, w: w, rt: rt, host: pool.host, id: id, path: p, length: bodyLength(r), upgrade: upgradeType(r.Header)}
	o.replayable = o.length == 0 && replayableMethod(r.Method)
	if o.length != 0 {
		// Read (and closed) by the body's writer; closed here too, as
		// httputil.ReverseProxy does, should the writer outlive us.
		defer r.Body.Close()
	}
	resp, err := pool.roundTrip(o)
	if err != nil {
		g.upstreamFailed(w, r, rt, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		g.tunnel(w, r, rt, resp, o.upgrade)
		return
	}
	h := w.Header()
	rt.answerHeaders(h, resp.Header)
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	announced := len(resp.Trailer)
	w.WriteHeader(resp.StatusCode)
	if err := g.copyBody(w, resp); err != nil {
		g.Log.WarnContext(r.Context(), "upstream answer cut short", "route", rt.name, "err", err)
		// Abort the connection, so the client sees a cut answer rather
		// than a short one that looks whole.
		panic(http.ErrAbortHandler)
	}
	if len(resp.Trailer) > 0 {
		trailers := http.Header{}
		rt.answerHeaders(trailers, resp.Trailer)
		for k, vv := range trailers {
			if announced != len(resp.Trailer) {
				// Trailers the head did not announce are sent under
				// net/http's prefix for them.
				k = http.TrailerPrefix + k
			}
			h[k] = vv
		}
	}
}

// bodyLength is how r's body goes upstream: 0 no body, above 0 with its
// Content-Length, -1 in chunks (the client sent it chunked, or over
// HTTP/2 without a length).
func bodyLength(r *http.Request) int64 {
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		return 0
	case r.ContentLength != 0:
		return r.ContentLength
	case len(r.TransferEncoding) > 0:
		return -1
	}
	return 0
}

// replayableMethod reports whether a bodiless request with method may be
// sent twice, as the standard transport judges it.
func replayableMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// upgradeType is the protocol a request asks to switch to, when its
// Connection header names Upgrade and the protocol is one the gateway
// tunnels. A protocol that carries HTTP requests of its own (h2c, the
// cleartext HTTP/2 of RFC 7540 section 3.2, or any HTTP version) is
// never asked for: once the connections were joined, the client would
// send the application requests for any path, with any method and any
// identity headers, that no rule ever judged (h2c smuggling). The
// request then goes upstream as the plain HTTP/1.1 request it also is,
// which RFC 9110 lets a server answer without switching.
func upgradeType(h http.Header) string {
	if !listed(h["Connection"], "Upgrade") || smugglingUpgrade(h) != "" {
		return ""
	}
	return h.Get("Upgrade")
}

// smugglingUpgrade is the first protocol the request's Upgrade headers
// (every line, every list item) ask for that carries HTTP requests of
// its own, or "" when none does. It is the one rule for both modes: the
// built-in proxy never asks an upstream for such an upgrade, and the
// forward-auth decision refuses a request that asks for one, since there
// the proxy in front would pass it on and join the connections (Caddy's
// reverse_proxy does) with no way for Stepgate to drop it.
func smugglingUpgrade(h http.Header) string {
	for _, v := range h["Upgrade"] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); carriesRequests(p) {
				return p
			}
		}
	}
	return ""
}

// carriesRequests reports whether upgrade protocol p (an Upgrade list
// item, "name/version") carries HTTP requests of its own: a version of
// HTTP ("h2c", "h2", "HTTP/2.0", in any case), or TLS (RFC 2817), inside
// which the client speaks HTTP again.
func carriesRequests(p string) bool {
	name, _, _ := strings.Cut(p, "/")
	for _, n := range [...]string{"h2c", "h2", "HTTP", "TLS"} {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// writeHead writes the request that goes upstream, all but its body: the
// canonical path joined to the upstream's, the query, the client's
// headers that may pass (clientValues), the body's framing, the
// protocol upgrade asked for, then the gateway's X-Forwarded-* and the
// verified identity. A bufio.Writer keeps its first error, so only the
// last write needs checking.
func (o *outgoing) writeHead(bw *bufio.Writer) error {
	g, r, rt := o.g, o.r, o.rt
	_, _ = bw.WriteString(r.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(upstreamTarget(rt, o.path, r.URL.RawQuery))
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(o.host)
	_, _ = bw.WriteString("\r\n")
	connection := r.Header["Connection"]
	for k, vv := range r.Header {
		for _, v := range g.clientValues(rt, k, vv, connection) {
			writeHeader(bw, k, v)
		}
	}
	switch {
	case o.length > 0, o.length == 0 && r.Method != http.MethodGet && r.Method != http.MethodHead:
		// Many servers want a length on every request that may carry a
		// body, as net/http's client sends it.
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.WriteString(strconv.FormatInt(o.length, 10))
		_, _ = bw.WriteString("\r\n")
	case o.length < 0:
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
		if names := o.trailerNames(); names != "" {
			writeHeader(bw, "Trailer", names)
		}
	}
	if o.upgrade != "" {
		writeHeader(bw, "Connection", "Upgrade")
		writeHeader(bw, "Upgrade", o.upgrade)
	}
	if listed(r.Header["Te"], "Trailers") {
		// The one Te a proxy passes on: gRPC's servers want it.
		writeHeader(bw, "Te", "trailers")
	}
	g.forwardingHeaders(r, rt, func(k, v string) { writeHeader(bw, k, v) })
	g.writeIdentity(bw, rt, o.id, upstreamKey(r.Method, o.path))
	_, err := bw.WriteString("\r\n")
	return err
}

// clientValues returns the values of the client's header (or trailer) k
// that go upstream, nil for none: not a hop-by-hop header, nor one the
// Connection header names, not an identity, forwarding or configured
// strip header (see forwards), and never the gateway's own cookies.
func (g *Gateway) clientValues(rt *route, k string, vv, connection []string) []string {
	if !g.forwards(k, connection) {
		return nil
	}
	if k == "Cookie" {
		return rt.withoutOwnCookies(vv)
	}
	return vv
}

// trailerNames are the client's announced trailers that may pass.
func (o *outgoing) trailerNames() string {
	var names []string
	for k := range o.r.Trailer {
		if o.g.forwards(k, nil) {
			names = append(names, k)
		}
	}
	return strings.Join(names, ", ")
}

// writeBody writes the request body upstream in the framing writeHead
// announced, then, for chunks, the client's trailers that may pass.
func (o *outgoing) writeBody(bw *bufio.Writer) error {
	buf := o.g.buffers.Get()
	defer o.g.buffers.Put(buf)
	if o.length > 0 {
		n, err := io.CopyBuffer(bw, io.LimitReader(o.r.Body, o.length), buf)
		if err == nil && n != o.length {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	cw := httputil.NewChunkedWriter(bw)
	if _, err := io.CopyBuffer(cw, o.r.Body, buf); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	trailer := http.Header{}
	for k, vv := range o.r.Trailer {
		if vv = o.g.clientValues(o.rt, k, vv, nil); len(vv) > 0 {
			trailer[k] = vv
		}
	}
	if err := trailer.Write(bw); err != nil {
		return err
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// informational passes an informational answer (103 Early Hints) to
// the client, through answerHeaders like the final one, and leaves the
// headers the final answer will have as they were.
func (o *outgoing) informational(code int, h http.Header) {
	if !o.r.ProtoAtLeast(1, 1) {
		return // HTTP/1.0 knows no informational answers
	}
	dst := o.w.Header()
	saved := maps.Clone(dst)
	clear(dst)
	o.rt.answerHeaders(dst, h)
	o.w.WriteHeader(code)
	clear(dst)
	maps.Copy(dst, saved)
}

// answerHeaders adds the upstream's answer headers (or trailers) src to
// dst, the client's: never a Set-Cookie that sets or clears one of the
// gateway's own cookies (dropOwnSetCookies), nor a hop-by-hop header,
// which describes the upstream connection only. Headers the gateway set
// itself before proxying (a cookie it hands over) stay.
func (rt *route) answerHeaders(dst, src http.Header) {
	rt.dropOwnSetCookies(src)
	copyEndToEnd(dst, src)
}

// tunnel completes a protocol upgrade: the client gets the upstream's
// 101 answer, and the two connections are joined until either ends.
func (g *Gateway) tunnel(w http.ResponseWriter, r *http.Request, rt *route, resp *http.Response, asked string) {
	up, ok := resp.Body.(io.ReadWriteCloser)
	got := resp.Header.Get("Upgrade")
	if !ok || !strings.EqualFold(got, asked) {
		g.upstreamFailed(w, r, rt, errors.New("the upstream switched to "+strconv.Quote(got)+" where "+strconv.Quote(asked)+" was asked"))
		return
	}
	h := w.Header()
	rt.answerHeaders(h, resp.Header)
	h["Connection"], h["Upgrade"] = []string{"Upgrade"}, []string{got}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		g.upstreamFailed(w, r, rt, err)
		return
	}
	defer conn.Close()
	resp.Header, resp.Body = h, nil
	if err := resp.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, brw.Reader) // what the client sent after its request, then the rest
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(conn, up)
		done <- struct{}{}
	}()
	<-done // either side ending ends both (the deferred closes)
}

// upstreamFailed answers a request the application did not: 502, or,
// when the client went away first, 499 with no warning logged, since
// the application was not at fault.
func (g *Gateway) upstreamFailed(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	status := httpx.StatusOf(errkind.Mark(err, errkind.Upstream))
	if status != httpx.StatusClientClosedRequest {
		g.Log.WarnContext(r.Context(), "upstream failed", "route", rt.name, "err", err)
	}
	g.refuse(w, r, status, "The application behind this address is not answering. Try again in a moment.")
}

// copyBody copies the answer's body, flushing each piece at once for a
// stream (server-sent events, or no announced length).
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
// hop-by-hop header (nor one the Connection header names; the gateway
// frames the body and asks for an upgrade itself), not Expect (the
// gateway reads the body, and net/http's server sends the client its
// 100 Continue), not an identity header or a configured strip header,
// not a forwarding or rewriting header (the gateway sets its own; see
// forwarding.go), not an underscored name.
func (g *Gateway) forwards(k string, connection []string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Expect", "Host",
		"Http2-Settings": // the h2c upgrade's, of the connection only (RFC 7540 section 3.2.1)
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
	// Two byte searches, which run wide: the assertion is most of a
	// kilobyte on every request.
	if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
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

// bufferPool lends the proxy its copy buffers. Without one, each
// proxied response allocates (and the collector then reclaims) 32 KiB.
// A bounded free list: at most its capacity of buffers stay allocated.
type bufferPool chan []byte

const proxyBufferSize = 32 << 10

func (p bufferPool) Get() []byte {
	select {
	case b := <-p:
		return b
	default:
		return make([]byte, proxyBufferSize)
	}
}

func (p bufferPool) Put(b []byte) {
	if cap(b) != proxyBufferSize {
		return
	}
	select {
	case p <- b[:cap(b)]:
	default:
	}
}
