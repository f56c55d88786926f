package storetest

import (
	"context"
	"database/sql"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

// RunSignInPoliciesMigration checks that entries written under schema version 3,
// whose policies were keyed by entry id, keep their policies through
// migration 4, which keys them by seq. db is a fresh, empty database,
// closed once the old entries are in; migrations is the backend's
// migrations directory; open opens the same database with the backend,
// which migrates it to the newest version.
func RunSignInPoliciesMigration(t *testing.T, db *sql.DB, d sqlstore.Dialect, migrations fs.FS, open func() store.Store) {
	ctx := context.Background()
	upTo3 := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_kv_expiry.sql", "0003_sign_ins.sql"} {
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		upTo3[path.Join("migrations", name)] = &fstest.MapFile{Data: body}
	}
	if err := sqlstore.Migrate(ctx, db, d, upTo3, "migrations"); err != nil {
		t.Fatalf("migrate to version 3: %v", err)
	}
	// Literal values: the same SQL runs on every backend.
	for _, stmt := range []string{
		`INSERT INTO sign_ins (id, at, user_id, app, decision, body) VALUES
			('old-1', 1000, 'alice', 'bank', 'allow', '{"n":1}'),
			('old-2', 2000, 'bob', 'bank', 'challenge', '{"n":2}'),
			('old-3', 3000, 'alice', 'wiki', 'allow', '{"n":3}')`,
		`INSERT INTO sign_in_policies (policy, sign_in_id) VALUES
			('wire-transfer', 'old-1'), ('admins-mfa', 'old-1'), ('wire-transfer', 'old-3')`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("write version 3 entries: %v", err)
		}
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := open()
	defer s.Close()
	ids := func(q store.SignInQuery) []string {
		t.Helper()
		rows, err := s.ListSignIns(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.ID+":"+strings.Join(r.Policies, ","))
		}
		return out
	}
	if got, want := ids(store.SignInQuery{}), []string{"old-3:wire-transfer", "old-2:", "old-1:admins-mfa,wire-transfer"}; !slices.Equal(got, want) {
		t.Errorf("after migration: %v, want %v", got, want)
	}
	if got, want := ids(store.SignInQuery{Policy: "wire-transfer"}), []string{"old-3:wire-transfer", "old-1:admins-mfa,wire-transfer"}; !slices.Equal(got, want) {
		t.Errorf("policy filter after migration: %v, want %v", got, want)
	}
	// New entries join the old ones in the same index.
	if err := s.AppendSignIns(ctx, []store.SignIn{{ID: "new-1", Time: time.UnixMicro(4000).UTC(), UserID: "alice", App: "bank",
		Decision: "allow", Policies: []string{"admins-mfa"}, Body: []byte(`{"n":4}`)}}); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(store.SignInQuery{Policy: "admins-mfa"}), []string{"new-1:admins-mfa", "old-1:admins-mfa,wire-transfer"}; !slices.Equal(got, want) {
		t.Errorf("policy filter after a new entry: %v, want %v", got, want)
	}
}
