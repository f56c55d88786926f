package gateway

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startProxy runs a gateway with one route, app.test, open to anyone
// (no sign-in: these tests are about the proxy), in front of upstream.
func startProxy(t *testing.T, upstream string, mutate func(*Options)) *httptest.Server {
	t.Helper()
	cfg := Options{UpstreamTimeout: 5 * time.Second, Routes: []Route{{
		Name: "app", From: "http://app.test", To: upstream, Rules: []Rule{{Path: "/*", Anonymous: true}},
	}}}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := New(Deps{Issuer: "http://id.test", Options: cfg, Log: slog.New(slog.DiscardHandler),
		ErrorPage: func(w http.ResponseWriter, _ *http.Request, status int, msg string) { http.Error(w, msg, status) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() { srv.Close(); g.Close() })
	return srv
}

// startJudgedProxy is startProxy, recording the requests the gateway
// judged (method and target), in order.
func startJudgedProxy(t *testing.T, upstream string) (*httptest.Server, func() []string) {
	t.Helper()
	inner := startProxy(t, upstream, nil)
	var mu sync.Mutex
	var judged []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		judged = append(judged, r.Method+" "+r.RequestURI)
		mu.Unlock()
		inner.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(judged)
	}
}

// seen is a request as the upstream parsed it.
type seen struct {
	Method, Target, Body string
	Header               http.Header
	Trailer              http.Header
}

// recordingUpstream is a net/http upstream that records every request
// it parses, then answers "ok".
func recordingUpstream(t *testing.T) (*httptest.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{Method: r.Method, Target: r.RequestURI, Body: string(body), Header: r.Header.Clone(), Trailer: r.Trailer.Clone()})
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// rawExchange sends raw bytes to addr on one connection and returns
// everything the gateway answered until it closed the connection or
// fell silent for a moment.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return string(out)
		}
	}
}

// TestProxyRequestSmuggling: a client that frames its request so that a
// proxy and its upstream could disagree where it ends (CL.TE, TE.CL,
// duplicate lengths, disguised Transfer-Encoding) never gets a second
// request of its own to the upstream. The gateway's server reads (or
// refuses) the request once, and the upstream receives it framed anew:
// whatever the client hid in the body stays body.
func TestProxyRequestSmuggling(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"
	length := fmt.Sprint(len(smuggled))
	for _, tc := range []struct {
		name, raw string
		// bodies are the bodies the upstream may see, one request each.
		bodies []string
	}{
		{"fail/cl-te", "POST /a HTTP/1.1\r\nHost: app.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []string{"", ""}},
		{"fail/te-cl", "POST /a HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled), []string{smuggled}},
		{"fail/chunk-hides-request", "POST /a HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n0\r\n\r\n%s\r\n0\r\n\r\n", len("0\r\n\r\n"+smuggled), smuggled), []string{"0\r\n\r\n" + smuggled}},
		{"fail/two-lengths", "POST /a HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\nContent-Length: " + length + "\r\n\r\n" + smuggled, nil},
		{"fail/te-disguised", "POST /a HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: xchunked\r\nContent-Length: " + length + "\r\n\r\n" + smuggled, nil},
		{"fail/te-space", "POST /a HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled, nil},
		{"fail/te-list", "POST /a HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled, nil},
		{"fail/get-with-length", "GET /a HTTP/1.1\r\nHost: app.test\r\nContent-Length: " + length + "\r\n\r\n" + smuggled, []string{smuggled}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, requests := recordingUpstream(t)
			gw, judged := startJudgedProxy(t, up.URL)
			answer := rawExchange(t, gw.Listener.Addr().String(), tc.raw)
			got := requests()
			var reached []string
			for _, r := range got {
				reached = append(reached, r.Method+" "+r.Target)
			}
			if !slices.Equal(reached, judged()) {
				t.Fatalf("the upstream received %q, the gateway judged %q: a request went past it (answer %.200q)", reached, judged(), answer)
			}
			var bodies []string
			for _, r := range got {
				bodies = append(bodies, r.Body)
			}
			if len(bodies) > 0 && !slices.Equal(bodies, tc.bodies) {
				t.Fatalf("upstream bodies %q, want %q (or the request refused)", bodies, tc.bodies)
			}
		})
	}

	// Pipelined requests stay what they are: two requests, in order.
	up, requests := recordingUpstream(t)
	gw, _ := startJudgedProxy(t, up.URL)
	rawExchange(t, gw.Listener.Addr().String(), "POST /a HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabcGET /a?second HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if got := requests(); len(got) != 2 || got[0].Body != "abc" || got[1].Target != "/a?second" || got[1].Method != "GET" {
		t.Fatalf("pipelined: upstream saw %+v", got)
	}
}

// TestProxyResponseQueuePoisoning: bytes an upstream sends beyond its
// answer — a body after a HEAD, a second answer after the first, at once
// or a moment later — are never read as the answer to the next request
// on the kept-alive connection, which may be another user's.
func TestProxyResponseQueuePoisoning(t *testing.T) {
	const poison = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Poison: 1\r\n\r\npoisoned"
	for _, tc := range []struct {
		name, method, path string
		answer             string
		late               string        // sent after a pause
		pause              time.Duration // before the next request
	}{
		{"fail/head-with-body", "HEAD", "/head", "HTTP/1.1 200 OK\r\nContent-Length: 56\r\n\r\n" + poison, "", 100 * time.Millisecond},
		{"fail/head-with-body-now", "HEAD", "/head", "HTTP/1.1 200 OK\r\nContent-Length: 56\r\n\r\n" + poison, "", 0},
		{"fail/second-answer", "GET", "/twice", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + poison, "", 0},
		{"fail/second-answer-late", "GET", "/late", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", poison, 200 * time.Millisecond},
		{"fail/short-length", "GET", "/short", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokay" + poison, "", 50 * time.Millisecond},
		{"fail/no-content-with-body", "GET", "/nocontent", "HTTP/1.1 204 No Content\r\n\r\n" + poison, "", 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawUpstream(t, func(req *http.Request, w *bufio.Writer) {
				if req.URL.Path == "/victim" {
					fmt.Fprint(w, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nvictim")
					return
				}
				fmt.Fprint(w, tc.answer)
				if tc.late != "" {
					_ = w.Flush()
					time.Sleep(50 * time.Millisecond)
					fmt.Fprint(w, tc.late)
				}
			})
			gw := startProxy(t, "http://"+addr, nil)
			c := gw.Client()
			do := func(method, path string) *http.Response {
				t.Helper()
				req, _ := http.NewRequest(method, gw.URL+path, nil)
				req.Host = "app.test"
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			resp := do(tc.method, tc.path)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			time.Sleep(tc.pause)
			for range 3 {
				resp := do("GET", "/victim")
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "victim" || resp.Header.Get("X-Poison") != "" {
					t.Fatalf("the next request was answered with %d %q (X-Poison %q), want its own answer", resp.StatusCode, body, resp.Header.Get("X-Poison"))
				}
			}
		})
	}
}

// rawUpstream serves requests with answer, which writes raw bytes: an
// upstream that frames its answers wrongly. It reads the next request
// from the connection as a server does, so whatever the gateway takes
// for an answer to it is what was left on the connection.
func rawUpstream(t *testing.T, answer func(*http.Request, *bufio.Writer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br, bw := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					answer(req, bw)
					if bw.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestProxyRequestBodies: bodies reach the upstream whole, framed by the
// gateway: with their length, or in chunks with the client's trailers
// (but never its identity or forwarding headers as trailers); Expect is
// the gateway's to answer; an
// upload slower than upstream_timeout is not cut, since the timeout
// counts from the end of the request.
func TestProxyRequestBodies(t *testing.T) {
	up, requests := recordingUpstream(t)
	gw := startProxy(t, up.URL, func(cfg *Options) { cfg.UpstreamTimeout = 500 * time.Millisecond })
	send := func(req *http.Request) {
		t.Helper()
		req.Host = "app.test"
		resp, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Fatalf("%s: %d %q", req.URL, resp.StatusCode, body)
		}
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB

	req, _ := http.NewRequest("PUT", gw.URL+"/length", strings.NewReader(big))
	send(req)
	req, _ = http.NewRequest("POST", gw.URL+"/chunked", io.MultiReader(strings.NewReader(big))) // no length: chunked
	req.Trailer = http.Header{"X-Checksum": nil, "X-Stepgate-User": nil, "X-Real-Ip": nil}
	req.Body = trailerBody{Reader: strings.NewReader(big), trailer: req.Trailer, values: map[string]string{
		"X-Checksum": "abc", "X-Stepgate-User": "mallory", "X-Real-Ip": "203.0.113.9"}}
	send(req)
	req, _ = http.NewRequest("POST", gw.URL+"/empty", nil)
	send(req)
	req, _ = http.NewRequest("POST", gw.URL+"/expect", strings.NewReader("form=1"))
	req.Header.Set("Expect", "100-continue")
	send(req)
	pr, pw := io.Pipe()
	go func() {
		for i := range 4 {
			time.Sleep(250 * time.Millisecond) // 1 s in all: twice upstream_timeout
			fmt.Fprintf(pw, "part%d;", i)
		}
		pw.Close()
	}()
	req, _ = http.NewRequest("POST", gw.URL+"/slow", pr)
	send(req)

	got := requests()
	if len(got) != 5 {
		t.Fatalf("upstream saw %d requests, want 5", len(got))
	}
	if got[0].Body != big || got[0].Header.Get("Content-Length") != "" && len(got[0].Body) != len(big) {
		t.Errorf("PUT with a length: %d bytes arrived", len(got[0].Body))
	}
	if got[1].Body != big || got[1].Trailer.Get("X-Checksum") != "abc" || got[1].Trailer.Get("X-Stepgate-User") != "" || got[1].Trailer.Get("X-Real-Ip") != "" {
		t.Errorf("chunked: %d bytes, trailers %v (want all, and X-Checksum alone)", len(got[1].Body), got[1].Trailer)
	}
	if got[2].Body != "" {
		t.Errorf("bodiless POST: body %q", got[2].Body)
	}
	if got[3].Body != "form=1" || got[3].Header.Get("Expect") != "" {
		t.Errorf("Expect: body %q, upstream Expect %q (want the body, and no Expect)", got[3].Body, got[3].Header.Get("Expect"))
	}
	if got[4].Body != "part0;part1;part2;part3;" {
		t.Errorf("slow upload arrived as %q", got[4].Body)
	}
}

// trailerBody is a request body that fills in its trailers at the end,
// as a client streaming a checksum does.
type trailerBody struct {
	io.Reader
	trailer http.Header
	values  map[string]string
}

func (b trailerBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		for k, v := range b.values {
			b.trailer.Set(k, v)
		}
	}
	return n, err
}

func (b trailerBody) Close() error { return nil }

// TestProxyBodilessPostHasLength: a POST without a body reaches the
// upstream with Content-Length: 0, as net/http's client sends it (many
// servers refuse a POST without a length).
func TestProxyBodilessPostHasLength(t *testing.T) {
	addr := rawUpstream(t, func(req *http.Request, w *bufio.Writer) {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(req.ContentLength)), req.ContentLength)
	})
	gw := startProxy(t, "http://"+addr, nil)
	req, _ := http.NewRequest("POST", gw.URL+"/x", nil)
	req.Host = "app.test"
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "0" {
		t.Fatalf("upstream read the bodiless POST's length as %s, want 0 (from Content-Length: 0)", body)
	}
}

// TestProxyUpgrades: an upgrade completes only as asked. An upstream
// that switches to another protocol, or switches a request that asked
// for none, gets the client a 502, not a connection to whatever it
// speaks; a 101 cannot set the gateway's cookie.
func TestProxyUpgrades(t *testing.T) {
	addr := rawUpstream(t, func(req *http.Request, w *bufio.Writer) {
		switch req.URL.Path {
		case "/other":
			fmt.Fprint(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		case "/unasked":
			fmt.Fprint(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		default:
			fmt.Fprint(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSet-Cookie: stepgate_gw=planted\r\nSet-Cookie: app=1\r\n\r\nhello")
		}
	})
	gw := startProxy(t, "http://"+addr, nil)
	addrGW := gw.Listener.Addr().String()
	upgrade := "\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	for _, tc := range []struct{ name, raw, status string }{
		{"fail/other-protocol", "GET /other HTTP/1.1" + upgrade, "HTTP/1.1 502"},
		{"fail/unasked", "GET /unasked HTTP/1.1\r\nHost: app.test\r\n\r\n", "HTTP/1.1 502"},
		{"ok/websocket", "GET /ws HTTP/1.1" + upgrade, "HTTP/1.1 101"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := rawExchange(t, addrGW, tc.raw)
			if !strings.HasPrefix(answer, tc.status) {
				t.Fatalf("answer %.200q, want %s", answer, tc.status)
			}
			if tc.status == "HTTP/1.1 101" && (strings.Contains(answer, "stepgate_gw") || !strings.Contains(answer, "app=1") || !strings.HasSuffix(answer, "hello")) {
				t.Fatalf("101 answer %q: want the application's cookie and data, never the gateway's cookie", answer)
			}
		})
	}
}

// TestProxyPostAfterIdleClose: a request that must not be sent twice
// never goes out on a kept-alive connection the upstream has closed; it
// gets a fresh one and arrives once.
func TestProxyPostAfterIdleClose(t *testing.T) {
	up, requests := recordingUpstream(t)
	gw := startProxy(t, up.URL, nil)
	post := func() {
		t.Helper()
		req, _ := http.NewRequest("POST", gw.URL+"/a", strings.NewReader("x=1"))
		req.Host = "app.test"
		resp, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
	}
	post()
	up.CloseClientConnections()
	time.Sleep(50 * time.Millisecond) // the close reaches the gateway's side
	post()
	if n := len(requests()); n != 2 {
		t.Fatalf("upstream saw %d POSTs, want 2", n)
	}
}

// TestProxyTLSUpstream: an https upstream is reached over TLS, its
// certificate checked, with reads and bodies on kept-alive connections.
func TestProxyTLSUpstream(t *testing.T) {
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.Path, body, r.Proto)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.StartTLS()
	t.Cleanup(up.Close)
	cfg := Options{UpstreamTimeout: 5 * time.Second, Routes: []Route{{
		Name: "app", From: "http://app.test", To: up.URL, Rules: []Rule{{Path: "/*", Anonymous: true}},
	}}}
	g, err := New(Deps{Issuer: "http://id.test", Options: cfg, Log: slog.New(slog.DiscardHandler),
		ErrorPage: func(w http.ResponseWriter, _ *http.Request, status int, msg string) { http.Error(w, msg, status) }})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	do := func(method, body string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, "http://app.test/x", strings.NewReader(body))
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	// Not yet trusted: the test server's certificate is its own.
	if code, _ := do("GET", ""); code != http.StatusBadGateway {
		t.Fatalf("an upstream certificate nobody trusts: %d, want 502", code)
	}
	g.upstreams[g.routes[0]].pool.tls.RootCAs = up.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	before := conns.Load()
	for _, tc := range []struct{ method, body, want string }{
		{"GET", "", "GET /x  HTTP/1.1"}, {"POST", "a=1", "POST /x a=1 HTTP/1.1"}, {"GET", "", "GET /x  HTTP/1.1"},
	} {
		if code, got := do(tc.method, tc.body); code != http.StatusOK || got != tc.want {
			t.Fatalf("%s over TLS: %d %q, want %q", tc.method, code, got, tc.want)
		}
	}
	if n := conns.Load() - before; n != 1 {
		t.Fatalf("three requests opened %d TLS connections, want 1 kept alive", n)
	}
}
