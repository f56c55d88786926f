package deadend_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/deadend"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestAnalyzeOnBothBackends runs the analysis over users and methods
// kept in a real store, SQLite and PostgreSQL: what it reads (groups,
// credential types, disabled users) reaches it as the fake store gives
// it in the other tests.
func TestAnalyzeOnBothBackends(t *testing.T) {
	ctx := context.Background()
	clock := func() time.Time { return now }
	backends := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"postgres": func(t *testing.T) store.Store {
			st, err := postgres.Open(ctx, pgtest.DSN(t), postgres.Options{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			defer st.Close()
			add := func(name string, disabled bool, groups []string, types ...string) {
				t.Helper()
				for _, g := range groups {
					if _, err := st.CreateGroup(ctx, store.Group{Name: g}); err != nil && !errors.Is(err, store.ErrConflict) {
						t.Fatal(err)
					}
				}
				u, err := st.CreateUser(ctx, store.User{ID: "id-" + name, Username: name, Groups: groups, PasswordHash: "$argon2id$x", Disabled: disabled, CreatedAt: now.Add(-90 * 24 * time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				for _, typ := range types {
					if _, err := st.CreateCredential(ctx, store.Credential{ID: u.ID + "-" + typ, UserID: u.ID, Type: typ, Name: typ, CreatedAt: now}); err != nil {
						t.Fatal(err)
					}
				}
			}
			add("olga", false, []string{"ops"}, "webauthn")
			add("oscar", false, []string{"ops"}, "totp")
			add("gone", true, []string{"ops"}, "totp")
			a := &deadend.Analyzer{Store: st, Methods: allMethods, Rules: deadend.Rules{PhishingResistant: true}, Now: clock}
			rep, err := a.Analyze(ctx, compile(t, policies))
			if err != nil {
				t.Fatal(err)
			}
			p, ok := find(rep, "admin-needs-passkey")
			if !ok {
				t.Fatalf("no report for admin-needs-passkey: %+v", rep)
			}
			if _, ok := finding(p, "olga"); ok {
				t.Error("olga, with a passkey, is listed as stranded")
			}
			f, ok := finding(p, "oscar")
			if !ok || f.Verdict != deadend.Stuck || p.Groups["ops"] != 1 {
				t.Errorf("oscar: %+v (listed %v), groups %v; want him stuck and ops counted once", f, ok, p.Groups)
			}
			if _, ok := finding(p, "gone"); ok {
				t.Error("a disabled user is listed")
			}
		})
	}
}
