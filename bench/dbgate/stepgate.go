package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"time"

	"github.com/stepgate/stepgate/bench/internal/rig"
	"github.com/stepgate/stepgate/internal/config"
)

// dbClient is the OIDC client whose id is the database's name: its
// access tokens are the database's. Nothing listens at its redirect URI:
// the code is read from the redirect.
var dbClient = rig.Client{ID: benchDB, Secret: "bench-secret-bench-secret-bench-secret-01", RedirectURI: "http://127.0.0.1:9/bench/callback"}

// stepgate is a running Stepgate serving the database gateway for
// benchDB in front of the harness's PostgreSQL.
type stepgate struct {
	base   string // http://127.0.0.1:PORT, the issuer
	dbAddr string // the database gateway's 127.0.0.1:PORT
	stop   func()
	web    *http.Client // a browser signed in as the bench user
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pwFile := filepath.Join(dir, "upstream-password")
	// The cluster trusts loopback connections; the configuration still
	// names a password source, as it must.
	if err := os.WriteFile(pwFile, []byte("unused\n"), 0o600); err != nil {
		return nil, err
	}
	policyFile := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policyFile, []byte(benchPolicies), 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	// Taken while ln holds its port, so the two differ.
	dbAddr, err := rig.FreePort()
	if err != nil {
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
	cfg.OIDC.Clients = []config.OIDCClient{{ID: dbClient.ID, Name: "pgbench", Secret: dbClient.Secret, RedirectURIs: []string{dbClient.RedirectURI}}}
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
	stop, err := rig.Serve(ctx, cfg, ln)
	if err != nil {
		return nil, err
	}
	s.stop = func() {
		if err := stop(); err != nil {
			fmt.Fprintln(errOut, "dbbench: stepgate:", err)
		}
	}
	jar, _ := cookiejar.New(nil)
	s.web = &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if _, err := rig.SignIn(s.web, s.base, "/"); err != nil {
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

// token runs the authorization code flow with PKCE for the database's
// client in the signed-in browser and returns the access token: the
// password pgbench gives the gateway. Each run takes a fresh one, so no
// run outlives its token.
func (s *stepgate) token() (string, error) {
	return rig.Token(s.web, s.base, dbClient)
}
