package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

// testSignInStatements: the database filter selects the statements
// decided on a database and not the sign-ins of its OIDC client, which
// has the same name; the class filter selects statements of one class;
// both combine with the other filters and keep the class through a
// round trip.
func testSignInStatements(t *testing.T, s store.Store) {
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Second)
	classes := []string{"", "read", "write", "ddl"}
	var rows []store.SignIn
	for i := range 16 {
		rows = append(rows, store.SignIn{
			ID: fmt.Sprintf("st-%02d", i), Time: base.Add(time.Duration(i) * time.Second),
			UserID: []string{"alice", "bob"}[i%2], App: []string{"bank", "bank", "wiki", "bank"}[i/4],
			Decision: []string{"allow", "block"}[i%2], StatementClass: classes[i%4],
			Body: []byte(fmt.Sprintf(`{"n":%d}`, i)),
		})
	}
	if err := s.AppendSignIns(ctx, rows); err != nil {
		t.Fatal(err)
	}
	ids := func(q store.SignInQuery) []string {
		t.Helper()
		got, err := s.ListSignIns(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range got {
			out = append(out, r.ID+":"+r.StatementClass)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		q    store.SignInQuery
		want []string
	}{
		{"ok/app-holds-both", store.SignInQuery{App: "bank", Decision: "allow"},
			[]string{"st-14:write", "st-12:", "st-06:write", "st-04:", "st-02:write", "st-00:"}},
		{"ok/database-only-statements", store.SignInQuery{Database: "bank"},
			[]string{"st-15:ddl", "st-14:write", "st-13:read", "st-07:ddl", "st-06:write", "st-05:read", "st-03:ddl", "st-02:write", "st-01:read"}},
		{"ok/database-and-class", store.SignInQuery{Database: "bank", StatementClass: "ddl"},
			[]string{"st-15:ddl", "st-07:ddl", "st-03:ddl"}},
		{"ok/class-every-app", store.SignInQuery{StatementClass: "write"},
			[]string{"st-14:write", "st-10:write", "st-06:write", "st-02:write"}},
		{"ok/database-user-decision", store.SignInQuery{Database: "bank", UserID: "bob", Decision: "block"},
			[]string{"st-15:ddl", "st-13:read", "st-07:ddl", "st-05:read", "st-03:ddl", "st-01:read"}},
		{"ok/database-page", store.SignInQuery{Database: "bank", Limit: 2},
			[]string{"st-15:ddl", "st-14:write"}},
		{"fail/other-database", store.SignInQuery{Database: "wiki", StatementClass: "read"},
			[]string{"st-09:read"}},
		{"fail/no-such-class", store.SignInQuery{StatementClass: "session"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(tt.q); !slices.Equal(got, tt.want) {
				t.Errorf("%+v: got %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	page, err := s.ListSignIns(ctx, store.SignInQuery{Database: "bank", Limit: 2})
	if err != nil || len(page) != 2 {
		t.Fatal(page, err)
	}
	if got := ids(store.SignInQuery{Database: "bank", Before: page[1].Seq, Limit: 2}); !slices.Equal(got, []string{"st-13:read", "st-07:ddl"}) {
		t.Errorf("the next page of a database: %v", got)
	}
}

// RunSignInStatementClassMigration checks that entries written before
// the statement_class column existed are found by the database and class
// filters once the backend migrates (before names that migration's
// file); entries without a statement stay out of them, and a body that
// only mentions a statement in a string is not mistaken for one.
func RunSignInStatementClassMigration(t *testing.T, db *sql.DB, d sqlstore.Dialect, migrations fs.FS, before string, open func() store.Store) {
	ctx := context.Background()
	old := fstest.MapFS{}
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name >= before {
			continue
		}
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		old[path.Join("migrations", name)] = &fstest.MapFile{Data: body}
	}
	if err := sqlstore.Migrate(ctx, db, d, old, "migrations"); err != nil {
		t.Fatalf("migrate to before %s: %v", before, err)
	}
	for i, body := range []string{
		`{"source":"database","app":"bank","statement":{"command":"DROP TABLE","class":"ddl","tables":["customers"]}}`,
		`{"source":"oidc","app":"bank","user_agent":"\"statement\":{\"class\":\"ddl\"}"}`,
		`{"source":"database","app":"bank","statement":{"command":"SELECT","class":"read"}}`,
		`{"source":"gateway","app":"wiki"}`,
	} {
		if _, err := db.ExecContext(ctx, d.Rebind("INSERT INTO sign_ins (id, at, user_id, app, decision, body) VALUES (?, ?, ?, ?, ?, ?)"),
			fmt.Sprintf("old-%d", i), int64(1000+i), "alice", []string{"bank", "bank", "bank", "wiki"}[i], "block", body); err != nil {
			t.Fatalf("write an entry of the old schema: %v", err)
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
			out = append(out, r.ID+":"+r.StatementClass)
		}
		return out
	}
	if got, want := ids(store.SignInQuery{Database: "bank"}), []string{"old-2:read", "old-0:ddl"}; !slices.Equal(got, want) {
		t.Errorf("database filter after migration: %v, want %v", got, want)
	}
	if got, want := ids(store.SignInQuery{StatementClass: "ddl"}), []string{"old-0:ddl"}; !slices.Equal(got, want) {
		t.Errorf("class filter after migration: %v, want %v", got, want)
	}
	if got, want := ids(store.SignInQuery{}), []string{"old-3:", "old-2:read", "old-1:", "old-0:ddl"}; !slices.Equal(got, want) {
		t.Errorf("every entry after migration: %v, want %v", got, want)
	}
}
