package httpx

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnTo(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "/account"},
		{"/account", "/account"},
		{"/apps/bank?x=1#top", "/apps/bank?x=1#top"},
		{"//evil.example", "/account"},
		{"/\\evil.example", "/account"},
		{"https://evil.example/", "/account"},
		{"javascript:alert(1)", "/account"},
		{"evil.example", "/account"},
		{"/ok\r\nSet-Cookie: x=y", "/account"},
		{"/a\\b", "/account"},
		{"/\t/evil.example", "/account"},
		{"/" + strings.Repeat("a", 3000), "/account"},
	}
	for _, tc := range tests {
		if got := SafeReturnTo(tc.in); got != tc.want {
			t.Errorf("SafeReturnTo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{"/a", "//x", "/\\x", "http://x", "/%2f%2fx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SafeReturnTo(s)
		// Whatever comes in, what goes out resolves to our own origin.
		base, _ := url.Parse("https://stepgate.example/login")
		u, err := base.Parse(got)
		if err != nil || u.Host != "stepgate.example" || u.Scheme != "https" {
			t.Fatalf("SafeReturnTo(%q) = %q escapes to %v", s, got, u)
		}
	})
}
