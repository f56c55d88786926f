package gateway

import (
	"net/http/httptest"
	"testing"
)

// bankRules are the demo bank's rules.
var bankRules = []Rule{
	{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
	{Path: "/admin/*", Context: "c3", SingleUse: true},
	{Path: "/customers/*", Context: "c1"},
	{Path: "/statements", Methods: []string{"GET"}, Context: "c4"},
	{Path: "/keys/*", Context: "c5"},
	{Path: "/public/*", Anonymous: true},
}

func bankRoutes(t *testing.T) []*route {
	t.Helper()
	routes, err := compileRoutes([]Route{
		{Name: "bank", From: "http://bank.example", To: "http://127.0.0.1:9", Rules: bankRules},
		{Name: "open", From: "http://open.example", To: "http://127.0.0.1:9", Rules: bankRules,
			AllowPathParameters: true, AllowNonASCIIPaths: true},
		{Name: "apps", From: "http://apps.example", To: "http://127.0.0.1:9"},
		{Name: "sub", From: "http://apps.example/bank", To: "http://127.0.0.1:9",
			Rules: []Rule{{Path: "/bank/admin/*", Context: "c3"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return routes
}

// judge runs what the gateway does before identifying the caller, for
// the built-in proxy and forward-auth alike, and names the outcome:
// "400", "404", "anonymous", "signed-in" (the default rule) or the
// matched rule's context.
func judge(routes []*route, method, target string, header ...string) string {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	p, err := normalize(rawPath(r))
	if err != nil {
		return "400"
	}
	rt := find(routes, r.Host, p)
	if rt == nil {
		return "404"
	}
	if no := rt.admit(r, p); no != nil {
		return "400"
	}
	ru := rt.ruleFor(r.Method, p)
	switch {
	case ru.anonymous:
		return "anonymous"
	case ru == &defaultRule:
		return "signed-in"
	}
	return ru.context
}

// TestRuleMatchingVariants: every way of writing a protected request
// that some upstream router (Werkzeug, Express, Spring/Tomcat, Rails, Go's
// ServeMux, nginx) serves as that request either meets the rule or is
// refused; none falls through to the default rule. docs/gateway.md has
// the same table.
func TestRuleMatchingVariants(t *testing.T) {
	routes := bankRoutes(t)
	const bank, open = "http://bank.example", "http://open.example"
	for _, tc := range []struct {
		name, method, target, want string
		header                     []string
	}{
		{name: "ok/transfer", method: "POST", target: bank + "/transfers", want: "c2"},
		{name: "ok/trailing-slash", method: "POST", target: bank + "/transfers/", want: "c2"},
		{name: "ok/format-suffix", method: "POST", target: bank + "/transfers.json", want: "c2"},
		{name: "ok/format-suffix-slash", method: "POST", target: bank + "/TRANSFERS.JSON/", want: "c2"},
		{name: "ok/upper-case-path", method: "POST", target: bank + "/Transfers", want: "c2"},
		{name: "ok/encoded-letter", method: "POST", target: bank + "/%74ransfers", want: "c2"},
		{name: "ok/transfer-get-is-another-rule", method: "GET", target: bank + "/transfers", want: "signed-in"},
		{name: "ok/transfer-sub-path-is-not-the-rule", method: "POST", target: bank + "/transfers/new", want: "signed-in"},
		{name: "ok/longer-name-is-not-the-rule", method: "POST", target: bank + "/transfersx", want: "signed-in"},
		{name: "ok/admin", method: "GET", target: bank + "/admin", want: "c3"},
		{name: "ok/admin-slash", method: "GET", target: bank + "/admin/", want: "c3"},
		{name: "ok/admin-format", method: "GET", target: bank + "/admin.json", want: "c3"},
		{name: "ok/admin-below", method: "GET", target: bank + "/ADMIN/users", want: "c3"},
		{name: "ok/customers-format", method: "GET", target: bank + "/customers.json", want: "c1"},
		{name: "ok/head-runs-get", method: "HEAD", target: bank + "/statements", want: "c4"},
		{name: "ok/head-runs-get-format", method: "HEAD", target: bank + "/statements.csv", want: "c4"},
		{name: "ok/public", method: "GET", target: bank + "/public/rates", want: "anonymous"},
		{name: "ok/public-case", method: "GET", target: bank + "/PUBLIC/rates", want: "anonymous"},
		{name: "ok/public-format-is-not-anonymous", method: "GET", target: bank + "/public.json", want: "signed-in"},
		{name: "ok/public-trailing-dot-is-not-anonymous", method: "GET", target: bank + "/public./rates", want: "signed-in"},
		{name: "ok/trailing-space", method: "GET", target: bank + "/admin%20", want: "c3"},
		{name: "ok/leading-space", method: "GET", target: bank + "/%20admin/users", want: "c3"},
		{name: "ok/trailing-dot-segment", method: "GET", target: bank + "/admin./users", want: "c3"},
		{name: "ok/trailing-dots", method: "POST", target: bank + "/transfers..", want: "c2"},
		{name: "fail/space-segment", method: "GET", target: bank + "/admin/%20/users", want: "400"},
		{name: "ok/extension-method", method: "PROPFIND", target: bank + "/admin", want: "c3"},

		{name: "fail/lower-case-method", method: "post", target: bank + "/transfers", want: "400"},
		{name: "fail/mixed-case-method", method: "Post", target: bank + "/transfers", want: "400"},
		{name: "fail/mixed-case-method-2", method: "pOST", target: bank + "/transfers", want: "400"},
		{name: "fail/lower-case-get", method: "get", target: bank + "/public/rates", want: "400"},
		{name: "fail/method-override-header", method: "POST", target: bank + "/statements", header: []string{"X-HTTP-Method-Override", "GET"}, want: "400"},
		{name: "fail/method-header", method: "GET", target: bank + "/", header: []string{"X-HTTP-Method", "POST"}, want: "400"},
		{name: "fail/method-override-alt", method: "GET", target: bank + "/", header: []string{"X-Method-Override", "POST"}, want: "400"},
		{name: "fail/method-override-query", method: "GET", target: bank + "/transfers?_method=POST", want: "400"},
		{name: "fail/method-override-query-encoded", method: "GET", target: bank + "/transfers?%5Fmethod=POST", want: "400"},
		{name: "fail/method-override-query-semicolon", method: "GET", target: bank + "/transfers?a=1;_method=POST", want: "400"},
		{name: "fail/method-override-underscores", method: "POST", target: bank + "/statements", header: []string{"X_HTTP_Method_Override", "GET"}, want: "400"},
		{name: "fail/original-url", method: "GET", target: bank + "/", header: []string{"X-Original-URL", "/admin/"}, want: "400"},
		{name: "fail/rewrite-url", method: "GET", target: bank + "/", header: []string{"X-Rewrite-Url", "/admin/"}, want: "400"},
		{name: "fail/method-override-query-php-dot", method: "POST", target: bank + "/statements?.method=GET", want: "400"},
		{name: "fail/method-override-query-php-encoded-dot", method: "POST", target: bank + "/statements?%2Emethod=GET", want: "400"},
		{name: "fail/method-override-query-php-leading-space", method: "POST", target: bank + "/statements?+_method=GET", want: "400"},
		{name: "fail/method-override-query-nul", method: "POST", target: bank + "/statements?_method%00x=GET", want: "400"},
		{name: "fail/method-override-query-array", method: "POST", target: bank + "/statements?_method[]=GET", want: "400"},
		{name: "ok/query-value-named-method", method: "GET", target: bank + "/accounts?sort=_method", want: "signed-in"},
		{name: "fail/path-parameter", method: "POST", target: bank + "/transfers;x=1", want: "400"},
		{name: "fail/encoded-path-parameter", method: "POST", target: bank + "/transfers%3Bx=1", want: "400"},
		{name: "fail/jsessionid", method: "GET", target: bank + "/admin;jsessionid=x", want: "400"},
		{name: "fail/dot-dot-parameter", method: "GET", target: bank + "/x/..;/admin/", want: "400"},
		{name: "fail/empty-segment-parameter", method: "GET", target: bank + "/;x/admin", want: "400"},
		{name: "fail/long-s", method: "POST", target: bank + "/tran%C5%BFfers", want: "400"},
		{name: "fail/dotless-i", method: "GET", target: bank + "/adm%C4%B1n/", want: "400"},
		{name: "fail/dotted-capital-i", method: "GET", target: bank + "/adm%C4%B0n/", want: "400"},
		{name: "fail/raw-utf8", method: "GET", target: bank + "/adm\xc4\xb1n/", want: "400"},
		{name: "fail/fullwidth", method: "GET", target: bank + "/%EF%BD%81dmin", want: "400"},
		{name: "fail/kelvin-sign", method: "GET", target: bank + "/%E2%84%AAeys", want: "400"},
		{name: "fail/dot-parameter", method: "GET", target: bank + "/.;x/admin", want: "400"},
		{name: "fail/not-utf8", method: "GET", target: bank + "/adm%FFn", want: "400"},
		{name: "fail/prefix-route-parameter", method: "GET", target: "http://apps.example/bank;x/admin", want: "400"},
		{name: "ok/prefix-route-case", method: "GET", target: "http://apps.example/BANK/admin", want: "c3"},

		{name: "ok/opt-in/path-parameter", method: "POST", target: open + "/transfers;x=1", want: "c2"},
		{name: "ok/opt-in/encoded-path-parameter", method: "POST", target: open + "/transfers%3bx=1", want: "c2"},
		{name: "ok/opt-in/jsessionid", method: "GET", target: open + "/admin;jsessionid=x", want: "c3"},
		{name: "ok/opt-in/parameter-mid-path", method: "GET", target: open + "/admin;v=1/users", want: "c3"},
		{name: "ok/opt-in/parameter-and-format", method: "POST", target: open + "/transfers.json;x=1", want: "c2"},
		{name: "ok/opt-in/long-s", method: "POST", target: open + "/tran%C5%BFfers", want: "c2"},
		{name: "ok/opt-in/dotless-i", method: "GET", target: open + "/adm%C4%B1n/", want: "c3"},
		{name: "ok/opt-in/dotted-capital-i", method: "GET", target: open + "/ADM%C4%B0N", want: "c3"},
		{name: "ok/opt-in/fullwidth", method: "GET", target: open + "/%EF%BD%81dmin", want: "c3"},
		{name: "ok/opt-in/raw-utf8", method: "GET", target: open + "/adm\xc4\xb1n/users", want: "c3"},
		{name: "ok/opt-in/kelvin-sign", method: "GET", target: open + "/%E2%84%AAeys/1", want: "c5"},
		{name: "fail/opt-in/not-utf8", method: "GET", target: open + "/adm%FFn", want: "400"},
		{name: "ok/opt-in/public-parameter-is-not-anonymous", method: "GET", target: open + "/public;x/rates", want: "signed-in"},
		{name: "ok/opt-in/public-fullwidth-is-not-anonymous", method: "GET", target: open + "/%EF%BD%90ublic/rates", want: "signed-in"},
		{name: "ok/opt-in/public-dotted-i-is-not-anonymous", method: "GET", target: open + "/publ%C4%B0c/rates", want: "signed-in"},
		{name: "fail/opt-in/dot-dot-parameter", method: "GET", target: open + "/x/..;/admin/", want: "400"},
		{name: "fail/opt-in/dot-parameter", method: "GET", target: open + "/.;x/admin", want: "400"},
		{name: "fail/opt-in/empty-segment-parameter", method: "GET", target: open + "/;x/admin", want: "400"},
		{name: "fail/opt-in/fullwidth-dot-dot", method: "GET", target: open + "/x/%EF%BC%8E%EF%BC%8E/admin", want: "400"},
		{name: "fail/opt-in/fullwidth-percent", method: "GET", target: open + "/admin%EF%BC%85%EF%BC%92%EF%BD%86x", want: "400"},
		{name: "fail/opt-in/fullwidth-backslash", method: "GET", target: open + "/admin%EF%BC%BCx", want: "400"},
		{name: "fail/opt-in/fullwidth-hash", method: "GET", target: open + "/admin%EF%BC%83x", want: "400"},
		{name: "ok/opt-in/encoded-hash-is-a-character", method: "GET", target: open + "/%C3%BCber%23x", want: "signed-in"},
		{name: "fail/opt-in/fullwidth-slash", method: "GET", target: open + "/x%EF%BC%8F..%EF%BC%8Fadmin", want: "400"},
		{name: "fail/opt-in/lower-case-method", method: "post", target: open + "/transfers", want: "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := judge(routes, tc.method, tc.target, tc.header...); got != tc.want {
				t.Errorf("%s %s: %s, want %s", tc.method, tc.target, got, tc.want)
			}
		})
	}
}

// TestRoutePrefixVariants: a route with a path prefix covers what a
// wildcard rule for that prefix covers, so a request some router serves
// under the prefix (Rails' "(.:format)" and Spring's suffix patterns
// serve "/bank.json" as "/bank") is not sent to the route for the whole
// host, whose app meets other policies.
func TestRoutePrefixVariants(t *testing.T) {
	routes := bankRoutes(t)
	for _, tc := range []struct{ name, path, want string }{
		{"ok/prefix", "/bank", "sub"},
		{"ok/prefix-slash", "/bank/", "sub"},
		{"ok/below", "/bank/admin/users", "sub"},
		{"fail/format-suffix", "/bank.json", "sub"},
		{"fail/format-suffix-slash", "/BANK.JSON/", "sub"},
		{"fail/format-suffix-trailing-dot", "/bank.json.", "sub"},
		{"ok/longer-name", "/bankx", "apps"},
		{"ok/format-then-path-is-another-resource", "/bank.json/admin", "apps"},
		{"ok/other", "/accounts", "apps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := normalize(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			rt := find(routes, "apps.example", p)
			if rt == nil || rt.name != tc.want {
				t.Errorf("%s: route %v, want %s", tc.path, rt, tc.want)
			}
		})
	}
}

func TestMatchKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/Admin", "/admin"},
		{"/tran\u017ffers", "/transfers"},  // long s
		{"/adm\u0131n", "/admin"},          // dotless i, as Java's equalsIgnoreCase reads it
		{"/adm\u0130n", "/admin"},          // capital I with dot
		{"/\u212aeys", "/keys"},            // Kelvin sign
		{"/\uff41dmin", "/admin"},          // fullwidth a
		{"/a;x=1/b;y", "/a/b"},             // parameters off every segment
		{"/stra\u00dfe", "/stra\u00dfe"},   // ß stays: no router reads it as ss
		{"/\u03a3\u03c2", "/\u03c3\u03c3"}, // final sigma
		{"/caf\u0065\u0301", "/caf\u00e9"}, // composed
	} {
		if got, err := matchKey(tc.in); err != nil || got != tc.want {
			t.Errorf("matchKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzMatchKey(f *testing.F) {
	for _, s := range []string{"/admin", "/tran\u017ffers", "/a;x/b", "/x/..;/y", "/\uff0e\uff0e", "/\u212a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := normalize(raw)
		if err != nil {
			return
		}
		key, err := matchKey(p)
		if err != nil {
			return
		}
		// A key has no dot or inner empty segments, and folding it again
		// changes nothing: rules and requests meet in one form.
		if !canonicalSegments(key, false) {
			t.Fatalf("matchKey(%q) = %q has dot or empty segments", p, key)
		}
		if again, err := matchKey(key); err != nil || again != key {
			t.Fatalf("matchKey(%q) = %q, but matchKey of that is %q, %v", p, key, again, err)
		}
	})
}

// BenchmarkMatch is what matching costs a routine request: normalize,
// find, admit and ruleFor, as ServeHTTP runs them.
func BenchmarkMatch(b *testing.B) {
	routes, err := compileRoutes([]Route{{Name: "bank", From: "http://bank.example", To: "http://127.0.0.1:9", Rules: bankRules}})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "http://bank.example/accounts/42?view=full", nil)
	b.ReportAllocs()
	for b.Loop() {
		p, err := normalize(rawPath(r))
		if err != nil {
			b.Fatal(err)
		}
		rt := find(routes, r.Host, p)
		if rt.admit(r, p) != nil || rt.ruleFor(r.Method, p) != &defaultRule {
			b.Fatal("not the default rule")
		}
	}
}
