package policy

import (
	"slices"
	"time"
)

// EvaluateOptions tune one evaluation.
type EvaluateOptions struct {
	// Explain fills Decision.Policies with every policy's result,
	// report-only ones included. It visits every policy and allocates;
	// without it Evaluate visits only policies targeting the request and
	// does not allocate on the allow path.
	Explain bool
	// ReportOnly also evaluates the report-only policies that target the
	// request, to fill Decision.ReportOnlyUnmet, without allocating. A
	// caller that records only the decisions worth recording uses it to
	// tell which ones are, and explains only those.
	ReportOnly bool
}

// Evaluate decides req against the policy set. All applicable enabled
// policies must be satisfied; an applicable block policy wins over
// everything. Report-only and disabled policies never change the
// outcome. Evaluate never fails: a request no policy applies to is
// allowed (policies are the only source of restrictions), and a CEL rule
// that fails at run time counts as matching (see cond_cel.go), so a
// broken rule never switches a policy off.
func (s *Snapshot) Evaluate(req *Request, opts EvaluateOptions) Decision {
	ev := evaluator{ctx: evalCtx{snap: s}, blocked: -1, approval: -1}
	var d Decision
	if opts.Explain {
		d.Policies = make([]PolicyResult, 0, len(s.policies))
		for _, p := range s.policies {
			d.Policies = append(d.Policies, ev.explain(p, req))
		}
	} else {
		ev.visitCandidates(&s.enabled, req, false)
		if opts.ReportOnly {
			ev.visitCandidates(&s.reportOnly, req, true)
		}
	}
	ev.finish(&d, req)
	return d
}

// evalCtx caches per-request lookups that several policies share. It
// deliberately does not hold the Request: escape analysis does not tell
// struct fields apart, so once the cached CEL activation (which does
// escape) is loaded from here, every pointer in the struct would be
// treated as escaping, and the caller's Request would be moved to the
// heap on every call. The Request is passed alongside instead.
type evalCtx struct {
	snap      *Snapshot
	whereDone bool
	w         where
	act       *activation
}

func (ctx *evalCtx) where(r *Request) *where {
	if !ctx.whereDone {
		t := ctx.snap.locations
		ctx.w = where{byIP: t.byIP(r.IP), byCountry: t.byCountry(r.Country), trusted: t.trusted}
		ctx.whereDone = true
	}
	return &ctx.w
}

// activation is built on first use: most requests meet no CEL rule.
func (ctx *evalCtx) activation(r *Request) *activation {
	if ctx.act == nil {
		ctx.act = &activation{req: *r}
		ctx.act.groups = ctx.snap.effectiveGroups(r.Subject.Groups)
	}
	return ctx.act
}

// evaluator accumulates the effect of enabled policies.
type evaluator struct {
	ctx      evalCtx
	blocked  int // first block policy that applied, or -1
	approval int // first policy only an approval could satisfy, or -1
	// Applied, unsatisfied policies. The first few live in a fixed array
	// inside the evaluator (on the caller's stack); a slice would escape
	// and cost an allocation on every call.
	unsatFixed [16]int
	nUnsat     int
	unsatMore  []int
	session    SessionResult
	// reportOnlyUnmet counts report-only policies that would have
	// blocked or challenged.
	reportOnlyUnmet int
}

func (ev *evaluator) addUnsat(i int) {
	if ev.nUnsat < len(ev.unsatFixed) {
		ev.unsatFixed[ev.nUnsat] = i
		ev.nUnsat++
		return
	}
	ev.unsatMore = append(ev.unsatMore, i)
}

// unsat returns the unsatisfied policies in policy order. Only the
// challenge path calls it, so the copy costs nothing when allowing.
func (ev *evaluator) unsat() []int {
	out := make([]int, 0, ev.nUnsat+len(ev.unsatMore))
	out = append(append(out, ev.unsatFixed[:ev.nUnsat]...), ev.unsatMore...)
	slices.Sort(out) // candidate order differs from policy order
	return out
}

// visitCandidates evaluates the policies of ix that target the
// request's app, contexts or action; no other policy can apply. A flag
// rather than a function value picks what to do with each: a call
// through a function value would move the evaluator to the heap.
func (ev *evaluator) visitCandidates(ix *targets, r *Request, reportOnly bool) {
	s := ev.ctx.snap
	if r.App != "" {
		for _, i := range ix.allApps {
			ev.visit(s.policies[i], r, reportOnly)
		}
		for _, i := range ix.byApp[r.App] {
			ev.visit(s.policies[i], r, reportOnly)
		}
	}
	for j, c := range r.AuthContexts {
		for _, i := range ix.byContext[c] {
			// A policy on several requested contexts is listed under each;
			// visit it once, under the first.
			if !s.policies[i].target.anyContext(r.AuthContexts[:j]) {
				ev.visit(s.policies[i], r, reportOnly)
			}
		}
	}
	if r.Action != "" {
		for _, i := range ix.byAction[r.Action] {
			ev.visit(s.policies[i], r, reportOnly)
		}
	}
}

func (ev *evaluator) visit(p *compiledPolicy, r *Request, reportOnly bool) {
	if reportOnly {
		ev.wouldApply(p, r)
		return
	}
	ev.enabled(p, r)
}

// enabled evaluates one enabled policy and records its effect.
func (ev *evaluator) enabled(p *compiledPolicy, r *Request) {
	if reason, _ := p.match(&ev.ctx, r); reason != "" {
		return
	}
	ev.record(p, p.grant.block || p.grant.satisfied(r))
}

// wouldApply evaluates one report-only policy, which changes nothing but
// the count of those that would have blocked or challenged.
func (ev *evaluator) wouldApply(p *compiledPolicy, r *Request) {
	if reason, _ := p.match(&ev.ctx, r); reason != "" {
		return
	}
	if p.grant.block || !p.grant.satisfied(r) {
		ev.reportOnlyUnmet++
	}
}

func (ev *evaluator) record(p *compiledPolicy, satisfied bool) {
	ev.addSession(p.session)
	switch {
	case p.grant.block:
		if ev.blocked < 0 || p.index < ev.blocked {
			ev.blocked = p.index
		}
	case !satisfied:
		ev.addUnsat(p.index)
	}
}

func (ev *evaluator) addSession(sc sessionControls) {
	if sc.freq.set() {
		cur := time.Duration(ev.session.SignInFrequency)
		if cur == 0 || sc.freq.window < cur {
			ev.session.SignInFrequency = Duration(sc.freq.window)
		}
		ev.session.EveryTime = ev.session.EveryTime || sc.freq.everyTime
	}
	switch sc.persistent {
	case "never":
		ev.session.PersistentBrowser = "never"
	case "always":
		if ev.session.PersistentBrowser == "" {
			ev.session.PersistentBrowser = "always"
		}
	}
}

// finish turns the accumulated effects into the decision.
func (ev *evaluator) finish(d *Decision, r *Request) {
	s := ev.ctx.snap
	d.Session = ev.session
	d.ReportOnlyUnmet = ev.reportOnlyUnmet
	d.UnknownContexts = s.unknownContexts(r.AuthContexts)
	var unsat []int
	var missing []Requirement
	if ev.nUnsat > 0 {
		unsat = ev.unsat()
		missing, ev.approval = s.missing(r, unsat)
	}
	switch {
	case ev.blocked >= 0:
		d.Outcome, d.Reason, d.BlockedBy = OutcomeBlock, ReasonBlocked, s.policies[ev.blocked].name
	case ev.approval >= 0:
		d.Outcome, d.Reason, d.BlockedBy = OutcomeBlock, ReasonApprovalUnavailable, s.policies[ev.approval].name
	case len(unsat) > 0:
		d.Outcome, d.Reason, d.Missing = OutcomeChallenge, ReasonControlsNotSatisfied, missing
		d.ACRs = s.acrs(r.AuthContexts, unsat)
	default:
		d.Outcome = OutcomeAllow
		d.ACRs = s.acrs(r.AuthContexts, nil)
	}
}

// acrs returns the requested, declared contexts that no unsatisfied
// policy targets. When that is every requested context, it returns the
// request's own slice rather than a copy, which keeps the allow path
// free of allocation.
func (s *Snapshot) acrs(requested []string, unsat []int) []string {
	ok := func(j int) bool {
		c := requested[j]
		if _, declared := s.ctxIndex[c]; !declared || slices.Contains(requested[:j], c) {
			return false
		}
		for _, i := range unsat {
			if t := &s.policies[i].target; t.kind == targetContexts && slices.Contains(t.contexts, c) {
				return false
			}
		}
		return true
	}
	all := true
	for j := range requested {
		if !ok(j) {
			all = false
			break
		}
	}
	if all {
		return requested
	}
	var out []string
	for j := range requested {
		if ok(j) {
			out = append(out, requested[j])
		}
	}
	return out
}

func (s *Snapshot) unknownContexts(requested []string) []string {
	var out []string
	for _, c := range requested {
		if _, declared := s.ctxIndex[c]; !declared && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}
