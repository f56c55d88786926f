package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultLoginClient is the client id `stepgate login` uses unless told
// otherwise: a public client with the device code grant.
const defaultLoginClient = "stepgate-cli"

// deviceCodeGrant is the device authorization grant type (RFC 8628).
const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// loginOptions are the flags of `stepgate login`.
type loginOptions struct {
	issuer, client, scope string
	// database, when set, asks for a token for that database (resource
	// urn:stepgate:database:NAME).
	database                      string
	printEnv, printService, force bool
	timeout                       time.Duration
}

func (c *cli) loginCmd() *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login [--issuer URL] [--client ID] [--scope SCOPES] [--database NAME] [--print-env]",
		Short: "Sign in from the command line (device flow) and keep the token",
		Long: `Sign in to a running Stepgate from the command line, with the OAuth 2.0
device authorization grant (RFC 8628): the command prints an address and a
code, you open the address in any browser, sign in (and step up, if a
policy asks), check the code and approve. The token is kept in your
configuration directory (a file only you can read) and reused while it is
valid; --force signs in again. With the scope offline_access the refresh
token is kept too, and renews the token when it expires (as long as the
policies allow the refresh); otherwise an expired token means a new
sign-in.

--database NAME asks for a token for the database NAME that Stepgate's
database gateway serves: its only audience is that database, and it
opens nothing else. With --print-env, the command then prints every
libpq variable a client needs (PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD, PGSSLMODE, PGSSLROOTCERT), one per line, to load with
  set -a; eval "$(stepgate login --database bank --print-env)"; set +a
--print-service prints a pg_service.conf stanza for it instead (the
password stays in PGPASSWORD). stepgate psql NAME does all of this and
runs psql.

Without --database, --print-env prints a PGPASSWORD=... line with the
access token.

The issuer defaults to the configuration's server.issuer; the client must
be a registered client with the grant
urn:ietf:params:oauth:grant-type:device_code (default client id:
stepgate-cli).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return c.login(cmd.Context(), o) },
	}
	fl := cmd.Flags()
	fl.StringVar(&o.issuer, "issuer", "", "Stepgate's address (default: server.issuer of the configuration)")
	fl.StringVar(&o.client, "client", defaultLoginClient, "client id to sign in with")
	fl.StringVar(&o.scope, "scope", "openid", "scopes to ask for, separated by spaces")
	fl.StringVar(&o.database, "database", "", "get a token for this database of the database gateway")
	fl.BoolVar(&o.printEnv, "print-env", false, "print PGPASSWORD=<access token> (with --database: every PG* variable) on standard output")
	fl.BoolVar(&o.printService, "print-service", false, "with --database: print a pg_service.conf stanza for the database")
	fl.BoolVar(&o.force, "force", false, "sign in again even if a kept token is still valid")
	fl.DurationVar(&o.timeout, "timeout", 0, "give up waiting for approval after this long (default: when the code expires)")
	return cmd
}

// login runs the device flow, or reuses a kept token.
func (c *cli) login(ctx context.Context, o loginOptions) error {
	if o.database != "" {
		return c.loginDatabase(ctx, o)
	}
	if o.printService {
		return usageError{errors.New("--print-service needs --database NAME")}
	}
	tok, _, err := c.keptOrNewToken(ctx, o)
	if err != nil {
		return err
	}
	if o.printEnv {
		fmt.Fprintf(c.stdout, "PGPASSWORD=%s\n", tok.AccessToken)
	}
	return nil
}

// loginDatabase gets a token for a database and prints how to connect.
func (c *cli) loginDatabase(ctx context.Context, o loginOptions) error {
	if err := checkDatabaseName(o.database); err != nil {
		return err
	}
	s, err := c.databaseEnv(ctx, o)
	if err != nil {
		return err
	}
	if o.printEnv {
		for _, line := range s.shellLines() {
			fmt.Fprintln(c.stdout, line)
		}
	}
	if o.printService {
		fmt.Fprint(c.stdout, s.service(o.database))
	}
	return nil
}

// keptOrNewToken returns the kept token for o when it is still valid,
// else renews it or signs in, and keeps the result.
func (c *cli) keptOrNewToken(ctx context.Context, o loginOptions) (keptToken, string, error) {
	issuer, err := c.loginIssuer(o.issuer)
	if err != nil {
		return keptToken{}, "", err
	}
	if o.client == "" {
		return keptToken{}, "", usageError{errors.New("--client must not be empty")}
	}
	scope := strings.Join(strings.Fields(o.scope), " ")
	cache, err := c.tokenCache()
	if err != nil {
		return keptToken{}, "", err
	}
	key := tokenKey{Issuer: issuer, Client: o.client, Scope: scope, Database: o.database}.String()
	tok, ok := cache.Tokens[key]
	if ok && !o.force && tok.validAt(c.now()) {
		fmt.Fprintf(c.stderr, "Using the kept token for %s (valid until %s).\n", issuer, tok.Expires.Local().Format(time.Kitchen))
		return tok, issuer, nil
	}
	tok, err = c.renew(ctx, issuer, o, scope, tok, ok && !o.force)
	if err != nil {
		return keptToken{}, "", err
	}
	cache.Tokens[key] = tok
	return tok, issuer, c.saveTokenCache(cache)
}

// renew gets a new token: with the kept refresh token when there is
// one (the server judges the refresh by the policies, as for any
// client), else, or when the refresh is refused, with the device flow.
func (c *cli) renew(ctx context.Context, issuer string, o loginOptions, scope string, kept keptToken, useRefresh bool) (keptToken, error) {
	if useRefresh && kept.RefreshToken != "" {
		dc := c.newDeviceClient(issuer, o, scope)
		if err := dc.discover(ctx); err != nil {
			return keptToken{}, err
		}
		tok, err := dc.refresh(ctx, kept.RefreshToken)
		var oe *oauthError
		switch {
		case err == nil:
			fmt.Fprintf(c.stderr, "Renewed the kept token for %s.\n", issuer)
			return tok, nil
		case errors.As(err, &oe):
			fmt.Fprintf(c.stderr, "The kept sign-in cannot be renewed (%s); signing in again.\n", oe.Code)
		default:
			return keptToken{}, err
		}
	}
	return c.deviceFlow(ctx, issuer, o, scope)
}

// loginIssuer is --issuer, or the configuration's issuer, checked: the
// token is a password, so it never travels over plain http except to
// this machine.
func (c *cli) loginIssuer(flag string) (string, error) {
	issuer := flag
	if issuer == "" {
		cfg, err := c.config()
		if err != nil {
			return "", fmt.Errorf("no --issuer given, and the configuration does not name one: %w", err)
		}
		issuer = cfg.Server.Issuer
	}
	issuer = strings.TrimSuffix(issuer, "/")
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", usageError{fmt.Errorf("--issuer %q is not an address; write it like https://stepgate.example.com", issuer)}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", usageError{fmt.Errorf("--issuer %q uses plain http, which would send the token in clear; use https (http is only for localhost)", issuer)}
	}
	return issuer, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// keptToken is a token kept in the cache.
type keptToken struct {
	AccessToken string    `json:"access_token"`
	Expires     time.Time `json:"expires"`
	// RefreshToken is kept when the scopes include offline_access.
	RefreshToken string `json:"refresh_token,omitempty"`
}

// validAt reports whether the token is still good for a minute at now,
// so a database connection made with it does not start on one about to
// lapse.
func (t keptToken) validAt(now time.Time) bool {
	return t.AccessToken != "" && now.Add(time.Minute).Before(t.Expires)
}

// tokenKey names a kept token: the issuer, client and scopes it was
// asked for, and the database it is for.
type tokenKey struct{ Issuer, Client, Scope, Database string }

func (k tokenKey) String() string {
	s := k.Issuer + " " + k.Client + " " + k.Scope
	if k.Database != "" {
		s += " " + databaseResourcePrefix + k.Database
	}
	return s
}

// tokenCacheFile is the cache, kept in the user's configuration
// directory.
type tokenCacheFile struct {
	Tokens map[string]keptToken `json:"tokens"`
}

// tokenCachePath is where the cache lives: $XDG_CONFIG_HOME/stepgate,
// ~/.config/stepgate, or the platform's equivalent.
func (c *cli) tokenCachePath() (string, error) {
	dir := c.configDir
	if dir == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the configuration directory for the token: %w", err)
		}
		dir = d
	}
	return filepath.Join(dir, "stepgate", "tokens.json"), nil
}

func (c *cli) tokenCache() (tokenCacheFile, error) {
	out := tokenCacheFile{Tokens: map[string]keptToken{}}
	path, err := c.tokenCachePath()
	if err != nil {
		return out, err
	}
	b, err := os.ReadFile(path) //nolint:gosec // the user's own cache file
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read the kept tokens: %w", err)
	}
	kept, ok := decodeTokenCache(b)
	if !ok {
		// A damaged cache costs one sign-in, never a failure.
		fmt.Fprintf(c.stderr, "stepgate: warning: %s is damaged; signing in again\n", path)
	}
	return kept, nil
}

// decodeTokenCache reads the cache file's bytes; ok is false when they
// are damaged, and the cache is then empty.
func decodeTokenCache(b []byte) (tokenCacheFile, bool) {
	var out tokenCacheFile
	if json.Unmarshal(b, &out) != nil || out.Tokens == nil {
		return tokenCacheFile{Tokens: map[string]keptToken{}}, false
	}
	return out, true
}

// saveTokenCache writes the cache readable by its owner only, through a
// temporary file renamed into place, so a reader never sees half of it.
func (c *cli) saveTokenCache(cache tokenCacheFile) error {
	path, err := c.tokenCachePath()
	if err != nil {
		return err
	}
	now := c.now()
	for k, t := range cache.Tokens {
		if !now.Before(t.Expires) && t.RefreshToken == "" {
			delete(cache.Tokens, k)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keep the token: %w", err)
	}
	b, err := json.MarshalIndent(cache, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tokens-*.json")
	if err != nil {
		return fmt.Errorf("keep the token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("keep the token: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("keep the token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keep the token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keep the token: %w", err)
	}
	return nil
}

// deviceClient talks to the provider.
type deviceClient struct {
	http          *http.Client
	issuer        string
	device, token string
	client, scope string
	// database is the database the tokens are asked for, or "".
	database string
	sleep    func(ctx context.Context, d time.Duration) error
	stderr   io.Writer
	now      func() time.Time
	timeout  time.Duration
}

// deviceFlow signs in: discovery, the device authorization, the prompt,
// then polls until the user answers or the code expires.
func (c *cli) deviceFlow(ctx context.Context, issuer string, o loginOptions, scope string) (keptToken, error) {
	dc := c.newDeviceClient(issuer, o, scope)
	if err := dc.discover(ctx); err != nil {
		return keptToken{}, err
	}
	start, err := dc.start(ctx)
	if err != nil {
		return keptToken{}, err
	}
	fmt.Fprintf(c.stderr, "To sign in, open this address in a browser and approve:\n\n    %s\n\n", start.VerificationURIComplete)
	fmt.Fprintf(c.stderr, "or open %s and enter the code %s\n", start.VerificationURI, start.UserCode)
	fmt.Fprintf(c.stderr, "Check that the page shows this code before you approve.\nWaiting for approval (the code expires in %s)...\n", time.Duration(start.ExpiresIn)*time.Second)
	return dc.poll(ctx, start)
}

func (c *cli) newDeviceClient(issuer string, o loginOptions, scope string) *deviceClient {
	return &deviceClient{http: c.httpClient(), issuer: issuer, client: o.client, scope: scope, database: o.database, sleep: c.sleepFn(), stderr: c.stderr, now: c.now, timeout: o.timeout}
}

func (c *cli) httpClient() *http.Client {
	if c.http != nil {
		return c.http
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *cli) sleepFn() func(context.Context, time.Duration) error {
	if c.sleep != nil {
		return c.sleep
	}
	return func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}

// discover reads the provider's endpoints from its discovery document.
func (dc *deviceClient) discover(ctx context.Context) error {
	var md struct {
		Issuer                      string   `json:"issuer"`
		TokenEndpoint               string   `json:"token_endpoint"`
		DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
		GrantTypesSupported         []string `json:"grant_types_supported"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, dc.issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := dc.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", dc.issuer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s to the discovery request; is it a Stepgate server?", dc.issuer, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil {
		return fmt.Errorf("%s sent a discovery document that is not JSON: %w", dc.issuer, err)
	}
	switch {
	case md.Issuer != dc.issuer:
		return fmt.Errorf("the server at %s calls itself %q; use that as --issuer", dc.issuer, md.Issuer)
	case md.DeviceAuthorizationEndpoint == "" || !slices.Contains(md.GrantTypesSupported, deviceCodeGrant):
		return fmt.Errorf("the server at %s does not offer the device flow (no device_authorization_endpoint); upgrade it", dc.issuer)
	}
	dc.device, dc.token = md.DeviceAuthorizationEndpoint, md.TokenEndpoint
	return nil
}

// deviceStart is the device authorization response (RFC 8628 3.2).
type deviceStart struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// oauthError is an error response of the provider.
type oauthError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// postForm posts form to endpoint and decodes a 200 answer into out, or
// returns the OAuth error.
func (dc *deviceClient) postForm(ctx context.Context, endpoint string, form url.Values, out any) error {
	form.Set("client_id", dc.client)
	if dc.database != "" {
		form.Set("resource", databaseResourcePrefix+dc.database)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := dc.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", dc.issuer, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, 1<<20)
	if resp.StatusCode != http.StatusOK {
		oe := &oauthError{Status: resp.StatusCode}
		if json.NewDecoder(body).Decode(oe) != nil || oe.Code == "" {
			return fmt.Errorf("%s answered %s", endpoint, resp.Status)
		}
		return oe
	}
	return json.NewDecoder(body).Decode(out)
}

// start asks for a device code.
func (dc *deviceClient) start(ctx context.Context) (deviceStart, error) {
	var s deviceStart
	err := dc.postForm(ctx, dc.device, url.Values{"scope": {dc.scope}}, &s)
	var oe *oauthError
	if errors.As(err, &oe) {
		switch oe.Code {
		case "invalid_client":
			return s, fmt.Errorf("the server does not know client %q; register it (stepgate client add) or pass --client", dc.client)
		case "unauthorized_client":
			return s, fmt.Errorf("client %q may not use the device flow; add %s to its grant_types", dc.client, deviceCodeGrant)
		case "slow_down":
			return s, errors.New("the server has too many sign-ins waiting; try again in a minute")
		case "invalid_target":
			return s, unknownDatabase(dc.database, oe.Description)
		}
		return s, fmt.Errorf("the server refused to start a sign-in: %w", err)
	}
	if err != nil {
		return s, err
	}
	if s.DeviceCode == "" || s.UserCode == "" || s.VerificationURI == "" || s.ExpiresIn <= 0 {
		return s, errors.New("the server's device authorization answer lacks a code, address or lifetime")
	}
	if s.VerificationURIComplete == "" {
		s.VerificationURIComplete = s.VerificationURI
	}
	return s, nil
}

// unknownDatabase explains an invalid_target answer: the server serves
// no database of that name, and these are the ones it serves.
func unknownDatabase(name, desc string) error {
	var served []string
	for _, f := range strings.FieldsFunc(desc, func(r rune) bool { return r == ' ' || r == ',' || r == '"' }) {
		if n, ok := strings.CutPrefix(f, databaseResourcePrefix); ok && n != name {
			served = append(served, n)
		}
	}
	if len(served) == 0 {
		return fmt.Errorf("the server serves no database %q (%s)", name, desc)
	}
	return fmt.Errorf("the server serves no database %q; it serves: %s", name, strings.Join(served, ", "))
}

// poll polls the token endpoint every interval, five seconds more after
// each slow_down, until the user answers, the code expires, or the
// timeout passes.
func (dc *deviceClient) poll(ctx context.Context, s deviceStart) (keptToken, error) {
	wait := 5 * time.Second // RFC 8628 3.2: the default interval
	if s.Interval > 0 {
		wait = time.Duration(s.Interval) * time.Second
	}
	limit := time.Duration(s.ExpiresIn) * time.Second
	if dc.timeout > 0 && dc.timeout < limit {
		limit = dc.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		if err := dc.sleep(ctx, wait); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return keptToken{}, fmt.Errorf("nobody approved the sign-in within %s; run stepgate login again", limit)
			}
			if errors.Is(err, context.Canceled) {
				return keptToken{}, errors.New("interrupted before the sign-in was approved")
			}
			return keptToken{}, err
		}
		tok, err := dc.tokens(ctx, url.Values{"grant_type": {deviceCodeGrant}, "device_code": {s.DeviceCode}})
		var oe *oauthError
		switch {
		case err == nil:
			fmt.Fprintln(dc.stderr, "Signed in.")
			return tok, nil
		case errors.As(err, &oe) && oe.Code == "authorization_pending":
		case errors.As(err, &oe) && oe.Code == "slow_down":
			wait += 5 * time.Second
		case errors.As(err, &oe) && oe.Code == "access_denied":
			return keptToken{}, errors.New("the sign-in was denied on the approval page (by you, or by a policy)")
		case errors.As(err, &oe) && oe.Code == "expired_token":
			return keptToken{}, errors.New("the code expired before it was approved; run stepgate login again")
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return keptToken{}, fmt.Errorf("nobody approved the sign-in within %s; run stepgate login again", limit)
		default:
			return keptToken{}, fmt.Errorf("sign-in failed: %w", err)
		}
	}
}

// tokens posts a token request and reads the tokens.
func (dc *deviceClient) tokens(ctx context.Context, form url.Values) (keptToken, error) {
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
	}
	asked := dc.now()
	if err := dc.postForm(ctx, dc.token, form, &tok); err != nil {
		return keptToken{}, err
	}
	if tok.AccessToken == "" {
		return keptToken{}, errors.New("the server's token answer has no access token")
	}
	return keptToken{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		Expires: asked.Add(time.Duration(tok.ExpiresIn) * time.Second).UTC()}, nil
}

// refresh renews the tokens with a refresh token.
func (dc *deviceClient) refresh(ctx context.Context, rt string) (keptToken, error) {
	return dc.tokens(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}
