package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// h2cApplication is an application that honours a cleartext HTTP/2
// upgrade (RFC 7540 section 3.2), as Apache's mod_http2, nghttpx and
// many frameworks' servers do: it answers 101 and serves every HTTP/2
// request that then comes over the connection. It records each request
// it serves ("h1 PATH", "upgraded PATH", "h2 METHOD PATH user=U").
func h2cApplication(t *testing.T) (addr string, seen func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var got []string
	record := func(s string) { mu.Lock(); got = append(got, s); mu.Unlock() }
	h2 := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("h2 " + r.Method + " " + r.URL.Path + " user=" + r.Header.Get("X-Stepgate-User"))
		io.WriteString(w, "smuggled "+r.URL.Path)
	})}
	h2.Protocols = new(http.Protocols)
	h2.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(func() { h2.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						c.Close()
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if up := req.Header.Get("Upgrade"); speaksHTTP2(up) {
						record("upgraded " + req.URL.Path + " from " + up)
						fmt.Fprint(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
						_ = h2.Serve(&singleConnListener{conn: &readerConn{Conn: c, r: br}, done: make(chan struct{})})
						return
					}
					record("h1 " + req.URL.Path + " upgrade=" + req.Header.Get("Upgrade"))
					fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nh1")
				}
			}()
		}
	}()
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// speaksHTTP2 reports whether an Upgrade list names a protocol the
// application switches to for HTTP/2: generous, as servers differ.
func speaksHTTP2(upgrade string) bool {
	for _, p := range strings.Split(upgrade, ",") {
		switch strings.ToLower(strings.TrimSpace(p)) {
		case "h2c", "h2", "http/2", "http/2.0":
			return true
		}
	}
	return false
}

// singleConnListener accepts conn once, then waits until closed.
type singleConnListener struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
	shut sync.Once
}

func (l *singleConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *singleConnListener) Close() error   { l.shut.Do(func() { close(l.done) }); return nil }
func (l *singleConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// readerConn reads what its bufio.Reader already holds first.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestAttackH2CThroughForwardAuthProxies: through real nginx and Caddy
// with the documented configurations, a client asks on a path open to
// anyone to upgrade to cleartext HTTP/2 (as curl --http2 does), in every
// spelling, to an application that honours the upgrade. Had the proxy
// passed the upgrade on and joined the connections, the client would
// speak HTTP/2 straight to the application: any path, any method, its
// own identity headers, none of them judged (h2c smuggling). The
// decision refuses a request that asks for such an upgrade, so the
// proxy never gets to pass it on; the application never switches
// protocols nor serves a request the decision did not judge.
//
// Measured before the decision refused: through the documented Caddyfile
// the application switched and served the anonymous client's HTTP/2
// POST /admin/delete-everything with its forged X-Stepgate-User (Caddy's
// reverse_proxy passes Upgrade on and joins the connections); the
// documented nginx drops Upgrade, but nginx set up for WebSockets
// without passing Upgrade to the decision tunnelled the same way.
func TestAttackH2CThroughForwardAuthProxies(t *testing.T) {
	proxies := append(slices.Clone(frontProxies),
		// nginx as docs/gateway.md says to add WebSockets: the
		// application's location passes Upgrade on, and so does the
		// decision's.
		frontProxy{name: "nginx-websockets", bin: "/usr/sbin/nginx", start: func(t *testing.T, listen, public, stepgate, upstream string) {
			t.Helper()
			startNginxEdited(t, listen, public, stepgate, upstream, nginxWebSockets(true)...)
		}})
	for _, px := range proxies {
		t.Run(px.name, func(t *testing.T) {
			if _, err := os.Stat(px.bin); err != nil {
				if os.Getenv("STEPGATE_REQUIRE_PROXIES") == "1" {
					t.Fatalf("%s is missing and STEPGATE_REQUIRE_PROXIES=1: run make proxy-deps", px.bin)
				}
				t.Skipf("%s is not installed (make proxy-deps installs it)", px.bin)
			}
			up, seen := h2cApplication(t)
			listen := freeAddr(t)
			_, port, _ := net.SplitHostPort(listen)
			public := "h2c.localhost:" + port
			g := startGateway(t, func(cfg *config.Config) {
				cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{
					Name: "h2c", From: "http://" + public, Rules: []config.GatewayRule{
						{Path: "/public/*", Allow: "anonymous"},
					},
				})
			})
			px.start(t, listen, public, strings.TrimPrefix(g.base, "http://"), up)

			// Control: the open path is served, the rest is not.
			if got := h2cExchange(t, listen, public, "GET /public/rates HTTP/1.1", ""); !strings.HasPrefix(got.status, "HTTP/1.1 200") {
				t.Fatalf("control: GET /public/rates through %s: %q", px.name, got.status)
			}
			if got := h2cExchange(t, listen, public, "POST /admin/delete-everything HTTP/1.1", "Content-Length: 0\r\n"); strings.HasPrefix(got.status, "HTTP/1.1 200") {
				t.Fatalf("control: an anonymous POST /admin/delete-everything was let through %s: %q", px.name, got.status)
			}
			for _, tc := range []struct{ name, headers string }{
				{"h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"},
				{"h2c-settings-not-listed", "Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"},
				{"h2c-upper-case", "Connection: upgrade\r\nUpgrade: H2C\r\n"},
				{"http2-token", "Connection: Upgrade\r\nUpgrade: HTTP/2.0\r\n"},
				{"h2c-after-websocket", "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n"},
				{"tls-rfc2817", "Connection: Upgrade\r\nUpgrade: TLS/1.2\r\n"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					before := len(seen())
					got := h2cExchange(t, listen, public, "GET /public/chat HTTP/1.1", tc.headers)
					after := seen()[before:]
					t.Logf("%s %s: %q; the application saw %q; smuggled: %q", px.name, tc.name, got.status, after, got.smuggled)
					if got.smuggled != "" {
						t.Fatalf("through %s, upgraded, then a request the decision never judged reached the application: %s (it saw %q)", px.name, got.smuggled, after)
					}
					if strings.Contains(got.status, " 101 ") {
						t.Fatalf("through %s, the application switched protocols to %q (it saw %q)", px.name, tc.headers, after)
					}
					for _, s := range after {
						if strings.HasPrefix(s, "upgraded") || strings.HasPrefix(s, "h2 ") {
							t.Fatalf("through %s, the application was asked to upgrade or served HTTP/2: %q", px.name, after)
						}
					}
				})
			}
		})
	}
}

// nginxWebSockets are the edits that add WebSockets to the documented
// nginx configuration: the application's location passes Upgrade on
// (with Connection: upgrade), and, when decision is set, so does the
// decision's location, as docs/gateway.md says.
func nginxWebSockets(decision bool) []string {
	edits := []string{
		"proxy_set_header Host $host;\n        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";",
		"proxy_set_header Host $host;\n        proxy_http_version 1.1;\n        proxy_set_header Upgrade $http_upgrade;\n        proxy_set_header Connection \"upgrade\";",
	}
	if decision {
		edits = append(edits, "proxy_pass http://stepgate/gateway/auth-request;",
			"proxy_pass http://stepgate/gateway/auth-request;\n        proxy_set_header Upgrade $http_upgrade;")
	}
	return edits
}

// h2cResult is what a client saw: the proxy's status line and, when the
// proxy switched protocols, what an HTTP/2 request sent through the
// tunnel was answered.
type h2cResult struct{ status, smuggled string }

// h2cExchange sends one request line with headers to the proxy at addr,
// and when it switches protocols, speaks HTTP/2 through the tunnel: a
// POST /admin/delete-everything claiming to be admin.
func h2cExchange(t *testing.T, addr, host, line, headers string) h2cResult {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s\r\nHost: %s\r\n%s\r\n", line, host, headers)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return h2cResult{status: "no answer: " + err.Error()}
	}
	status := "HTTP/1.1 " + resp.Status
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		return h2cResult{status: status}
	}
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return &readerConn{Conn: c, r: br}, nil
	}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://"+host+"/admin/delete-everything", nil)
	req.Header.Set("X-Stepgate-User", "admin")
	smuggled, err := tr.RoundTrip(req)
	if err != nil {
		return h2cResult{status: status}
	}
	body, _ := io.ReadAll(smuggled.Body)
	smuggled.Body.Close()
	return h2cResult{status: status, smuggled: fmt.Sprintf("%d %q", smuggled.StatusCode, body)}
}
