package main

import (
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
	"path/filepath"
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
	// The OIDC client whose id is the database's name: its access
	// tokens are the database's.
	clientSecret   = "bench-secret-bench-secret-bench-secret-01"
	clientRedirect = "http://127.0.0.1:9/bench/callback" // nothing listens: the code is read from the redirect
)

// stepgate is a running Stepgate serving the database gateway for
// benchDB in front of the harness's PostgreSQL.
type stepgate struct {
	base   string // http://127.0.0.1:PORT, the issuer
	dbAddr string // the database gateway's 127.0.0.1:PORT
	stop   func()
	web    *http.Client // a browser signed in as benchUser
}

// startStepgate builds Stepgate with the same wiring as `stepgate serve`
// (SQLite under dir, the cheapest valid argon2 cost, one user, the OIDC
// client for the database) and a databases: entry as a user would write
// it: labels and contexts that pgbench's statements do not hit, so every
// statement is classified, labelled and put to the policies, and
// allowed. Without withTLS the gateway takes tokens without TLS from
// loopback clients (insecure_loopback); with it, only inside TLS, with
// the certificate in dir.
func startStepgate(ctx context.Context, dir, upstream string, withTLS bool) (*stepgate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	dbAddr, err := freePort()
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		_ = ln.Close()
		return nil, err
	}
	pwFile := filepath.Join(dir, "upstream-password")
	// The cluster trusts loopback connections; the configuration still
	// names a password source, as it must.
	if err := os.WriteFile(pwFile, []byte("unused\n"), 0o600); err != nil {
		_ = ln.Close()
		return nil, err
	}
	policyFile := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policyFile, []byte(benchPolicies), 0o600); err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &stepgate{base: "http://" + addr, dbAddr: dbAddr}
	cfg := config.Default()
	cfg.Server.DataDir = dir
	cfg.Server.Listen = addr
	cfg.Server.Issuer = s.base
	cfg.Policy.Files = []string{policyFile}
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1}
	cfg.OIDC.Clients = []config.OIDCClient{{ID: benchDB, Name: "pgbench", Secret: clientSecret, RedirectURIs: []string{clientRedirect}}}
	cfg.Databases = []config.Database{{
		Name: benchDB, Listen: dbAddr, InsecureLoopback: !withTLS,
		Upstream:               config.DatabaseUpstream{Address: upstream, Database: benchDB, User: pgUser, PasswordFile: pwFile},
		Labels:                 map[string][]string{"pii": {"pgbench_accounts.filler", "pgbench_branches.filler"}},
		LabelContexts:          map[string]string{"pii": "c1"},
		ClassContexts:          map[string]string{"ddl": "c2"},
		StatementWait:          config.Duration(2 * time.Minute),
		StepUpWait:             config.Duration(2 * time.Minute),
		MaxUpstreamConnections: 64,
	}}
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
			fmt.Fprintln(errOut, "dbbench: stepgate:", err)
		}
		_ = a.Close()
	}
	jar, _ := cookiejar.New(nil)
	s.web = &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if err := s.signIn(); err != nil {
		s.stop()
		return nil, fmt.Errorf("sign in: %w", err)
	}
	return s, nil
}

// benchPolicies ask for MFA on labelled data and schema changes, which
// pgbench's statements never reach: every statement is put to them and
// allowed.
const benchPolicies = `
auth_contexts:
  - id: c1
    name: Personal data
  - id: c2
    name: Schema changes
policies:
  - name: sensitive-needs-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1, c2]}
    grant: {controls: [mfa]}
`

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn posts the sign-in form as a browser does.
func (s *stepgate) signIn() error {
	resp, err := s.web.Get(s.base + "/login")
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m := csrfRe.FindSubmatch(page)
	if m == nil {
		return errors.New("the sign-in page has no CSRF token")
	}
	resp, err = s.web.PostForm(s.base+"/login", url.Values{
		"csrf_token": {string(m[1])}, "username": {benchUser}, "password": {benchPassword}, "return_to": {"/"},
	})
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return fmt.Errorf("sign-in: status %d, want a redirect", resp.StatusCode)
	}
	return nil
}

// token runs the authorization code flow with PKCE for the database's
// client in the signed-in browser and returns the access token: the
// password pgbench gives the gateway. Each run takes a fresh one, so no
// run outlives its token.
func (s *stepgate) token() (string, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {benchDB}, "redirect_uri": {clientRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"bench"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	next := s.base + "/oauth2/authorize?" + q.Encode()
	code := ""
	for range 8 {
		resp, err := s.web.Get(next)
		if err != nil {
			return "", err
		}
		_ = resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return "", fmt.Errorf("authorize: status %d without a redirect", resp.StatusCode)
		}
		if e := loc.Query().Get("error"); e != "" {
			return "", fmt.Errorf("authorize: %s: %s", e, loc.Query().Get("error_description"))
		}
		if code = loc.Query().Get("code"); code != "" {
			break
		}
		next = loc.String()
	}
	if code == "" {
		return "", errors.New("authorize did not return a code")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {clientRedirect}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, s.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(benchDB, clientSecret) // URL-safe id and secret: no form-encoding needed
	resp, err := s.web.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return "", fmt.Errorf("token endpoint: status %d: %w", resp.StatusCode, err)
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: status %d: %s", resp.StatusCode, tok.Error)
	}
	return tok.AccessToken, nil
}
