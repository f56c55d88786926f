package gateway

import (
	"strings"
	"testing"
)

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

// splitSegments is canonicalSegments as a split reads it: the reference
// the in-place walk must agree with on every path, since a path it
// passed that the split refused would reach a router as a dot segment.
func splitSegments(p string, params bool) bool {
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if params {
			s, _, _ = strings.Cut(s, ";")
		}
		if s == "." || s == ".." || (s == "" && i < len(segs)-1) {
			return false
		}
	}
	return true
}

var segmentCases = []string{
	"/", "//", "///", "/a", "/a/", "/a//", "/a//b", "//a", "/.", "/..", "/./", "/../", "/a/.", "/a/..",
	"/a/./b", "/a/../b", "/.a", "/..a", "/a.", "/a..", "/...", "/;", "/;x", "/.;x", "/..;x", "/a/..;x/b",
	"/a;x/b", "/a/;x", "/a/;x/", "/;/", "/a/b/c/", "/a/b/c//", "/a;b;c", "/a/.;/b",
}

func TestCanonicalSegmentsAsSplit(t *testing.T) {
	for _, p := range segmentCases {
		for _, params := range []bool{false, true} {
			if got, want := canonicalSegments(p, params), splitSegments(p, params); got != want {
				t.Errorf("canonicalSegments(%q, %v) = %v; the split reads it as %v", p, params, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { canonicalSegments("/a/b;x/c/d/", true) }); n != 0 {
		t.Errorf("canonicalSegments allocates %v times per path; it runs on every request", n)
	}
}

func FuzzCanonicalSegments(f *testing.F) {
	for _, p := range segmentCases {
		f.Add(p, true)
	}
	f.Fuzz(func(t *testing.T, p string, params bool) {
		if p == "" || p[0] != '/' {
			return
		}
		if got, want := canonicalSegments(p, params), splitSegments(p, params); got != want {
			t.Fatalf("canonicalSegments(%q, %v) = %v; the split reads it as %v", p, params, got, want)
		}
	})
}
