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
		{"https", []string{"__host-STEPGATE_GW=abc;a=1; \"stepgate_gw_bind\"=q"}, []string{"a=1"}},
		// A look-alike name is the application's own business.
		{"http", []string{"my_stepgate_gw=1"}, []string{"my_stepgate_gw=1"}},
	} {
		rt := &route{scheme: tc.scheme}
		if got := rt.withoutOwnCookies(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: got %q, want %q", tc.scheme, tc.in, got, tc.want)
		}
	}
}

// An upstream can set its own cookies but never the gateway's, however
// it spells the name: every form a browser would store and send back as
// a gateway cookie is dropped.
func TestDropOwnSetCookies(t *testing.T) {
	for _, tc := range []struct {
		name, scheme string
		in           []string
		want         []string
	}{
		{"ok/app-cookie", "http", []string{"theme=dark; Path=/"}, []string{"theme=dark; Path=/"}},
		{"fail/plain", "http", []string{"stepgate_gw=x; Path=/", "theme=dark", " stepgate_gw_bind=y"}, []string{"theme=dark"}},
		{"fail/clear", "http", []string{"stepgate_gw=; Max-Age=0"}, nil},
		{"fail/host-prefix", "https", []string{"__Host-stepgate_gw=x; Secure; Path=/", "my_stepgate_gw=1"}, []string{"my_stepgate_gw=1"}},
		// RFC 6265bis: an empty name stores a nameless cookie whose value
		// the browser sends back alone, as "stepgate_gw=x".
		{"fail/empty-name", "http", []string{"=stepgate_gw=x; Path=/app", "theme=dark"}, []string{"theme=dark"}},
		{"fail/empty-name-spaced", "http", []string{" \t= stepgate_gw =x", "=theme=dark"}, []string{"=theme=dark"}},
		{"fail/empty-name-bind", "https", []string{"=__Host-stepgate_gw_bind=x; Secure"}, nil},
		{"fail/no-equals", "http", []string{"stepgate_gw; Path=/"}, nil},
		{"fail/case", "https", []string{"__HOST-stepgate_gw=x", "__host-Stepgate_GW=x", "STEPGATE_GW=x"}, nil},
		{"fail/secure-prefix", "https", []string{"__Secure-stepgate_gw=x"}, nil},
		{"fail/other-scheme-form", "http", []string{"__Host-stepgate_gw=x"}, nil},
		{"fail/quoted", "http", []string{"\"stepgate_gw\"=x", "=\"stepgate_gw=x\""}, nil},
		{"fail/control", "http", []string{"\x0bstepgate_gw=x"}, nil},
		{"ok/lookalike", "http", []string{"stepgate_gwx=1", "=my_stepgate_gw=1"}, []string{"stepgate_gwx=1", "=my_stepgate_gw=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Set-Cookie": slices.Clone(tc.in)}
			(&route{scheme: tc.scheme}).dropOwnSetCookies(h)
			if got := h["Set-Cookie"]; !slices.Equal(got, tc.want) {
				t.Errorf("%s %q: got %q, want %q", tc.scheme, tc.in, got, tc.want)
			}
			if _, present := h["Set-Cookie"]; present != (tc.want != nil) {
				t.Errorf("%s %q: Set-Cookie present %v", tc.scheme, tc.in, present)
			}
		})
	}
}

// ownNames are every name under which the gateway reads its cookies,
// on either kind of route.
var ownNames = []string{"stepgate_gw", "stepgate_gw_bind", "__Host-stepgate_gw", "__Host-stepgate_gw_bind"}

// serverReads returns the cookie names a Go server reads from a Cookie
// header, as the gateway reads its own.
func serverReads(cookieHeader string) []string {
	r := &http.Request{Header: http.Header{"Cookie": {cookieHeader}}}
	var names []string
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	return names
}

// readsOwn reports whether any name is a gateway cookie's, by exact
// match (as the gateway reads it) or in any ASCII case (as a server
// that folds case would).
func readsOwn(names []string) (string, bool) {
	for _, n := range names {
		for _, own := range ownNames {
			if strings.EqualFold(n, own) {
				return n, true
			}
		}
	}
	return "", false
}

// browserStores parses a Set-Cookie value as RFC 6265bis section 5.6
// does and returns what the browser sends back in its Cookie header, or
// false when it ignores the header.
func browserStores(setCookie string) (string, bool) {
	if strings.ContainsFunc(setCookie, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
		return "", false
	}
	pair, _, _ := strings.Cut(setCookie, ";")
	name, value, ok := strings.Cut(pair, "=")
	if !ok {
		name, value = "", pair
	}
	name, value = strings.Trim(name, " \t"), strings.Trim(value, " \t")
	switch {
	case name == "" && value == "":
		return "", false
	case name == "":
		return value, true // a nameless cookie is sent as its value alone
	}
	return name + "=" + value, true
}

// However a Cookie header is written, the gateway's own cookies never
// survive the filter, whatever survives was in the header, and a server
// parsing what survives reads no gateway cookie.
func FuzzWithoutOwnCookies(f *testing.F) {
	for _, seed := range []string{"stepgate_gw=a", "theme=dark; stepgate_gw=b", " stepgate_gw =c;;stepgate_gw_bind=d", "a=1;stepgate_gw=2;b=3", "=;=;", "STEPGATE_GW=1", "__host-stepgate_gw=2"} {
		f.Add(seed)
	}
	rt := &route{scheme: "https"}
	f.Fuzz(func(t *testing.T, header string) {
		for _, v := range rt.withoutOwnCookies([]string{header}) {
			if n, own := readsOwn(serverReads(v)); own {
				t.Fatalf("%q kept the gateway's cookie %q: %q", header, n, v)
			}
			for pair := range strings.SplitSeq(v, ";") {
				if !strings.Contains(header, strings.TrimSpace(pair)) {
					t.Fatalf("%q produced %q, which it did not contain", header, pair)
				}
			}
		}
	})
}

// However a Set-Cookie is written, one that a browser would store and
// send back as a gateway cookie never reaches the browser, and the
// application's other cookies do.
func FuzzDropOwnSetCookies(f *testing.F) {
	for _, seed := range []string{"stepgate_gw=a; Path=/", " stepgate_gw_bind=b", "theme=dark", "stepgate_gw", "=stepgate_gw=x", " = __Host-stepgate_gw=y; Secure", "__HOST-stepgate_gw=z"} {
		f.Add(seed)
	}
	rt := &route{scheme: "https"}
	f.Fuzz(func(t *testing.T, value string) {
		h := http.Header{"Set-Cookie": {value, "theme=dark"}}
		rt.dropOwnSetCookies(h)
		for _, v := range h["Set-Cookie"] {
			sent, stored := browserStores(v)
			if !stored {
				continue
			}
			if n, own := readsOwn(serverReads(sent)); own {
				t.Fatalf("Set-Cookie %q passed: the browser sends it back as %q, read as %q", v, sent, n)
			}
		}
		if !slices.Contains(h["Set-Cookie"], "theme=dark") {
			t.Fatalf("the application's own cookie was dropped beside %q", value)
		}
	})
}
