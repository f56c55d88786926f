// Package config is Stepgate's configuration: the YAML schema, its
// defaults, strict decoding, environment overrides and validation.
//
// Precedence, lowest first: built-in defaults, the YAML file, command-line
// flags, STEPGATE_* environment variables. Environment wins so that
// secrets and DSNs injected by an orchestrator can never be shadowed by a
// file baked into an image.
package config

import (
	"slices"
	"time"
)

// Config is the whole configuration file.
type Config struct {
	Server   Server   `yaml:"server"`
	Storage  Storage  `yaml:"storage"`
	Log      Log      `yaml:"log"`
	Sessions Sessions `yaml:"sessions"`
	Password Password `yaml:"password"`
	OIDC     OIDC     `yaml:"oidc"`
	Policy   Policy   `yaml:"policy"`
	GeoIP    GeoIP    `yaml:"geoip"`
	API      API      `yaml:"api"`
	Secrets  Secrets  `yaml:"secrets"`
	TOTP     TOTP     `yaml:"totp"`
	WebAuthn WebAuthn `yaml:"webauthn"`
	OTP      OTP      `yaml:"otp"`
	Gateway  Gateway  `yaml:"gateway"`
	Risk     Risk     `yaml:"risk"`
	// SignInLog is the log of every access decision and sign-in.
	SignInLog SignInLog `yaml:"signin_log"`
	// Registration is what adding or removing a sign-in method takes.
	Registration Registration `yaml:"registration"`
	// Elevation is just-in-time activation of eligible roles.
	Elevation Elevation `yaml:"elevation"`
	// Databases are the PostgreSQL databases served through the
	// database gateway.
	Databases []Database `yaml:"databases,omitempty"`
}

// Server is the HTTP listener and the public identity of this deployment.
type Server struct {
	// Listen is the address the HTTP server binds.
	Listen string `yaml:"listen"`
	// Issuer is the public base URL (scheme, host, optional path) users and
	// clients reach Stepgate at. Empty means http://localhost:<listen port>.
	Issuer string `yaml:"issuer"`
	// DataDir holds the SQLite database and local secrets.
	DataDir string `yaml:"data_dir"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout guards against slow-loris clients.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed when
	// finding a client's IP. Empty: only the socket peer counts.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// GCPercent is the garbage collector's target heap growth (Go's
	// GOGC), applied when the server starts unless GOGC is set.
	GCPercent int `yaml:"gc_percent"`
}

// Storage selects the backend.
type Storage struct {
	// DSN empty or "sqlite" (or sqlite://PATH) selects the embedded SQLite
	// database in DataDir; postgres://... selects PostgreSQL.
	DSN string `yaml:"dsn"`
	// BusyTimeout is how long SQLite waits for another process's lock.
	BusyTimeout Duration `yaml:"busy_timeout"`
	// ConnectTimeout bounds the first PostgreSQL connection.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// MaxOpenConns caps the PostgreSQL pool.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// Log configures structured logging.
type Log struct {
	Format string `yaml:"format"` // text | json
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// Sessions configures browser SSO sessions.
type Sessions struct {
	// CookieName is the SSO session cookie.
	CookieName string `yaml:"cookie_name"`
	// IdleTimeout ends a session that saw no request for this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Lifetime ends a session this long after sign-in, active or not.
	Lifetime Duration `yaml:"lifetime"`
}

// Password configures password hashing and acceptance.
type Password struct {
	// MinLength is the shortest password accepted (NIST 800-63B: 8).
	MinLength int `yaml:"min_length"`
	// BreachedList is a file of breached or common passwords (or their
	// SHA-1 in hex) that new passwords may not be.
	BreachedList string `yaml:"breached_list"`
	// Argon2id cost parameters. Changing them affects new hashes only;
	// old hashes keep verifying and are upgraded at next sign-in.
	Argon2 Argon2 `yaml:"argon2"`
}

// Argon2 holds argon2id cost parameters.
type Argon2 struct {
	Time      uint32 `yaml:"time"`       // iterations
	MemoryKiB uint32 `yaml:"memory_kib"` // memory in KiB
	Threads   uint8  `yaml:"threads"`
}

// Policy locates the conditional access policy files.
type Policy struct {
	// Files are policy files or directories; a directory stands for every
	// *.yaml and *.yml file in it, in name order. Relative paths are
	// relative to the working directory. Empty: no policies, every
	// request is allowed.
	Files []string `yaml:"files,omitempty"`
	// Environments are the policy sets beside production's (whose files
	// are Files), by name: a staging set that staging routes, clients
	// and databases are evaluated against on the same server.
	Environments map[string]PolicyEnvironment `yaml:"environments,omitempty"`
}

// ProductionEnvironment is the policy environment every route, client
// and database is evaluated against unless it names another.
const ProductionEnvironment = "production"

// BuiltinApps are the app ids of Stepgate's own apps (admin.ConsoleApp,
// elevate.App), always decided in production: no route, client or
// database decided in another environment may take one.
var BuiltinApps = []string{"stepgate-console", "stepgate-elevation"}

// PolicyEnvironment is one named policy set.
type PolicyEnvironment struct {
	// Files are policy files or directories, as in policy.files.
	Files []string `yaml:"files,omitempty"`
}

// EnvironmentNames lists the policy environments: production first, then
// the others in name order.
func (p Policy) EnvironmentNames() []string {
	names := make([]string, 0, len(p.Environments)+1)
	for name := range p.Environments {
		names = append(names, name)
	}
	slices.Sort(names)
	return append([]string{ProductionEnvironment}, names...)
}

// FilesOf returns the policy files of the environment named env.
func (p Policy) FilesOf(env string) []string {
	if env == "" || env == ProductionEnvironment {
		return p.Files
	}
	return p.Environments[env].Files
}

// HasEnvironment reports whether env names a policy environment; the
// empty name is production.
func (p Policy) HasEnvironment(env string) bool {
	if env == "" || env == ProductionEnvironment {
		return true
	}
	_, ok := p.Environments[env]
	return ok
}

// GeoIP locates the IP-to-country database named locations use.
type GeoIP struct {
	// Database is a MaxMind DB (.mmdb) file such as GeoLite2-Country.
	// Empty: countries are unknown, and only IP-range locations match.
	Database string `yaml:"database"`
}

// API configures the JSON API (/api/v1/...).
type API struct {
	// Token is a bearer token that grants API access from any address.
	// Empty: only clients on the loopback interface are answered.
	Token string `yaml:"token"`
}

// Secrets holds the key that encrypts secrets at rest (TOTP seeds, phone
// numbers). Empty: a key file in server.data_dir, created on first start.
type Secrets struct {
	Key string `yaml:"key"`
}

// TOTP configures the authenticator-app method.
type TOTP struct {
	// Issuer names this deployment in authenticator apps.
	Issuer string `yaml:"issuer"`
}

// Default returns the built-in configuration. Every default lives here.
func Default() Config {
	return Config{
		Server: Server{
			Listen:            "127.0.0.1:8080",
			DataDir:           "./stepgate-data",
			ShutdownTimeout:   Duration(15 * time.Second),
			GCPercent:         400,
			ReadHeaderTimeout: Duration(10 * time.Second),
		},
		Storage: Storage{
			BusyTimeout:    Duration(5 * time.Second),
			ConnectTimeout: Duration(5 * time.Second),
			MaxOpenConns:   20,
		},
		Log: Log{Format: "text", Level: "info"},
		Sessions: Sessions{
			CookieName:  "stepgate_session",
			IdleTimeout: Duration(8 * time.Hour),
			Lifetime:    Duration(7 * 24 * time.Hour),
		},
		Password: Password{
			MinLength: 8,
			// OWASP's recommended argon2id floor: m=19 MiB, t=2, p=1.
			Argon2: Argon2{Time: 2, MemoryKiB: 19 * 1024, Threads: 1},
		},
		OIDC:      defaultOIDC(),
		TOTP:      TOTP{Issuer: "Stepgate"},
		WebAuthn:  WebAuthn{RPName: "Stepgate"},
		OTP:       defaultOTP(),
		Gateway:   defaultGateway(),
		Risk:      defaultRisk(),
		SignInLog: defaultSignInLog(),

		Registration: defaultRegistration(),
		Elevation:    Elevation{Roles: []ElevationRole{}, MaxPending: DefaultElevationMaxPen},
	}
}

// Duration is a time.Duration written as "90s", "15m", "8h" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
