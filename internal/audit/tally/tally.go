// Package tally defines what the sign-in log's running totals count of
// an entry: its outcome and what each policy did to it. It is a leaf the
// storage backends use to count entries as they write them and to count
// a stored log again, so it reads only the few fields of an entry's body
// it needs, by the names the audit package writes them under.
package tally

import (
	"encoding/json"

	"github.com/stepgate/stepgate/internal/store"
)

// The counters: what the console's overview and policies pages show.
const (
	Allow     = "allow"
	Challenge = "challenge"
	Block     = "block"
	// Failure counts failed (and throttled) sign-in attempts; a step-up
	// counts as StepUpSuccess or StepUpFailure instead.
	Failure        = "failure"
	StepUpSuccess  = "step-up-success"
	StepUpFailure  = "step-up-failure"
	Challenged     = "challenged"      // by an enforced policy
	Blocked        = "blocked"         // by an enforced policy
	WouldChallenge = "would-challenge" // by a report-only policy
	WouldBlock     = "would-block"     // by a report-only policy
)

// Outcome is what the totals count of an entry, under the JSON names of
// the audit package's entry.
type Outcome struct {
	Source   string         `json:"source"`
	Decision string         `json:"decision"`
	Policies []PolicyResult `json:"policies,omitempty"`
}

// PolicyResult is the part of a policy's result in an entry that the
// totals count, under the JSON names of policy.PolicyResult. The package
// keeps its own copy of these few fields so that storage, which counts
// entries as it writes them, never depends on the policy engine
// (package audit's tests hold the two in step).
type PolicyResult struct {
	Policy    string `json:"policy"`
	Result    string `json:"result"`
	Satisfied bool   `json:"satisfied"`
	Grant     string `json:"grant,omitempty"`
}

// Policy results the totals tell apart: the values of policy.Result.
const (
	ResultApplied                      = "applied"
	ResultReportOnlyFailure            = "report-only-failure"
	ResultReportOnlyUserActionRequired = "report-only-user-action-required"
)

// Trigger is what one policy did to a decision: asked for more
// (challenge) or refused it (block), enforced or, in report-only mode,
// what it would have done.
type Trigger struct {
	Policy     string
	ReportOnly bool
	Block      bool
}

// Triggers lists the policies that challenged or blocked the decision,
// or would have in report-only mode: the trigger frequency
// administrators tune thresholds by.
//
// What an enforced policy did is what the entry records, not what its
// grant alone would suggest: a policy asking for a proof the user has
// no method to give ends in a block (no-usable-method), and the console
// must count that block against the policy, as the log explains it.
func (o Outcome) Triggers() []Trigger {
	var out []Trigger
	refused := o.Decision == "block"
	for _, r := range o.Policies {
		switch {
		case r.Result == ResultApplied && !r.Satisfied:
			out = append(out, Trigger{Policy: r.Policy, Block: r.Grant == "block" || refused})
		case r.Result == ResultReportOnlyFailure:
			out = append(out, Trigger{Policy: r.Policy, ReportOnly: true, Block: true})
		case r.Result == ResultReportOnlyUserActionRequired:
			out = append(out, Trigger{Policy: r.Policy, ReportOnly: true})
		}
	}
	return out
}

// Counters lists the counters the entry adds one to. Changing what it
// counts means changing store.SignInTotalsVersion, so stored totals are
// counted again.
func (o Outcome) Counters() []store.SignInCounter {
	var out []store.SignInCounter
	add := func(name, policy string) { out = append(out, store.SignInCounter{Name: name, Policy: policy}) }
	switch o.Decision {
	case Allow, Challenge, Block:
		add(o.Decision, "")
	case "failure", "throttled":
		if o.Source != "step-up" {
			add(Failure, "")
		}
	}
	if o.Source == "step-up" {
		if o.Decision == "success" {
			add(StepUpSuccess, "")
		} else {
			add(StepUpFailure, "")
		}
	}
	for _, tr := range o.Triggers() {
		switch {
		case tr.ReportOnly && tr.Block:
			add(WouldBlock, tr.Policy)
		case tr.ReportOnly:
			add(WouldChallenge, tr.Policy)
		case tr.Block:
			add(Blocked, tr.Policy)
		default:
			add(Challenged, tr.Policy)
		}
	}
	return out
}

// Row lists the counters of a stored row. A row whose body cannot be
// read counts nothing, as the console skipped such rows when it counted
// entries itself.
func Row(row store.SignIn) []store.SignInCounter {
	var o Outcome
	if err := json.Unmarshal(row.Body, &o); err != nil {
		return nil
	}
	return o.Counters()
}
