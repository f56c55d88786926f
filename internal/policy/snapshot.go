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

	// enabled indexes the enabled policies and reportOnly the
	// report-only ones, so evaluation only visits policies that can apply.
	enabled, reportOnly targets
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

// targets indexes policies by what they target: the request's app, its
// contexts or its action. Each list is in policy order.
type targets struct {
	allApps   []int
	byApp     map[string][]int
	byContext map[string][]int
	byAction  map[string][]int
}

func (s *Snapshot) buildIndexes() {
	s.enabled = newTargets()
	s.reportOnly = newTargets()
	s.nameIndex = make(map[string]int, len(s.policies))
	for _, p := range s.policies {
		s.nameIndex[p.name] = p.index
		switch p.state {
		case StateEnabled:
			s.enabled.add(p)
		case StateReportOnly:
			s.reportOnly.add(p)
		}
	}
	s.enabled.sort()
	s.reportOnly.sort()
}

func newTargets() targets {
	return targets{byApp: map[string][]int{}, byContext: map[string][]int{}, byAction: map[string][]int{}}
}

func (ix *targets) add(p *compiledPolicy) {
	i := p.index
	t := &p.target
	switch t.kind {
	case targetApps:
		if t.allApps {
			ix.allApps = append(ix.allApps, i)
		}
		for _, a := range t.apps.small {
			ix.byApp[a] = append(ix.byApp[a], i)
		}
		for a := range t.apps.big {
			ix.byApp[a] = append(ix.byApp[a], i)
		}
	case targetContexts:
		for _, c := range t.contexts {
			ix.byContext[c] = append(ix.byContext[c], i)
		}
	case targetActions:
		for _, a := range t.actions {
			ix.byAction[a] = append(ix.byAction[a], i)
		}
	}
}

func (ix *targets) sort() {
	for _, m := range []map[string][]int{ix.byApp, ix.byContext, ix.byAction} {
		for _, v := range m {
			slices.Sort(v)
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
