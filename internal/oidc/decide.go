package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

type verdictKind int

const (
	verdictIssue verdictKind = iota + 1
	verdictLogin
	verdictStepUp
	verdictPasswordChange
)

// verdict is what a flow does next.
type verdict struct {
	kind verdictKind
	why  string // for login and step-up: what is missing, for prompt=none errors
	// reason is the stable code the sign-in log records.
	reason reason.Code
	auth   authState // for issue
	// methods are, for a step-up, the user's methods that can meet what
	// is missing: a hint for the step-up page, which the next decide
	// checks anyway.
	methods []string
	// missing and reask are, for a step-up, what the session lacks and
	// why earlier proofs do not count: the step-up page says them.
	missing []policy.Requirement
	reask   access.Reask
	err     *Error // refuse: sent to the client
}

// candidate is one acr value the client would accept, and what the
// session still lacks for it.
type candidate struct {
	value     string
	satisfied bool
	missing   []policy.Requirement
	reachable bool // the user has registered methods that can meet missing
}

// decide answers, from the session's authentication events alone, what
// the flow needs next. Nothing the browser sends is trusted: the flow's
// requirements come from server-side state and every proof from the
// session store, so re-running decide after any step gives the same
// answer until the session really has proven more.
func (p *Provider) decide(ctx context.Context, r *http.Request, f *flow, lg *audit.SignIn) (verdict, error) {
	s, u, err := p.loadSession(ctx, r)
	if errors.Is(err, session.ErrNoSession) {
		return verdict{kind: verdictLogin, why: "the user is not signed in", reason: reason.NotSignedIn}, nil
	}
	if err != nil {
		return verdict{}, err
	}
	now := p.Now()
	snap := p.snapshotFor(f.ClientID)
	req := p.Access(r, u, &s, f.ClientID, now)
	reqs := acrRequirements(f)
	values := allValues(reqs)
	contexts := contextsOf(snap, values)
	describe(lg, snap, req, u, values, contexts)

	available, err := access.AvailableMethods(ctx, p.Store, p.Methods.Names(), u)
	if err != nil {
		return verdict{}, err
	}
	methods := func() ([]string, error) { return available, nil }
	// prompt=login and max_age make the flow a re-ask: from here on only
	// the proofs made after the point it counts from exist, so they alone
	// must meet the policies and the requested acr values, and the token's
	// acr describes them. A password retyped for max_age=0 does not carry
	// an earlier passkey into the new token.
	after, reaskWhy, reask := p.reaskPoint(f, now)
	whole := req
	if reask {
		req = req.ProofsAfter(after)
	}
	base := evaluate(snap, req, nil)
	if base.Outcome == policy.OutcomeBlock {
		return verdict{err: oauthErr("access_denied", http.StatusForbidden, "access is blocked by a conditional access policy"), reason: base.Reason}, nil
	}

	acr, need, unreachable := p.meetRequirements(snap, req, reqs, available)
	if unreachable != nil {
		return verdict{err: unmet(unreachable.values), reason: reason.UnmetAuthenticationRequirements}, nil
	}
	need = mergeMissing(base.Missing, need)
	if len(need) > 0 {
		why, again, code := "conditional access requires "+describeNeeds(need), access.ReaskNone, reason.ControlsNotSatisfied
		if reask {
			why, again = reaskWhy, reaskKind(f)
		}
		c, _ := access.Challenge(need, code, methods)
		return challengeVerdict(c, values, why, again), nil
	}
	if reask {
		// Nothing above asked for a proof: the re-ask still needs a
		// sign-in made after its point (see policy.Snapshot.Reask).
		full := *whole
		full.AuthContexts = contexts
		if rd := snap.Reask(&full, after, policy.EvaluateOptions{}); rd.Outcome == policy.OutcomeChallenge {
			again := reaskKind(f)
			c, _ := access.Challenge(rd.Missing, again.Code(), methods)
			if c.Outcome == policy.OutcomeBlock {
				return verdict{err: oauthErr("access_denied", http.StatusForbidden, "a new sign-in is required, which this account cannot provide"), missing: rd.Missing, reason: c.Reason}, nil
			}
			return verdict{kind: verdictStepUp, why: reaskWhy, methods: c.Methods, missing: rd.Missing, reask: again, reason: c.Reason}, nil
		}
	}
	if acr == "" {
		acr = snap.Strengths().Strongest(req.Events, now)
	}
	var acrs []string
	if len(contexts) > 0 {
		acrs = slices.Clone(evaluate(snap, req, contexts).ACRs)
	}
	a := p.authStateFor(f, s, u, acr, acrs)
	a.Proofs, a.Platform = s.Events, whole.Platform
	claimed := *req
	claimed.AuthContexts = acrs
	a.ProofTime = snap.ProvenSince(&claimed, acr).UTC()
	return verdict{kind: verdictIssue, auth: a}, nil
}

// reaskPoint reports whether prompt=login or max_age make the flow a
// re-ask, and the point it counts proofs from: the start of this flow
// for prompt=login; for max_age, max_age ago, or the start of the flow
// if that is earlier (a proof made during the flow always counts).
func (p *Provider) reaskPoint(f *flow, now time.Time) (after time.Time, why string, ok bool) {
	// An event stamped in the same microsecond as the flow was made
	// during it.
	created := f.CreatedAt.Truncate(time.Microsecond).Add(-time.Nanosecond)
	switch {
	case f.wants("login"):
		return created, "the application asked for a new sign-in", true
	case f.MaxAge >= 0:
		after = now.Add(-time.Duration(f.MaxAge) * time.Second).Add(-time.Nanosecond)
		if created.Before(after) {
			after = created
		}
		return after, fmt.Sprintf("the application asked for a sign-in within max_age %ds", f.MaxAge), true
	}
	return time.Time{}, "", false
}

func lastAuth(s store.Session) time.Time {
	var t time.Time
	for _, e := range s.Events {
		if e.Time.After(t) {
			t = e.Time
		}
	}
	return t
}

// acrRequirements are the requirements of the claims parameter (see
// ClaimsRequest.acrRequirements), then acr_values. Every one is
// mandatory: with claims asking for c2 and acr_values=single-factor, a
// password alone meets only the second, so the user steps up for c2.
func acrRequirements(f *flow) []acrRequirement {
	reqs := f.Claims.acrRequirements()
	var values []string
	for _, v := range f.ACRValues {
		if !slices.Contains(values, v) {
			values = append(values, v)
		}
	}
	if len(values) > 0 {
		reqs = append(reqs, acrRequirement{from: "acr_values", values: values})
	}
	return reqs
}

// allValues lists every requested value once, for the log and contexts.
func allValues(reqs []acrRequirement) []string {
	var out []string
	for _, rq := range reqs {
		for _, v := range rq.values {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// meetRequirements checks every requirement against the session: the
// token's acr is the satisfied value of the first one; need is what the
// user must still prove, the first reachable value of each requirement
// not yet met, so one step-up page can ask for all of it. A requirement
// none of whose values the user can reach ends the flow (unreachable).
func (p *Provider) meetRequirements(snap *policy.Snapshot, req *policy.Request, reqs []acrRequirement, available []string) (acr string, need []policy.Requirement, unreachable *acrRequirement) {
	for i, rq := range reqs {
		cands := p.candidates(snap, req, rq.values, available)
		if chosen := slices.IndexFunc(cands, func(c candidate) bool { return c.satisfied }); chosen >= 0 {
			if acr == "" {
				acr = cands[chosen].value
			}
			continue
		}
		next := slices.IndexFunc(cands, func(c candidate) bool { return c.reachable })
		if next < 0 {
			return "", nil, &reqs[i]
		}
		need = mergeMissing(need, cands[next].missing)
	}
	if len(need) > 0 {
		acr = ""
	}
	return acr, need, nil
}

// contextsOf keeps the values that are declared authentication contexts.
func contextsOf(snap *policy.Snapshot, values []string) []string {
	var out []string
	for _, c := range snap.AuthContexts() {
		if slices.Contains(values, c.ID) {
			out = append(out, c.ID)
		}
	}
	return out
}

func evaluate(snap *policy.Snapshot, req *policy.Request, contexts []string) policy.Decision {
	r := *req
	r.AuthContexts = contexts
	return snap.Evaluate(&r, policy.EvaluateOptions{})
}

// candidates checks each requested acr value: a strength against the
// session's events, an authentication context through the policies
// (which also include the app's own). Unknown values are never met.
func (p *Provider) candidates(snap *policy.Snapshot, req *policy.Request, values, available []string) []candidate {
	out := make([]candidate, 0, len(values))
	for _, v := range values {
		c := candidate{value: v}
		switch {
		case isContext(snap, v):
			d := evaluate(snap, req, []string{v})
			switch {
			case d.Outcome == policy.OutcomeBlock:
			case slices.Contains(d.ACRs, v) && d.Outcome == policy.OutcomeAllow:
				c.satisfied = true
			default:
				c.missing = d.Missing
				_, ok := policy.StepUpMethods(d.Missing, available)
				c.reachable = len(d.Missing) > 0 && ok
			}
		default:
			st, ok := snap.Strengths().Lookup(v)
			if !ok {
				break
			}
			if st.Satisfied(req.Events, req.Now, 0) {
				c.satisfied = true
				break
			}
			c.missing = []policy.Requirement{{AnyOf: []policy.Need{{
				Kind: policy.KindStrength, Strength: v, Options: optionStrings(st.Missing(req.Events, req.Now, 0)),
			}}}}
			_, c.reachable = policy.StepUpMethods(c.missing, available)
		}
		out = append(out, c)
	}
	return out
}

func isContext(snap *policy.Snapshot, v string) bool {
	return slices.ContainsFunc(snap.AuthContexts(), func(c policy.AuthContext) bool { return c.ID == v })
}

func optionStrings(opts []strength.Combination) [][]string {
	out := make([][]string, len(opts))
	for i, c := range opts {
		for _, t := range c {
			out[i] = append(out[i], t.String())
		}
	}
	return out
}

func mergeMissing(a, b []policy.Requirement) []policy.Requirement {
	out := slices.Clone(a)
	for _, r := range b {
		dup := slices.ContainsFunc(out, func(o policy.Requirement) bool {
			return slices.EqualFunc(o.AnyOf, r.AnyOf, func(x, y policy.Need) bool { return x.String() == y.String() })
		})
		if !dup {
			out = append(out, r)
		}
	}
	return out
}

func describeNeeds(reqs []policy.Requirement) string {
	parts := make([]string, 0, len(reqs))
	for _, r := range reqs {
		alts := make([]string, len(r.AnyOf))
		for i, n := range r.AnyOf {
			alts[i] = n.String()
		}
		parts = append(parts, strings.Join(alts, " or "))
	}
	return strings.Join(parts, ", and ")
}

// unmet is RFC 9470's error for an acr that cannot be satisfied: the
// flow ends rather than issuing a weaker token.
func unmet(values []string) *Error {
	return oauthErr("unmet_authentication_requirements", http.StatusForbidden,
		"the requested authentication ("+strings.Join(values, " ")+") cannot be satisfied for this user")
}

// authStateFor records what the session proved for the tokens.
func (p *Provider) authStateFor(f *flow, s store.Session, u store.User, acr string, acrs []string) authState {
	var amr []string
	for _, e := range s.Events {
		for _, v := range e.AMR {
			if !slices.Contains(amr, v) {
				amr = append(amr, v)
			}
		}
	}
	if len(s.Events) > 1 && !slices.Contains(amr, "mfa") && distinctMethods(s.Events) > 1 {
		amr = append(amr, "mfa")
	}
	a := authState{
		UserID: u.ID, SID: p.sid(s), AuthTime: lastAuth(s).UTC(), ACR: acr, AMR: amr, ACRs: acrs,
		Scope: f.Scope, Nonce: f.Nonce, Capabilities: f.Capabilities,
	}
	if f.Claims != nil {
		for name := range f.Claims.IDToken {
			a.IDTokenClaims = append(a.IDTokenClaims, name)
		}
		for name := range f.Claims.UserInfo {
			a.UserinfoClaims = append(a.UserinfoClaims, name)
		}
		slices.Sort(a.IDTokenClaims)
		slices.Sort(a.UserinfoClaims)
	}
	return a
}

func distinctMethods(evs []store.AuthEvent) int {
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Method] = true
	}
	return len(seen)
}

// describe fills in the sign-in log entry of a decision: who, from where,
// what was asked, and each policy's result with its reason.
func describe(lg *audit.SignIn, snap *policy.Snapshot, req *policy.Request, u store.User, values, contexts []string) {
	lg.UserID, lg.Username = u.ID, u.Username
	r := *req
	r.AuthContexts = contexts
	access.DescribeRequest(lg, &r)
	// The log lists every requested acr value, contexts or not.
	lg.Contexts = values
	lg.Policies = snap.Evaluate(&r, policy.EvaluateOptions{Explain: true}).Policies
	lg.Facts = audit.NewFacts(&r)
}

// challengeVerdict translates the decision core's challenge for need into the
// flow's next step: the step-up page (why says what is missing, for
// prompt=none; again why earlier proofs do not count), the password
// page when a password change is all that is missing, or an error when
// no method of the user's can meet it: RFC 9470's unmet requirements
// when the client asked for acr values, access_denied otherwise.
func challengeVerdict(c access.Verdict, values []string, why string, again access.Reask) verdict {
	// The password change comes last, on its own page: the step-up
	// page and the error describe the other proofs.
	rest := access.WithoutPasswordChange(c.Missing)
	switch {
	case c.PasswordChange:
		return verdict{kind: verdictPasswordChange, why: "conditional access requires a password change", reason: reason.PasswordChangeRequired}
	case c.Outcome == policy.OutcomeBlock && len(values) > 0:
		return verdict{err: unmet(values), missing: rest, reason: reason.UnmetAuthenticationRequirements}
	case c.Outcome == policy.OutcomeBlock:
		return verdict{err: oauthErr("access_denied", http.StatusForbidden,
			"conditional access requires "+describeNeeds(rest)+", which this account cannot provide yet"), missing: rest, reason: c.Reason}
	}
	code := c.Reason
	if again != access.ReaskNone {
		code = again.Code()
	}
	return verdict{kind: verdictStepUp, why: why, methods: c.Methods, missing: c.Missing, reask: again, reason: code}
}
