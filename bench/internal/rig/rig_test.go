package rig

import (
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// TestSignInAndToken serves a Stepgate, signs the bench user in and
// takes an access token, as both harnesses do before they measure.
func TestSignInAndToken(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	client := Client{ID: "bench", Secret: "bench-secret-bench-secret-bench-secret-01", RedirectURI: "http://127.0.0.1:9/bench/callback"}
	cfg := config.Default()
	cfg.Server.DataDir = filepath.Join(dir, "data")
	cfg.Server.Listen = ln.Addr().String()
	cfg.Server.Issuer = base
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1}
	cfg.OIDC.Clients = []config.OIDCClient{{ID: client.ID, Name: "bench", Secret: client.Secret, RedirectURIs: []string{client.RedirectURI}}}
	if probs := cfg.Validate(); len(probs) > 0 {
		t.Fatalf("config: %v", probs)
	}
	stop, err := Serve(context.Background(), cfg, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve ended with %v", err)
		}
	}()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	if _, err := Token(browser, base, client); err == nil {
		t.Error("fail/not-signed-in: a browser that has not signed in got a token")
	}
	loc, err := SignIn(browser, base, "/account")
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if loc.Path != "/account" || !strings.HasPrefix(loc.String(), base) {
		t.Errorf("sign in sent the browser to %s, want %s/account", loc, base)
	}
	tok, err := Token(browser, base, client)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if strings.Count(tok, ".") != 2 {
		t.Errorf("the access token %q is not a JWT", tok)
	}
}
