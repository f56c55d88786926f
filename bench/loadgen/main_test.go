package main

import (
	"net/http"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"ok/defaults", []string{"http://127.0.0.1:8080/"}, true},
		{"ok/post-with-headers", []string{"-c", "8", "-d", "2s", "-X", "POST", "-body", "token=x", "-H", "Host: rs.localhost:9", "-H", "Authorization: Basic YTpi", "http://127.0.0.1:8080/oauth2/introspect"}, true},
		{"fail/no-url", []string{"-c", "8"}, false},
		{"fail/two-urls", []string{"http://127.0.0.1:1/", "http://127.0.0.1:2/"}, false},
		{"fail/https", []string{"https://127.0.0.1:8080/"}, false},
		{"fail/header-without-colon", []string{"-H", "Host", "http://127.0.0.1:8080/"}, false},
		{"fail/unbounded-duration", []string{"-d", "1h", "http://127.0.0.1:8080/"}, false},
		{"fail/no-connections", []string{"-c", "0", "http://127.0.0.1:8080/"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, conns, _, d, err := parse(tc.args)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			req, err := tg.NewRequest()
			if err != nil {
				t.Fatal(err)
			}
			if tg.Addr != "127.0.0.1:8080" || conns < 1 || d <= 0 || d > 10*time.Minute {
				t.Errorf("addr %q, %d connections, %s", tg.Addr, conns, d)
			}
			if tc.name == "ok/post-with-headers" && (req.Method != http.MethodPost || req.Host != "rs.localhost:9" || req.Header.Get("Authorization") == "" || conns != 8) {
				t.Errorf("request %s Host %q headers %v", req.Method, req.Host, req.Header)
			}
		})
	}
}
