package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrSchemaTooNew means the database was migrated by a newer Stepgate.
// Running an older binary against it could misread or corrupt records, so
// opening refuses.
var ErrSchemaTooNew = errors.New("database schema is newer than this stepgate")

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL)`

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads NNNN_description.sql files from dir in fsys.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive number and '_'", e.Name())
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("migration %q: versions must run 1, 2, 3... without gaps", out[i].name)
		}
	}
	return out, nil
}

// Migrate brings the schema up to the newest migration in dir. Each
// migration runs in its own transaction together with its bookkeeping row,
// so a failure leaves the database at the previous version, never between.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, fsys fs.FS, dir string) error {
	migrations, err := loadMigrations(fsys, dir)
	if err != nil {
		return err
	}
	s := New(db, d, nil)
	for _, m := range migrations {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if d.MigrationLock != "" {
				if _, err := tx.ExecContext(ctx, d.MigrationLock); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
				return fmt.Errorf("create schema_migrations: %w", err)
			}
			var current int
			if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
				return err
			}
			if current > len(migrations) {
				return fmt.Errorf("%w: the database is at version %d, this binary knows %d; upgrade stepgate",
					ErrSchemaTooNew, current, len(migrations))
			}
			if current >= m.version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, s.q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
				m.version, m.name, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
