package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gateway"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/scenario"
	"github.com/stepgate/stepgate/internal/store"
)

// ScenarioStore is what scenarios read from storage: users by name and
// their registered methods.
type ScenarioStore interface {
	access.UserFinder
	access.CredentialLister
}

// ScenarioEnv is where the scenarios of a deployment configured by cfg
// run: against set, with users and their methods from st (nil: only
// inline subjects) and the gateway routes of cfg.
func ScenarioEnv(cfg config.Config, st ScenarioStore, set PolicySet, now func() time.Time) scenario.Env {
	env := scenario.Env{Snapshot: set.Snapshot, Documents: set.Documents, Now: now}
	if st != nil {
		env.Users = st
		env.Methods = func(ctx context.Context, u store.User) ([]string, error) {
			return access.AvailableMethods(ctx, st, strength.Methods(), u)
		}
	}
	if len(cfg.Gateway.Routes) > 0 {
		routes := make([]gateway.Route, len(cfg.Gateway.Routes))
		for i, r := range cfg.Gateway.Routes {
			routes[i] = gatewayRoute(r)
		}
		env.Resolve = func(name, method, path string) (gateway.Target, error) {
			return gateway.Resolve(routes, name, method, path)
		}
	}
	return env
}

// TestPolicies runs the scenario test files paths name (files, or
// directories of *.tests.yaml files; none: those beside policy.files)
// in env: what "stepgate policy test" does, and what the console does
// before it saves a change. A test file with problems is an error that
// is a policy.Problems (errors.As works), every problem with its line;
// no test file at all is scenario.ErrNoTests.
func TestPolicies(ctx context.Context, cfg config.Config, env scenario.Env, paths []string) (scenario.Report, error) {
	if len(paths) == 0 {
		paths = scenario.Beside(cfg.Policy.Files)
	}
	files, err := scenario.Find(paths)
	if err != nil {
		return scenario.Report{}, err
	}
	if len(files) == 0 {
		return scenario.Report{}, fmt.Errorf("%w in %s", scenario.ErrNoTests, strings.Join(paths, ", "))
	}
	parsed, probs, err := scenario.Load(files)
	if err != nil {
		return scenario.Report{}, err
	}
	if len(probs) > 0 {
		return scenario.Report{}, probs.Sorted()
	}
	return scenario.RunAll(ctx, env, parsed), nil
}

// testCandidate runs the scenario tests beside policy.files against a
// candidate set, before the console or the API saves a change: one entry
// per failed scenario, with its diff. A test file with problems fails
// as a whole, each problem an entry, so a broken test file cannot let a
// change through unnoticed.
func (a *App) testCandidate(ctx context.Context, policyEnv string, set admin.Compiled) ([]string, error) {
	return TestCandidate(ctx, a.Config, a.Store, policyEnv, set)
}

// TestCandidate runs the scenario tests beside the files of the policy
// environment policyEnv against set, with the users of st (see
// testCandidate).
func TestCandidate(ctx context.Context, cfg config.Config, st ScenarioStore, policyEnv string, set admin.Compiled) ([]string, error) {
	env := ScenarioEnv(cfg, st, PolicySet{Snapshot: set.Snapshot, Documents: set.Documents}, time.Now)
	paths := scenario.Beside(cfg.Policy.FilesOf(policyEnv))
	if len(paths) == 0 { // an environment with no files has no tests beside them
		return nil, nil
	}
	rep, err := TestPolicies(ctx, cfg, env, paths)
	var probs policy.Problems
	switch {
	case errors.Is(err, scenario.ErrNoTests):
		return nil, nil
	case errors.As(err, &probs):
		out := make([]string, len(probs))
		for i, p := range probs {
			out[i] = p.String()
		}
		return out, nil
	case err != nil:
		return nil, err
	}
	var out []string
	for i := range rep.Results {
		if rep.Results[i].Failed() {
			var b strings.Builder
			one := scenario.Report{Results: rep.Results[i : i+1]}
			one.WriteFailures(&b)
			out = append(out, strings.TrimRight(b.String(), "\n"))
		}
	}
	return out, nil
}
