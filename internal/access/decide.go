package access

import (
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
)

// Ask is the question an enforcement point puts to the decision core:
// the access request as it sees it (facts and the session's proofs) and,
// for a re-ask, the point before which proofs do not count.
type Ask struct {
	Snapshot *policy.Snapshot
	Request  *policy.Request
	// ReaskAfter, when set, makes the request a re-ask: only proofs made
	// after it count, and they alone must meet the policies (see
	// policy.Snapshot.Reask). Reask says why.
	ReaskAfter time.Time
	Reask      Reask
}

// MethodSource lists the methods a user can prove on the step-up page,
// in prompt order (AvailableMethods).
type MethodSource func() ([]string, error)

// Verdict is the decision core's answer, which every enforcement point
// translates into its protocol: the gateway into a pass, a step-up
// redirect, a block page or a 401 challenge; forward-auth into a
// status; the OIDC provider into a code, a step-up or an error; the
// console and the security page into a redirect or a refusal.
type Verdict struct {
	Outcome policy.Outcome
	// Reason is the stable code the sign-in log records for a block or a
	// challenge: the policy engine's, or one of the enforcement codes.
	Reason reason.Code
	// BlockedBy names the policy that blocked, for a block by policy.
	BlockedBy string
	// Missing is, for a challenge, what the proofs still lack, password
	// change included.
	Missing []policy.Requirement
	// Methods are, for a challenge, the user's methods that can meet
	// Missing (the password change aside).
	Methods []string
	// PasswordChange says the challenge is met by changing the password
	// alone; it is done on its own page.
	PasswordChange bool
	// ACRs are, for an allow, the authentication contexts the request is
	// allowed under.
	ACRs []string
	// ProofsAfter is, when the decision was a re-ask, the point it
	// counted proofs from; Reask says why, when the re-ask is the reason
	// for the challenge.
	ProofsAfter time.Time
	Reask       Reask
	// ReportOnlyUnmet counts the report-only policies that would have
	// blocked or challenged.
	ReportOnlyUnmet int
}

// Decide answers a: the policies on the whole session first, then, for a
// re-ask, on the proofs after its point; an authentication context the
// request names but nobody declared blocks, so a typo in a route never
// passes for a completed step-up. A challenge carries the user's methods
// (listed by methods, asked only for a challenge) that can meet it, and
// one no method can meet becomes a block (NoUsableMethod). A nil methods
// leaves the methods out and refuses nothing for want of one: for a
// caller that only describes the challenge, or one whose client cannot
// step up anyway. The only error is the method source's.
//
// methods is a parameter of its own rather than a field of Ask so that
// it does not escape with the request: the gateway builds it per request
// and must not allocate for it.
func Decide(a Ask, methods MethodSource) (Verdict, error) {
	d := a.Snapshot.Evaluate(a.Request, policy.EvaluateOptions{ReportOnly: true})
	v, err := decide(a, &d, methods)
	v.ReportOnlyUnmet = d.ReportOnlyUnmet
	return v, err
}

func decide(a Ask, d *policy.Decision, methods MethodSource) (Verdict, error) {
	switch {
	case d.Outcome == policy.OutcomeBlock:
		return Verdict{Outcome: policy.OutcomeBlock, Reason: d.Reason, BlockedBy: d.BlockedBy}, nil
	case unknownContext(a.Request, d):
		return Verdict{Outcome: policy.OutcomeBlock, Reason: reason.UnknownContext}, nil
	}
	why, byReask := d.Reason, false
	var reasked time.Time
	if !a.ReaskAfter.IsZero() {
		// The step-up must ask for what new proofs need, not for what the
		// whole session lacks: the missing proofs come from the re-ask.
		rd := a.Snapshot.Reask(a.Request, a.ReaskAfter, policy.EvaluateOptions{})
		if rd.Outcome != policy.OutcomeAllow {
			if d.Outcome == policy.OutcomeAllow {
				why, byReask = a.Reask.Code(), true
			}
			d, reasked = &rd, a.ReaskAfter
		}
	}
	var v Verdict
	switch d.Outcome {
	case policy.OutcomeBlock:
		v = Verdict{Outcome: policy.OutcomeBlock, Reason: d.Reason, BlockedBy: d.BlockedBy}
	case policy.OutcomeChallenge:
		c, err := Challenge(d.Missing, why, methods)
		if err != nil {
			return Verdict{}, err
		}
		v = c
		if byReask {
			v.Reask = a.Reask
		}
	default:
		v = Verdict{Outcome: policy.OutcomeAllow, ACRs: d.ACRs}
	}
	v.ProofsAfter = reasked
	return v, nil
}

// unknownContext reports whether the request names an authentication
// context that no declaration knows.
func unknownContext(req *policy.Request, d *policy.Decision) bool {
	return slices.ContainsFunc(req.AuthContexts, func(c string) bool { return slices.Contains(d.UnknownContexts, c) })
}

// Challenge is the verdict asking for missing, for the reason why: the
// user's methods (from methods) that can meet it; a password change on
// its own page when that is all that is missing (it comes after the
// other proofs: a policy asks a risky user for MFA first); or a block
// when no method of the user's can meet it. A nil methods describes the
// challenge without listing or judging the user's methods.
func Challenge(missing []policy.Requirement, why reason.Code, methods MethodSource) (Verdict, error) {
	v := Verdict{Outcome: policy.OutcomeChallenge, Reason: why, Missing: missing}
	rest := WithoutPasswordChange(missing)
	if len(rest) == 0 && len(missing) > 0 {
		v.PasswordChange = true
		return v, nil
	}
	if methods == nil {
		return v, nil
	}
	have, err := methods()
	if err != nil {
		return Verdict{}, err
	}
	offered, ok := policy.StepUpMethods(rest, have)
	if !ok {
		return Verdict{Outcome: policy.OutcomeBlock, Reason: reason.NoUsableMethod, Missing: missing}, nil
	}
	v.Methods = offered
	return v, nil
}

// Code is the sign-in log's reason for a challenge the re-ask alone
// made.
func (r Reask) Code() reason.Code {
	switch r {
	case ReaskSingleUse:
		return reason.SingleUseProofRequired
	case ReaskMaxAge:
		return reason.MaxAgeExceeded
	case ReaskLogin:
		return reason.NewSignInRequired
	}
	return ""
}

// WithoutPasswordChange is missing without the requirements a password
// change meets: what a step-up method can prove.
func WithoutPasswordChange(missing []policy.Requirement) []policy.Requirement {
	return slices.DeleteFunc(slices.Clone(missing), policy.Requirement.IsPasswordChange)
}
