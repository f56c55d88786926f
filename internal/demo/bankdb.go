package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/config"
)

// BankDatabaseName is the name clients give for the bank database
// (dbname=bank, "stepgate psql bank"): the database gateway's name, the
// audience of its tokens and the app its policies target. It is the
// name of the bank's web route too, so the policies that target the
// bank cover its database as well.
const BankDatabaseName = "bank"

// BankPasswordFile is the file in the data directory that holds the
// password of the role the gateway signs in to the upstream as.
const BankPasswordFile = "bank-db-password"

// The upstream's objects. The upstream database's name differs from the
// gateway's name (bank): a server given with --with-postgres may hold a
// database called bank of its own, and the demo recreates its database
// at every start.
const (
	BankUpstreamDatabase = "stepgate_demo_bank"
	BankUpstreamRole     = "stepgate_demo_bank_gateway"
)

// bankMarker is the comment the demo puts on the database and the role
// it creates; it drops or changes only objects that carry it, never a
// same-named database or role someone else made.
const bankMarker = "created by stepgate demo; dropped and created again at every start"

// BankDatabase is the bank database as the gateway serves it.
type BankDatabase struct {
	// Listen is the gateway's address for it, 127.0.0.1:PORT.
	Listen string
	// Upstream is the real database and the gateway's role there.
	Upstream config.DatabaseUpstream
}

// BankProvision names what Provision creates; the zero value uses the
// demo's names. Tests sharing a server give names of their own.
type BankProvision struct {
	Database, Role string
}

func (p BankProvision) withDefaults() BankProvision {
	if p.Database == "" {
		p.Database = BankUpstreamDatabase
	}
	if p.Role == "" {
		p.Role = BankUpstreamRole
	}
	return p
}

// Provision makes the bank database on the PostgreSQL server adminURL
// names, whose role may create databases and roles: a login role for
// the gateway with a new random password (written to dataDir), and a
// database of fake customers, accounts and transfers that only the
// role's owner and the gateway's role can reach. Both are created afresh
// at every start, so the demo always starts from the same rows. The
// returned upstream is what the gateway's configuration needs; listen is
// the gateway's address.
func Provision(ctx context.Context, adminURL, dataDir, listen string, p BankProvision) (BankDatabase, error) {
	p = p.withDefaults()
	cfg, err := pgconn.ParseConfig(adminURL)
	if err != nil {
		return BankDatabase{}, fmt.Errorf("the PostgreSQL URL: %w; write it like postgres://USER@127.0.0.1:5432/postgres", err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		return BankDatabase{}, fmt.Errorf("the PostgreSQL URL names a Unix socket (%s); the database gateway connects over TCP: give host=127.0.0.1 (or the server's address) instead", cfg.Host)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	admin, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return BankDatabase{}, fmt.Errorf("connect to PostgreSQL at %s:%d as %s: %w", cfg.Host, cfg.Port, cfg.User, err)
	}
	defer admin.Close(context.Background())
	password := rand.Text()
	if err := resetRole(ctx, admin, p.Role, password); err != nil {
		return BankDatabase{}, err
	}
	if err := resetDatabase(ctx, admin, p.Database); err != nil {
		return BankDatabase{}, err
	}
	bankCfg := cfg.Copy()
	bankCfg.Database = p.Database
	bank, err := pgconn.ConnectConfig(ctx, bankCfg)
	if err != nil {
		return BankDatabase{}, fmt.Errorf("connect to the new database %s: %w", p.Database, err)
	}
	defer bank.Close(context.Background())
	if err := execSQL(ctx, bank, bankSchema(p.Database, p.Role)); err != nil {
		return BankDatabase{}, fmt.Errorf("create the bank's tables in %s: %w", p.Database, err)
	}
	pwFile := filepath.Join(dataDir, BankPasswordFile)
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return BankDatabase{}, fmt.Errorf("keep the gateway role's password: %w", err)
	}
	up := config.DatabaseUpstream{
		Address: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Database: p.Database, User: p.Role, PasswordFile: pwFile,
	}
	if root := upstreamRootCert(adminURL); root != "" {
		up.CAFile = root
	}
	return BankDatabase{Listen: listen, Upstream: up}, nil
}

// upstreamRootCert is the sslrootcert of a URL that asks to verify the
// server (sslmode verify-ca or verify-full), so the gateway verifies it
// too.
func upstreamRootCert(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	q := u.Query()
	if mode := q.Get("sslmode"); mode != "verify-ca" && mode != "verify-full" {
		return ""
	}
	return q.Get("sslrootcert")
}

// resetRole creates the gateway's role, or gives the demo's role from
// an earlier run the new password. A role of that name the demo did not
// create is left alone, and the demo stops.
func resetRole(ctx context.Context, c *pgconn.PgConn, role, password string) error {
	mine, exists, err := marked(ctx, c, "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", role)
	if err != nil {
		return fmt.Errorf("look for the role %s: %w", role, err)
	}
	if exists && !mine {
		return fmt.Errorf("the server has a role %s that the demo did not create; drop it, or give the demo another server", role)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	// No SUPERUSER, CREATEDB, CREATEROLE or inheritance: the gateway's
	// role bounds what every statement through the gateway can do.
	sql := fmt.Sprintf("%s ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 50 PASSWORD %s; COMMENT ON ROLE %[2]s IS %[4]s",
		verb, ident(role), literal(password), literal(bankMarker))
	if err := execSQL(ctx, c, sql); err != nil {
		return fmt.Errorf("%s the role %s: %w; the URL's role needs CREATEROLE (or be a superuser)", strings.ToLower(verb), role, err)
	}
	return nil
}

// resetDatabase drops the demo's database of an earlier run and creates
// it empty.
func resetDatabase(ctx context.Context, c *pgconn.PgConn, db string) error {
	mine, exists, err := marked(ctx, c, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", db)
	if err != nil {
		return fmt.Errorf("look for the database %s: %w", db, err)
	}
	if exists && !mine {
		return fmt.Errorf("the server has a database %s that the demo did not create; drop it, or give the demo another server", db)
	}
	if exists {
		// FORCE ends the sessions of a demo that was killed without
		// stopping; only the demo's own role and its owner connect here.
		if err := execSQL(ctx, c, "DROP DATABASE "+ident(db)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop the demo's database %s of an earlier run: %w", db, err)
		}
	}
	if err := execSQL(ctx, c, "CREATE DATABASE "+ident(db)+" ENCODING 'UTF8' TEMPLATE template0"); err != nil {
		return fmt.Errorf("create the database %s: %w; the URL's role needs CREATEDB (or be a superuser)", db, err)
	}
	return execSQL(ctx, c, "COMMENT ON DATABASE "+ident(db)+" IS "+literal(bankMarker))
}

// marked reports whether the object the query finds exists and carries
// the demo's comment.
func marked(ctx context.Context, c *pgconn.PgConn, query, name string) (mine, exists bool, err error) {
	res := c.ExecParams(ctx, query, [][]byte{[]byte(name)}, nil, nil, nil).Read()
	if res.Err != nil {
		return false, false, res.Err
	}
	if len(res.Rows) == 0 {
		return false, false, nil
	}
	return string(res.Rows[0][0]) == bankMarker, true, nil
}

func execSQL(ctx context.Context, c *pgconn.PgConn, sql string) error {
	_, err := c.Exec(ctx, sql).ReadAll()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	return err
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes s as an SQL string constant; the names and passwords
// quoted here are the demo's own, never user input.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// bankSchema creates the bank's tables with fake rows, and gives the
// gateway's role exactly what a bank clerk's statements need: reading
// and changing rows of the three tables. It cannot create, alter or
// drop anything, nor reach another database; PUBLIC loses the right to
// connect and the schema's usage, so other roles of the server see
// nothing either.
func bankSchema(db, role string) string {
	r := ident(role)
	return `
REVOKE ALL ON DATABASE ` + ident(db) + ` FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE ` + ident(db) + ` TO ` + r + `;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ` + r + `;

CREATE TABLE customers (
	id    serial PRIMARY KEY,
	name  text NOT NULL,
	email text NOT NULL,
	ssn   text NOT NULL
);
CREATE TABLE accounts (
	id          serial PRIMARY KEY,
	customer_id integer NOT NULL REFERENCES customers,
	balance     numeric(12,2) NOT NULL
);
CREATE TABLE transfers (
	id           serial PRIMARY KEY,
	from_account integer NOT NULL REFERENCES accounts,
	to_account   integer NOT NULL REFERENCES accounts,
	amount       numeric(12,2) NOT NULL CHECK (amount > 0),
	created_at   timestamptz NOT NULL DEFAULT now()
);

-- Fake people: the 000 area number is never issued, so no row can be a
-- real social security number.
INSERT INTO customers (name, email, ssn) VALUES
	('Ada Okafor',      'ada.okafor@example.com',      '000-12-3401'),
	('Bruno Lindqvist', 'bruno.lindqvist@example.com', '000-12-3402'),
	('Chen Wei',        'chen.wei@example.com',        '000-12-3403'),
	('Dara Murphy',     'dara.murphy@example.com',     '000-12-3404'),
	('Elif Yilmaz',     'elif.yilmaz@example.com',     '000-12-3405'),
	('Farah Haddad',    'farah.haddad@example.com',    '000-12-3406');
INSERT INTO accounts (customer_id, balance) VALUES
	(1, 1250.00), (1, 18400.50), (2, 310.75), (3, 9020.00), (4, 47.10), (5, 2600.00), (6, 130500.00);
INSERT INTO transfers (from_account, to_account, amount, created_at) VALUES
	(2, 4, 500.00,  '2026-01-05 09:12:00+00'),
	(7, 1, 1200.00, '2026-01-06 14:30:00+00'),
	(4, 3, 75.25,   '2026-01-07 11:05:00+00');

GRANT SELECT, INSERT, UPDATE, DELETE ON customers, accounts, transfers TO ` + r + `;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ` + r + `;
`
}

// DatabaseConfig is the gateway's configuration of the bank database:
// reading personal data (the pii label) asks for context c1 (a second
// factor), a write for c2 (a second factor from the last ten minutes)
// and a schema change for c3 as well (a passkey, and the bank-admin
// role); UPDATE and DELETE without WHERE are refused outright.
func (b BankDatabase) DatabaseConfig() config.Database {
	return config.Database{
		Name: BankDatabaseName, Listen: b.Listen, Upstream: b.Upstream,
		Labels:        map[string][]string{"pii": {"customers.ssn", "customers.email"}},
		LabelContexts: map[string]string{"pii": "c1"},
		// A class covers itself and every more sensitive one: ddl,
		// privilege and unknown statements ask for c2 and c3.
		ClassContexts: map[string]string{"write": "c2", "ddl": "c3"},
		RefuseNoWhere: true,
		// config.Resolve fills these for a file's databases; this one
		// is added after it.
		StatementWait:          config.Duration(2 * time.Minute),
		StepUpWait:             config.Duration(2 * time.Minute),
		MaxUpstreamConnections: 10,
	}
}
