package policy

import (
	"slices"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// Snapshot is a compiled, validated policy set. It is immutable after
// Compile returns, so any number of goroutines evaluate against it
// without locks while a reload builds the next one.
type Snapshot struct {
	policies  []*compiledPolicy
	strengths *strength.Set
	contexts  []AuthContext
	ctxIndex  map[string]int
	terms     []TermsOfUse
	locations *locationTable
	ancestors map[string][]string
	nameIndex map[string]int

	// Indexes of enabled policies by what they target, so evaluation
	// only visits policies that can apply to the request's app, contexts
	// or action. Each list is in policy order.
	allApps   []int
	byApp     map[string][]int
	byContext map[string][]int
	byAction  map[string][]int
}

// Empty returns a snapshot with no policies: every request is allowed.
// A server starts from it when no policies are configured.
func Empty() *Snapshot {
	s, probs := Compile(nil)
	if len(probs) > 0 {
		panic("policy: empty set does not compile: " + probs.Error()) // a programming error
	}
	return s
}

func (s *Snapshot) buildIndexes() {
	s.byApp = make(map[string][]int)
	s.byContext = make(map[string][]int)
	s.byAction = make(map[string][]int)
	s.nameIndex = make(map[string]int, len(s.policies))
	for _, p := range s.policies {
		s.nameIndex[p.name] = p.index
		if p.state != StateEnabled {
			continue
		}
		i := p.index
		t := &p.target
		switch t.kind {
		case targetApps:
			if t.allApps {
				s.allApps = append(s.allApps, i)
			}
			for _, a := range t.apps.small {
				s.byApp[a] = append(s.byApp[a], i)
			}
			for a := range t.apps.big {
				s.byApp[a] = append(s.byApp[a], i)
			}
		case targetContexts:
			for _, c := range t.contexts {
				s.byContext[c] = append(s.byContext[c], i)
			}
		case targetActions:
			for _, a := range t.actions {
				s.byAction[a] = append(s.byAction[a], i)
			}
		}
	}
	for _, m := range []map[string][]int{s.byApp, s.byContext, s.byAction} {
		for k, v := range m {
			slices.Sort(v)
			m[k] = v
		}
	}
}

// Strengths returns the authentication strengths, built-in and custom.
// The OIDC provider maps acr_values to them.
func (s *Snapshot) Strengths() *strength.Set { return s.strengths }

// AuthContexts returns the declared authentication contexts in
// declaration order.
func (s *Snapshot) AuthContexts() []AuthContext { return slices.Clone(s.contexts) }

// TermsOfUse returns the declared terms of use.
func (s *Snapshot) TermsOfUse() []TermsOfUse { return slices.Clone(s.terms) }

// PolicySummary names a policy and its state.
type PolicySummary struct {
	Name  string `json:"name"`
	State State  `json:"state"`
}

// Policies lists the policies in evaluation order.
func (s *Snapshot) Policies() []PolicySummary {
	out := make([]PolicySummary, len(s.policies))
	for i, p := range s.policies {
		out[i] = PolicySummary{Name: p.name, State: p.state}
	}
	return out
}

// ContextUsers lists the policies (any state) that target auth context
// id. A context in use must not be deleted: apps requesting it would
// silently get no protection.
func (s *Snapshot) ContextUsers(id string) []string {
	var out []string
	for _, p := range s.policies {
		if p.target.kind == targetContexts && slices.Contains(p.target.contexts, id) {
			out = append(out, p.name)
		}
	}
	return out
}

// effectiveGroups returns direct plus every group they are nested in.
func (s *Snapshot) effectiveGroups(direct []string) []string {
	out := slices.Clone(direct)
	for _, g := range direct {
		out = append(out, s.ancestors[g]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
