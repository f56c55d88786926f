package gateway

import (
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/policy"
)

// TestBindEnvironments: a route is decided by its own environment's set,
// and a route naming an environment with no set refuses to start rather
// than be decided by another environment's policies.
func TestBindEnvironments(t *testing.T) {
	prod, staging := policy.NewEngine(nil), policy.NewEngine(nil)
	if prod.Load() == staging.Load() {
		t.Fatal("the two sets are one snapshot; the test would prove nothing")
	}
	sets := func(name string) (interface{ Load() *policy.Snapshot }, bool) {
		if name == "staging" {
			return staging, true
		}
		return nil, false
	}
	routes := []Route{{Name: "bank", From: "https://bank.example"}, {Name: "bank-staging", From: "https://staging.bank.example", Environment: "staging"}}
	t.Run("ok/each-route-its-set", func(t *testing.T) {
		compiled, err := compileRoutes(routes)
		if err != nil {
			t.Fatal(err)
		}
		d := Deps{Policies: prod, Environments: sets, Options: Options{Routes: routes}}
		if err := d.bindEnvironments(compiled); err != nil {
			t.Fatal(err)
		}
		g := &Gateway{Deps: d}
		if g.snapshot(compiled[0]) != prod.Load() || g.snapshot(compiled[1]) != staging.Load() {
			t.Fatal("a route is decided by another environment's set")
		}
	})
	for name, envs := range map[string]func(string) (interface{ Load() *policy.Snapshot }, bool){
		"fail/unknown-environment": sets,
		"fail/no-environments":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			bad := []Route{{Name: "qa", From: "https://qa.bank.example", Environment: "qa"}}
			compiled, err := compileRoutes(bad)
			if err != nil {
				t.Fatal(err)
			}
			d := Deps{Policies: prod, Environments: envs, Options: Options{Routes: bad}}
			if err := d.bindEnvironments(compiled); err == nil || !strings.Contains(err.Error(), "policy.environments") {
				t.Fatalf("bindEnvironments = %v; want an error naming policy.environments", err)
			}
		})
	}
}
