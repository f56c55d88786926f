package policy

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// GrantView is an enabled policy's grant as a static analysis reads it:
// who it is for (InScope) and what it asks, without a request. The
// dead-end analysis uses it to find users who can never meet a policy
// with the methods they have.
type GrantView struct {
	// Name is the policy's name.
	Name string
	// Block is set for grant: block, which refuses by design and has
	// nothing to meet.
	Block bool
	// Groups must all be met, each by any one of its needs, as in
	// Requirement.AnyOf. A need of Kind KindApproval stands for an
	// approval, which nothing grants yet. A strength need lists in
	// Options every combination of methods that completes it from
	// nothing.
	Groups [][]Need
	// Actions are the user actions a policy on user actions protects
	// (registering security info or a device); Targets describes what the
	// policy protects, for people.
	Actions []string
	Targets string

	policy *compiledPolicy
}

// InScope reports whether sub is assigned to the policy: included and not
// excluded, with nested groups expanded, exactly as Evaluate decides it.
func (g GrantView) InScope(sub *Subject) bool {
	return g.policy.users.match(sub) == ""
}

// Grants lists the enabled policies' grants in policy order.
// Report-only and disabled policies strand nobody, so they are left out.
func (s *Snapshot) Grants() []GrantView {
	var out []GrantView
	for _, p := range s.policies {
		if p.state != StateEnabled {
			continue
		}
		v := GrantView{Name: p.name, Block: p.grant.block, policy: p,
			Actions: slices.Clone(p.target.actions), Targets: s.describeTarget(&p.target)}
		for _, grp := range p.grant.groups {
			var needs []Need
			for _, ct := range grp {
				n := Need{Kind: ct.kind, Terms: ct.terms}
				if ct.kind == KindStrength {
					n.Strength, n.MaxAge, n.EveryTime = ct.strength.Name, Duration(ct.maxAge), ct.everyTime
					for _, c := range ct.strength.Missing(nil, time.Time{}, 0) {
						opt := make([]string, len(c))
						for i, t := range c {
							opt[i] = t.String()
						}
						n.Options = append(n.Options, opt)
					}
				}
				needs = append(needs, n)
			}
			v.Groups = append(v.Groups, needs)
		}
		out = append(out, v)
	}
	return out
}

// describeTarget says what a policy protects: "all apps", "apps bank",
// "context c1 (Read PII)", "action register-security-info".
func (s *Snapshot) describeTarget(t *target) string {
	switch t.kind {
	case targetApps:
		if t.allApps {
			return "all apps"
		}
		return "apps " + strings.Join(t.apps.names(), ", ")
	case targetContexts:
		var out []string
		for _, id := range t.contexts {
			if i, ok := s.ctxIndex[id]; ok && s.contexts[i].Name != "" {
				id += " (" + s.contexts[i].Name + ")"
			}
			out = append(out, id)
		}
		return "context " + strings.Join(out, ", ")
	case targetActions:
		return "action " + strings.Join(t.actions, ", ")
	}
	return ""
}

// names lists the set's names, sorted.
func (s nameSet) names() []string {
	out := slices.Clone(s.small)
	for n := range s.big {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
