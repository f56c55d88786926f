package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/users"
)

// server is a real Stepgate on a random loopback port.
type server struct {
	app  *app.App
	base string
}

// start runs the server with the same wiring as `stepgate serve`. dsn
// selects the backend ("" for the embedded SQLite).
func start(t *testing.T, dsn string) *server {
	t.Helper()
	return startWith(t, dsn, nil)
}

// startWith is start with a chance to adjust the configuration first.
func startWith(t *testing.T, dsn string, mutate func(*config.Config)) *server {
	t.Helper()
	return startOver(t, dsn, nil, mutate)
}

// storeWrap wraps the store of a test server, to cause failures; nil
// leaves it as opened.
type storeWrap func(store.Store) store.Store

// startOver is startWith over a wrapped store.
func startOver(t *testing.T, dsn string, wrap storeWrap, mutate func(*config.Config)) *server {
	t.Helper()
	ln, cfg := testConfig(t)
	cfg.Storage.DSN = dsn
	if mutate != nil {
		mutate(&cfg)
	}
	return serveOver(t, ln, cfg, nil, wrap)
}

// testConfig returns a listener on a random loopback port and a valid
// configuration for it.
func testConfig(t *testing.T) (net.Listener, config.Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg := config.Default()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.Listen = ln.Addr().String()
	cfg.Server.Issuer = "http://" + ln.Addr().String()
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1} // the cheapest valid cost, for speed
	return ln, cfg
}

// serve builds the app from cfg and serves it on ln until the test ends.
// log nil discards the logs.
func serve(t *testing.T, ln net.Listener, cfg config.Config, log *slog.Logger) *server {
	t.Helper()
	return serveOver(t, ln, cfg, log, nil)
}

// serveOver is serve over a wrapped store.
func serveOver(t *testing.T, ln net.Listener, cfg config.Config, log *slog.Logger, wrap storeWrap) *server {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if probs := cfg.Validate(); len(probs) > 0 {
		t.Fatalf("test config invalid: %v", probs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, log, wrap)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after shutdown, want nil", err)
		}
		a.Close()
	})
	return &server{app: a, base: "http://" + ln.Addr().String()}
}

func newApp(ctx context.Context, cfg config.Config, log *slog.Logger, wrap storeWrap) (*app.App, error) {
	if wrap == nil {
		return app.New(ctx, cfg, log)
	}
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a, err := app.Build(ctx, cfg, log, wrap(st))
	if err != nil {
		_ = st.Close()
	}
	return a, err
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests can see each step.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func csrfToken(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	_, body := get(t, c, base+"/login")
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the sign-in page has no CSRF token")
	}
	return m[1]
}

func sessionCookie(c *http.Client, base, name string) string {
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

func TestSignIn(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := ""
			if backend == "postgres" {
				dsn = pgtest.DSN(t)
			}
			testSignIn(t, start(t, dsn))
		})
	}
}

func testSignIn(t *testing.T, s *server) {
	ctx := context.Background()
	if _, err := s.app.Users.Add(ctx, users.NewUser{Username: "alice", Email: "alice@example.com", Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	cookieName := s.app.Sessions.CookieName()
	c := browser(t)

	t.Run("fail/no-csrf-token", func(t *testing.T) {
		csrfToken(t, c, s.base) // has the cookie, but omits the form field
		resp, _ := post(t, c, s.base+"/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
		if resp.StatusCode != http.StatusForbidden || sessionCookie(c, s.base, cookieName) != "" {
			t.Fatalf("CSRF-less sign-in: status %d; want 403 and no session", resp.StatusCode)
		}
	})
	t.Run("fail/forged-csrf-token", func(t *testing.T) {
		csrfToken(t, c, s.base)
		resp, _ := post(t, c, s.base+"/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {"AAAA"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged token: status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("fail/cross-site-post", func(t *testing.T) {
		tok := csrfToken(t, c, s.base)
		resp, _ := post(t, c, s.base+"/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {tok}},
			"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site POST: status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("fail/wrong-password", func(t *testing.T) {
		tok := csrfToken(t, c, s.base)
		resp, body := post(t, c, s.base+"/login", url.Values{"username": {"alice"}, "password": {"wrong horse"}, "csrf_token": {tok}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Incorrect username or password") {
			t.Fatalf("wrong password: status %d", resp.StatusCode)
		}
		if sessionCookie(c, s.base, cookieName) != "" {
			t.Fatal("a wrong password created a session")
		}
	})

	// Plant a session id, as a fixation attacker would.
	planted := strings.Repeat("A", 43)
	u, _ := url.Parse(s.base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: planted, Path: "/"}})

	tok := csrfToken(t, c, s.base)
	resp, _ := post(t, c, s.base+"/login", url.Values{
		"username": {"Alice"}, "password": {"correct horse"}, "csrf_token": {tok}, "return_to": {"//evil.example/x"},
	})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("sign-in: status %d to %q; want 303 to /account (never to another site)", resp.StatusCode, resp.Header.Get("Location"))
	}
	sid := sessionCookie(c, s.base, cookieName)
	if sid == "" || sid == planted {
		t.Fatalf("session id after sign-in = %q; want a new id", sid)
	}

	resp, body := get(t, c, s.base+"/account")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Signed in as alice") || !strings.Contains(body, "<code>pwd</code>") {
		t.Fatalf("account page: status %d, body %.300s", resp.StatusCode, body)
	}
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	// Sign in again: the session id changes again.
	tok = csrfToken(t, c, s.base)
	post(t, c, s.base+"/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {tok}})
	if again := sessionCookie(c, s.base, cookieName); again == sid || again == "" {
		t.Fatal("the session id did not change at the second sign-in")
	}

	t.Run("ok/logout", func(t *testing.T) {
		resp, _ := get(t, c, s.base+"/logout")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /logout = %d", resp.StatusCode)
		}
		if _, body := get(t, c, s.base+"/account"); !strings.Contains(body, "Signed in as alice") {
			t.Fatal("GET /logout signed the user out; only POST may")
		}
		tok := csrfToken(t, c, s.base)
		resp, _ = post(t, c, s.base+"/logout", url.Values{"csrf_token": {tok}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST /logout = %d", resp.StatusCode)
		}
		resp, _ = get(t, c, s.base+"/account")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Fatalf("after logout /account = %d to %q; want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestHealthAndReadiness(t *testing.T) {
	s := start(t, "")
	c := browser(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, _ := get(t, c, s.base+path); resp.StatusCode != http.StatusOK {
			t.Errorf("%s = %d, want 200", path, resp.StatusCode)
		}
	}
	// With the store gone, the node is alive but not ready.
	s.app.Store.Close()
	if resp, _ := get(t, c, s.base+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a closed store = %d, want 503", resp.StatusCode)
	}
	if resp, _ := get(t, c, s.base+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with a closed store = %d, want 200", resp.StatusCode)
	}
}

func TestDisabledUserLosesSession(t *testing.T) {
	s := start(t, "")
	ctx := context.Background()
	if _, err := s.app.Users.Add(ctx, users.NewUser{Username: "bob", Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	c := browser(t)
	tok := csrfToken(t, c, s.base)
	post(t, c, s.base+"/login", url.Values{"username": {"bob"}, "password": {"correct horse"}, "csrf_token": {tok}})
	if _, body := get(t, c, s.base+"/account"); !strings.Contains(body, "Signed in as bob") {
		t.Fatal("sign-in failed")
	}
	if err := s.app.Users.SetDisabled(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, c, s.base+"/account"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a disabled user's session still works: %d", resp.StatusCode)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.Issuer = "http://" + ln.Addr().String()
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	if resp, _ := get(t, browser(t), base+"/healthz"); resp.StatusCode != 200 {
		t.Fatal("server did not come up")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil on shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if _, err := http.Get(base + "/healthz"); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("server still answers after shutdown: %v", err)
	}
}
