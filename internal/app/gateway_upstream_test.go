package app_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ranHandler is one run of a protected application's handler: which,
// for whom (the gateway's X-Stepgate-User; empty when the request came
// straight to the application) and under which authentication contexts.
type ranHandler struct {
	Handler string   `json:"handler"`
	Method  string   `json:"method"`
	Path    string   `json:"path"`
	User    string   `json:"user"`
	ACRs    []string `json:"acrs"`
}

// realUpstream is an application with the demo bank's routes behind the
// gateway: its address and the handlers it has run.
type realUpstream struct {
	url string
	ran func(t *testing.T) []ranHandler
}

// protectedHandlers are the upstream handlers the variant rules guard,
// with the context each needs.
var protectedHandlers = map[string]string{"transfer": "c2", "admin": "c1", "customers": "c2"}

// startFlaskBank runs test/upstreams/flask_bank.py, or skips when Flask
// is not installed (`make interop-deps` installs it), unless
// STEPGATE_REQUIRE_INTEROP is set (as `make test` does), so CI cannot
// pass by skipping it.
func startFlaskBank(t *testing.T) realUpstream {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(python, "-c", "import flask").Run()
	}
	if err != nil {
		msg := "the Flask upstream needs python3 with Flask (Debian: python3-flask; run `make interop-deps`): " + err.Error()
		if os.Getenv("STEPGATE_REQUIRE_INTEROP") != "" {
			t.Fatal(msg + "; STEPGATE_REQUIRE_INTEROP is set, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, python, "../../test/upstreams/flask_bank.py")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cancel(); _ = cmd.Wait() })
	port, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the Flask upstream did not start: %v", err)
	}
	base := "http://127.0.0.1:" + strings.TrimSpace(port)
	return realUpstream{url: base, ran: func(t *testing.T) []ranHandler {
		t.Helper()
		var out []ranHandler
		_, body := get(t, http.DefaultClient, base+"/_ran")
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("the Flask upstream's /_ran: %v: %s", err, body)
		}
		return out
	}}
}

// startMuxBank runs the demo bank's routes on Go's ServeMux.
func startMuxBank(t *testing.T) realUpstream {
	t.Helper()
	var mu sync.Mutex
	var ran []ranHandler
	handler := func(name string, status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ran = append(ran, ranHandler{Handler: name, Method: r.Method, Path: r.URL.Path,
				User: r.Header.Get("X-Stepgate-User"), ACRs: assertionACRs(r.Header.Get("X-Stepgate-Assertion"))})
			mu.Unlock()
			w.Header().Set("X-Handler", name)
			w.WriteHeader(status)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("POST /transfers", handler("transfer", http.StatusOK))
	mux.Handle("GET /admin/", handler("admin", http.StatusOK))
	mux.Handle("GET /admin", handler("admin", http.StatusOK))
	mux.Handle("GET /customers/", handler("customers", http.StatusOK))
	mux.Handle("GET /customers", handler("customers", http.StatusOK))
	mux.Handle("GET /accounts", handler("accounts", http.StatusOK))
	mux.Handle("/", handler("none", http.StatusNotFound))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return realUpstream{url: srv.URL, ran: func(*testing.T) []ranHandler {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ran)
	}}
}

// assertionACRs reads the acrs claim of an identity assertion without
// verifying it: the test asks what the gateway let through.
func assertionACRs(token string) []string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		ACRs []string `json:"acrs"`
	}
	_ = json.Unmarshal(b, &claims)
	return claims.ACRs
}

// reading is the handler the application runs for v sent straight to it,
// "redirect" when it redirects instead.
func reading(t *testing.T, upstream string, v pathVariant) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := mustDo(t, c, v.method, upstream+v.path, "", v.header...)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if h := resp.Header.Get("X-Handler"); h != "" {
		return h
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return "redirect"
	}
	return resp.Status
}

// TestGatewayRealUpstreams: for a Flask (Werkzeug) application and one on
// Go's ServeMux with the demo bank's routes, every variant that the
// application itself would serve with a protected handler is refused by
// the gateway or asks for the rule's step-up, and a protected handler
// runs through the gateway only under its rule's context.
func TestGatewayRealUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(*testing.T) realUpstream
	}{{"flask", startFlaskBank}, {"servemux", startMuxBank}} {
		t.Run(tc.name, func(t *testing.T) {
			up := tc.start(t)
			g, bank, open := startVariantGateway(t, up.url)
			b := gatewayBrowser(t, g.server)
			g.signedInAt(t, b, bank)
			g.signedInAt(t, b, open)
			secret := g.enrollTOTP(t, b)
			for _, set := range []struct {
				origin   string
				variants []pathVariant
			}{{bank, bankVariants}, {open, openVariants}} {
				for _, v := range set.variants {
					read := reading(t, up.url, v)
					got := tryVariant(t, b, set.origin, v)
					t.Logf("%-8s %-28s %-6s the application runs %-10s the gateway: %s", v.method, v.path, strings.TrimPrefix(set.origin, "http://")[:4], read, got)
					if protectedHandlers[read] != "" && got != "400" && got != "stepup" {
						t.Errorf("%s %s runs the %s handler on %s, and the gateway let it through without the step-up (%s)", v.method, v.path, read, tc.name, got)
					}
					if got != v.want {
						t.Errorf("%s %s: the gateway answered %s, want %s", v.method, v.path, got, v.want)
					}
				}
			}
			// With the second factor, the transfer handler runs, under c2.
			resp, _ := g.walk(t, b, mustDo(t, b, "POST", bank+"/transfers", "amount=1", "Origin", bank, "Sec-Fetch-Site", "same-origin"), func(loc *url.URL) *http.Response {
				_, page := get(t, b, loc.String())
				csrf, cer := formOf(t, page)
				r, _ := post(t, b, g.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
					"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {loc.Query().Get("return_to")}})
				return r
			})
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Handler") != "transfer" {
				t.Errorf("the transfer after a TOTP step-up: %d, handler %q; want the transfer handler", resp.StatusCode, resp.Header.Get("X-Handler"))
			}
			stepped := false
			for _, r := range up.ran(t) {
				need := protectedHandlers[r.Handler]
				if need == "" || r.User == "" {
					continue
				}
				if !slices.Contains(r.ACRs, need) {
					t.Errorf("%s %s ran the %s handler for %s under contexts %v, without %s", r.Method, r.Path, r.Handler, r.User, r.ACRs, need)
				}
				stepped = stepped || r.Handler == "transfer"
			}
			if !stepped {
				t.Error("the transfer handler never ran through the gateway, so the upstream's record proves nothing")
			}
		})
	}
}
