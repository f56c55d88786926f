package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// The request id is the client's (or its proxy's) to choose, so only a
// short, plain one is copied into the sign-in log.
func TestRequestID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, header, want string }{
		{"ok/none", "", ""},
		{"ok/uuid", "3f2a9c1e-7b4d-4e0a-9d5c-2b8f6a1e0c47", "3f2a9c1e-7b4d-4e0a-9d5c-2b8f6a1e0c47"},
		{"ok/longest", strings.Repeat("a", maxRequestIDLen), strings.Repeat("a", maxRequestIDLen)},
		{"fail/too-long", strings.Repeat("a", maxRequestIDLen+1), ""},
		{"fail/space", "req 1", ""},
		{"fail/control", "req\x01", ""},
		{"fail/non-ascii", "réq", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header["X-Request-Id"] = []string{tc.header}
			}
			if got := requestID(r); got != tc.want {
				t.Errorf("requestID(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}
