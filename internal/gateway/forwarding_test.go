package gateway

import "testing"

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
