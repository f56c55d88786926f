package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  []string // substrings of the warnings, in order
	}{
		{name: "fail/demo-bank-get-rule", rules: bankRules,
			want: []string{"rules[3].methods: Rails and Express's method-override run a POST whose form has _method=GET as GET"}},
		{name: "fail/anonymous-post", rules: []Rule{
			{Path: "/items/*", Methods: []string{"POST"}, Anonymous: true}, {Path: "/items/*", Methods: []string{"DELETE"}, Context: "c2"}},
			want: []string{"rules[0].methods: lets an anonymous POST to /items/* in", "rules[1].methods: Rails, Spring, Laravel and Express's method-override run a POST whose form has _method=DELETE"}},
		{name: "ok/anonymous-get", rules: []Rule{{Path: "/public/*", Methods: []string{"GET"}, Anonymous: true}}},
		{name: "ok/get-with-post", rules: []Rule{{Path: "/statements", Methods: []string{"GET", "POST"}, Context: "c2"}}},
		{name: "fail/head-without-post", rules: []Rule{{Path: "/export", Methods: []string{"head"}, Context: "c2"}},
			want: []string{"rules[0].methods: Rails and Express's method-override run a POST whose form has _method=HEAD"}},
		{name: "ok/narrow-first", rules: []Rule{
			{Path: "/admin/keys", Context: "c3"}, {Path: "/admin/*", Context: "c2"}}},
		{name: "ok/delete-with-post", rules: []Rule{{Path: "/accounts/*", Methods: []string{"POST", "DELETE"}, Context: "c2"}}},
		{name: "fail/format-suffix", rules: []Rule{{Path: "/transfers.json", Context: "c2"}},
			want: []string{`rules[0].path: "/transfers.json" names one format of a resource`}},
		{name: "fail/anonymous-shadows", rules: []Rule{
			{Path: "/public/*", Anonymous: true}, {Path: "/public/admin", Context: "c3"}},
			want: []string{"rules[1]: never applies: rules[0] (/public/*)"}},
		{name: "fail/exact-shadows-format", rules: []Rule{
			{Path: "/transfers", Context: "c1"}, {Path: "/transfers.csv", Context: "c2"}},
			want: []string{"rules[1].path", "rules[1]: never applies"}},
		{name: "fail/all-methods-shadow", rules: []Rule{
			{Path: "/x", Context: "c1"}, {Path: "/x/", Methods: []string{"POST"}, Context: "c2"}},
			want: []string{"rules[1]: never applies"}},
		{name: "ok/anonymous-exact-covers-no-format", rules: []Rule{
			{Path: "/health", Anonymous: true}, {Path: "/health.json", Methods: []string{"POST"}, Context: "c2"}},
			want: []string{"rules[1].path"}},
		{name: "ok/other-methods-do-not-shadow", rules: []Rule{
			{Path: "/x", Methods: []string{"GET"}, Context: "c1"}, {Path: "/x", Methods: []string{"POST"}, Context: "c2"}}},
		{name: "fail/delete-without-post", rules: []Rule{{Path: "/accounts/*", Methods: []string{"delete"}, Context: "c2"}},
			want: []string{"rules[0].methods: Rails, Spring, Laravel and Express's method-override run a POST whose form has _method=DELETE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Lint(Options{Routes: []Route{{Name: "bank", From: "http://bank.example", Rules: tc.rules}}})
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i].String(), w) {
					t.Errorf("warning %d: %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// The server says at start what the lint says.
func TestNewWarnsAboutRules(t *testing.T) {
	var buf bytes.Buffer
	g, err := New(Deps{Log: slog.New(slog.NewTextHandler(&buf, nil)), Options: Options{Routes: []Route{{
		Name: "bank", From: "http://bank.example",
		Rules: []Rule{{Path: "/public/*", Anonymous: true}, {Path: "/public/admin", Context: "c3"}},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "key=gateway.routes[0].rules[1]") || !strings.Contains(got, "never applies") {
		t.Fatalf("start-up log %q, want the lint's warning with its key", got)
	}
}
