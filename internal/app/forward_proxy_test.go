package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// The documented proxy configurations, which the tests run as they are
// (with this machine's addresses put in).
const (
	nginxExample = "../../examples/proxies/nginx.conf"
	caddyExample = "../../examples/proxies/Caddyfile"
)

// frontProxy is nginx or Caddy, run from its documented configuration in
// front of an application, with Stepgate deciding.
type frontProxy struct {
	name, bin string
	// start runs the proxy on listen for the application at public
	// (host:port), asking Stepgate at stepgate and forwarding to upstream.
	start func(t *testing.T, listen, public, stepgate, upstream string)
}

var frontProxies = []frontProxy{
	{name: "nginx", bin: "/usr/sbin/nginx", start: startNginx},
	{name: "caddy", bin: "/usr/bin/caddy", start: startCaddy},
}

// TestForwardAuthThroughProxies runs the attacks on forward-auth through
// real nginx and Caddy with the documented configurations: a client's
// own copies of the headers Stepgate reads (the request's method, path
// and host) and a lower-case method are refused or change nothing, so
// the admin page and the POST transfer stay behind their step-ups; a
// client's own identity headers never reach the application.
//
// The proxies are skipped when not installed, unless
// STEPGATE_REQUIRE_PROXIES=1 (as make test sets it) makes that a failure.
func TestForwardAuthThroughProxies(t *testing.T) {
	for _, px := range frontProxies {
		t.Run(px.name, func(t *testing.T) {
			if _, err := os.Stat(px.bin); err != nil {
				if os.Getenv("STEPGATE_REQUIRE_PROXIES") == "1" {
					t.Fatalf("%s is missing and STEPGATE_REQUIRE_PROXIES=1: run make proxy-deps", px.bin)
				}
				t.Skipf("%s is not installed (make proxy-deps installs it)", px.bin)
			}
			testThroughProxy(t, px)
		})
	}
}

func testThroughProxy(t *testing.T, px frontProxy) {
	up, upLog := recordingUpstream(t)
	listen := freeAddr(t)
	_, port, _ := net.SplitHostPort(listen)
	public := "fa.localhost:" + port
	app := "http://" + public
	g := startGateway(t, func(cfg *config.Config) {
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, config.GatewayRoute{
			// Step-ups that do not depend on how single use counts.
			Name: "fa", From: app, Rules: []config.GatewayRule{
				{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
				{Path: "/admin/*", Context: "c2"},
				{Path: "/public/*", Allow: "anonymous"},
			},
		})
	})
	px.start(t, listen, public, strings.TrimPrefix(g.base, "http://"), up)
	b := loopbackBrowser(t)

	// Signed in through the proxy with a password: the application sees
	// the user, and nothing but Stepgate's word for who it is.
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	resp, body := g.walk(t, b, mustDo(t, b, "GET", app+"/accounts", ""), noStepUp)
	if resp.StatusCode != http.StatusOK || body != "upstream: GET /accounts" {
		t.Fatalf("sign-in through %s: %d %q", px.name, resp.StatusCode, body)
	}
	g.enrollTOTP(t, b) // MFA is reachable: a transfer gets a step-up, not a refusal

	spoofed := []string{"X-Stepgate-User", "mallory", "X-Stepgate-Groups", "admins", "X-Stepgate-Acr", "phishing-resistant",
		"X-Stepgate-Amr", "hwk", "X-Stepgate-Auth-Time", "9999999999", "X-Stepgate-Assertion", "forged",
		// Rack, uWSGI and older Gunicorn read these as X-Stepgate-User and
		// X-Stepgate-Groups (HTTP_X_STEPGATE_USER).
		"X_Stepgate_User", "mallory", "X-Stepgate_Groups", "admins", "x_stepgate-acr", "phishing-resistant"}
	for _, path := range []string{"/accounts", "/public/rates"} {
		before := len(upLog.all())
		resp := mustDo(t, b, "GET", app+path, "", spoofed...)
		resp.Body.Close()
		reqs := upLog.all()
		if resp.StatusCode != http.StatusOK || len(reqs) != before+1 {
			t.Fatalf("GET %s: %d, %d requests upstream", path, resp.StatusCode, len(reqs)-before)
		}
		wantUser := testUser
		if path == "/public/rates" {
			wantUser = ""
		}
		if got := reqs[before]; got.User != wantUser || got.Groups != "" || got.Acr == "phishing-resistant" || got.Assertion == "forged" || got.Underscored != "" {
			t.Fatalf("GET %s: the application saw user %q, groups %q, acr %q, assertion %.10q, underscored %q; the client's own identity headers must never reach it",
				path, got.User, got.Groups, got.Acr, got.Assertion, got.Underscored)
		}
	}

	// The documented configuration keeps connections to the application
	// open: requests one after another do not each open one.
	conns := upLog.conns.Load()
	for range 5 {
		resp := mustDo(t, b, "GET", app+"/public/rates", "")
		resp.Body.Close()
	}
	if opened := upLog.conns.Load() - conns; opened >= 5 {
		t.Errorf("%s opened %d connections to the application for 5 requests: its documented configuration must keep them alive", px.name, opened)
	}

	sgHost := strings.TrimPrefix(g.app, "http://")
	attacks := []struct {
		name, method, target string
		// header holds name, value pairs, sent as written (a name may be
		// in lower case, or come twice).
		header []string
		want   string // step-up (for the request as sent) or refused
		// wantCaddy, when set, is what Caddy answers instead: Go's server
		// reads "/admin#x" as the path "/admin#x" and sends it on as
		// "/admin%23x", which no framework routes to /admin.
		wantCaddy string
	}{
		{name: "baseline/admin", method: "GET", target: "/admin/", want: "step-up"},
		{name: "baseline/transfer", method: "POST", target: "/transfers", want: "step-up"},
		{name: "forwarded-uri", method: "GET", target: "/admin/", header: []string{"X-Forwarded-Uri", "/"}, want: "step-up"},
		{name: "original-uri", method: "GET", target: "/admin/", header: []string{"X-Original-URI", "/"}, want: "step-up"},
		{name: "forwarded-uri-anonymous", method: "GET", target: "/admin/", header: []string{"X-Forwarded-Uri", "/public/rates"}, want: "step-up"},
		{name: "original-uri-anonymous", method: "GET", target: "/admin/", header: []string{"X-Original-URI", "/public/rates"}, want: "step-up"},
		{name: "forwarded-method", method: "POST", target: "/transfers", header: []string{"X-Forwarded-Method", "GET"}, want: "step-up"},
		{name: "original-method", method: "POST", target: "/transfers", header: []string{"X-Original-Method", "GET"}, want: "step-up"},
		{name: "both-sets", method: "POST", target: "/transfers", header: []string{
			"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/", "X-Original-Method", "GET", "X-Original-URI", "/"}, want: "step-up"},
		{name: "lower-case-names", method: "POST", target: "/transfers", header: []string{
			"x-forwarded-method", "GET", "x-forwarded-uri", "/", "x-original-method", "GET", "x-original-uri", "/"}, want: "step-up"},
		{name: "twice", method: "GET", target: "/admin/", header: []string{
			"X-Forwarded-Uri", "/", "X-Forwarded-Uri", "/", "X-Original-URI", "/", "X-Original-URI", "/"}, want: "step-up"},
		{name: "forwarded-host", method: "GET", target: "/admin/", header: []string{"X-Forwarded-Host", sgHost}, want: "step-up"},
		{name: "original-host", method: "GET", target: "/admin/", header: []string{"X-Original-Host", sgHost}, want: "step-up"},
		{name: "forwarded-proto", method: "GET", target: "/admin/", header: []string{"X-Forwarded-Proto", "https"}, want: "step-up"},
		{name: "lower-case-method", method: "post", target: "/transfers", want: "refused"},
		{name: "mixed-case-method", method: "Post", target: "/transfers", want: "refused"},
		{name: "method-override", method: "GET", target: "/transfers", header: []string{"X-HTTP-Method-Override", "POST"}, want: "refused"},
		{name: "original-url", method: "GET", target: "/public/rates", header: []string{"X-Original-URL", "/admin/"}, want: "refused"},
		{name: "fragment", method: "GET", target: "/admin#x", want: "refused", wantCaddy: "let through"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			resp := sendRaw(t, b, a.method, app, a.target, a.header)
			resp.Body.Close()
			got, want := judged(resp), a.want
			if px.name == "caddy" && a.wantCaddy != "" {
				want = a.wantCaddy
			}
			if got == "step-up" {
				// The step-up is for the request as sent, on this route.
				loc, _ := resp.Location()
				if q := loc.Query(); q.Get("target") != a.target || q.Get("route") != "fa" {
					got = fmt.Sprintf("a step-up for route %q target %q", q.Get("route"), q.Get("target"))
				}
			}
			if got != want {
				t.Errorf("%s %s with %q through %s: %s (%d), want %s", a.method, a.target, a.header, px.name, got, resp.StatusCode, want)
			}
		})
	}
	for _, s := range upLog.all() {
		if s.Path != "/accounts" && s.Path != "/public/rates" && s.Path != "/admin%23x" {
			t.Errorf("the application received %s %s; only /accounts, /public/rates (and Caddy's /admin%%23x) may reach it", s.Method, s.Path)
		}
	}
}

// sendRaw sends method and request target (as written, even with a '#')
// to app with the header pairs as written (names in any case, a name
// twice), with b's cookies.
func sendRaw(t *testing.T, b *http.Client, method, app, target string, header []string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, app+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = target // written on the request line as it is
	for i := 0; i+1 < len(header); i += 2 {
		req.Header[header[i]] = append(req.Header[header[i]], header[i+1])
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// judged names what a proxy answered: the browser sent to step up, the
// request refused, or let through.
func judged(resp *http.Response) string {
	switch {
	case resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "stepup="):
		return "step-up"
	case resp.StatusCode >= 400:
		return "refused"
	case resp.StatusCode == http.StatusOK:
		return "let through"
	}
	return fmt.Sprintf("answered %d %s", resp.StatusCode, resp.Header.Get("Location"))
}

// recordingUpstream is the application behind the proxy.
func recordingUpstream(t *testing.T) (string, *upstreamLog) {
	t.Helper()
	log := &upstreamLog{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.mu.Lock()
		log.reqs = append(log.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(),
			User: r.Header.Get("X-Stepgate-User"), Groups: r.Header.Get("X-Stepgate-Groups"),
			Assertion: r.Header.Get("X-Stepgate-Assertion"), Acr: r.Header.Get("X-Stepgate-Acr"),
			Underscored: underscoredIdentity(r.Header)})
		log.mu.Unlock()
		io.WriteString(w, "upstream: "+r.Method+" "+r.URL.Path)
	}))
	up.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			log.conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	return strings.TrimPrefix(up.URL, "http://"), log
}

// underscoredIdentity lists the headers of h that hold '_' and that a
// CGI-style server, which reads '-' and '_' alike in header names
// (HTTP_X_STEPGATE_USER), takes for an X-Stepgate-* header.
func underscoredIdentity(h http.Header) string {
	var names []string
	for k := range h {
		if strings.Contains(k, "_") && strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-stepgate-") {
			names = append(names, k)
		}
	}
	return strings.Join(names, ",")
}

// loopbackBrowser is a cookie-keeping client that reaches every host
// name at its port on 127.0.0.1 (as a browser resolving *.localhost
// does), and does not follow redirects.
func loopbackBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		}},
	}
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// fromExample reads a documented configuration and makes each
// replacement (old, new pairs, in order), failing when the documented
// text no longer has what the test expects to replace.
func fromExample(t *testing.T, path string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s no longer contains %q", path, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s
}

func startNginx(t *testing.T, listen, public, stepgate, upstream string) {
	t.Helper()
	startNginxEdited(t, listen, public, stepgate, upstream)
}

// startNginxEdited is startNginx with more replacements in the
// documented configuration (old, new pairs), made first.
func startNginxEdited(t *testing.T, listen, public, stepgate, upstream string, edits ...string) {
	t.Helper()
	dir := t.TempDir()
	host, _, _ := net.SplitHostPort(public)
	site := fromExample(t, nginxExample, append(edits,
		"listen 80;", "listen "+listen+";",
		"server_name bank.example.com;", "server_name "+host+";",
		"bank.example.com", public,
		"stepgate.internal:8080", stepgate,
		"127.0.0.1:9001", upstream)...)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers as root can use the temporary directory
	}
	conf := fmt.Sprintf(`%[2]sworker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[3]s
}
`, dir, user, site)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	runProxy(t, listen, filepath.Join(dir, "error.log"), exec.Command("/usr/sbin/nginx", "-p", dir, "-c", path, "-g", "daemon off;"))
}

func startCaddy(t *testing.T, listen, public, stepgate, upstream string) {
	t.Helper()
	dir := t.TempDir()
	site := fromExample(t, caddyExample,
		"bank.example.com {", "http://"+public+" {",
		"bank.example.com", public,
		"stepgate.internal:8080", stepgate,
		"127.0.0.1:9001", upstream)
	conf := "{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}\n" + site
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/caddy", "run", "--adapter", "caddyfile", "--config", path)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
	runProxy(t, listen, "", cmd)
}

// runProxy starts cmd in its own process group, waits until listen
// accepts connections, and stops the whole group when the test ends.
func runProxy(t *testing.T, listen, logFile string, cmd *exec.Cmd) {
	t.Helper()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			log := out.String()
			if logFile != "" {
				b, _ := os.ReadFile(logFile) //nolint:gosec // the test's own temporary directory
				log += string(b)
			}
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), log)
		}
	})
	for range 250 {
		select {
		case <-done:
			t.Fatalf("%s exited: %s", filepath.Base(cmd.Path), out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", listen, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s: %s", filepath.Base(cmd.Path), listen, out.String())
}

// TestProxyExamplesInDocs: docs/gateway.md shows the proxy
// configurations the tests run, word for word, so what a reader copies is
// what was attacked.
func TestProxyExamplesInDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{nginxExample, caddyExample} {
		example, err := os.ReadFile(path) //nolint:gosec // a file of this repository
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), "\n"+string(example)+"```") {
			t.Errorf("docs/gateway.md does not show %s as it is; copy the file into its code block", path)
		}
	}
}
