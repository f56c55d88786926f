package gateway

import (
	"strings"
	"testing"
	"time"
)

// TestResolve: a route's rules resolve a method and path as the live
// gateway does, so a scenario about "/Customers/1.json" is judged on the
// context that protects /customers/*, and a path the gateway refuses is
// an error rather than an open page.
func TestResolve(t *testing.T) {
	t.Parallel()
	routes := []Route{
		{Name: "bank", From: "http://bank.example", To: "http://127.0.0.1:9", Rules: bankRules},
		{Name: "sub", From: "http://apps.example/bank", To: "http://127.0.0.1:9", App: "sub-bank",
			Rules: []Rule{{Path: "/bank/admin/*", Context: "c3", MaxAge: 5 * time.Minute}}},
	}
	cases := []struct {
		name, route, method, path string
		want                      Target
		err                       string
	}{
		{"ok/post-transfer", "bank", "POST", "/transfers", Target{App: "bank", Context: "c2"}, ""},
		{"ok/get-transfer-is-default", "bank", "GET", "/transfers", Target{App: "bank"}, ""},
		{"ok/method-defaults-to-get", "bank", "", "/statements", Target{App: "bank", Context: "c4"}, ""},
		{"ok/case-variant", "bank", "GET", "/CUSTOMERS/1", Target{App: "bank", Context: "c1"}, ""},
		{"ok/format-suffix", "bank", "GET", "/customers.json", Target{App: "bank", Context: "c1"}, ""},
		{"ok/single-use", "bank", "GET", "/admin/x", Target{App: "bank", Context: "c3", SingleUse: true}, ""},
		{"ok/anonymous", "bank", "GET", "/public/rates", Target{App: "bank", Anonymous: true}, ""},
		{"ok/prefix-route", "sub", "GET", "/bank/admin/x", Target{App: "sub-bank", Context: "c3", MaxAge: 5 * time.Minute}, ""},
		{"fail/dot-segments", "bank", "GET", "/public/../customers/1", Target{}, "refuses path"},
		{"fail/encoded-slash", "bank", "GET", "/public%2F..%2Fcustomers", Target{}, "refuses path"},
		{"fail/outside-prefix", "sub", "GET", "/other", Target{}, "not under route sub"},
		{"fail/unknown-route", "shop", "GET", "/", Target{}, `no gateway route is named "shop"; the routes are: bank, sub`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Resolve(routes, tc.route, tc.method, tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
