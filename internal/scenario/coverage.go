package scenario

import (
	"fmt"
	"slices"

	"github.com/stepgate/stepgate/internal/policy"
)

// Gap is a policy, or a condition of one, that no scenario exercised.
type Gap struct {
	File   string
	Line   int
	Policy string
	// Condition is the condition's key path in the policy
	// (conditions.sign_in_risk, users.exclude); empty when the policy
	// itself never applied.
	Condition string
}

// String is "file:line: policy NAME: ...".
func (g Gap) String() string {
	loc := g.File
	if g.Line > 0 {
		loc = fmt.Sprintf("%s:%d", g.File, g.Line)
	}
	if g.Condition == "" {
		return fmt.Sprintf("%s: policy %s: no scenario applied it", loc, g.Policy)
	}
	return fmt.Sprintf("%s: policy %s: no scenario was left out by %s", loc, g.Policy, g.Condition)
}

// condition is a condition block of a policy and the results that say a
// request was left out by it.
type condition struct {
	key     string
	set     func(p *policy.Policy) bool
	reasons []policy.Reason
}

// conditions are the blocks of a policy that can leave a request out,
// in evaluation order. "Include all" blocks are not listed: nothing is
// ever left out by them.
var conditions = []condition{
	{"users.include", func(p *policy.Policy) bool {
		inc := p.Users.Include
		return !slices.Contains(inc.Users, "all") || len(inc.Groups)+len(inc.Roles)+len(inc.Clients) > 0
	}, []policy.Reason{policy.ReasonUserNotIncluded}},
	{"users.exclude", func(p *policy.Policy) bool {
		ex := p.Users.Exclude
		return len(ex.Users)+len(ex.Groups)+len(ex.Roles)+len(ex.Clients) > 0
	}, []policy.Reason{policy.ReasonUserExcluded}},
	{"target.apps.include", func(p *policy.Policy) bool {
		return len(p.Target.Apps.Include) > 0 && !slices.Contains(p.Target.Apps.Include, "all")
	}, []policy.Reason{policy.ReasonAppNotTargeted}},
	{"target.apps.exclude", func(p *policy.Policy) bool { return len(p.Target.Apps.Exclude) > 0 },
		[]policy.Reason{policy.ReasonAppExcluded}},
	{"target.auth_contexts", func(p *policy.Policy) bool { return len(p.Target.AuthContexts) > 0 },
		[]policy.Reason{policy.ReasonContextNotTargeted}},
	{"target.user_actions", func(p *policy.Policy) bool { return len(p.Target.UserActions) > 0 },
		[]policy.Reason{policy.ReasonActionNotTargeted}},
	{"conditions.user_risk", func(p *policy.Policy) bool { return len(p.Conditions.UserRisk) > 0 },
		[]policy.Reason{policy.ReasonUserRiskBelowThreshold, policy.ReasonUserRiskNotIncluded}},
	{"conditions.sign_in_risk", func(p *policy.Policy) bool { return len(p.Conditions.SignInRisk) > 0 },
		[]policy.Reason{policy.ReasonSignInRiskBelowThreshold, policy.ReasonSignInRiskNotIncluded}},
	{"conditions.platforms", func(p *policy.Policy) bool {
		return len(p.Conditions.Platforms.Include)+len(p.Conditions.Platforms.Exclude) > 0
	}, []policy.Reason{policy.ReasonPlatformNotIncluded, policy.ReasonPlatformExcluded}},
	{"conditions.locations", func(p *policy.Policy) bool {
		return len(p.Conditions.Locations.Include)+len(p.Conditions.Locations.Exclude) > 0
	}, []policy.Reason{policy.ReasonLocationNotIncluded, policy.ReasonLocationExcluded}},
	{"conditions.client_apps", func(p *policy.Policy) bool { return len(p.Conditions.ClientApps) > 0 },
		[]policy.Reason{policy.ReasonClientAppNotIncluded}},
	{"conditions.device_filter", func(p *policy.Policy) bool { return p.Conditions.DeviceFilter.Rule != "" },
		[]policy.Reason{policy.ReasonDeviceFilterNotMatched, policy.ReasonDeviceFilterExcluded}},
	{"conditions.expression", func(p *policy.Policy) bool { return p.Conditions.Expression != "" },
		[]policy.Reason{policy.ReasonConditionNotMatched}},
}

// applied are the results of a policy that applied to a request,
// enforced or reported.
var applied = []policy.Result{
	policy.ResultApplied, policy.ResultReportOnlySuccess,
	policy.ResultReportOnlyFailure, policy.ResultReportOnlyUserActionRequired,
}

// Coverage lists the enabled and report-only policies of docs that no
// result exercised. A policy is exercised when it applied to at least
// one scenario (every condition matched; report-only policies count when
// they would have applied). Each condition block of a policy (users
// include and exclude, each target, each condition) is exercised when at
// least one scenario was left out of the policy by that block: the
// policy's result named it as the first condition that did not match.
// Together they show, for each policy, a scenario that reaches it and,
// for each condition, a scenario where that condition alone made the
// difference.
func Coverage(docs []*policy.Document, results []Result) []Gap {
	appliedTo := map[string]bool{}
	leftOutBy := map[string]map[policy.Reason]bool{}
	for i := range results {
		for _, pr := range results[i].Decision.Policies {
			if slices.Contains(applied, pr.Result) {
				appliedTo[pr.Policy] = true
				continue
			}
			if leftOutBy[pr.Policy] == nil {
				leftOutBy[pr.Policy] = map[policy.Reason]bool{}
			}
			leftOutBy[pr.Policy][pr.Reason] = true
		}
	}
	var gaps []Gap
	for _, d := range docs {
		for i := range d.Policies {
			p := &d.Policies[i]
			if p.State == string(policy.StateDisabled) {
				continue
			}
			at := fmt.Sprintf("policies[%d]", i)
			if !appliedTo[p.Name] {
				gaps = append(gaps, Gap{File: d.File, Line: d.Line(at), Policy: p.Name})
			}
			for _, c := range conditions {
				if !c.set(p) || slices.ContainsFunc(c.reasons, func(r policy.Reason) bool { return leftOutBy[p.Name][r] }) {
					continue
				}
				gaps = append(gaps, Gap{File: d.File, Line: d.Line(at + "." + c.key), Policy: p.Name, Condition: c.key})
			}
		}
	}
	return gaps
}
