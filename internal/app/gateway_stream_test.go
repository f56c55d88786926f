package app_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// TestGatewayStreamingWebSocketsHTTP2: through the gateway, a streamed
// response arrives while the upstream is still writing, a WebSocket
// upgrade connects both ends, and a client speaking HTTP/2 is served.
func TestGatewayStreamingWebSocketsHTTP2(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			<-release // the second event waits for the test
			fmt.Fprint(w, "data: second\n\n")
		case "/ws":
			if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Stepgate-User") != testUser {
				http.Error(w, "not an upgrade from the gateway", http.StatusBadRequest)
				return
			}
			conn, rw, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			line, _ := rw.ReadString('\n')
			fmt.Fprint(rw, "echo "+line)
			rw.Flush()
		default:
			fmt.Fprintf(w, "proto %s", r.Proto)
		}
	}))
	t.Cleanup(up.Close)
	var app string
	s := startOIDC(t, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		app = "http://bank.localhost:" + port
		cfg.Gateway.Routes = []config.GatewayRoute{{Name: "bank", From: app, To: up.URL}}
	})
	g := &gatewayRig{oidcServer: s, app: app}
	b := gatewayBrowser(t, s.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", app+"/", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	appURL, _ := url.Parse(app)
	cookie := ""
	for _, c := range b.Jar.Cookies(appURL) {
		cookie = c.String()
	}

	// Streaming: the first event arrives before the upstream finishes.
	resp := mustDo(t, b, "GET", app+"/events", "")
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: first\n" {
			t.Fatalf("first event = %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the streamed event was held back by the gateway")
	}
	close(release)
	resp.Body.Close()

	// WebSocket: the upgrade goes through and both directions work.
	addr := strings.TrimPrefix(s.base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", appURL.Host, cookie)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, "101") {
		t.Fatalf("upgrade answer: %q", status)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
	}
	fmt.Fprint(conn, "hello\n")
	if echo, _ := br.ReadString('\n'); echo != "echo hello\n" {
		t.Fatalf("through the upgraded connection: %q", echo)
	}

	// HTTP/2 to the client (cleartext, prior knowledge).
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	req, _ := http.NewRequest("GET", app+"/h2", nil)
	req.Header.Set("Cookie", cookie)
	r2, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.ProtoMajor != 2 || r2.StatusCode != http.StatusOK || string(body) != "proto HTTP/1.1" {
		t.Fatalf("HTTP/2 client: %s %d %q", r2.Proto, r2.StatusCode, body)
	}
}
