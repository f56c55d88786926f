// Package postgres is Stepgate's scale-out storage backend: any number of
// stateless Stepgate nodes share one PostgreSQL database through pgx.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune Open.
type Options struct {
	// ConnectTimeout bounds the first connection, so a wrong or unreachable
	// DSN fails start-up quickly instead of hanging. Zero means 5s.
	ConnectTimeout time.Duration
	// MaxOpenConns caps the pool; zero means 20.
	MaxOpenConns int
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
	// FeedHeartbeat is how often the connection that listens for
	// changes to access (AccessMark) proves it is alive, and FeedTrust
	// how long after the last proof the node still trusts it; zero
	// means 1s and 3s.
	FeedHeartbeat, FeedTrust time.Duration
}

// migrationLockID is an arbitrary constant for pg_advisory_xact_lock, so
// nodes starting at once apply each migration exactly once.
const migrationLockID = 0x53746570 // "Step"

// quotaLockID is the pg_advisory_xact_lock a quota-checked insert
// holds, so nodes count and insert one at a time and can never together
// overshoot a quota.
const quotaLockID = 0x51756f74 // "Quot"

// Dialect is PostgreSQL's flavour of SQL for sqlstore.
var Dialect = sqlstore.Dialect{
	Name:                 "postgres",
	NumberedPlaceholders: true,
	ForUpdate:            " FOR UPDATE",
	CaseInsensitiveLike:  "ILIKE",
	MigrationLock:        fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockID),
	QuotaLock:            fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", quotaLockID),
	// Appends take ROW EXCLUSIVE on the totals, which EXCLUSIVE waits
	// for and then holds off.
	TotalsLock: "LOCK TABLE sign_in_totals IN EXCLUSIVE MODE",
	// Byte order whatever the database's collation, over the index
	// migration 0005 builds for it.
	NameRange: `name COLLATE "C" >= ? AND name COLLATE "C" < ?`,
	IsUniqueViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string) and migrates it.
func Open(ctx context.Context, dsn string, opts Options) (*sqlstore.DB, error) {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.MaxOpenConns <= 0 {
		opts.MaxOpenConns = 20
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message can echo the DSN, password included; say only what
		// is wrong.
		return nil, errors.New("storage.dsn is not a valid PostgreSQL connection string; expected postgres://user:password@host:5432/dbname")
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > opts.ConnectTimeout {
		cfg.ConnectTimeout = opts.ConnectTimeout
	}
	where := fmt.Sprintf("%s:%d/%s as %q", cfg.Host, cfg.Port, cfg.Database, cfg.User)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)

	pingCtx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s: %s; check storage.dsn / STEPGATE_STORAGE_DSN and that the server is running", where, reason(err))
	}
	if err := sqlstore.Migrate(ctx, db, Dialect, migrations, "migrations"); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrate PostgreSQL database %s: %w", where, err)
	}
	s := sqlstore.New(db, Dialect, opts.Now)
	s.SetAccessFeed(newAccessFeed(cfg, orDefault(opts.FeedHeartbeat, defaultHeartbeat), orDefault(opts.FeedTrust, defaultTrust)))
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// reason shortens a connection error to its cause.
func reason(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		if u := errors.Unwrap(connErr); u != nil {
			return u.Error()
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}
