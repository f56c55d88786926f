package gateway

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// A value with a line break (a stored display name, say) cannot add a
// header line of its own to the upstream request.
func TestWriteHeaderNeutralizesLineBreaks(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	writeHeader(bw, "X-Stepgate-Groups", "staff\r\nX-Stepgate-User: root")
	_ = bw.Flush()
	if got, want := buf.String(), "X-Stepgate-Groups: staff  X-Stepgate-User: root\r\n"; got != want {
		t.Fatalf("header line %q, want %q", got, want)
	}
}

func TestUpstreamTarget(t *testing.T) {
	for _, tc := range []struct{ upstream, path, query, want string }{
		{"http://app:9000", "/a/b", "", "/a/b"},
		{"http://app:9000/", "/a", "x=1", "/a?x=1"},
		{"http://app:9000/base", "/a", "", "/base/a"},
		{"http://app:9000/base/", "/a", "", "/base/a"},
		{"http://app:9000/base?t=7", "/a", "x=1", "/base/a?t=7&x=1"},
		{"http://app:9000/base?t=7", "/", "", "/base/?t=7"},
		{"http://app:9000", "/a b/ü", "", "/a%20b/%C3%BC"},
	} {
		u, _ := url.Parse(tc.upstream)
		if got := upstreamTarget(&route{upstream: u}, tc.path, tc.query); got != tc.want {
			t.Errorf("upstreamTarget(%s, %s, %q) = %s, want %s", tc.upstream, tc.path, tc.query, got, tc.want)
		}
	}
}

// The gateway's own cookies never reach the application; its other
// cookies do, as sent.
func TestWithoutOwnCookies(t *testing.T) {
	for _, tc := range []struct {
		scheme string
		in     []string
		want   []string
	}{
		{"http", []string{"theme=dark; lang=de"}, []string{"theme=dark; lang=de"}},
		{"http", []string{"stepgate_gw=abc"}, nil},
		{"http", []string{"theme=dark; stepgate_gw=abc; stepgate_gw_bind=xyz", "stepgate_gw=again"}, []string{"theme=dark"}},
		{"http", []string{"a=1; stepgate_gw =spaced"}, []string{"a=1"}},
		{"https", []string{"__Host-stepgate_gw=abc;a=1"}, []string{"a=1"}},
		// A look-alike name is the application's own business.
		{"http", []string{"my_stepgate_gw=1"}, []string{"my_stepgate_gw=1"}},
	} {
		rt := &route{scheme: tc.scheme}
		if got := rt.withoutOwnCookies(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: got %q, want %q", tc.scheme, tc.in, got, tc.want)
		}
	}
}

// An upstream can set its own cookies but never the gateway's.
func TestDropOwnSetCookies(t *testing.T) {
	for _, tc := range []struct {
		scheme string
		in     []string
		want   []string
	}{
		{"http", []string{"theme=dark; Path=/"}, []string{"theme=dark; Path=/"}},
		{"http", []string{"stepgate_gw=x; Path=/", "theme=dark", " stepgate_gw_bind=y"}, []string{"theme=dark"}},
		{"http", []string{"stepgate_gw=; Max-Age=0"}, nil},
		{"https", []string{"__Host-stepgate_gw=x; Secure; Path=/", "my_stepgate_gw=1"}, []string{"my_stepgate_gw=1"}},
	} {
		h := http.Header{"Set-Cookie": slices.Clone(tc.in)}
		(&route{scheme: tc.scheme}).dropOwnSetCookies(h)
		if got := h["Set-Cookie"]; !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: got %q, want %q", tc.scheme, tc.in, got, tc.want)
		}
		if _, present := h["Set-Cookie"]; present != (tc.want != nil) {
			t.Errorf("%s %q: Set-Cookie present %v", tc.scheme, tc.in, present)
		}
	}
}

// However a Cookie header is written, the gateway's own cookies never
// survive the filter, and whatever survives was in the header.
func FuzzWithoutOwnCookies(f *testing.F) {
	for _, seed := range []string{"stepgate_gw=a", "theme=dark; stepgate_gw=b", " stepgate_gw =c;;stepgate_gw_bind=d", "a=1;stepgate_gw=2;b=3", "=;=;"} {
		f.Add(seed)
	}
	rt := &route{scheme: "http"}
	f.Fuzz(func(t *testing.T, header string) {
		for _, v := range rt.withoutOwnCookies([]string{header}) {
			for pair := range strings.SplitSeq(v, ";") {
				name, _, _ := strings.Cut(pair, "=")
				if rt.isOwnCookie(strings.TrimSpace(name)) {
					t.Fatalf("%q kept the gateway's cookie %q: %q", header, name, v)
				}
				if !strings.Contains(header, strings.TrimSpace(pair)) {
					t.Fatalf("%q produced %q, which it did not contain", header, pair)
				}
			}
		}
	})
}

// However a Set-Cookie is written, one that names a gateway cookie
// never reaches the browser.
func FuzzDropOwnSetCookies(f *testing.F) {
	for _, seed := range []string{"stepgate_gw=a; Path=/", " stepgate_gw_bind=b", "theme=dark", "stepgate_gw"} {
		f.Add(seed)
	}
	rt := &route{scheme: "http"}
	f.Fuzz(func(t *testing.T, value string) {
		h := http.Header{"Set-Cookie": {value, "theme=dark"}}
		rt.dropOwnSetCookies(h)
		for _, v := range h["Set-Cookie"] {
			name, _, _ := strings.Cut(v, "=")
			if rt.isOwnCookie(strings.TrimSpace(name)) {
				t.Fatalf("Set-Cookie %q passed", v)
			}
		}
		if !slices.Contains(h["Set-Cookie"], "theme=dark") {
			t.Fatalf("the application's own cookie was dropped beside %q", value)
		}
	})
}
