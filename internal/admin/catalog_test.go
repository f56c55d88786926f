package admin_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// newService returns a service over a fresh SQLite store whose policy
// "files" are the one document fileYAML (named policies.yaml), compiled
// offline (names are not checked against the store).
func newService(t *testing.T, fileYAML string) *admin.Service {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	compile := func(_ context.Context, _ string, stored []admin.Document) (admin.Compiled, error) {
		file, probs := policy.Parse("policies.yaml", []byte(fileYAML))
		docs, sprobs := admin.Parse(stored)
		docs = append([]*policy.Document{file}, docs...)
		snap, cprobs := policy.Compile(nil, docs...)
		if all := append(append(probs, sprobs...), cprobs...); len(all) > 0 {
			return admin.Compiled{}, all.Sorted()
		}
		return admin.Compiled{Snapshot: snap, Documents: docs}, nil
	}
	engine := policy.NewEngine(nil)
	svc := admin.New(admin.Deps{
		Store: st, Documents: &admin.Documents{KV: st, Now: time.Now}, Engine: engine, Compile: compile,
		Audit: audit.New(st, nil),
	})
	svc.Reload = func(ctx context.Context) error {
		stored, err := svc.Documents.List(ctx)
		if err != nil {
			return err
		}
		set, err := compile(ctx, "", stored)
		if err == nil {
			engine.Swap(set.Snapshot)
		}
		return err
	}
	if err := svc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	return svc
}

const catalogFile = `auth_contexts:
  - id: c1
    name: Read PII
  - id: c2
    name: Unused context
named_locations:
  - name: office
    trusted: true
    ip_ranges: [198.51.100.0/24]
strengths:
  - name: issued-keys
    description: the hardware keys the company hands out
    combinations: [webauthn:uv]
    aaguids: [cb69481e-8ff7-4039-93ec-0a2729a154a8]
policies:
  - name: c1-mfa
    state: report-only
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1]}
    grant: {controls: [mfa]}
`

const catalogStored = `auth_contexts:
  - id: c7
    name: Payroll export
named_locations:
  - name: sanctioned
    countries: [KP]
policies:
  - name: c7-keys
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c7, c1]}
    grant: {controls: [{strength: issued-keys}]}
`

// TestCatalog lists contexts, strengths and locations from the policy
// files and the stored documents, with where each is declared and which
// policies use each context.
func TestCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := newService(t, catalogFile)
	if _, err := svc.Save(ctx, "user:root", "test", admin.Document{Name: "payroll", YAML: catalogStored}, ""); err != nil {
		t.Fatal(err)
	}
	cat, err := svc.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}

	contexts := map[string]admin.CatalogContext{}
	for _, c := range cat.AuthContexts {
		contexts[c.ID] = c
	}
	if c := contexts["c1"]; c.Source != "policies.yaml" || c.Line != 2 || !slices.Equal(c.UsedBy, []string{"c1-mfa", "c7-keys"}) {
		t.Errorf("c1 = %+v, want policies.yaml:2 used by c1-mfa and c7-keys", c)
	}
	if c := contexts["c2"]; c.UsedBy == nil || len(c.UsedBy) != 0 {
		t.Errorf("c2 = %+v, want used by no policy (an empty list)", c)
	}
	if c := contexts["c7"]; c.Source != "store:payroll" || c.Line != 2 || c.Name != "Payroll export" {
		t.Errorf("c7 = %+v, want store:payroll:2", c)
	}

	var names []string
	for _, s := range cat.Strengths {
		names = append(names, s.Name)
		switch s.Name {
		case "phishing-resistant":
			if !s.BuiltIn || s.Source != "" || !slices.Contains(s.Combinations, "password+webauthn") {
				t.Errorf("phishing-resistant = %+v, want built in with password+webauthn", s)
			}
		case "issued-keys":
			if s.BuiltIn || s.Source != "policies.yaml" || s.Line != 11 || len(s.AAGUIDs) != 1 || !slices.Equal(s.Combinations, []string{"webauthn:uv"}) {
				t.Errorf("issued-keys = %+v, want custom from policies.yaml:11", s)
			}
		}
	}
	if want := []string{"mfa", "passwordless", "phishing-resistant", "single-factor", "issued-keys"}; !slices.Equal(names, want) {
		t.Errorf("strengths %v, want %v (built-ins first)", names, want)
	}

	if len(cat.NamedLocations) != 2 || cat.NamedLocations[0].Name != "office" || !cat.NamedLocations[0].Trusted ||
		cat.NamedLocations[1].Source != "store:payroll" || !slices.Equal(cat.NamedLocations[1].Countries, []string{"KP"}) {
		t.Errorf("named locations = %+v", cat.NamedLocations)
	}
}
