package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// h2cUpstream is an application that upgrades to cleartext HTTP/2 as
// RFC 7540 section 3.2 describes (as Apache's mod_http2, nghttpx and
// many frameworks' servers do), then serves whatever HTTP/2 requests
// come over the connection. It records each request's path and the
// X-Stepgate-User it carried, and whether it was asked to upgrade.
func h2cUpstream(t *testing.T) (addr string, seen func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var got []string
	record := func(s string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}
	h2 := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("h2 " + r.URL.Path + " user=" + r.Header.Get(headerUser))
		io.WriteString(w, "served "+r.URL.Path)
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
				req, err := http.ReadRequest(br)
				if err != nil {
					c.Close()
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				if !strings.EqualFold(req.Header.Get("Upgrade"), "h2c") {
					if up := req.Header.Get("Upgrade"); up != "" {
						record("h1 " + req.URL.Path + " asked to upgrade to " + up)
					} else {
						record("h1 " + req.URL.Path)
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nh1")
					c.Close()
					return
				}
				record("upgraded " + req.URL.Path)
				fmt.Fprint(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
				_ = h2.Serve(&oneConn{conn: &bufferedConn{Conn: c, r: br}})
			}()
		}
	}()
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// oneConn is a listener that accepts c once, then blocks until closed.
type oneConn struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
}

func (l *oneConn) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	done := l.done
	l.mu.Unlock()
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	<-done
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *oneConn) Addr() net.Addr { return l.conn.LocalAddr() }

// bufferedConn reads what a bufio.Reader already holds first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestAttackH2CUpgradeTunnelsPastRules: a client asks, on a path open to
// anyone, to upgrade to cleartext HTTP/2 ("Upgrade: h2c", as curl
// --http2 does). Were the gateway to pass the upgrade on and join the
// connections, the client would speak HTTP/2 straight to the
// application over the tunnel: any path, any method, and identity
// headers of its own choosing, none of them judged (the h2c smuggling
// of reverse proxies). The gateway never asks an upstream to switch to
// a protocol that carries HTTP requests of its own (h2c, HTTP/2, TLS):
// the request goes upstream as a plain HTTP/1.1 request, without the
// upgrade, and is answered as one.
func TestAttackH2CUpgradeTunnelsPastRules(t *testing.T) {
	t.Parallel()
	t.Run("control/the-path-asked-directly-is-judged", func(t *testing.T) {
		t.Parallel()
		addr, seen := h2cUpstream(t)
		gw := startProxy(t, "http://"+addr, func(o *Options) { o.Routes[0].Rules = []Rule{{Path: "/public/*", Anonymous: true}} })
		answer := rawExchange(t, gw.Listener.Addr().String(), "POST /admin/delete-everything HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n")
		if got := seen(); len(got) != 0 || strings.HasPrefix(answer, "HTTP/1.1 200") {
			t.Fatalf("an anonymous POST /admin/delete-everything was let through (%.80q; the application saw %q)", answer, got)
		}
	})
	for _, tc := range []struct{ name, headers string }{
		{"fail/h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"},
		{"fail/h2c-settings-not-listed", "Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"},
		{"fail/h2c-upper-case", "Connection: upgrade\r\nUpgrade: H2C\r\n"},
		{"fail/http2-token", "Connection: Upgrade\r\nUpgrade: HTTP/2.0\r\n"},
		{"fail/h2c-after-websocket", "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n"},
		{"fail/tls-rfc2817", "Connection: Upgrade\r\nUpgrade: TLS/1.2\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, seen := h2cUpstream(t)
			gw := startProxy(t, "http://"+addr, func(o *Options) {
				// Only /public is open; everything else asks for a sign-in.
				o.Routes[0].Rules = []Rule{{Path: "/public/*", Anonymous: true}}
			})
			c, err := net.Dial("tcp", gw.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /public/chat HTTP/1.1\r\nHost: app.test\r\n%s\r\n", tc.headers)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusSwitchingProtocols {
				// The tunnel is open: speak HTTP/2 through it.
				tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
					return &bufferedConn{Conn: c, r: br}, nil
				}}
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetUnencryptedHTTP2(true)
				defer tr.CloseIdleConnections()
				req, _ := http.NewRequest(http.MethodPost, "http://app.test/admin/delete-everything", nil)
				req.Header.Set(headerUser, "admin")
				smuggled, err := tr.RoundTrip(req)
				if err == nil {
					body, _ := io.ReadAll(smuggled.Body)
					smuggled.Body.Close()
					t.Fatalf("upgraded to %s, then a request the gateway never judged reached the application: %d %q (it saw %q)",
						resp.Header.Get("Upgrade"), smuggled.StatusCode, body, seen())
				}
				t.Fatalf("the gateway switched protocols to %q for the application; it must not (it saw %q)", resp.Header.Get("Upgrade"), seen())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "h1" {
				t.Fatalf("answer %d %q, want the application's plain HTTP/1.1 answer", resp.StatusCode, body)
			}
			if got := seen(); len(got) != 1 || got[0] != "h1 /public/chat" {
				t.Fatalf("the application saw %q, want one plain request for /public/chat", got)
			}
		})
	}
}
