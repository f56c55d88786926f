package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policygen"
)

// regoModule expresses the enabled policies of doc in Rego, one set of
// rules per policy, with the same semantics as Stepgate's engine:
// assignments with exclusion winning, targets, conditions, grants with
// freshness windows and the sign-in-frequency reauthentication rule.
// Report-only and disabled policies never change a decision, so they are
// left out on both sides of the comparison (the fast path skips them).
func regoModule(doc *policy.Document, strengths *strength.Set) (string, error) {
	g := &regoGen{strengths: strengths, locations: doc.NamedLocations}
	g.line("package stepgate")
	g.prelude()
	if err := g.strengthRules(); err != nil {
		return "", err
	}
	g.locationRules()
	for i, p := range doc.Policies {
		if p.State != string(policy.StateEnabled) {
			continue
		}
		if err := g.policy(i, p); err != nil {
			return "", fmt.Errorf("policy %s: %w", p.Name, err)
		}
	}
	return g.b.String(), nil
}

type regoGen struct {
	b         strings.Builder
	strengths *strength.Set
	locations []policy.NamedLocation
}

func (g *regoGen) line(format string, args ...any) {
	fmt.Fprintf(&g.b, format+"\n", args...)
}

func (g *regoGen) prelude() {
	g.line(`
default outcome := "allow"

outcome := "block" if count(blocked) > 0

outcome := "challenge" if {
	count(blocked) == 0
	count(unsatisfied) > 0
}

decision := {"outcome": outcome, "blocked": blocked, "unsatisfied": unsatisfied}

fresh(e, max) if max == 0

fresh(e, max) if e.age <= max

proved(m, max) if {
	some e in input.events
	e.method == m
	fresh(e, max)
}

proved_uv(m, max) if {
	some e in input.events
	e.method == m
	e.uv
	fresh(e, max)
}

password_changed_this_session if {
	count(input.events) > 0
	input.password_changed_at > 0
	input.password_changed_at >= min([e.time | some e in input.events])
}

weekday if {
	{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}[time.weekday(input.now)]
}

corp_owned if input.device.attributes.owner == "corp"
`)
}

func ident(s string) string { return strings.ReplaceAll(s, "-", "_") }

// strengthRules writes one function per strength, one body per
// combination.
func (g *regoGen) strengthRules() error {
	for _, name := range g.strengths.Names() {
		st, _ := g.strengths.Lookup(name)
		for _, c := range st.Combinations {
			var terms []string
			for _, t := range c {
				if t.PhishingResistant {
					return fmt.Errorf("strength %s: :phr terms are not translated", name)
				}
				fn := "proved"
				if t.UserVerified {
					fn = "proved_uv"
				}
				terms = append(terms, fmt.Sprintf("%s(%q, max)", fn, t.Method))
			}
			g.line("strength_%s(max) if {\n\t%s\n}\n", ident(name), strings.Join(terms, "\n\t"))
		}
	}
	return nil
}

// locationRules compute, once per query, which named locations the
// request is in, with OPA's own CIDR matching.
func (g *regoGen) locationRules() {
	for _, l := range g.locations {
		if len(l.IPRanges) > 0 {
			g.line("in_location contains %q if {\n\tsome c in %s\n\tnet.cidr_contains(c, input.ip)\n}\n", l.Name, regoList(l.IPRanges))
		}
		if len(l.Countries) > 0 {
			g.line("in_location contains %q if %s[input.country]\n", l.Name, regoSet(l.Countries))
		}
		if l.IncludeUnknownCountries {
			g.line("in_location contains %q if input.country == \"\"\n", l.Name)
		}
		if l.Trusted {
			g.line("trusted_here if in_location[%q]\n", l.Name)
		}
	}
}

func regoSet(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "{" + strings.Join(q, ", ") + "}"
}

func regoList(items []string) string {
	return "[" + strings.TrimSuffix(strings.TrimPrefix(regoSet(items), "{"), "}") + "]"
}

func (g *regoGen) policy(i int, p policy.Policy) error {
	var body []string
	body = append(body, g.subjects(i, "users_in", p.Users.Include)...)
	if out := g.subjects(i, "users_out", p.Users.Exclude); len(out) > 0 {
		body = append(body, out...)
	}
	body = append(body, g.target(p.Target)...)
	cond, err := g.conditions(i, p.Conditions)
	if err != nil {
		return err
	}
	body = append(body, cond...)
	g.line("applies_%d if {\n\t%s\n}\n", i, strings.Join(body, "\n\t"))
	if !p.Grant.Block {
		if err := g.grant(i, p); err != nil {
			return err
		}
	}
	// The top-level rules repeat the target as plain equalities, one body
	// per app or context, so OPA's rule index can skip policies for other
	// targets instead of evaluating every applies_N.
	for _, key := range indexKeys(p.Target) {
		if p.Grant.Block {
			g.line("blocked contains %q if {\n\t%s\n\tapplies_%d\n}\n", p.Name, key, i)
		} else {
			g.line("unsatisfied contains %q if {\n\t%s\n\tapplies_%d\n\tnot sat_%d\n}\n", p.Name, key, i, i)
		}
	}
	return nil
}

func indexKeys(t policy.Target) []string {
	var keys []string
	switch {
	case len(t.AuthContexts) > 0:
		for _, c := range t.AuthContexts {
			keys = append(keys, fmt.Sprintf("input.auth_contexts[_] == %q", c))
		}
	case len(t.UserActions) > 0:
		for _, a := range t.UserActions {
			keys = append(keys, fmt.Sprintf("input.action == %q", a))
		}
	case slices.Contains(t.Apps.Include, "all"):
		keys = append(keys, "true")
	default:
		for _, a := range t.Apps.Include {
			keys = append(keys, fmt.Sprintf("input.app == %q", a))
		}
	}
	return keys
}

// subjects writes a helper rule (one body per kind of entry) and returns
// the expression that uses it: "users_in_3" or "not users_out_3".
func (g *regoGen) subjects(i int, rule string, s policy.Subjects) []string {
	name := fmt.Sprintf("%s_%d", rule, i)
	n := 0
	emit := func(cond string) {
		g.line("%s if {\n\tnot input.subject.client\n\t%s\n}\n", name, cond)
		n++
	}
	if slices.Contains(s.Users, "all") {
		emit("true")
	}
	if users := without(s.Users, "all"); len(users) > 0 {
		emit(fmt.Sprintf("%s[input.subject.username]", regoSet(users)))
		emit(fmt.Sprintf("%s[input.subject.id]", regoSet(users)))
	}
	if len(s.Groups) > 0 {
		emit(fmt.Sprintf("some g in input.subject.groups\n\t%s[g]", regoSet(s.Groups)))
	}
	if len(s.Roles) > 0 {
		emit(fmt.Sprintf("some r in input.subject.roles\n\t%s[r]", regoSet(s.Roles)))
	}
	if n == 0 {
		return nil
	}
	if rule == "users_out" {
		return []string{"not " + name}
	}
	return []string{name}
}

func without(list []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == drop })
}

func (g *regoGen) target(t policy.Target) []string {
	switch {
	case len(t.AuthContexts) > 0:
		return []string{"some c in input.auth_contexts", regoSet(t.AuthContexts) + "[c]"}
	case len(t.UserActions) > 0:
		return []string{regoSet(t.UserActions) + "[input.action]"}
	}
	out := []string{`input.app != ""`}
	if inc := without(t.Apps.Include, "all"); !slices.Contains(t.Apps.Include, "all") {
		out = append(out, regoSet(inc)+"[input.app]")
	}
	if len(t.Apps.Exclude) > 0 {
		out = append(out, "not "+regoSet(t.Apps.Exclude)+"[input.app]")
	}
	return out
}

var allPlatforms = []string{"windows", "macos", "linux", "ios", "android", "chromeos", "unknown"}

func (g *regoGen) conditions(i int, c policy.Conditions) ([]string, error) {
	var out []string
	if len(c.UserRisk) > 0 {
		out = append(out, regoSet(c.UserRisk)+"[input.user_risk]")
	}
	if len(c.SignInRisk) > 0 {
		out = append(out, regoSet(c.SignInRisk)+"[input.sign_in_risk]")
	}
	if len(c.Platforms.Include)+len(c.Platforms.Exclude) > 0 {
		inc := c.Platforms.Include
		if len(inc) == 0 || slices.Contains(inc, "all") {
			inc = allPlatforms
		}
		out = append(out, regoSet(inc)+"[input.platform]")
		if len(c.Platforms.Exclude) > 0 {
			out = append(out, "not "+regoSet(c.Platforms.Exclude)+"[input.platform]")
		}
	}
	out = append(out, g.locationCond(i, c.Locations)...)
	if len(c.ClientApps) > 0 {
		out = append(out, regoSet(c.ClientApps)+"[input.client_app]")
	}
	cel, err := celToRego(c)
	return append(out, cel...), err
}

func (g *regoGen) locationCond(i int, ie policy.IncludeExclude) []string {
	var out []string
	if inc := ie.Include; len(inc) > 0 && !slices.Contains(inc, "all") {
		name := fmt.Sprintf("loc_in_%d", i)
		g.locationHelper(name, inc)
		out = append(out, name)
	}
	if len(ie.Exclude) > 0 {
		name := fmt.Sprintf("loc_out_%d", i)
		g.locationHelper(name, ie.Exclude)
		out = append(out, "not "+name)
	}
	return out
}

func (g *regoGen) locationHelper(name string, entries []string) {
	if slices.Contains(entries, "all-trusted") {
		g.line("%s if trusted_here\n", name)
	}
	if named := without(entries, "all-trusted"); len(named) > 0 {
		g.line("%s if {\n\tsome l in %s\n\tin_location[l]\n}\n", name, regoSet(named))
	}
}

// celToRego translates the generator's few CEL rules by hand; a general
// CEL-to-Rego compiler is not the point of this benchmark.
func celToRego(c policy.Conditions) ([]string, error) {
	var out []string
	switch f := c.DeviceFilter; {
	case f.Rule == "":
	case f.Rule == policygen.RuleUnmanaged && f.Mode == "include":
		out = append(out, `input.device.trust_type != "managed"`)
	case f.Rule == policygen.RuleCorpOwned && f.Mode == "exclude":
		out = append(out, "not corp_owned")
	default:
		return nil, fmt.Errorf("device filter %q (%s) is not translated", f.Rule, f.Mode)
	}
	switch c.Expression {
	case "":
	case policygen.ExprWeekday:
		out = append(out, "weekday")
	default:
		return nil, fmt.Errorf("expression %q is not translated", c.Expression)
	}
	return out, nil
}

// grant writes sat_<i>: one body for all-of, one per control for one-of,
// each with the sign-in-frequency window and, when the grant alone would
// not prove a fresh sign-in, a single-factor proof in that window.
func (g *regoGen) grant(i int, p policy.Policy) error {
	window, err := frequency(p.Session.SignInFrequency)
	if err != nil {
		return err
	}
	var controls []string
	var strengths []string
	for _, c := range p.Grant.Controls {
		expr, st := controlRego(c, window)
		controls = append(controls, expr)
		if st != "" {
			strengths = append(strengths, st)
		}
	}
	reauth := ""
	if window > 0 && !g.reauthenticates(p.Grant, strengths) {
		reauth = fmt.Sprintf("strength_single_factor(%d)", window)
	}
	bodies := [][]string{controls}
	if p.Grant.Operator == "one-of" {
		bodies = nil
		for _, c := range controls {
			bodies = append(bodies, []string{c})
		}
	}
	for _, b := range bodies {
		if reauth != "" {
			b = append(b, reauth)
		}
		g.line("sat_%d if {\n\t%s\n}\n", i, strings.Join(b, "\n\t"))
	}
	return nil
}

// reauthenticates mirrors the engine: all-of with a strength that implies
// a sign-in, or one-of made only of such strengths.
func (g *regoGen) reauthenticates(gr policy.Grant, strengths []string) bool {
	implies := func(s string) bool { return g.strengths.Implies(s, strength.SingleFactor) }
	if gr.Operator == "one-of" {
		return len(strengths) == len(gr.Controls) && !slices.ContainsFunc(strengths, func(s string) bool { return !implies(s) })
	}
	return slices.ContainsFunc(strengths, implies)
}

func controlRego(c policy.Control, window int64) (expr, strengthName string) {
	switch c.Name {
	case "mfa":
		return fmt.Sprintf("strength_mfa(%d)", window), "mfa"
	case "strength":
		return fmt.Sprintf("strength_%s(%d)", ident(c.Arg), window), c.Arg
	case "compliant-device":
		return "input.device.is_compliant", ""
	case "password-change":
		return "password_changed_this_session", ""
	case "terms_of_use":
		return fmt.Sprintf("%q in input.accepted_terms", c.Arg), ""
	}
	return "false", "" // approval: never granted, as in the engine
}

// frequency returns the freshness window in nanoseconds.
func frequency(s string) (int64, error) {
	switch s {
	case "":
		return 0, nil
	case "every-time":
		return int64(policy.EveryTimeSkew), nil
	}
	d, err := strength.ParseDuration(s)
	return int64(d / time.Nanosecond), err
}
