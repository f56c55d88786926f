package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClientForwarding: the filter reads header names as upstream
// servers do (any case; '_' as '-' for CGI-style servers) and leaves an
// application's own headers alone.
func TestClientForwarding(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop bool
	}{
		{"X-Real-Ip", true}, {"x-real-ip", true}, {"X_REAL_IP", true}, {"X-Forwarded-Port", true},
		{"X_Forwarded_For", true}, {"Forwarded", true}, {"X-Original-Url", true}, {"X-Rewrite-Url", true},
		{"True-Client-Ip", true}, {"Cf-Connecting-Ip", true}, {"X-Http-Method-Override", true},
		{"Remote-User", true}, {"X-Auth-Request-Email", true}, {"X-Client-Ip", true},
		{"Accept", false}, {"Cookie", false}, {"X-Client-Version", false}, {"X-Request-Id", false},
		{"Forward", false}, {"X-Realm", false}, {"Content-Type", false}, {"", false},
	} {
		if got := clientForwarding(tc.name); got != tc.drop {
			t.Errorf("clientForwarding(%q) = %v, want %v", tc.name, got, tc.drop)
		}
	}
}

// BenchmarkForwards measures the header check every proxied header goes
// through; it allocates nothing.
func BenchmarkForwards(b *testing.B) {
	g := &Gateway{strip: map[string]bool{}}
	names := []string{"Accept", "Accept-Encoding", "User-Agent", "Cookie", "X-Request-Id", "X-Real-Ip"}
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range names {
			g.forwards(k, nil)
		}
	}
}

// TestClientAddr: the address the gateway sends as X-Forwarded-For and
// X-Real-Ip is the client's as the gateway computes it, in its
// canonical text, whichever way the peer's address was spelled.
func TestClientAddr(t *testing.T) {
	proxied := netip.MustParseAddr("203.0.113.9")
	for _, tc := range []struct {
		name, remote string
		clientIP     func(*http.Request) netip.Addr
		want         string
	}{
		{"ok/peer-v4", "192.0.2.1:1234", nil, "192.0.2.1"},
		{"ok/peer-v6", "[2001:db8::1]:1234", nil, "2001:db8::1"},
		{"ok/peer-v6-long-form", "[2001:0db8:0:0::1]:1234", nil, "2001:db8::1"},
		{"ok/peer-v4-in-v6", "[::ffff:192.0.2.1]:1234", nil, "192.0.2.1"},
		{"ok/behind-trusted-proxy", "192.0.2.1:1234", func(*http.Request) netip.Addr { return proxied }, "203.0.113.9"},
		{"ok/client-ip-is-peer", "192.0.2.1:1234", func(r *http.Request) netip.Addr { return netip.MustParseAddr("192.0.2.1") }, "192.0.2.1"},
		{"fail/no-client-ip", "192.0.2.1:1234", func(*http.Request) netip.Addr { return netip.Addr{} }, ""},
		{"fail/not-an-address", "somewhere", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{Deps: Deps{ClientIP: tc.clientIP}}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if got := g.clientAddr(r); got != tc.want {
				t.Errorf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
	g := &Gateway{}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	if n := testing.AllocsPerRun(100, func() { g.clientAddr(r) }); n != 0 {
		t.Errorf("clientAddr allocates %v times for a peer with no proxy in front; it runs on every request", n)
	}
}
