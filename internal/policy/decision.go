package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// Outcome is what happens to the request.
type Outcome uint8

// Outcomes. The zero value is not a valid outcome, so a Decision that
// was never filled in can never be mistaken for allow.
const (
	OutcomeAllow Outcome = iota + 1
	OutcomeBlock
	OutcomeChallenge
)

var outcomeNames = [...]string{"invalid", "allow", "block", "challenge"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "invalid"
}

// MarshalText writes the outcome's name.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads an outcome's name.
func (o *Outcome) UnmarshalText(b []byte) error {
	for i := OutcomeAllow; i <= OutcomeChallenge; i++ {
		if string(b) == i.String() {
			*o = i
			return nil
		}
	}
	return fmt.Errorf("unknown outcome %q", b)
}

// Decision is the answer to one Request. Its JSON form is stable: the
// What-If endpoint returns it and the sign-in log stores it.
type Decision struct {
	Outcome Outcome `json:"outcome"`
	// Reason says why the outcome is not allow: blocked-by-policy,
	// approval-unavailable or controls-not-satisfied.
	Reason Reason `json:"reason,omitempty"`
	// BlockedBy names the policy that blocked.
	BlockedBy string `json:"blocked_by,omitempty"`
	// Missing lists, for a challenge, what the user must still provide,
	// in prompt order. Every requirement must be met; each is met by any
	// one of its alternatives.
	Missing []Requirement `json:"missing,omitempty"`
	// ACRs are the requested authentication contexts whose applicable
	// policies are all satisfied: the acrs claim of a token. It may share
	// its backing array with Request.AuthContexts; treat it as read-only.
	ACRs []string `json:"acrs,omitempty"`
	// UnknownContexts are requested contexts that no policy file
	// declares. They are never satisfied, so a typo in an app's
	// acr_values cannot pass for a completed step-up.
	UnknownContexts []string `json:"unknown_contexts,omitempty"`
	// Session holds the session controls of the applied policies.
	Session SessionResult `json:"session"`
	// ReportOnlyUnmet counts the report-only policies that applied and
	// would have blocked or challenged had they been enabled (their
	// result is report-only-failure or report-only-user-action-required).
	// Filled when EvaluateOptions.ReportOnly or Explain is set. It is a
	// summary for callers that do not explain every request, so it stays
	// out of the JSON form, which lists each policy's result instead.
	ReportOnlyUnmet int `json:"-"`
	// Policies has one result per policy, in policy order; only filled
	// when EvaluateOptions.Explain is set.
	Policies []PolicyResult `json:"policies,omitempty"`
}

// Requirement is one thing the user must do, met by any of AnyOf.
type Requirement struct {
	AnyOf []Need `json:"any_of"`
	// Policies are the policies that demand it, in policy order.
	Policies []string `json:"policies"`
}

// Need is one way of meeting a requirement.
type Need struct {
	Kind ControlKind `json:"kind"`
	// Strength is the strength's name, which is also its acr value.
	Strength string `json:"strength,omitempty"`
	// MaxAge is the freshness window: every event of the proof must be
	// at most this old when the request is evaluated again. Zero means
	// any proof in the session counts.
	MaxAge Duration `json:"max_age,omitempty"`
	// EveryTime is set when the window comes from sign_in_frequency:
	// every-time (MaxAge is then EveryTimeSkew).
	EveryTime bool `json:"every_time,omitempty"`
	// Terms is the terms-of-use id to accept.
	Terms string `json:"terms,omitempty"`
	// Options are, for a strength, the sets of methods that proven now
	// would complete it (see strength.Strength.Missing), like
	// [["totp"], ["webauthn"]]. The step-up page keeps those the user has
	// registered.
	Options [][]string `json:"options,omitempty"`
}

// String describes the need for people: "mfa within 1h".
func (n Need) String() string {
	var s string
	switch n.Kind {
	case KindStrength:
		switch n.Strength {
		case strength.MFA:
			s = n.Strength
		case strength.SingleFactor:
			s = "sign-in" // what a sign-in frequency asks for
		default:
			s = "strength " + n.Strength
		}
		switch {
		case n.EveryTime:
			s += " every time"
		case n.MaxAge > 0:
			s += " within " + n.MaxAge.String()
		}
	case KindTermsOfUse:
		s = "accept terms of use " + n.Terms
	default:
		s = n.Kind.String()
	}
	return s
}

// SessionResult is the strictest session control among applied
// policies.
type SessionResult struct {
	// SignInFrequency is the shortest sign-in frequency; zero when no
	// applied policy sets one.
	SignInFrequency Duration `json:"sign_in_frequency,omitempty"`
	EveryTime       bool     `json:"every_time,omitempty"`
	// PersistentBrowser is "never" if any applied policy says never,
	// else "always" if one says always, else empty (the default).
	PersistentBrowser string `json:"persistent_browser,omitempty"`
}

// Result is a policy's result in one evaluation.
type Result string

// Results. Report-only policies never affect the outcome; their result
// says what would have happened.
const (
	ResultApplied                      Result = "applied"
	ResultNotApplied                   Result = "not-applied"
	ResultReportOnlySuccess            Result = "report-only-success"
	ResultReportOnlyFailure            Result = "report-only-failure"
	ResultReportOnlyUserActionRequired Result = "report-only-user-action-required"
	ResultReportOnlyNotApplied         Result = "report-only-not-applied"
)

// PolicyResult is what one policy did.
type PolicyResult struct {
	Policy string `json:"policy"`
	State  State  `json:"state"`
	Result Result `json:"result"`
	// Satisfied is whether an applied policy's grant is met (false for
	// block).
	Satisfied bool `json:"satisfied"`
	// Reason is the first condition that did not match for a policy that
	// did not apply, or why an applied one is not satisfied.
	Reason Reason `json:"reason,omitempty"`
	// Detail explains a CEL rule that failed (and so counted as matching).
	Detail string `json:"detail,omitempty"`
	// Grant is block, all-of or one-of, for an applied policy.
	Grant    string          `json:"grant,omitempty"`
	Controls []ControlResult `json:"controls,omitempty"`
	// Session describes the policy's session controls, if any.
	Session string `json:"session,omitempty"`
}

// ControlResult is one control of an applied policy.
type ControlResult struct {
	Control   string   `json:"control"`
	MaxAge    Duration `json:"max_age,omitempty"`
	EveryTime bool     `json:"every_time,omitempty"`
	Satisfied bool     `json:"satisfied"`
}

// String writes "mfa within 1h".
func (c ControlResult) String() string {
	switch {
	case c.EveryTime:
		return c.Control + " every time"
	case c.MaxAge > 0:
		return c.Control + " within " + c.MaxAge.String()
	}
	return c.Control
}

// Duration is a time.Duration that reads and writes as "90s", "10m",
// "1h30m" or "7d" in JSON.
type Duration time.Duration

// String writes the duration compactly.
func (d Duration) String() string { return formatDuration(time.Duration(d)) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := strength.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// formatDuration writes whole days as "7d" and drops zero units:
// 90m is "1h30m", not "1h30m0s".
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	const day = 24 * time.Hour
	if d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String() // "1h30m0s"
	if d%time.Minute == 0 {
		s = strings.TrimSuffix(s, "0s") // the seconds are "0s" here: "1h30m"
	}
	if d%time.Hour == 0 {
		s = strings.TrimSuffix(s, "0m") // and the minutes "0m": "1h"
	}
	return s
}
