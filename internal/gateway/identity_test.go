package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// netHTTPCookie is what net/http's Request.Cookie reads for name.
func netHTTPCookie(lines []string, name string) (string, bool) {
	r := &http.Request{Header: http.Header{"Cookie": lines}}
	c, err := r.Cookie(name)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

// TestRequestCookieReadsAsNetHTTP: the gateway reads its own cookie
// without net/http's Request.Cookie, and must read exactly what it
// reads. A reader that differed could be told one session by a crafted
// Cookie header while another part of the gateway, or the application,
// reads another (the first of two cookies, a quoted value, a cookie
// hidden in a badly formed pair).
func TestRequestCookieReadsAsNetHTTP(t *testing.T) {
	t.Parallel()
	const v = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"ok/alone", []string{"stepgate_gw=" + v}},
		{"ok/among-others", []string{"a=1; stepgate_gw=" + v + "; b=2"}},
		{"ok/first-of-two", []string{"stepgate_gw=first; stepgate_gw=" + v}},
		{"ok/first-of-two-lines", []string{"x=1", "stepgate_gw=" + v, "stepgate_gw=second"}},
		{"ok/quoted", []string{`stepgate_gw="` + v + `"`}},
		{"ok/spaces-around", []string{"  stepgate_gw  =" + v + "  ;"}},
		{"ok/bad-value-skipped-for-next", []string{`stepgate_gw=a\b; stepgate_gw=` + v}},
		{"fail/lone-quote", []string{`stepgate_gw="`}},
		{"ok/empty-value", []string{"stepgate_gw=; stepgate_gw=" + v}},
		{"ok/no-equals", []string{"stepgate_gw; stepgate_gw=" + v}},
		{"fail/none", nil},
		{"fail/other-name", []string{"stepgate_gw_bind=" + v}},
		{"fail/case", []string{"STEPGATE_GW=" + v}},
		{"fail/prefixed", []string{"__Host-stepgate_gw=" + v}},
		{"ok/space-in-value", []string{"stepgate_gw=a b"}},
		{"fail/control-byte", []string{"stepgate_gw=a\x01b"}},
		{"fail/non-ascii", []string{"stepgate_gw=é"}},
		{"fail/too-many-cookies", []string{strings.Repeat("a=1;", maxRequestCookies) + "stepgate_gw=" + v}},
		{"ok/at-the-limit", []string{strings.Repeat("a=1;", maxRequestCookies-1) + "stepgate_gw=" + v}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, gotOK := requestCookie(http.Header{"Cookie": tc.lines}, "stepgate_gw")
			want, wantOK := netHTTPCookie(tc.lines, "stepgate_gw")
			if got != want || gotOK != wantOK {
				t.Fatalf("read %q, %v; net/http reads %q, %v", got, gotOK, want, wantOK)
			}
			if strings.HasPrefix(tc.name, "fail/") == gotOK {
				t.Fatalf("found=%v, want %v", gotOK, !strings.HasPrefix(tc.name, "fail/"))
			}
		})
	}
}

// FuzzRequestCookie: for any Cookie header, the gateway's reader finds
// the cookie net/http finds, or none when it finds none.
func FuzzRequestCookie(f *testing.F) {
	for _, s := range []string{"stepgate_gw=x", `a=1; stepgate_gw="y"; stepgate_gw=z`, " ;stepgate_gw = q ", "stepgate_gw=a\\b;stepgate_gw=c"} {
		f.Add(s, "")
	}
	f.Add("stepgate_gw=x", "stepgate_gw=y")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		lines := []string{line1}
		if line2 != "" {
			lines = append(lines, line2)
		}
		for _, name := range []string{"stepgate_gw", "__Host-stepgate_gw"} {
			got, gotOK := requestCookie(http.Header{"Cookie": lines}, name)
			want, wantOK := netHTTPCookie(lines, name)
			if got != want || gotOK != wantOK {
				t.Fatalf("%q in %q: read %q, %v; net/http reads %q, %v", name, lines, got, gotOK, want, wantOK)
			}
		}
	})
}
