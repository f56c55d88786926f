package policy

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// explain evaluates one policy of any state, records the effect of an
// enabled one, and returns its result.
func (ev *evaluator) explain(p *compiledPolicy, r *Request) PolicyResult {
	res := PolicyResult{Policy: p.name, State: p.state, Session: p.session.describe()}
	if p.state == StateDisabled {
		res.Result, res.Reason = ResultNotApplied, ReasonPolicyDisabled
		return res
	}
	reason, detail := p.match(&ev.ctx, r)
	res.Detail = detail
	if reason != "" {
		res.Result, res.Reason = ResultNotApplied, reason
		if p.state == StateReportOnly {
			res.Result = ResultReportOnlyNotApplied
		}
		return res
	}
	res.Grant = p.grant.operator()
	if !p.grant.block {
		res.Satisfied = p.grant.satisfied(r)
		res.Controls = controlResults(p, r)
	}
	switch {
	case p.grant.block:
		res.Reason = ReasonBlocked
	case !res.Satisfied && onlyApprovalLeft(p, r):
		res.Reason = ReasonApprovalUnavailable
	case !res.Satisfied:
		res.Reason = ReasonControlsNotSatisfied
	}
	if p.state == StateReportOnly {
		res.Result = reportOnlyResult(res.Reason)
		if res.Reason != "" {
			ev.reportOnlyUnmet++
		}
		return res
	}
	res.Result = ResultApplied
	ev.record(p, res.Satisfied)
	return res
}

func reportOnlyResult(r Reason) Result {
	switch r {
	case "":
		return ResultReportOnlySuccess
	case ReasonControlsNotSatisfied:
		return ResultReportOnlyUserActionRequired
	}
	return ResultReportOnlyFailure
}

func controlResults(p *compiledPolicy, r *Request) []ControlResult {
	var out []ControlResult
	for _, grp := range p.grant.groups {
		for i := range grp {
			ct := &grp[i]
			out = append(out, ControlResult{Control: ct.label, MaxAge: Duration(ct.maxAge), EveryTime: ct.everyTime, Satisfied: ct.satisfied(r)})
		}
	}
	return out
}

// onlyApprovalLeft reports an unmet group that nothing but an approval
// could meet.
func onlyApprovalLeft(p *compiledPolicy, r *Request) bool {
	for _, grp := range p.grant.groups {
		if groupSatisfied(grp, r) {
			continue
		}
		if len(needsOf(grp)) == 0 {
			return true
		}
	}
	return false
}

// Explain renders a decision for people: a summary, then one aligned row
// per policy (when the decision was made with Explain). The What-If
// command prints it; the format is for reading, the JSON form of Decision
// is for programs.
func Explain(d *Decision) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	outcome := d.Outcome.String()
	if d.Reason != "" {
		outcome += " (" + string(d.Reason) + ")"
	}
	fmt.Fprintf(tw, "outcome:\t%s\n", outcome)
	if d.BlockedBy != "" {
		fmt.Fprintf(tw, "blocked by:\t%s\n", d.BlockedBy)
	}
	for i, r := range d.Missing {
		label := ""
		if i == 0 {
			label = "missing:"
		}
		fmt.Fprintf(tw, "%s\t%d. %s\n", label, i+1, describeRequirement(r))
	}
	fmt.Fprintf(tw, "acrs:\t%s\n", orDash(strings.Join(d.ACRs, ", ")))
	if len(d.UnknownContexts) > 0 {
		fmt.Fprintf(tw, "unknown contexts:\t%s\n", strings.Join(d.UnknownContexts, ", "))
	}
	fmt.Fprintf(tw, "session:\t%s\n", orDash(describeSession(d.Session)))
	tw.Flush()
	if len(d.Policies) > 0 {
		b.WriteString("\n")
		writePolicyTable(&b, d.Policies)
	}
	return b.String()
}

func describeRequirement(r Requirement) string {
	alts := make([]string, len(r.AnyOf))
	for i, n := range r.AnyOf {
		alts[i] = n.String()
		if len(n.Options) > 0 {
			opts := make([]string, len(n.Options))
			for j, o := range n.Options {
				opts[j] = strings.Join(o, "+")
			}
			alts[i] += " [add " + strings.Join(opts, " | ") + "]"
		}
	}
	return strings.Join(alts, " or ") + " (" + strings.Join(r.Policies, ", ") + ")"
}

func describeSession(s SessionResult) string {
	var parts []string
	switch {
	case s.EveryTime:
		parts = append(parts, "sign-in every time")
	case s.SignInFrequency > 0:
		parts = append(parts, "sign-in every "+s.SignInFrequency.String())
	}
	if s.PersistentBrowser != "" {
		parts = append(parts, "persistent browser "+s.PersistentBrowser)
	}
	return strings.Join(parts, ", ")
}

func writePolicyTable(b *strings.Builder, results []PolicyResult) {
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tSTATE\tRESULT\tDETAIL")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Policy, r.State, r.Result, policyDetail(r))
	}
	tw.Flush()
}

// policyDetail is the last column: the reason a policy did not apply, or
// the controls of one that did, each marked ok or missing.
func policyDetail(r PolicyResult) string {
	var parts []string
	if r.Grant != "" {
		g := r.Grant
		if len(r.Controls) > 0 {
			cs := make([]string, len(r.Controls))
			for i, c := range r.Controls {
				mark := "missing"
				if c.Satisfied {
					mark = "ok"
				}
				cs[i] = c.String() + " [" + mark + "]"
			}
			g += ": " + strings.Join(cs, ", ")
		}
		parts = append(parts, g)
		if r.Reason != "" && r.Reason != ReasonBlocked && r.Reason != ReasonControlsNotSatisfied {
			parts = append(parts, string(r.Reason))
		}
		if r.Session != "" {
			parts = append(parts, "session: "+r.Session)
		}
	} else if r.Reason != "" {
		parts = append(parts, string(r.Reason))
	}
	if r.Detail != "" {
		parts = append(parts, r.Detail)
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
