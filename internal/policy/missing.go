package policy

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// missing turns the unsatisfied policies into the requirements a step-up
// page shows: one per unmet control group, merged when several policies
// ask for the same thing, dropped when another requirement already
// implies it (phishing-resistant within 10m implies mfa within 1h), and
// sorted in prompt order. approval is the first policy that nothing but
// an approval could satisfy, or -1.
func (s *Snapshot) missing(r *Request, unsat []int) (reqs []Requirement, approval int) {
	approval = -1
	for _, i := range unsat {
		p := s.policies[i]
		for _, grp := range p.grant.groups {
			if groupSatisfied(grp, r) {
				continue
			}
			alts := needsOf(grp)
			if len(alts) == 0 {
				if approval < 0 {
					approval = i
				}
				continue
			}
			reqs = mergeRequirement(reqs, Requirement{AnyOf: alts, Policies: []string{p.name}})
		}
	}
	reqs = s.dropImplied(reqs)
	for k := range reqs {
		slices.SortFunc(reqs[k].Policies, func(a, b string) int { return cmp.Compare(s.nameIndex[a], s.nameIndex[b]) })
	}
	slices.SortStableFunc(reqs, func(a, b Requirement) int {
		if c := cmp.Compare(a.AnyOf[0].Kind, b.AnyOf[0].Kind); c != 0 {
			return c
		}
		// Signing in again comes before stepping up: a step-up page asks
		// for the first factor first.
		if sa, sb := isSignIn(a), isSignIn(b); sa != sb {
			if sa {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.AnyOf[0].String(), b.AnyOf[0].String())
	})
	for k := range reqs {
		for n := range reqs[k].AnyOf {
			s.fillOptions(&reqs[k].AnyOf[n], r)
		}
	}
	return reqs, approval
}

func isSignIn(r Requirement) bool {
	return len(r.AnyOf) == 1 && r.AnyOf[0].Strength == strength.SingleFactor
}

// needsOf lists a group's controls as needs, leaving out approval, which
// no one can provide yet.
func needsOf(grp []control) []Need {
	var out []Need
	for _, ct := range grp {
		switch ct.kind {
		case KindApproval:
			continue
		case KindStrength:
			out = append(out, Need{Kind: KindStrength, Strength: ct.strength.Name, MaxAge: Duration(ct.maxAge), EveryTime: ct.everyTime})
		default:
			out = append(out, Need{Kind: ct.kind, Terms: ct.terms})
		}
	}
	return out
}

// sameNeed compares needs ignoring freshness.
func sameNeed(a, b Need) bool {
	return a.Kind == b.Kind && a.Strength == b.Strength && a.Terms == b.Terms
}

// mergeRequirement adds r, or folds it into an existing requirement with
// the same alternatives, keeping the tighter freshness of each.
func mergeRequirement(reqs []Requirement, r Requirement) []Requirement {
	for k := range reqs {
		if !slices.EqualFunc(reqs[k].AnyOf, r.AnyOf, sameNeed) {
			continue
		}
		for n := range r.AnyOf {
			reqs[k].AnyOf[n] = tighter(reqs[k].AnyOf[n], r.AnyOf[n])
		}
		reqs[k].Policies = appendUnique(reqs[k].Policies, r.Policies...)
		return reqs
	}
	return append(reqs, r)
}

// tighter returns the need with the stricter freshness window.
func tighter(a, b Need) Need {
	if windowWithin(b.MaxAge, a.MaxAge) && b.MaxAge != a.MaxAge {
		a.MaxAge = b.MaxAge
	}
	a.EveryTime = a.EveryTime || b.EveryTime
	return a
}

// windowWithin reports whether window a is at least as strict as b
// (zero means no window, the loosest).
func windowWithin(a, b Duration) bool {
	return b == 0 || (a != 0 && a <= b)
}

// implies reports whether meeting a always meets b.
func (s *Snapshot) implies(a, b Need) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == KindStrength {
		return s.strengths.Implies(a.Strength, b.Strength) && windowWithin(a.MaxAge, b.MaxAge)
	}
	return a.Terms == b.Terms
}

// dropImplied removes a requirement when a single-need requirement
// already implies one of its alternatives; the dropped requirement's
// policies move to the one that covers it.
func (s *Snapshot) dropImplied(reqs []Requirement) []Requirement {
	dropped := make([]bool, len(reqs))
	for a := range reqs {
		for b := range reqs {
			if a == b || dropped[b] || len(reqs[b].AnyOf) != 1 {
				continue
			}
			if slices.ContainsFunc(reqs[a].AnyOf, func(n Need) bool { return s.implies(reqs[b].AnyOf[0], n) }) {
				dropped[a] = true
				reqs[b].Policies = appendUnique(reqs[b].Policies, reqs[a].Policies...)
				break
			}
		}
	}
	out := reqs[:0]
	for k, r := range reqs {
		if !dropped[k] {
			out = append(out, r)
		}
	}
	return out
}

func (s *Snapshot) fillOptions(n *Need, r *Request) {
	if n.Kind != KindStrength {
		return
	}
	st, ok := s.strengths.Lookup(n.Strength)
	if !ok {
		return
	}
	for _, c := range st.Missing(r.Events, r.Now, time.Duration(n.MaxAge)) {
		opt := make([]string, len(c))
		for i, t := range c {
			opt[i] = t.String()
		}
		n.Options = append(n.Options, opt)
	}
}

func appendUnique(dst []string, src ...string) []string {
	for _, v := range src {
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// IsPasswordChange reports whether the requirement is met only by
// changing the password, which is done on its own page rather than by a
// step-up method.
func (r Requirement) IsPasswordChange() bool {
	return slices.ContainsFunc(r.AnyOf, func(n Need) bool { return n.Kind == KindPasswordChange })
}

// StepUpMethods answers, for requirements a user must still meet, which
// of the methods the user has (available, in prompt order) a step-up page
// should offer: those appearing in a strength option made only of
// available methods, leaving out options that ask for more methods than
// another such option does. ok is false when some requirement has no such
// option (it needs a method the user has not registered, or a control such
// as device compliance that no step-up can provide).
//
// The pruning is what keeps the password off a passkey rule's page when
// the passkey alone will do: phishing-resistant is met by webauthn:uv or
// by password+webauthn, and offering the password first sends a user who
// has a passkey through a proof that, on its own, never meets the rule.
func StepUpMethods(reqs []Requirement, available []string) (methods []string, ok bool) {
	var use []string
	for _, r := range reqs {
		var opts [][]string
		for _, n := range r.AnyOf {
			if n.Kind != KindStrength {
				continue
			}
			for _, opt := range n.Options {
				if len(opt) > 0 && allAvailable(opt, available) {
					opts = append(opts, optionMethods(opt))
				}
			}
		}
		if len(opts) == 0 {
			return nil, false
		}
		for i, opt := range opts {
			if slices.ContainsFunc(opts, func(o []string) bool { return properSubset(o, opts[i]) }) {
				continue
			}
			for _, m := range opt {
				if !slices.Contains(use, m) {
					use = append(use, m)
				}
			}
		}
	}
	for _, m := range available {
		if slices.Contains(use, m) {
			methods = append(methods, m)
		}
	}
	return methods, true
}

// optionMethods lists the distinct methods of an option's terms.
func optionMethods(opt []string) []string {
	var out []string
	for _, term := range opt {
		if m := termMethod(term); !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// properSubset reports whether every method of a is in b and b has more.
func properSubset(a, b []string) bool {
	if len(a) >= len(b) {
		return false
	}
	for _, m := range a {
		if !slices.Contains(b, m) {
			return false
		}
	}
	return true
}

func termMethod(term string) string {
	m, _, _ := strings.Cut(term, ":")
	return m
}

func allAvailable(opt, available []string) bool {
	for _, term := range opt {
		if !slices.Contains(available, termMethod(term)) {
			return false
		}
	}
	return true
}
