package gateway

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"slices"
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
