package httpx

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	c := ClientIP{Trusted: trusted}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"ok/no-proxy", "203.0.113.7:5555", nil, "203.0.113.7"},
		{"attack/spoofed-xff-from-untrusted-peer", "203.0.113.7:5555", []string{"1.2.3.4"}, "203.0.113.7"},
		{"ok/one-trusted-proxy", "10.1.2.3:80", []string{"198.51.100.9"}, "198.51.100.9"},
		{"attack/client-prepends-fake-hop", "10.1.2.3:80", []string{"1.2.3.4, 198.51.100.9"}, "198.51.100.9"},
		{"ok/two-trusted-proxies", "10.1.2.3:80", []string{"198.51.100.9, 192.0.2.1"}, "198.51.100.9"},
		{"ok/split-headers", "10.1.2.3:80", []string{"198.51.100.9", "10.9.9.9"}, "198.51.100.9"},
		{"fail/garbage-hop", "10.1.2.3:80", []string{"not-an-ip"}, "10.1.2.3"},
		{"ok/ipv4-mapped", "[::ffff:203.0.113.7]:1", nil, "203.0.113.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.Of(r).String(); got != tc.want {
				t.Fatalf("client IP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSecureHeaders(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	SecureHeaders(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	for k, want := range map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); csp == "" || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q does not forbid framing", csp)
	}
}

// TestSecureHeadersSharedValuesStayPut: the security headers' values are
// shared by every response; handlers that add to or replace one, at the
// same time, each change only their own response.
func TestSecureHeadersSharedValuesStayPut(t *testing.T) {
	t.Parallel()
	h := SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("add"); v != "" {
			w.Header().Add("X-Frame-Options", v)
		}
		if r.URL.Query().Has("set") {
			w.Header().Set("Content-Security-Policy", "default-src *")
		}
	}))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				add := fmt.Sprintf("v%d-%d", i, j)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/?set&add="+add, nil))
				if got := rec.Header()["X-Frame-Options"]; !slices.Equal(got, []string{"DENY", add}) {
					t.Errorf("X-Frame-Options %q, want DENY and this response's own %s", got, add)
					return
				}
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				if got := rec.Header()["X-Frame-Options"]; !slices.Equal(got, []string{"DENY"}) ||
					!strings.HasPrefix(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
					t.Errorf("a plain response carries X-Frame-Options %q, CSP %q: another response changed them", got, rec.Header().Get("Content-Security-Policy"))
					return
				}
			}
		})
	}
	wg.Wait()
}
