package access

import (
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
)

// Record fills in e, the sign-in log entry of a decision, from the
// access request it was made on and the verdict: where and how the
// request came from, the outcome with its reason and the methods
// offered, the facts (so the decision can be replayed against edited
// policies), and every policy's result. The results are those on the
// proofs the verdict counted, so a re-ask is explained by the policy
// that asked, as any challenge is. The caller sets who, which app and
// the source.
func Record(e *audit.SignIn, snap *policy.Snapshot, req *policy.Request, v *Verdict) {
	DescribeRequest(e, req)
	e.Decision, e.Reason, e.MethodsPrompted = v.Outcome.String(), v.Reason, v.Methods
	judged := req
	if !v.ProofsAfter.IsZero() {
		judged = req.ProofsAfter(v.ProofsAfter)
	}
	// The per-policy explanation visits every policy and allocates: only
	// decisions that are logged pay for it.
	e.Policies = snap.Evaluate(judged, policy.EvaluateOptions{Explain: true}).Policies
	e.Facts = audit.NewFacts(req)
}

// DescribeRequest copies onto e where and how the request came from.
func DescribeRequest(e *audit.SignIn, req *policy.Request) {
	e.Contexts = req.AuthContexts
	if req.IP.IsValid() {
		e.IP = req.IP.String()
	}
	e.Country, e.Device, e.ClientApp, e.Platform = req.Country, req.Device.ID, req.ClientApp, req.Platform
	e.RiskLevel = req.SignInRisk
}
