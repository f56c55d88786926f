package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/gateway"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// Env is what scenarios run against: the policy set, and where the
// facts a scenario names by reference come from.
type Env struct {
	Snapshot *policy.Snapshot
	// Documents are the set's parsed documents, for coverage: each
	// policy's conditions and the line it was written on.
	Documents []*policy.Document
	// Users finds a scenario's user by name; nil when there is no store
	// (scenarios must then write the subject inline).
	Users access.UserFinder
	// Methods lists a stored user's registered methods, in prompt order;
	// nil when there is no store.
	Methods func(ctx context.Context, u store.User) ([]string, error)
	// Resolve says what a gateway route asks of a method and path; nil
	// when no gateway is configured.
	Resolve func(route, method, path string) (gateway.Target, error)
	// Now is when a scenario is evaluated unless its file or itself says.
	Now func() time.Time
}

// Answer is what the decision core said for one scenario, in the terms a
// scenario's expect is written in.
type Answer struct {
	Decision string
	// Policies are the policies that decided: the blocking one, those
	// demanding a missing proof, or for an allow those that applied.
	Policies []string
	Reason   string
	Methods  []string
}

// Result is one scenario's run.
type Result struct {
	File     string
	Scenario *Scenario
	Answer   Answer
	// Decision is the engine's explained decision, for coverage.
	Decision policy.Decision
	// Diffs are the expected lines that did not match, empty on a pass.
	Diffs []Diff
	// Err is why the scenario could not run (a user that does not exist,
	// a path the route does not serve); it counts as a failure.
	Err error
}

// Diff is one expected value that the answer did not match.
type Diff struct {
	Key, Expected, Actual string
}

// Failed reports whether the scenario did not get what it expected.
func (r *Result) Failed() bool { return r.Err != nil || len(r.Diffs) > 0 }

// Run runs every scenario of f against env.
func Run(ctx context.Context, env Env, f *File) []Result {
	out := make([]Result, 0, len(f.Scenarios))
	for i := range f.Scenarios {
		s := &f.Scenarios[i]
		res := Result{File: f.Name, Scenario: s}
		res.Answer, res.Decision, res.Err = answer(ctx, env, f, s)
		if res.Err == nil {
			res.Diffs = compare(s, res.Answer)
		}
		out = append(out, res)
	}
	return out
}

// answer evaluates s as the enforcement points do: the request is built
// by the What-If's own code (policy.WhatIf, access.Builder.WhatIf) and
// decided by access.Decide, with the user's methods as the method source.
func answer(ctx context.Context, env Env, f *File, s *Scenario) (Answer, policy.Decision, error) {
	now, err := scenarioNow(env, f, s)
	if err != nil {
		return Answer{}, policy.Decision{}, err
	}
	w := whatIf(s)
	if s.Has("route") {
		if env.Resolve == nil {
			return Answer{}, policy.Decision{}, errors.New("the scenario names a route, but no gateway routes are configured; give app and contexts instead")
		}
		t, err := env.Resolve(s.Route.Name, s.Route.Method, s.Route.Path)
		if err != nil {
			return Answer{}, policy.Decision{}, err
		}
		if t.Anonymous {
			// The gateway lets the request through without a sign-in:
			// no policy is asked.
			return Answer{Decision: policy.OutcomeAllow.String()}, policy.Decision{Outcome: policy.OutcomeAllow}, nil
		}
		w.App = t.App
		if t.Context != "" {
			w.Contexts = []string{t.Context}
		}
	}
	req, methods, err := request(ctx, env, s, w, now)
	if err != nil {
		return Answer{}, policy.Decision{}, err
	}
	req.Statement = policy.Statement{Class: s.SQL.Class, Command: s.SQL.Command, Tables: s.SQL.Tables, Labels: s.SQL.Labels}
	v, err := access.Decide(access.Ask{Snapshot: env.Snapshot, Request: req}, methods)
	if err != nil {
		return Answer{}, policy.Decision{}, fmt.Errorf("list the user's methods: %w", err)
	}
	// The explained decision is for coverage and the diff only; the
	// verdict above is the answer.
	d := env.Snapshot.Evaluate(req, policy.EvaluateOptions{Explain: true})
	return answerOf(v, &d), d, nil
}

func scenarioNow(env Env, f *File, s *Scenario) (time.Time, error) {
	for _, spec := range []string{s.Now, f.Now} {
		if spec != "" {
			t, err := time.Parse(time.RFC3339, spec)
			if err != nil {
				return time.Time{}, fmt.Errorf("now %q: write an RFC 3339 time", spec)
			}
			return t, nil
		}
	}
	return env.Now(), nil
}

// whatIf is the What-If description of s: the request is then built by
// the same code that builds the What-If tool's, so a scenario and a
// What-If of the same facts can never be evaluated differently.
func whatIf(s *Scenario) policy.WhatIf {
	w := policy.WhatIf{
		User: s.User, Client: s.Client, App: s.App, Contexts: slices.Clone(s.Contexts), Action: s.Action,
		IP: s.IP, Country: s.Country, Platform: s.Platform, ClientApp: s.ClientApp,
		DeviceID: s.Device.ID, DeviceCompliant: s.Device.Compliant, DeviceTrustType: s.Device.TrustType,
		DeviceAttributes: s.Device.Attributes, SignInRisk: s.SignInRisk, UserRisk: s.UserRisk, Terms: s.Terms,
	}
	proofs := make([]string, len(s.Proofs))
	for i, p := range s.Proofs {
		proofs[i] = p.Method + "@-" + p.Age
	}
	w.Auth = strings.Join(proofs, ",")
	return w
}

// request builds the request for w and the method source for a
// challenge: the scenario's methods, else the stored user's, else none
// (the challenge is then described without judging the user's methods).
func request(ctx context.Context, env Env, s *Scenario, w policy.WhatIf, now time.Time) (*policy.Request, access.MethodSource, error) {
	var listed access.MethodSource
	if s.Has("methods") {
		have := slices.Clone(s.Methods)
		listed = func() ([]string, error) { return have, nil }
	}
	if s.Has("subject") {
		subject := policy.Subject{ID: s.Subject.Username, Username: s.Subject.Username, Groups: s.Subject.Groups, Roles: s.Subject.Roles}
		req, err := w.Request(now, subject)
		return req, listed, err
	}
	if w.User != "" && env.Users == nil {
		return nil, nil, fmt.Errorf("user %q is looked up in the store, and there is none; write the subject inline: subject: {username: %s, groups: [...]}", w.User, w.User)
	}
	req, _, err := (&access.Builder{}).WhatIf(ctx, env.Users, &w, now)
	if err != nil || listed != nil || w.User == "" || env.Methods == nil {
		return req, listed, err
	}
	u, err := env.Users.GetUserByName(ctx, strings.TrimSpace(w.User))
	if err != nil {
		return nil, nil, fmt.Errorf("look up user %q: %w", w.User, err)
	}
	return req, func() ([]string, error) { return env.Methods(ctx, u) }, nil
}

// answerOf reads the verdict (and, for the deciding policies, the
// explained decision) as an Answer.
func answerOf(v access.Verdict, d *policy.Decision) Answer {
	a := Answer{Decision: v.Outcome.String(), Reason: string(v.Reason), Methods: v.Methods}
	switch v.Outcome {
	case policy.OutcomeBlock:
		if v.BlockedBy != "" {
			a.Policies = []string{v.BlockedBy}
		}
		for _, m := range v.Missing { // no usable method: the policies that asked
			a.Policies = appendNew(a.Policies, m.Policies...)
		}
	case policy.OutcomeChallenge:
		for _, m := range v.Missing {
			a.Policies = appendNew(a.Policies, m.Policies...)
		}
	default:
		for _, pr := range d.Policies {
			if pr.Result == policy.ResultApplied {
				a.Policies = append(a.Policies, pr.Policy)
			}
		}
	}
	return a
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// compare lists what the answer got wrong. The policy expected must be
// among those that decided; methods are compared as sets, since the
// prompt order is the deployment's, not the policy's.
func compare(s *Scenario, a Answer) []Diff {
	e := s.Expect
	var diffs []Diff
	if e.Decision != a.Decision {
		diffs = append(diffs, Diff{"decision", e.Decision, a.Decision})
	}
	if e.Policy != "" && !slices.Contains(a.Policies, e.Policy) {
		diffs = append(diffs, Diff{"policy", e.Policy, listOr(a.Policies, "(none)")})
	}
	if e.Reason != "" && e.Reason != a.Reason {
		diffs = append(diffs, Diff{"reason", e.Reason, or(a.Reason, "(none)")})
	}
	if s.Has("expect.methods") && !sameSet(e.Methods, a.Methods) {
		diffs = append(diffs, Diff{"methods", listOr(e.Methods, "[]"), listOr(a.Methods, "[]")})
	}
	return diffs
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func listOr(l []string, empty string) string {
	if len(l) == 0 {
		return empty
	}
	return "[" + strings.Join(l, ", ") + "]"
}

func or(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}
