package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestGatewayLint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	route := "server:\n  data_dir: " + filepath.Join(dir, "data") + "\ngateway:\n  routes:\n" +
		"    - name: bank\n      from: http://bank.localhost:8080\n      to: http://127.0.0.1:9001\n      rules:\n"
	t.Run("ok/demo-rules", func(t *testing.T) {
		cfg := write(t, dir, "good.yaml", route+
			"        - {path: /transfers, methods: [POST], context: c2}\n        - {path: /admin/*, context: c3}\n        - {path: /public/*, allow: anonymous}\n")
		if r := stepgate(t, "", "gateway", "lint", "--config", cfg).mustSucceed(t); r.stdout != "ok: 1 route, 3 rules\n" {
			t.Fatalf("stdout = %q", r.stdout)
		}
	})
	t.Run("fail/every-warning-with-its-key", func(t *testing.T) {
		cfg := write(t, dir, "bad.yaml", route+
			"        - {path: /public/*, allow: anonymous}\n        - {path: /public/admin, context: c3}\n"+
			"        - {path: /transfers.json, methods: [POST], context: c2}\n        - {path: /accounts/*, methods: [DELETE], context: c2}\n")
		r := stepgate(t, "", "gateway", "lint", "--config", cfg)
		r.mustFail(t, 1, "3 warnings in the gateway rules")
		for _, want := range []string{
			"gateway.routes[0].rules[1]: never applies: rules[0] (/public/*) comes first",
			`gateway.routes[0].rules[2].path: "/transfers.json" names one format of a resource`,
			"gateway.routes[0].rules[3].methods: Rails, Spring, Laravel and Express's method-override",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout does not report %q:\n%s", want, r.stdout)
			}
		}
	})
}
