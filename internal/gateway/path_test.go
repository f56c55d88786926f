package gateway

import "testing"

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/admin", "/admin"},
		{"/admin/", "/admin/"},
		{"/transfers/new", "/transfers/new"},
		{"/%61dmin", "/admin"},
		{"/ADMIN", "/ADMIN"},
		{"/a%20b", "/a b"},
	} {
		got, err := normalize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ok/%s: normalize = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"", "admin", "/admin/../admin", "/admin/..", "/./admin", "/%2e%2e/admin", "/%2E/admin",
		"//admin", "/admin//x", "/admin%2f", "/admin%2Fx", "/admin%5cx", "/admin\\x", "/%252e%252e/admin",
		"/%25", "/a%00b", "/a\x01b", "/a%", "/a%zz", "/admin#x", "/a%ffb", "/a%c0%aeb",
	} {
		if got, err := normalize(bad); err == nil {
			t.Errorf("fail/%q was accepted as %q", bad, got)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/admin", "/%61dmin", "/a/../b", "//x", "/%2f", "/%252e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := normalize(raw)
		if err != nil {
			return
		}
		// A canonical path is a fixed point: forwarding it and reading
		// it back gives the same path, so the upstream sees what the
		// rules saw.
		again, err := normalize(escapePath(p))
		if err != nil || again != p {
			t.Fatalf("normalize(%q) = %q, but its escaped form %q normalizes to %q, %v", raw, p, escapePath(p), again, err)
		}
	})
}
