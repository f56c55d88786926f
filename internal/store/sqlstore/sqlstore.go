// Package sqlstore implements store.Store over database/sql. The SQLite and
// PostgreSQL backends share it and differ only in their Dialect: driver
// opening, placeholder style, row locking and error classification.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// Dialect holds what differs between SQL engines.
type Dialect struct {
	// Name is shown in error messages ("sqlite", "postgres").
	Name string
	// Numbered placeholders ($1, $2) instead of '?'.
	NumberedPlaceholders bool
	// ForUpdate is appended to the SELECT of a read-modify-write so the row
	// stays locked until commit. SQLite needs none: its write transactions
	// begin IMMEDIATE and so already exclude every other writer.
	ForUpdate string
	// CaseInsensitiveLike is the operator that matches a LIKE pattern
	// regardless of case: SQLite's LIKE already ignores the case of ASCII
	// letters; PostgreSQL has ILIKE.
	CaseInsensitiveLike string
	// IsUniqueViolation reports whether err is a unique/primary key violation.
	IsUniqueViolation func(error) bool
	// MigrationLock, when set, runs first in every migration transaction so
	// nodes starting together apply each migration once.
	MigrationLock string
	// QuotaLock, when set, runs first in a quota-checked insert, so
	// nodes check and insert one at a time. SQLite needs none: its write
	// transactions already exclude one another.
	QuotaLock string
	// TotalsLock, when set, runs first in a transaction that counts the
	// sign-in log's totals again or cuts whole hours from the log, so no
	// entry is written meanwhile. SQLite needs none: its write
	// transactions already exclude one another.
	TotalsLock string
	// NameRange is the condition that a kv name lies in [?, ?) in byte
	// order, using an index; empty means matching prefixes with substr,
	// which reads every row.
	NameRange string
	// Reclaim, when set, gives free pages back to the file system after
	// expired entries are deleted (SQLite's incremental vacuum).
	Reclaim string
}

// DB is a store.Store backed by a SQL database.
type DB struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time
	mark    accessMark
}

var _ store.Store = (*DB)(nil)

// New wraps an open, migrated database. now is the clock used for
// timestamps; nil means time.Now.
func New(db *sql.DB, d Dialect, now func() time.Time) *DB {
	if now == nil {
		now = time.Now
	}
	return &DB{db: db, dialect: d, now: now}
}

// SQL exposes the underlying handle for backend-specific work.
func (s *DB) SQL() *sql.DB { return s.db }

// Ping reports whether the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
func (s *DB) Close() error {
	ferr := s.closeAccessMark()
	if err := s.db.Close(); err != nil {
		return err
	}
	return ferr
}

// q rewrites '?' placeholders for the dialect (Dialect.Rebind).
func (s *DB) q(query string) string { return s.dialect.Rebind(query) }

// Rebind rewrites '?' placeholders as the dialect numbers them ($1, $2,
// ... on PostgreSQL). Our queries never contain a literal '?', so a plain
// scan is exact.
func (d Dialect) Rebind(query string) string {
	if !d.NumberedPlaceholders {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// classify maps driver errors onto store sentinels.
func (s *DB) classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case s.dialect.IsUniqueViolation(err):
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

// inTx runs fn in a transaction and commits when fn returns nil.
func (s *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec runs a statement that must touch exactly one row.
func (s *DB) execOne(ctx context.Context, ex execer, query string, args ...any) error {
	res, err := ex.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return s.classify(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// table describes how one record type maps onto its table, so the
// read-modify-write and list logic is written once for all of them.
type table[T any] struct {
	name    string
	key     string // primary key column
	columns string // select list, in scan order
	scan    func(scanner) (T, error)
	// values returns the columns to write (excluding the key) and their
	// values, in matching order.
	values    func(T) ([]string, []any)
	keyOf     func(T) string
	versionOf func(T) int64
	stamp     func(*T, time.Time, int64) // sets UpdatedAt (and CreatedAt when zero) and Version
}

type scanner interface{ Scan(dest ...any) error }

func (t table[T]) get(ctx context.Context, s *DB, qr queryer, where string, args ...any) (T, error) {
	row := qr.QueryRowContext(ctx, s.q("SELECT "+t.columns+" FROM "+t.name+" WHERE "+where), args...)
	v, err := t.scan(row)
	return v, s.classify(err)
}

func (t table[T]) list(ctx context.Context, s *DB, where, order string, args ...any) ([]T, error) {
	query := "SELECT " + t.columns + " FROM " + t.name
	if where != "" {
		query += " WHERE " + where
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+" ORDER BY "+order), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := t.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (t table[T]) insert(ctx context.Context, s *DB, ex execer, v T) (T, error) {
	t.stamp(&v, s.now(), 1)
	cols, vals := t.values(v)
	cols = append([]string{t.key}, cols...)
	vals = append([]any{t.keyOf(v)}, vals...)
	query := "INSERT INTO " + t.name + " (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	if _, err := ex.ExecContext(ctx, s.q(query), vals...); err != nil {
		return v, s.classify(err)
	}
	return v, nil
}

func (t table[T]) create(ctx context.Context, s *DB, v T) (T, error) {
	return t.insert(ctx, s, s.db, v)
}

// update is the compare-and-swap primitive: inside one transaction it locks
// the row, applies fn, and writes the result with the version bumped. The
// WHERE on version makes a lost update impossible even if a dialect's lock
// were weaker than we think.
func (t table[T]) update(ctx context.Context, s *DB, key string, fn func(T) (T, error)) (T, error) {
	var out T
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := t.get(ctx, s, tx, t.key+" = ?"+s.dialect.ForUpdate, key)
		if err != nil {
			return err
		}
		curVersion := t.versionOf(cur)
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if t.keyOf(next) != key {
			return fmt.Errorf("update %s %q: the key cannot change", t.name, key)
		}
		t.stamp(&next, s.now(), curVersion+1)
		cols, vals := t.values(next)
		set := strings.Join(cols, " = ?, ") + " = ?"
		vals = append(vals, key, curVersion)
		if err := s.execOne(ctx, tx, "UPDATE "+t.name+" SET "+set+" WHERE "+t.key+" = ? AND version = ?", vals...); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: %s %q changed concurrently", store.ErrConflict, t.name, key)
			}
			return err
		}
		out = next
		return nil
	})
	return out, err
}

func (t table[T]) delete(ctx context.Context, s *DB, key string) error {
	return s.execOne(ctx, s.db, "DELETE FROM "+t.name+" WHERE "+t.key+" = ?", key)
}
