package policy

import (
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// Reask decides a re-ask: a request that the session met once but must
// now meet again with new proofs, because a gateway rule is single use
// or has a max_age, or an application asked for max_age or prompt=login.
// after is the point the re-ask counts from (when the challenge was
// made, or now minus the maximum age).
//
// Only the authentication events made after that point count as proofs,
// and they alone must satisfy the grant of every policy that applies.
// Counting the whole session instead is the attack this stops: an
// administrator who once used a passkey would meet every later
// single-use passkey rule by retyping the password, since the old
// passkey proof would still be in the session. What the session as a
// whole says stays as it was: the sign-in risk (set by the caller from
// the first event) and whether the password was changed during this
// session (measured from the session's first event, not from after).
//
// When no policy asks for any proof, the re-ask still needs a proof
// that signs a user in on its own (the built-in single-factor strength:
// a password, a passkey or a phone sign-in) made after the point. That
// is the weakest way the request could have been met in the first
// place: the policies accept a fresh password-only sign-in, so an
// attacker holding only the password could sign in afresh and meet
// the rule that way, and asking more of the re-ask than of a sign-in
// would burden users without stopping anyone. A second factor on its
// own (a TOTP code, an emailed code) does not count: it proves
// possession of a device, not who is at the keyboard of the session.
func (s *Snapshot) Reask(req *Request, after time.Time, opts EvaluateOptions) Decision {
	fresh := req.ProofsAfter(after)
	d := s.Evaluate(fresh, opts)
	if d.Outcome != OutcomeAllow {
		return d
	}
	sf, _ := s.strengths.Lookup(strength.SingleFactor)
	if sf.Satisfied(fresh.Events, fresh.Now, 0) {
		return d
	}
	// The policies were met without a sign-in proof after the point.
	// When they ask for no proof at all, the re-ask asks for a sign-in;
	// when they do (a custom strength of one TOTP code, say), meeting
	// them is the re-ask.
	none := *fresh
	none.Events = nil
	if s.Evaluate(&none, EvaluateOptions{}).Outcome != OutcomeAllow {
		return d
	}
	need := Need{Kind: KindStrength, Strength: strength.SingleFactor}
	s.fillOptions(&need, fresh)
	d.Outcome, d.Reason = OutcomeChallenge, ReasonControlsNotSatisfied
	d.Missing = []Requirement{{AnyOf: []Need{need}}}
	return d
}

// ProofsAfter returns a copy of r whose proofs are only the events made
// after t, for a caller that judges more than the policies on the new
// proofs alone (an OIDC flow's acr values and the token's acr). The copy
// remembers when the session began, so session-wide facts stay as they
// were.
func (r *Request) ProofsAfter(t time.Time) *Request {
	c := *r
	c.sessionStart = firstEvent(r.Events)
	if !r.sessionStart.IsZero() {
		c.sessionStart = r.sessionStart
	}
	c.Events = nil
	for _, e := range r.Events {
		if e.Time.After(t) {
			c.Events = append(c.Events, e)
		}
	}
	return &c
}

// firstEvent is the time of the earliest event; zero for none.
func firstEvent(events []strength.Event) time.Time {
	var t time.Time
	for _, e := range events {
		if t.IsZero() || e.Time.Before(t) {
			t = e.Time
		}
	}
	return t
}

// ProvenSince returns when the proofs that req's allowed access rests
// on began: the latest event time t such that the events from t on,
// alone, still meet every policy that applies to req (its app and
// authentication contexts) and, when acr names a strength, that
// strength. A token carries it, so that a resource server's max_age or
// single-use rule can judge the proofs behind the token rather than the
// last event: a password retyped today must not make yesterday's passkey
// look fresh. It returns the session's first event time when nothing
// short of the whole session meets them, and zero for no events.
func (s *Snapshot) ProvenSince(req *Request, acr string) time.Time {
	times := make([]time.Time, 0, len(req.Events))
	for _, e := range req.Events {
		times = append(times, e.Time)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return b.Compare(a) })
	st, isStrength := s.strengths.Lookup(acr)
	for _, t := range times {
		r := req.ProofsAfter(t.Add(-time.Nanosecond))
		if s.Evaluate(r, EvaluateOptions{}).Outcome != OutcomeAllow {
			continue
		}
		if isStrength && !st.Satisfied(r.Events, r.Now, 0) {
			continue
		}
		return t
	}
	return firstEvent(req.Events)
}
