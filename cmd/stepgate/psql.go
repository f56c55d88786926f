package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// databaseResourcePrefix starts the resource indicator (RFC 8707) that
// asks the server for a token for one of its databases.
const databaseResourcePrefix = "urn:stepgate:database:"

// databaseNameShape is the shape of a database's name (databases[].name):
// checked before the name goes into a URL or a file name.
var databaseNameShape = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

func checkDatabaseName(name string) error {
	if !databaseNameShape.MatchString(name) {
		return usageError{fmt.Errorf("%q is not a database name: names are lower-case, like bank", name)}
	}
	return nil
}

func (c *cli) psqlCmd() *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "psql [--issuer URL] [--client ID] NAME [psql arguments...]",
		Short: "Connect to a database through the gateway with psql, signed in as you",
		Long: `Run psql against the database NAME that Stepgate's database gateway
serves, signed in as you: the command gets a token for that database
with the device flow (as stepgate login does; a kept token is reused,
and renewed with its refresh token), reads how to connect to the
database from the server (its address and the certificate to verify it
with), and runs psql with PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD, PGSSLMODE=verify-full and PGSSLROOTCERT set. The token is
passed in the environment, never on the command line, where any user of
the machine could read it. Other PG* variables of your environment are
not passed on (PGHOSTADDR or PGSERVICE would send the token elsewhere).

Arguments after NAME go to psql:  stepgate psql bank -c 'SELECT 1'

A session lasts as long as its token: when the token expires, the
gateway refuses the next statement; run the command again.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.database = args[0]
			return c.psql(cmd.Context(), o, args[1:])
		},
	}
	fl := cmd.Flags()
	// Everything after NAME is psql's, its flags included.
	fl.SetInterspersed(false)
	fl.StringVar(&o.issuer, "issuer", "", "Stepgate's address (default: server.issuer of the configuration)")
	fl.StringVar(&o.client, "client", defaultLoginClient, "client id to sign in with")
	fl.StringVar(&o.scope, "scope", "openid offline_access", "scopes to ask for; offline_access keeps a refresh token, so the next run needs no approval")
	fl.BoolVar(&o.force, "force", false, "sign in again even if a kept token is still valid")
	fl.DurationVar(&o.timeout, "timeout", 0, "give up waiting for approval after this long (default: when the code expires)")
	return cmd
}

// psql signs in for the database and runs psql.
func (c *cli) psql(ctx context.Context, o loginOptions, args []string) error {
	if err := checkDatabaseName(o.database); err != nil {
		return err
	}
	path, err := c.lookPsql()
	if err != nil {
		return err
	}
	env, err := c.databaseEnv(ctx, o)
	if err != nil {
		return err
	}
	return c.runPsql(path, args, pgEnviron(os.Environ(), env))
}

// lookPsql finds psql before anyone is asked to approve a sign-in.
func (c *cli) lookPsql() (string, error) {
	look := c.lookPath
	if look == nil {
		look = exec.LookPath
	}
	path, err := look("psql")
	if err != nil {
		return "", errors.New("psql is not installed (or not on PATH): install the PostgreSQL client, e.g. apt install postgresql-client (Debian, Ubuntu), dnf install postgresql (Fedora), brew install libpq (macOS)")
	}
	return path, nil
}

// runPsql runs psql with env, as the test runner or by replacing this
// process (execPsql).
func (c *cli) runPsql(path string, args, env []string) error {
	if c.psqlRunner != nil {
		return c.psqlRunner(path, args, env)
	}
	return execPsql(path, args, env)
}

// databaseEnv gets a token for the database and its connection
// information, keeps its certificate, and returns the libpq variables.
func (c *cli) databaseEnv(ctx context.Context, o loginOptions) (pgSettings, error) {
	tok, issuer, err := c.keptOrNewToken(ctx, o)
	if err != nil {
		return pgSettings{}, err
	}
	info, err := c.connectionInfo(ctx, issuer, o.database, tok.AccessToken)
	if errors.Is(err, errTokenRefused) && !o.force {
		// A kept token the server no longer takes (revoked, the user
		// signed out everywhere) would be refused by the gateway too.
		fmt.Fprintln(c.stderr, "The kept token was refused by the server (revoked?); signing in again.")
		o.force = true
		if tok, issuer, err = c.keptOrNewToken(ctx, o); err != nil {
			return pgSettings{}, err
		}
		info, err = c.connectionInfo(ctx, issuer, o.database, tok.AccessToken)
	}
	if err != nil {
		return pgSettings{}, err
	}
	user, err := tokenUsername(tok.AccessToken)
	if err != nil {
		return pgSettings{}, err
	}
	s := pgSettings{Host: info.Host, Port: info.Port, DBName: info.DBName, User: user, Password: tok.AccessToken, SSLMode: "verify-full"}
	if info.CACertificate != "" {
		if s.RootCert, err = c.keepCA(issuer, o.database, info.CACertificate); err != nil {
			return pgSettings{}, err
		}
	}
	return s, nil
}

// errTokenRefused is a 401 from the connection information: the token is
// no longer good.
var errTokenRefused = errors.New("the server refused the token")

// databaseInfo is the server's connection information of a database
// (GET /api/v1/databases/NAME).
type databaseInfo struct {
	Name          string `json:"name"`
	Host          string `json:"host"`
	Port          int    `json:"port"`
	DBName        string `json:"dbname"`
	SSLMode       string `json:"sslmode"`
	CACertificate string `json:"ca_certificate"`
}

// connectionInfo reads how to connect to the database, with its token.
func (c *cli) connectionInfo(ctx context.Context, issuer, name, token string) (databaseInfo, error) {
	var info databaseInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/api/v1/databases/"+url.PathEscape(name), nil)
	if err != nil {
		return info, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return info, fmt.Errorf("cannot reach %s: %w", issuer, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, 1<<20)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Description string `json:"error_description"`
		}
		_ = json.NewDecoder(body).Decode(&e)
		if e.Description == "" {
			e.Description = resp.Status
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return info, fmt.Errorf("%w: %s", errTokenRefused, e.Description)
		}
		return info, fmt.Errorf("the server did not tell how to connect to %s: %s", name, e.Description)
	}
	if err := json.NewDecoder(body).Decode(&info); err != nil {
		return info, fmt.Errorf("the server's connection information for %s is not JSON: %w", name, err)
	}
	if info.Host == "" || info.Port <= 0 || info.DBName == "" {
		return info, fmt.Errorf("the server's connection information for %s lacks a host, port or dbname", name)
	}
	return info, nil
}

// keepCA writes the database's certificate authority where libpq reads
// it (PGSSLROOTCERT), beside the kept tokens, readable by the owner only.
func (c *cli) keepCA(issuer, name, pem string) (string, error) {
	cachePath, err := c.tokenCachePath()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(issuer))
	dir := filepath.Join(filepath.Dir(cachePath), "databases")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("keep the database's certificate: %w", err)
	}
	path := filepath.Join(dir, hex.EncodeToString(sum[:6])+"-"+name+".crt")
	tmp, err := os.CreateTemp(dir, ".ca-*.crt")
	if err != nil {
		return "", fmt.Errorf("keep the database's certificate: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(pem); err != nil {
		_ = tmp.Close()
		return "", fmt.Errorf("keep the database's certificate: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("keep the database's certificate: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("keep the database's certificate: %w", err)
	}
	return path, nil
}

// tokenUsername reads the Stepgate user name from an access token's
// preferred_username claim, for PGUSER. The token is not verified here:
// the gateway verifies it, and the name only has to match it.
func tokenUsername(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("the server's access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("the server's access token cannot be read")
	}
	var claims struct {
		Username string `json:"preferred_username"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Username == "" {
		return "", errors.New("the server's access token names no user (preferred_username)")
	}
	return claims.Username, nil
}

// pgSettings are the libpq connection settings of a database.
type pgSettings struct {
	Host     string
	Port     int
	DBName   string
	User     string
	Password string
	SSLMode  string
	RootCert string
}

// env lists the settings as libpq's environment variables.
func (s pgSettings) env() []string {
	out := []string{
		"PGHOST=" + s.Host, "PGPORT=" + strconv.Itoa(s.Port), "PGDATABASE=" + s.DBName, "PGUSER=" + s.User,
		"PGPASSWORD=" + s.Password, "PGSSLMODE=" + s.SSLMode,
	}
	if s.RootCert != "" {
		out = append(out, "PGSSLROOTCERT="+s.RootCert)
	}
	return out
}

// shellLines lists the variables as lines a POSIX shell reads back with
// eval: a value with anything but plain characters is single-quoted (a
// certificate kept under "Application Support" holds a space).
func (s pgSettings) shellLines() []string {
	out := s.env()
	for i, kv := range out {
		k, v, _ := strings.Cut(kv, "=")
		out[i] = k + "=" + shellQuote(v)
	}
	return out
}

// service is a pg_service.conf stanza for the database, without the
// password, which is short-lived: libpq takes it from PGPASSWORD.
func (s pgSettings) service(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]\nhost=%s\nport=%d\ndbname=%s\nuser=%s\nsslmode=%s\n", name, s.Host, s.Port, s.DBName, s.User, s.SSLMode)
	if s.RootCert != "" {
		fmt.Fprintf(&b, "sslrootcert=%s\n", s.RootCert)
	}
	return b.String()
}

// keptPGVariables are the PG* variables of the caller's environment
// passed on to psql: they shape the session, never where it goes or
// what it authenticates with. Any other (PGHOSTADDR, PGSERVICE,
// PGPASSFILE, PGSSLCERT, PGOPTIONS...) could send the token to another
// server or weaken TLS, and is dropped.
var keptPGVariables = []string{"PGAPPNAME", "PGCONNECT_TIMEOUT", "PGDATESTYLE", "PGTZ"}

// pgEnviron is environ without its PG* variables (but the kept ones),
// with settings added.
func pgEnviron(environ []string, settings pgSettings) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") && !slices.Contains(keptPGVariables, k) {
			continue
		}
		out = append(out, kv)
	}
	return append(out, settings.env()...)
}
