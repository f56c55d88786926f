// Package rig is what the bench harnesses share to drive a Stepgate: one
// served in the harness's own process with the bench user, that user
// signed in through the sign-in form, an access token through the
// authorization code flow, and free loopback ports.
package rig

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
	"net/url"
	"regexp"
	"strings"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/users"
)

// The bench user, who signs in with a password alone: signing in is not
// measured.
const (
	User     = "alice"
	Password = "correct horse battery staple"
	Email    = "alice@example.com"
)

// Serve builds Stepgate from cfg with the same wiring as `stepgate
// serve`, adds the bench user and serves on ln until stop is called;
// stop returns what serving ended with. When Serve fails, it closes ln.
func Serve(ctx context.Context, cfg config.Config, ln net.Listener) (stop func() error, err error) {
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	if _, err := a.Users.Add(ctx, users.NewUser{Username: User, Email: Email, DisplayName: "Alice", Password: Password}); err != nil {
		_ = a.Close()
		_ = ln.Close()
		return nil, err
	}
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Serve(serveCtx, ln) }()
	return func() error {
		cancel()
		err := <-done
		_ = a.Close()
		return err
	}, nil
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// SignIn posts the sign-in form of the Stepgate at base as the bench
// user, as a browser c does, and returns where Stepgate sends it next.
func SignIn(c *http.Client, base, returnTo string) (*url.URL, error) {
	resp, err := c.Get(base + "/login")
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m := csrfRe.FindSubmatch(page)
	if m == nil {
		return nil, errors.New("the sign-in page has no CSRF token")
	}
	resp, err = c.PostForm(base+"/login", url.Values{
		"csrf_token": {string(m[1])}, "username": {User}, "password": {Password}, "return_to": {returnTo},
	})
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("sign-in: status %d without a redirect", resp.StatusCode)
	}
	return loc, nil
}

// Client is an OIDC client of the bench's Stepgate. Its id and secret
// are URL-safe, so they need no form-encoding in Basic authentication.
type Client struct {
	ID, Secret, RedirectURI string
}

// Token runs the authorization code flow with PKCE for client in the
// browser c, signed in at the Stepgate at base, and redeems the code for
// an access token. c must show redirects instead of following them: the
// code is read from the redirect to client's redirect URI, where nothing
// need listen.
func Token(c *http.Client, base string, client Client) (string, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {client.ID}, "redirect_uri": {client.RedirectURI}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"bench"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	next := base + "/oauth2/authorize?" + q.Encode()
	code := ""
	for range 8 {
		resp, err := c.Get(next)
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
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {client.RedirectURI}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client.ID, client.Secret)
	resp, err := c.Do(req)
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

// FreePort returns a loopback address nothing listens on right now.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
