package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
)

// Database is one PostgreSQL database served through the database
// gateway: clients connect to Listen with their Stepgate user name and
// an access token for Name, and every statement is judged before it
// reaches the upstream.
type Database struct {
	// Name is the audience of the database's tokens and the app its
	// policies target.
	Name string `yaml:"name"`
	// Environment is the policy environment the database's connections
	// and statements are evaluated against (default production).
	Environment string `yaml:"environment,omitempty"`
	// Listen is where clients connect; default 127.0.0.1:6432.
	Listen string `yaml:"listen"`
	// PublicAddress is host:port that clients connect to, when it is not
	// Listen (a listener on 0.0.0.0, a load balancer in front): the
	// connection information (stepgate psql) hands it out, and a
	// generated certificate names its host. Default: Listen, with an
	// unspecified host (0.0.0.0, ::) replaced by server.issuer's host.
	PublicAddress string `yaml:"public_address"`
	// Upstream is the real database.
	Upstream DatabaseUpstream `yaml:"upstream"`
	// TLS is the certificate clients see; without cert_file and
	// key_file one is generated in server.data_dir and kept.
	TLS DatabaseTLS `yaml:"tls"`
	// InsecureLoopback accepts tokens without TLS from loopback clients
	// (tests, local development).
	InsecureLoopback bool `yaml:"insecure_loopback"`
	// Labels name sensitive tables and columns: pii: [customers.ssn].
	Labels map[string][]string `yaml:"labels"`
	// LabelContexts and ClassContexts map a label, or a statement class
	// (and every more sensitive one), to the authentication context it
	// asks for.
	LabelContexts map[string]string `yaml:"label_contexts"`
	ClassContexts map[string]string `yaml:"class_contexts"`
	// RefuseNoWhere refuses UPDATE/DELETE without WHERE, and TRUNCATE.
	RefuseNoWhere bool `yaml:"refuse_no_where"`
	// DestructiveNeedsElevation, when set, is the role DROP and TRUNCATE
	// need through an active just-in-time elevation: a standing
	// assignment of the role does not count.
	DestructiveNeedsElevation string `yaml:"destructive_needs_elevation"`
	// StatementWait bounds how long a statement waits on what it is
	// judged on; default 2m.
	StatementWait Duration `yaml:"statement_wait"`
	// StepUpWait bounds how long a statement that needs more proof
	// waits for its user's approval in a browser; default 2m.
	StepUpWait Duration `yaml:"step_up_wait"`
	// SingleUse makes each approval good for one statement only.
	SingleUse bool `yaml:"single_use"`
	// MaxUpstreamConnections bounds the connections open to the upstream
	// (one per client session); default 20.
	MaxUpstreamConnections int `yaml:"max_upstream_connections"`
}

// DatabaseUpstream is the real database and the gateway's credentials.
type DatabaseUpstream struct {
	// Address is host:port.
	Address  string `yaml:"address"`
	Database string `yaml:"database"`
	User     string `yaml:"user"`
	// PasswordFile or PasswordEnv holds the password; the password is
	// never written in the configuration, shown or logged.
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// CAFile, when set, makes the gateway verify the upstream's
	// certificate against it (sslmode verify-full); otherwise TLS is
	// used when the upstream offers it, unverified (sslmode prefer).
	CAFile string `yaml:"ca_file"`
}

// DatabaseTLS is the certificate the gateway shows clients.
type DatabaseTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile is the certificate authority that clients verify cert_file
	// with, handed out in the connection information; without it,
	// clients verify a configured certificate with their own roots. A
	// generated certificate is its own authority.
	CAFile string `yaml:"ca_file"`
}

// Database defaults.
const (
	DefaultDatabaseListen         = "127.0.0.1:6432"
	defaultStatementWait          = 2 * time.Minute
	defaultStepUpWait             = 2 * time.Minute
	maxStepUpWait                 = 15 * time.Minute
	defaultMaxUpstreamConnections = 20
)

var databaseName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// withDefaults fills the unset keys of each database.
func withDatabaseDefaults(dbs []Database) {
	for i := range dbs {
		if dbs[i].Listen == "" {
			dbs[i].Listen = DefaultDatabaseListen
		}
		if dbs[i].StatementWait == 0 {
			dbs[i].StatementWait = Duration(defaultStatementWait)
		}
		if dbs[i].StepUpWait == 0 {
			dbs[i].StepUpWait = Duration(defaultStepUpWait)
		}
		if dbs[i].MaxUpstreamConnections == 0 {
			dbs[i].MaxUpstreamConnections = defaultMaxUpstreamConnections
		}
	}
}

// validateDatabases checks every database, naming each problem's key.
func validateDatabases(ps *problems, dbs []Database) {
	names := map[string]bool{}
	listens := map[string]bool{}
	for i, db := range dbs {
		path := fmt.Sprintf("databases[%d]", i)
		switch {
		case !databaseName.MatchString(db.Name):
			ps.add(path+".name", "must be a lower-case name like bank (letters, digits, _ and -, starting with a letter): it is the audience tokens are issued for")
		case names[db.Name]:
			ps.add(path+".name", "%q is used by another database; names must be unique", db.Name)
		}
		names[db.Name] = true
		db.validateListen(ps, path, listens)
		db.Upstream.validate(ps, path+".upstream")
		if (db.TLS.CertFile == "") != (db.TLS.KeyFile == "") {
			ps.add(path+".tls", "set both cert_file and key_file, or neither (a certificate is then generated in server.data_dir)")
		}
		if db.TLS.CAFile != "" && db.TLS.CertFile == "" {
			ps.add(path+".tls.ca_file", "is the authority of cert_file: set cert_file and key_file too, or remove it (a generated certificate is its own authority)")
		}
		if db.PublicAddress != "" {
			if host, port, err := net.SplitHostPort(db.PublicAddress); err != nil || host == "" || port == "" {
				ps.add(path+".public_address", "must be host:port that clients connect to, like db.example.com:6432")
			} else if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
				ps.add(path+".public_address", "%s is not an address clients can connect to: name the host they reach the gateway at", host)
			}
		}
		if err := sqlclass.ValidateLabels(db.Labels); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				ps.add(path+".labels", "%s", line)
			}
		}
		for label, ctx := range db.LabelContexts {
			if _, ok := db.Labels[label]; !ok {
				ps.add(path+".label_contexts."+label, "names no label of this database; add it under labels, or fix the name")
			}
			checkContextID(ps, path+".label_contexts."+label, ctx)
		}
		for class, ctx := range db.ClassContexts {
			if _, err := sqlclass.ParseClass(class); err != nil {
				ps.add(path+".class_contexts."+class, "is not a statement class; use session, read, utility, write, ddl, privilege or unknown")
			}
			checkContextID(ps, path+".class_contexts."+class, ctx)
		}
		if r := db.DestructiveNeedsElevation; r != "" && !roleNamePattern.MatchString(r) {
			ps.add(path+".destructive_needs_elevation", "%q is not a role name: use lower-case letters, digits, '.', '_' and '-' as in stepgate role list (the role users activate for DROP and TRUNCATE)", r)
		}
		ps.positive(path+".statement_wait", db.StatementWait, "2m")
		ps.positive(path+".step_up_wait", db.StepUpWait, "2m")
		if db.StepUpWait.D() > maxStepUpWait {
			// A held statement keeps its transaction open, and with it
			// the locks it holds, while its user is away.
			ps.add(path+".step_up_wait", "must be at most %s: a waiting statement keeps its transaction and locks open (got %s)", maxStepUpWait, db.StepUpWait.D())
		}
		if db.MaxUpstreamConnections < 1 || db.MaxUpstreamConnections > 10000 {
			ps.add(path+".max_upstream_connections", "must be between 1 and 10000 (got %d)", db.MaxUpstreamConnections)
		}
	}
}

func (db Database) validateListen(ps *problems, path string, seen map[string]bool) {
	host, _, err := net.SplitHostPort(db.Listen)
	if err != nil {
		ps.add(path+".listen", "must be host:port like %s", DefaultDatabaseListen)
		return
	}
	if seen[db.Listen] {
		ps.add(path+".listen", "%s is used by another database", db.Listen)
	}
	seen[db.Listen] = true
	if db.InsecureLoopback {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
			ps.add(path+".insecure_loopback", "is only allowed when listen is a loopback address like 127.0.0.1: tokens are bearer secrets")
		}
	}
}

func checkContextID(ps *problems, path, id string) {
	if !contextID.MatchString(id) {
		ps.add(path, "%q is not a context id; use c1 to c99, declared in the policies' auth_contexts", id)
	}
}

var contextID = regexp.MustCompile(`^c([1-9]|[1-9][0-9])$`)

func (u DatabaseUpstream) validate(ps *problems, path string) {
	if _, _, err := net.SplitHostPort(u.Address); err != nil {
		ps.add(path+".address", "must be host:port of the PostgreSQL server, like 127.0.0.1:5432")
	}
	if u.Database == "" {
		ps.add(path+".database", "must name the database on the upstream server")
	}
	if u.User == "" {
		ps.add(path+".user", "must name the role the gateway signs in to the upstream as")
	}
	if (u.PasswordFile == "") == (u.PasswordEnv == "") {
		ps.add(path, "set exactly one of password_file and password_env; the password itself never goes in the configuration")
	}
}

// Password reads the upstream's password from its file (trailing newline
// removed) or environment variable; path names the key in errors.
func (u DatabaseUpstream) Password(path string, getenv func(string) string) (string, error) {
	if u.PasswordFile != "" {
		b, err := os.ReadFile(u.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("%s.password_file: %w", path, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	pw := getenv(u.PasswordEnv)
	if pw == "" {
		return "", fmt.Errorf("%s.password_env: the environment variable %s is empty or not set", path, u.PasswordEnv)
	}
	return pw, nil
}

// DatabaseNames lists the configured databases' names.
func (c Config) DatabaseNames() []string {
	var out []string
	for _, db := range c.Databases {
		out = append(out, db.Name)
	}
	slices.Sort(out)
	return out
}
