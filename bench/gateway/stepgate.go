package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/users"
)

const (
	benchUser     = "alice"
	benchPassword = "correct horse battery staple"
	bankID        = "bank"
	bankSecret    = "bank-secret-bank-secret-bank-secret-0123"
	bankRedirect  = "http://127.0.0.1:9/bank/callback" // nothing listens: the code is read from the redirect
)

// stepgate is a running Stepgate whose gateway protects the upstream at
// http://bank.localhost:PORT, served on the same listener.
type stepgate struct {
	addr   string // 127.0.0.1:PORT
	base   string // http://127.0.0.1:PORT, the issuer
	bank   string // http://bank.localhost:PORT, the route
	public string // http://public.localhost:PORT, a route that asks for no sign-in
	fa     string // http://fa.localhost:PORT, a route used through forward-auth only
	// lean and signed are routes like bank whose upstream is told
	// nothing of the user, or only through the signed assertion: beside
	// bank, they show what the decision costs apart from the identity
	// headers.
	lean, signed string
	stop         func()
	cookie       string // the browser's gateway cookie for the route
	// faCookie is the browser's gateway cookie for route fa.
	faCookie string
	// leanCookie and signedCookie are the gateway cookies for routes
	// lean and signed.
	leanCookie, signedCookie string
	token                    string // an access token of client bank
}

// startStepgate builds Stepgate with the same wiring as `stepgate serve`:
// SQLite under dir, the cheapest valid argon2 cost, one user, the OIDC
// client bank, and two routes to upstream: bank, whose default rule asks
// for a signed-in user and no step-up, and public, which asks for nothing
// (what the proxying costs without a decision).
func startStepgate(ctx context.Context, dir, upstream string) (*stepgate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	s := onAddr(addr)

	cfg := config.Default()
	cfg.Server.DataDir = dir
	cfg.Server.Listen = addr
	cfg.Server.Issuer = s.base
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1}
	cfg.OIDC.Clients = []config.OIDCClient{{ID: bankID, Name: "Bank", Secret: bankSecret, RedirectURIs: []string{bankRedirect}}}
	cfg.Gateway.Routes = []config.GatewayRoute{
		{Name: bankID, From: s.bank, To: upstream},
		{Name: "public", From: s.public, To: upstream, Rules: []config.GatewayRule{{Path: "/*", Allow: "anonymous"}}},
		{Name: "fa", From: s.fa},
		{Name: "lean", App: bankID, From: s.lean, To: upstream, IdentityHeaders: config.IdentityNone},
		{Name: "signed", App: bankID, From: s.signed, To: upstream, IdentityHeaders: config.IdentityAssertion},
	}
	if probs := cfg.Validate(); len(probs) > 0 {
		_ = ln.Close()
		return nil, fmt.Errorf("config: %v", probs)
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	if _, err := a.Users.Add(ctx, users.NewUser{Username: benchUser, Email: "alice@example.com", DisplayName: "Alice", Password: benchPassword}); err != nil {
		_ = a.Close()
		_ = ln.Close()
		return nil, err
	}
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Serve(serveCtx, ln) }()
	s.stop = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(errOut, "gatewaybench: stepgate:", err)
		}
		_ = a.Close()
	}
	return s, nil
}

// spawnStepgate runs Stepgate in a process of its own, as it runs in
// production and as nginx runs here: this program started again with
// -serve-stepgate, which serves until its standard input closes. Its own
// garbage collector and scheduler then work for Stepgate alone, not for
// the load generator and the upstream as well.
func spawnStepgate(ctx context.Context, dir, upstream string) (*stepgate, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-serve-stepgate", dir, "-upstream", upstream) //nolint:gosec // this program itself
	cmd.Stderr = errOut
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("the Stepgate process did not start: %w", err)
	}
	addr := strings.TrimPrefix(strings.TrimSpace(line), "listening ")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		stop()
		return nil, fmt.Errorf("the Stepgate process said %q", line)
	}
	s := onAddr(addr)
	s.stop = stop
	return s, nil
}

// onAddr names Stepgate listening on addr and its routes' addresses.
func onAddr(addr string) *stepgate {
	_, port, _ := net.SplitHostPort(addr)
	return &stepgate{addr: addr, base: "http://" + addr, bank: "http://bank.localhost:" + port, public: "http://public.localhost:" + port,
		fa: "http://fa.localhost:" + port, lean: "http://lean.localhost:" + port, signed: "http://signed.localhost:" + port}
}

// serveStepgate is the -serve-stepgate process: Stepgate until standard
// input closes.
func serveStepgate(dir, upstream string) error {
	s, err := startStepgate(context.Background(), dir, upstream)
	if err != nil {
		return err
	}
	defer s.stop()
	fmt.Printf("listening %s\n", s.addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// browser is a cookie-keeping client that reaches every host name on
// Stepgate's listener, as a browser resolving *.localhost does, and shows
// each redirect instead of following it.
func (s *stepgate) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, s.addr)
		}},
	}
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn walks what a browser does on its first visit to each route: the
// gateway sends it to /gateway/start, Stepgate to /login; after signing
// in, /gateway/start mints a ticket and the route's callback turns it
// into the gateway cookie.
func (s *stepgate) signIn(c *http.Client) error {
	var err error
	if s.cookie, err = s.handOff(c, s.bank); err != nil {
		return err
	}
	if s.faCookie, err = s.handOff(c, s.fa); err != nil {
		return err
	}
	if s.leanCookie, err = s.handOff(c, s.lean); err != nil {
		return err
	}
	s.signedCookie, err = s.handOff(c, s.signed)
	return err
}

// handOff follows the hand-off from route's home page until a page that
// is not a redirect, and returns the gateway cookie for route.
func (s *stepgate) handOff(c *http.Client, route string) (string, error) {
	next := route + "/"
	for range 12 {
		resp, err := c.Get(next)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			break // the route's page (a forward-auth route has none here)
		}
		if loc.Path == "/login" {
			if loc, err = s.login(c, loc.Query().Get("return_to")); err != nil {
				return "", err
			}
		}
		next = loc.String()
	}
	u, _ := url.Parse(route)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "stepgate_gw" {
			return ck.Value, nil
		}
	}
	return "", fmt.Errorf("no gateway cookie for %s after signing in", route)
}

// login posts the sign-in form and returns where it redirects.
func (s *stepgate) login(c *http.Client, returnTo string) (*url.URL, error) {
	resp, err := c.Get(s.base + "/login")
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m := csrfRe.FindSubmatch(page)
	if m == nil {
		return nil, errors.New("the sign-in page has no CSRF token")
	}
	resp, err = c.PostForm(s.base+"/login", url.Values{
		"csrf_token": {string(m[1])}, "username": {benchUser}, "password": {benchPassword}, "return_to": {returnTo},
	})
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("sign-in: status %d without a redirect", resp.StatusCode)
	}
	return s.resolve(loc), nil
}

func (s *stepgate) resolve(loc *url.URL) *url.URL {
	base, _ := url.Parse(s.base)
	return base.ResolveReference(loc)
}

// fetchToken runs the authorization code flow with PKCE for client bank
// in the signed-in browser c, and redeems the code for an access token.
func (s *stepgate) fetchToken(c *http.Client) error {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {bankID}, "redirect_uri": {bankRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"bench"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	next := s.base + "/oauth2/authorize?" + q.Encode()
	code := ""
	for range 8 {
		resp, err := c.Get(next)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return fmt.Errorf("authorize: status %d without a redirect", resp.StatusCode)
		}
		if e := loc.Query().Get("error"); e != "" {
			return fmt.Errorf("authorize: %s: %s", e, loc.Query().Get("error_description"))
		}
		if code = loc.Query().Get("code"); code != "" {
			break
		}
		next = s.resolve(loc).String()
	}
	if code == "" {
		return errors.New("authorize did not return a code")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {bankRedirect}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, s.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(bankID, bankSecret) // URL-safe id and secret: no form-encoding needed
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return fmt.Errorf("token endpoint: status %d: %w", resp.StatusCode, err)
	}
	if tok.AccessToken == "" {
		return fmt.Errorf("token endpoint: status %d: %s", resp.StatusCode, tok.Error)
	}
	s.token = tok.AccessToken
	return nil
}
