// Package sqlite is Stepgate's embedded storage backend: one SQLite file in
// the data directory, opened with the pure-Go modernc.org/sqlite driver (no
// cgo), in WAL mode so readers never wait for the writer.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside the data directory.
const FileName = "stepgate.db"

// Errors callers can test for.
var (
	// ErrNotDatabase means the file exists but is not a SQLite database.
	ErrNotDatabase = errors.New("not a SQLite database")
	// ErrLocked means another process holds the database lock.
	ErrLocked = errors.New("database is locked")
)

// Options tune Open.
type Options struct {
	// BusyTimeout is how long a statement waits for another process's
	// lock before failing. Zero means 5s.
	BusyTimeout time.Duration
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
}

// Dialect is SQLite's flavour of SQL for sqlstore.
var Dialect = sqlstore.Dialect{
	Name:                "sqlite",
	CaseInsensitiveLike: "LIKE",
	// kv.name has SQLite's default BINARY collation: byte order, over
	// its primary key index.
	NameRange: "name >= ? AND name < ?",
	Reclaim:   "PRAGMA incremental_vacuum",
	IsUniqueViolation: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
}

// Open opens (creating if needed) the database file at path and migrates
// it. A file that exists but is not a SQLite database is refused before
// the driver touches it, so Stepgate never overwrites someone's data.
func Open(ctx context.Context, path string, opts Options) (*sqlstore.DB, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	// _txlock=immediate: every transaction here is read-modify-write, and
	// taking the write lock up front is what lets busy_timeout queue
	// concurrent writers instead of failing one of them with SQLITE_BUSY.
	//
	// auto_vacuum(INCREMENTAL) takes effect on a new file (it must be set
	// before the first table) and lets the store give deleted entries'
	// pages back to the file system; journal_size_limit truncates the
	// write-ahead log after a checkpoint, so a burst of writes does not
	// leave it at its high-water mark either.
	dsn := fmt.Sprintf("%s?_txlock=immediate&_pragma=auto_vacuum(INCREMENTAL)&_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_pragma=journal_size_limit(%d)",
		path, opts.BusyTimeout.Milliseconds(), journalSizeLimit)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, explain(path, opts, err)
	}
	// database/sql keeps two idle connections by default: under
	// concurrent requests the rest were closed after each query and
	// opened again (reading the schema each time) by the next.
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlstore.Migrate(ctx, db, Dialect, migrations, "migrations"); err != nil {
		_ = db.Close()
		return nil, explain(path, opts, err)
	}
	if err := incrementalVacuum(ctx, db); err != nil {
		_ = db.Close()
		return nil, explain(path, opts, err)
	}
	// The access mark's counter row is read on every check, never a
	// remembered read between kernel write events: a commit writes the
	// write-ahead log (the event) before it publishes the frames in the
	// shared-memory index (no event), so a read between the two was
	// remembered as covering a revocation it had not seen, and another
	// process's revocation (the command line's) went unseen until the
	// next write (TestAttackReadBetweenLogWriteAndCommitHidesRevocation).
	return sqlstore.New(db, Dialect, opts.Now), nil
}

// journalSizeLimit is the size (bytes) the write-ahead log is cut back
// to after a checkpoint: about what SQLite's automatic checkpoint (every
// 1000 pages) lets it reach in steady use.
const journalSizeLimit = 4 << 20

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

// incrementalVacuum converts, once, a database created before Stepgate
// set auto_vacuum: the setting changes an existing file only with a
// VACUUM, which rewrites it (and cannot run inside a migration's
// transaction). Without it, space freed by deleted entries stays in the
// file for good.
func incrementalVacuum(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var mode int
	if err := conn.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return fmt.Errorf("read auto_vacuum: %w", err)
	}
	if mode == autoVacuumIncremental {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return fmt.Errorf("set auto_vacuum: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("convert to incremental auto-vacuum (VACUUM needs free disk space about the size of the database): %w", err)
	}
	return nil
}

// maxIdleConns is how many connections stay open between bursts. A
// SQLite connection is a file handle and a page cache; opening one
// parses the schema.
const maxIdleConns = 16

var sqliteHeader = []byte("SQLite format 3\x00")

// checkHeader refuses a non-empty file that does not start with SQLite's
// magic string.
func checkHeader(path string) error {
	f, err := os.Open(path) //nolint:gosec // the path is the operator's own data directory
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	if n == 0 && (errors.Is(err, io.EOF)) {
		return nil // empty file: SQLite initialises it
	}
	if !bytes.Equal(head[:n], sqliteHeader) {
		return fmt.Errorf("%s: %w (corrupted, or another program's file); Stepgate has left it untouched: restore it from a backup or point --data-dir at another directory", path, ErrNotDatabase)
	}
	return nil
}

// explain turns driver errors at open time into messages that name the
// problem and the fix.
func explain(path string, opts Options, err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%s: %w by another process (waited %s); stop the other process or raise storage.busy_timeout", path, ErrLocked, opts.BusyTimeout)
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("%s: %w (corrupted: %w); Stepgate has left it untouched: restore it from a backup or point --data-dir at another directory", path, ErrNotDatabase, err)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
			return fmt.Errorf("%s: cannot open for writing (%w); check the permissions of the data directory", path, err)
		}
	}
	return fmt.Errorf("open sqlite database %s: %w", path, err)
}
