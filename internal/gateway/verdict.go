package gateway

import (
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
)

// verdict is the decision core's answer for one request, with what it
// was made on for its sign-in log entry: the request and the policy
// snapshot.
type verdict struct {
	access.Verdict
	req  *policy.Request
	snap *policy.Snapshot
}

func (v *verdict) blocked() bool    { return v.Outcome == policy.OutcomeBlock }
func (v *verdict) challenged() bool { return v.Outcome == policy.OutcomeChallenge }

// refusal is the block page's sentence for v's reason.
func (v *verdict) refusal() string {
	switch v.Reason {
	case reason.UnknownContext:
		return "This page is misconfigured: it asks for an authentication context that does not exist."
	case reason.NoUsableMethod:
		return "Your organisation's policy requires a proof your account cannot give yet. Add a sign-in method on your security page, or ask your administrator."
	}
	return "Access to this page is blocked by your organisation's policy."
}

// decide makes the decision for a browser request, counts it, and logs
// it when it matters. It returns false when it has answered the request
// itself because the sign-in log refused the entry.
func (g *Gateway) decide(w http.ResponseWriter, r *http.Request, rt *route, ru *rule, id *identity, elevatedAfter time.Time) (verdict, bool) {
	start := time.Now()
	v := g.check(r, rt, ru, id, elevatedAfter)
	took := time.Since(start)
	g.Metrics.Decision("gateway", v.Outcome.String(), rt.app, took)
	if g.SignIns == nil || !v.logged(ru) {
		return v, true
	}
	if err := g.SignIns(r.Context(), g.browserEntry(r, rt, id, &v, took)); err != nil {
		g.unlogged(w, r, err)
		return v, false
	}
	return v, true
}

// check asks the decision core about a browser request, adding what the
// rule asks for beyond the policies: a re-ask for its max_age or single
// use, and for a single-use rule the spending of the proof that met it.
// elevatedAfter, when set, is when a single-use challenge was made (the
// kept request's time): the request passes only with proofs made after
// it.
func (g *Gateway) check(r *http.Request, rt *route, ru *rule, id *identity, elevatedAfter time.Time) verdict {
	snap := g.snapshot(rt)
	now := g.instant(id)
	reusable := memoable(ru, !elevatedAfter.IsZero())
	if reusable {
		if m, ok := remembered(id, snap, ru, r, now); ok {
			return verdict{Verdict: access.Verdict{Outcome: policy.OutcomeAllow, ACRs: m.acrs}, snap: snap}
		}
	}
	req := g.Access(r, id.user, id.sess, rt.app, now)
	if ru.context != "" {
		req.AuthContexts = []string{ru.context}
	}
	ra := g.reaskOf(r, rt, ru, id, now, elevatedAfter)
	av, err := access.Decide(access.Ask{Snapshot: snap, Request: req, ReaskAfter: ra.after, Reask: ra.kind}, g.methodsOf(r, id))
	if err != nil {
		// The user's methods could not be listed: fail closed.
		g.Log.ErrorContext(r.Context(), "list the user's methods", "err", err)
		av = access.Verdict{Outcome: policy.OutcomeBlock, Reason: reason.NoUsableMethod}
	}
	if av.Reason == reason.UnknownContext {
		g.Log.ErrorContext(r.Context(), "gateway rule asks for an undeclared authentication context", "route", rt.name, "context", ru.context)
	}
	v := verdict{Verdict: av, req: req, snap: snap}
	if v.Outcome == policy.OutcomeAllow && ru.singleUse {
		g.spendOrReask(r, rt, ru, id, ra, &v)
	}
	if reusable {
		rememberAllow(id, snap, ru, r, &v.Verdict, rt.app, now)
	}
	return v
}

// spendOrReask spends the proof a met single-use rule rests on, or, when
// it was spent already, turns v into a challenge for a new one. The
// proof spent is what the re-ask rests on, not the last event: a
// password retyped after the passkey that answered one challenge must
// not make that passkey answer a second.
func (g *Gateway) spendOrReask(r *http.Request, rt *route, ru *rule, id *identity, ra reask, v *verdict) {
	proven := v.snap.ProvenSince(v.req.ProofsAfter(ra.after), strength.SingleFactor)
	if g.spend(r, rt, ru, id, ra, proven) {
		return
	}
	after := latest(v.req.Now, lastProof(id.sess))
	rd := v.snap.Reask(v.req, after, policy.EvaluateOptions{})
	c, err := access.Challenge(rd.Missing, reason.SingleUseProofRequired, g.methodsOf(r, id))
	if err != nil {
		g.Log.ErrorContext(r.Context(), "list the user's methods", "err", err)
		c = access.Verdict{Outcome: policy.OutcomeBlock, Reason: reason.NoUsableMethod}
	}
	c.Reask, c.ProofsAfter, c.ReportOnlyUnmet = access.ReaskSingleUse, after, v.ReportOnlyUnmet
	v.Verdict = c
}

// methodsOf lists the user's methods for the decision core, only when a
// challenge needs them.
func (g *Gateway) methodsOf(r *http.Request, id *identity) access.MethodSource {
	return func() ([]string, error) { return g.Methods(r, id.user) }
}
