package gateway

import (
	"net/http"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// verdict is the decision for one request.
type verdict struct {
	block     string // refused, with the reason to show
	challenge bool
	methods   []string // for a challenge: methods that can meet it
	// passwordChange: the challenge is met by changing the password.
	passwordChange bool
	acrs           []string // contexts the request is allowed under
	// reason is the stable code the sign-in log records for a block or
	// challenge: the policy engine's, or one of the gateway's own.
	reason string
	// What the decision was made on, for its sign-in log entry: the
	// request, the policy snapshot, and how many report-only policies
	// would have blocked or challenged.
	req             *policy.Request
	snap            *policy.Snapshot
	reportOnlyUnmet int
	// proofsAfter, for a verdict a re-ask made, is the point it counted
	// proofs from: the log explains the decision with the policies'
	// results on those proofs, the ones it was made on, so a re-ask is
	// counted against the policy that asked, as any challenge is.
	proofsAfter time.Time
}

// decide makes the decision for a browser request, counts it, and logs
// it when it matters. It returns false when it has answered the request
// itself because the sign-in log refused the entry.
func (g *Gateway) decide(w http.ResponseWriter, r *http.Request, rt *route, ru *rule, id *identity, elevatedAfter time.Time) (verdict, bool) {
	start := time.Now()
	v := g.check(r, rt, ru, id, elevatedAfter)
	took := time.Since(start)
	g.Metrics.Decision("gateway", v.outcome(), rt.app, took)
	if g.SignIns == nil || !v.logged(ru) {
		return v, true
	}
	if err := g.SignIns(r.Context(), g.browserEntry(r, rt, id, &v, took)); err != nil {
		g.unlogged(w, r, err)
		return v, false
	}
	return v, true
}

// check asks the policies about a browser request. elevatedAfter, when
// set, is when a single-use challenge was made (the kept request's
// time): the request passes only with proofs made after it.
func (g *Gateway) check(r *http.Request, rt *route, ru *rule, id *identity, elevatedAfter time.Time) verdict {
	now := g.Now()
	req := g.Access(r, id.user, id.sess, now)
	req.App = rt.app
	if ru.context != "" {
		req.AuthContexts = []string{ru.context}
	}
	snap := g.Policies.Load()
	// Counting report-only policies costs no allocation; it tells which
	// routine allows are worth a log entry.
	d := snap.Evaluate(req, policy.EvaluateOptions{ReportOnly: true})
	ra := g.reaskOf(r, rt, ru, id, now, elevatedAfter)
	v := g.judge(r, rt, ru, id, snap, req, &d, ra)
	v.req, v.snap, v.reportOnlyUnmet = req, snap, d.ReportOnlyUnmet
	return v
}

// judge turns the policy decision d into the gateway's verdict, adding
// what the rule asks for beyond the policies: a re-ask for its max_age
// or single use, met only by proofs after the point it counts from that
// alone satisfy the policies (policy.Snapshot.Reask).
func (g *Gateway) judge(r *http.Request, rt *route, ru *rule, id *identity, snap *policy.Snapshot, req *policy.Request, d *policy.Decision, ra reask) verdict {
	switch {
	case d.Outcome == policy.OutcomeBlock:
		return verdict{block: "Access to this page is blocked by your organisation's policy.", reason: string(d.Reason)}
	case ru.context != "" && slices.Contains(d.UnknownContexts, ru.context):
		// A typo in the route must not pass for a completed step-up.
		g.Log.ErrorContext(r.Context(), "gateway rule asks for an undeclared authentication context", "route", rt.name, "context", ru.context)
		return verdict{block: "This page is misconfigured: it asks for an authentication context that does not exist.", reason: reasonUnknownContext}
	}
	reason := string(d.Reason)
	var reasked time.Time
	if ra.asked {
		// The step-up page must ask for what new proofs need, not for
		// what the whole session lacks: the methods come from the re-ask.
		rd := snap.Reask(req, ra.after, policy.EvaluateOptions{})
		if d.Outcome == policy.OutcomeAllow && rd.Outcome != policy.OutcomeAllow {
			reason = ra.reason
		}
		if rd.Outcome != policy.OutcomeAllow {
			d, reasked = &rd, ra.after
		}
	}
	switch d.Outcome {
	case policy.OutcomeBlock:
		return verdict{block: "Access to this page is blocked by your organisation's policy.", reason: string(d.Reason), proofsAfter: reasked}
	case policy.OutcomeChallenge:
		v := g.challengeFor(r, id, d.Missing, reason)
		v.proofsAfter = reasked
		return v
	}
	if ru.singleUse {
		// The proof spent is what the re-ask rests on, not the last
		// event: a password retyped after the passkey that answered one
		// challenge must not make that passkey answer a second.
		proven := snap.ProvenSince(req.ProofsAfter(ra.after), strength.SingleFactor)
		if !g.spend(r, rt, ru, id, ra, proven) {
			after := latest(req.Now, lastProof(id.sess))
			rd := snap.Reask(req, after, policy.EvaluateOptions{})
			v := g.challengeFor(r, id, rd.Missing, reasonSingleUse)
			v.proofsAfter = after
			return v
		}
	}
	return verdict{acrs: d.ACRs}
}

// challengeFor is the verdict asking for missing: the user's methods
// that can meet it, a password change on its own page, or a refusal when
// no method of the user's can.
func (g *Gateway) challengeFor(r *http.Request, id *identity, missing []policy.Requirement, reason string) verdict {
	// A password change is done on its own page, after the other proofs
	// (a policy asks a risky user for MFA first).
	rest := slices.DeleteFunc(slices.Clone(missing), policy.Requirement.IsPasswordChange)
	if len(rest) == 0 && len(missing) > 0 {
		return verdict{challenge: true, passwordChange: true, reason: reason}
	}
	methods, ok := g.stepUpMethods(r, id.user, rest)
	if !ok {
		return verdict{block: "Your organisation's policy requires a proof your account cannot give yet. Add a sign-in method on your security page, or ask your administrator.", reason: reasonNoUsableMethod}
	}
	return verdict{challenge: true, methods: methods, reason: reason}
}

func (g *Gateway) stepUpMethods(r *http.Request, u store.User, missing []policy.Requirement) ([]string, bool) {
	available, err := g.Methods(r, u)
	if err != nil {
		g.Log.ErrorContext(r.Context(), "list the user's methods", "err", err)
		return nil, false
	}
	return policy.StepUpMethods(missing, available)
}
