package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// sqliteFile is the database file's name inside server.data_dir; it
// matches the sqlite store's FileName.
const sqliteFile = "stepgate.db"

// minArgon2MemoryKiB is the lowest argon2id memory cost accepted: OWASP's
// weakest listed configuration (m=7 MiB, t=5). Below it, GPU cracking of
// a stolen database gets cheap.
const minArgon2MemoryKiB = 7 * 1024

// Validate checks the configuration and returns every problem, not just
// the first. An empty server.issuer is valid: Resolve derives it from
// server.listen.
func (c Config) Validate() []Problem {
	var ps problems
	c.Server.validate(&ps, c.StorageKind())
	c.Storage.validate(&ps)
	c.Log.validate(&ps)
	c.Sessions.validate(&ps)
	c.Password.validate(&ps)
	c.OIDC.validate(&ps)
	c.Policy.validate(&ps)
	c.API.validate(&ps)
	if c.Secrets.Key != "" {
		// Never quote the key; only say what is wrong with it.
		if k, err := base64.StdEncoding.DecodeString(c.Secrets.Key); err != nil || len(k) != 32 {
			ps.add("secrets.key", "must be 32 random bytes in base64; generate one with: openssl rand -base64 32")
		}
	}
	if strings.TrimSpace(c.TOTP.Issuer) == "" || strings.Contains(c.TOTP.Issuer, ":") {
		ps.add("totp.issuer", "must be a non-empty name without ':' (authenticator apps show it beside the account), like Stepgate or your organisation's name")
	}
	c.WebAuthn.validate(&ps)
	c.OTP.validate(&ps)
	c.Gateway.validate(&ps, c.Server.Issuer)
	c.Risk.validate(&ps)
	c.SignInLog.validate(&ps)
	c.Registration.validate(&ps)
	c.Elevation.validate(&ps)
	validateDatabases(&ps, c.Databases)
	c.validateEnvironments(&ps)
	return ps
}

// validateEnvironments checks every environment key names a configured
// policy environment.
func (c Config) validateEnvironments(ps *problems) {
	for i, r := range c.Gateway.Routes {
		c.Policy.validateEnvironment(fmt.Sprintf("gateway.routes[%d].environment", i), r.Environment, ps)
	}
	for i, cl := range c.OIDC.Clients {
		c.Policy.validateEnvironment(fmt.Sprintf("oidc.clients[%d].environment", i), cl.Environment, ps)
	}
	for i, d := range c.Databases {
		c.Policy.validateEnvironment(fmt.Sprintf("databases[%d].environment", i), d.Environment, ps)
	}
	c.validateAppEnvironments(ps)
}

// validateAppEnvironments refuses one app id (a route's app, a client's
// id, a database's name) decided in two environments: policies target
// apps by id, so the id would be judged by whichever set was looked up
// last, and a staging client could pick production's looser set, or the
// reverse.
func (c Config) validateAppEnvironments(ps *problems) {
	type use struct{ key, env string }
	seen := map[string]use{}
	// Attack: a staging client or route named like one of Stepgate's own
	// apps (the console, role activation), which are always decided in
	// production, shared their sign-in log entries: the impact replay of
	// a production change counted the console's decisions as staging's
	// and left them out, so a change that locks administrators out of
	// the console showed no impact.
	for _, app := range BuiltinApps {
		seen[app] = use{"(Stepgate's own app)", ProductionEnvironment}
	}
	check := func(app, key, env string) {
		if env == "" {
			env = ProductionEnvironment
		}
		if first, ok := seen[app]; ok && first.env != env {
			ps.add(key, "app %s is decided in environment %s here but in %s at %s; give the two different ids, or the same environment", quote(app), env, first.env, first.key)
			return
		}
		if _, ok := seen[app]; !ok {
			seen[app] = use{key, env}
		}
	}
	for i, r := range c.Gateway.Routes {
		check(r.AppID(), fmt.Sprintf("gateway.routes[%d].environment", i), r.Environment)
	}
	for i, cl := range c.OIDC.Clients {
		check(cl.ID, fmt.Sprintf("oidc.clients[%d].environment", i), cl.Environment)
	}
	for i, d := range c.Databases {
		check(d.Name, fmt.Sprintf("databases[%d].environment", i), d.Environment)
	}
}

// problems collects validation results.
type problems []Problem

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// positive reports a duration that is zero or negative.
func (ps *problems) positive(path string, d Duration, example string) {
	if d <= 0 {
		ps.add(path, "must be greater than 0 (got %s); write it like %s", d, example)
	}
}

func (s Server) validate(ps *problems, storage string) {
	if _, err := splitListen(s.Listen); err != nil {
		ps.add("server.listen", "%s", err)
	}
	if s.Issuer != "" {
		if err := checkIssuer(s.Issuer); err != nil {
			ps.add("server.issuer", "%s", err)
		}
	}
	if s.DataDir == "" && storage == "sqlite" {
		ps.add("server.data_dir", "must not be empty when storage is SQLite; set it to a writable directory like ./stepgate-data")
	}
	ps.positive("server.shutdown_timeout", s.ShutdownTimeout, "15s")
	ps.positive("server.read_header_timeout", s.ReadHeaderTimeout, "10s")
	if s.GCPercent < 25 || s.GCPercent > 10000 {
		ps.add("server.gc_percent", "must be between 25 and 10000 (got %d); the default, 400, suits most deployments", s.GCPercent)
	}
	for i, p := range s.TrustedProxies {
		if !validProxy(p) {
			ps.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%s is not an IP address or CIDR; write it like 10.0.0.0/8 or 192.0.2.1", quote(p))
		}
	}
}

// Port returns the port of Listen, or "" when Listen is not host:port.
func (s Server) Port() string {
	port, _ := splitListen(s.Listen)
	return port
}

// splitListen returns the port of a host:port listen address.
func splitListen(listen string) (string, error) {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%s is not host:port; write it like 127.0.0.1:8080, [::1]:8080 or :8080 (all interfaces)", quote(listen))
	}
	// Named ports ("http") would depend on /etc/services; refuse them.
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("port %s is not a number from 0 to 65535; write it like 127.0.0.1:8080", quote(port))
	}
	return port, nil
}

// checkIssuer enforces what OIDC requires of an issuer and refuses plain
// http off the local machine, where session cookies and tokens would
// cross the network readable by anyone on the path.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s is not an absolute http(s) URL; write it like https://sso.example.com", quote(issuer))
	}
	switch {
	case u.User != nil:
		return errors.New("must not contain a user name or password; remove the part before @")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#"):
		return fmt.Errorf("%s must not have a query (?…) or fragment (#…); use scheme, host and optional path only", quote(issuer))
	case u.Scheme == "http" && !isLoopbackName(u.Hostname()):
		return fmt.Errorf("%s must use https unless the host is localhost, 127.0.0.1 or ::1; change http:// to https:// (put a TLS-terminating proxy in front if needed)", quote(issuer))
	}
	return nil
}

func isLoopbackName(host string) bool {
	return strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1"
}

func validProxy(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func (s Storage) validate(ps *problems) {
	if _, _, err := parseDSN(s.DSN); err != nil {
		ps.add("storage.dsn", "%s", err)
	}
	ps.positive("storage.busy_timeout", s.BusyTimeout, "5s")
	ps.positive("storage.connect_timeout", s.ConnectTimeout, "5s")
	if s.MaxOpenConns < 1 {
		ps.add("storage.max_open_conns", "must be at least 1 (got %d); the default is 20", s.MaxOpenConns)
	}
}

// StorageKind is "sqlite" or "postgres", or "" when storage.dsn is not
// valid (Validate reports why).
func (c Config) StorageKind() string {
	kind, _, err := parseDSN(c.Storage.DSN)
	if err != nil {
		return ""
	}
	return kind
}

// SQLitePath is the SQLite database file: stepgate.db in server.data_dir,
// or the PATH of a sqlite://PATH DSN (relative paths are relative to the
// working directory). It is "" when storage is not SQLite.
func (c Config) SQLitePath() string {
	kind, path, err := parseDSN(c.Storage.DSN)
	switch {
	case err != nil || kind != "sqlite":
		return ""
	case path != "":
		return path
	}
	return filepath.Join(c.Server.DataDir, sqliteFile)
}

// parseDSN classifies a storage DSN. For sqlite://PATH it also returns
// PATH. Scheme names are case-sensitive because pgx's are.
func parseDSN(dsn string) (kind, sqlitePath string, err error) {
	switch {
	case dsn == "" || dsn == "sqlite":
		return "sqlite", "", nil
	case strings.HasPrefix(dsn, "sqlite://"):
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" {
			return "", "", errors.New(`"sqlite://" needs a file path; write it like sqlite:///var/lib/stepgate/stepgate.db, or use sqlite for stepgate.db in server.data_dir`)
		}
		// The store appends its own "?_pragma=..." options; a "?" or "#"
		// in the path would splice into them.
		if strings.ContainsAny(path, "?#") {
			return "", "", fmt.Errorf("%s: the SQLite path must not contain ? or #; Stepgate sets the connection options itself", quote(dsn))
		}
		return "sqlite", path, nil
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		// Never wrap url.Parse's error: it repeats the DSN, password and all.
		if _, err := url.Parse(dsn); err != nil {
			return "", "", fmt.Errorf("%s is not a valid PostgreSQL URL; write it like postgres://user:pass@host:5432/db (percent-encode special characters in the password)", quote(dsn))
		}
		return "postgres", "", nil
	}
	return "", "", fmt.Errorf("%s is not a supported storage DSN; use sqlite (the default) or postgres://user:pass@host/db", quote(dsn))
}

func (l Log) validate(ps *problems) {
	switch l.Format {
	case "text", "json":
	default:
		ps.add("log.format", "%s is not a log format; use text or json", quote(l.Format))
	}
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		ps.add("log.level", "%s is not a log level; use debug, info, warn or error", quote(l.Level))
	}
}

func (s Sessions) validate(ps *problems) {
	if s.CookieName == "" {
		ps.add("sessions.cookie_name", "must not be empty; the default is stepgate_session")
	} else if i := strings.IndexFunc(s.CookieName, func(r rune) bool { return !isTokenChar(r) }); i >= 0 {
		ps.add("sessions.cookie_name", "%s contains %q, which a cookie name cannot (RFC 6265); use letters, digits, - and _", quote(s.CookieName), []rune(s.CookieName[i:])[0])
	}
	ps.positive("sessions.idle_timeout", s.IdleTimeout, "8h")
	switch {
	case s.Lifetime <= 0:
		ps.positive("sessions.lifetime", s.Lifetime, "168h")
	case s.Lifetime < s.IdleTimeout:
		ps.add("sessions.lifetime", "must be at least sessions.idle_timeout (%s); raise lifetime or lower idle_timeout", s.IdleTimeout)
	}
}

// isTokenChar reports whether r may appear in an RFC 6265 cookie name (an
// RFC 2616 token: visible ASCII except separators).
func isTokenChar(r rune) bool {
	return r > ' ' && r < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?={}`, r)
}

func (p Password) validate(ps *problems) {
	if p.MinLength < 8 || p.MinLength > 64 {
		ps.add("password.min_length", "must be from 8 to 64 (got %d); NIST SP 800-63B sets the minimum at 8", p.MinLength)
	}
	a := p.Argon2
	if a.Time < 1 {
		ps.add("password.argon2.time", "must be at least 1; 2 is the recommended value")
	}
	if a.Threads < 1 {
		ps.add("password.argon2.threads", "must be at least 1; 1 is the recommended value")
	}
	// argon2id needs 8 KiB per lane; the 7 MiB floor is higher for any
	// uint8 thread count, but keep the rule explicit in case it changes.
	if floor := max(minArgon2MemoryKiB, 8*uint32(a.Threads)); a.MemoryKiB < floor {
		ps.add("password.argon2.memory_kib", "must be at least %d (got %d); 19456 (19 MiB, OWASP's recommendation) is the usual choice", floor, a.MemoryKiB)
	}
}

func (p Policy) validate(ps *problems) {
	validatePolicyFiles("policy.files", p.Files, ps)
	for _, name := range p.EnvironmentNames()[1:] {
		env, key := p.Environments[name], "policy.environments."+name
		switch {
		case name == ProductionEnvironment:
			ps.add(key, "is production, whose files are policy.files; list them there and remove this entry")
		case !environmentName.MatchString(name):
			ps.add(key, "is not an environment name; use 1 to 32 lowercase letters, digits and dashes, starting with a letter (like staging)")
		}
		validatePolicyFiles(key+".files", env.Files, ps)
	}
}

// environmentName is the form of a policy environment's name.
var environmentName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func validatePolicyFiles(key string, files []string, ps *problems) {
	for i, f := range files {
		if strings.TrimSpace(f) == "" {
			ps.add(fmt.Sprintf("%s[%d]", key, i), "is empty; give the path of a policy file or of a directory of *.yaml files, or remove the entry")
		}
	}
}

// validateEnvironment reports an environment key naming no policy
// environment: the route would otherwise be evaluated against a set
// nobody configured.
func (p Policy) validateEnvironment(key, env string, ps *problems) {
	if !p.HasEnvironment(env) {
		ps.add(key, "names policy environment %q, which policy.environments does not define; add it there or use production", env)
	}
}

// minAPITokenLength keeps the token out of reach of guessing: 32
// characters of base64 are 192 bits.
const minAPITokenLength = 32

func (a API) validate(ps *problems) {
	// Never quote the token: it is a secret, and error output ends up in
	// logs and terminals.
	switch {
	case a.Token == "":
	case len(a.Token) < minAPITokenLength:
		ps.add("api.token", "is %d characters long; use at least %d random characters, e.g. the output of: openssl rand -base64 32", len(a.Token), minAPITokenLength)
	case strings.IndexFunc(a.Token, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
		ps.add("api.token", "contains spaces or control or non-ASCII characters, which cannot be sent in an Authorization header; use the output of: openssl rand -base64 32")
	}
}
