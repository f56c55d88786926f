// Package strength decides which authentication strengths a session's
// authentication events satisfy, and what a user could add to reach one
// they do not yet have.
//
// An authentication strength is a named list of allowed method
// combinations ("password+totp", "webauthn:uv"). A combination is met when
// every one of its terms is matched by a distinct, fresh authentication
// event. The package is pure: it takes events and a clock reading and
// returns values, so the policy engine, the step-up page and the OIDC
// provider all reach the same answer.
package strength

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Method names used across Stepgate. An Event's Method is one of these.
const (
	Password     = "password"
	TOTP         = "totp"
	WebAuthn     = "webauthn"
	OTPEmail     = "otp-email"
	OTPSMS       = "otp-sms"
	Push         = "push"
	RecoveryCode = "recovery-code"
)

// methods lists every method in the order a step-up page offers them:
// phishing-resistant first, then app-based, then codes sent over
// channels an attacker can intercept, recovery last.
var methods = []string{WebAuthn, Push, TOTP, OTPSMS, OTPEmail, RecoveryCode, Password}

// Methods returns the known method names in prompt order.
func Methods() []string { return slices.Clone(methods) }

// Event is one completed proof of identity. It mirrors store.AuthEvent
// without importing it, so this package stays free of storage types.
type Event struct {
	Method string    `json:"method"`
	Time   time.Time `json:"time"`
	AMR    []string  `json:"amr,omitempty"`
	// PhishingResistant is true when the proof is bound to the origin
	// (WebAuthn), so a look-alike site cannot relay it.
	PhishingResistant bool `json:"phishing_resistant,omitempty"`
	// UserVerified is true when the authenticator itself verified the
	// person (PIN or biometric), which makes a passkey or a phone sign-in
	// a multi-factor proof on its own.
	UserVerified bool `json:"user_verified,omitempty"`
	// AAGUID is the authenticator model of a WebAuthn proof; strengths
	// with an AAGUID allow-list accept only those models.
	AAGUID string `json:"aaguid,omitempty"`
}

// userVerificationAMR are RFC 8176 values that show the authenticator
// verified the person rather than mere presence of a device. Stepgate's
// WebAuthn method records "user" when the UV flag was set.
var userVerificationAMR = []string{"user", "pin", "fpt", "face", "iris", "retina", "vbm"}

// UserVerifiedAMR reports whether amr shows user verification; callers
// use it to fill Event.UserVerified from a stored event's AMR values.
func UserVerifiedAMR(amr []string) bool {
	for _, v := range amr {
		if slices.Contains(userVerificationAMR, v) {
			return true
		}
	}
	return false
}

// Term is one element of a combination: a method, optionally qualified
// with ":uv" (the event must be user-verified) and ":phr" (it must be
// phishing-resistant).
type Term struct {
	Method            string
	UserVerified      bool
	PhishingResistant bool
}

// String writes the term as it appears in configuration: "webauthn:uv".
func (t Term) String() string {
	s := t.Method
	if t.UserVerified {
		s += ":uv"
	}
	if t.PhishingResistant {
		s += ":phr"
	}
	return s
}

// matches reports whether event e proves term t.
func (t Term) matches(e Event) bool {
	return e.Method == t.Method &&
		(!t.UserVerified || e.UserVerified) &&
		(!t.PhishingResistant || e.PhishingResistant)
}

// implies reports whether every event that matches t also matches u.
func (t Term) implies(u Term) bool {
	return t.Method == u.Method &&
		(t.UserVerified || !u.UserVerified) &&
		(t.PhishingResistant || !u.PhishingResistant)
}

// Combination is a set of terms that must all be proven.
type Combination []Term

// String writes the combination as it appears in configuration.
func (c Combination) String() string {
	parts := make([]string, len(c))
	for i, t := range c {
		parts[i] = t.String()
	}
	return strings.Join(parts, "+")
}

// ErrSyntax is wrapped by every ParseCombination error.
var ErrSyntax = errors.New("invalid combination")

// ParseCombination reads "password+totp" or "webauthn:uv". Each method
// may appear once: "totp+totp" would need two distinct TOTP proofs, which
// says nothing more about the person than one.
func ParseCombination(s string) (Combination, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty; write methods joined by +, like password+totp", ErrSyntax)
	}
	var c Combination
	for part := range strings.SplitSeq(s, "+") {
		t, err := parseTerm(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(c, func(o Term) bool { return o.Method == t.Method }) {
			return nil, fmt.Errorf("%w: %s appears twice in %q", ErrSyntax, t.Method, s)
		}
		c = append(c, t)
	}
	return c, nil
}

func parseTerm(s string) (Term, error) {
	name, quals, _ := strings.Cut(s, ":")
	t := Term{Method: name}
	if !slices.Contains(methods, name) {
		return t, fmt.Errorf("%w: unknown method %q; known methods are %s", ErrSyntax, name, strings.Join(sortedMethods(), ", "))
	}
	if quals == "" && strings.Contains(s, ":") {
		return t, fmt.Errorf("%w: %q has an empty qualifier; use :uv or :phr", ErrSyntax, s)
	}
	for q := range strings.SplitSeq(quals, ":") {
		switch q {
		case "":
		case "uv":
			t.UserVerified = true
		case "phr":
			t.PhishingResistant = true
		default:
			return t, fmt.Errorf("%w: unknown qualifier %q in %q; use :uv (user verified) or :phr (phishing-resistant)", ErrSyntax, q, s)
		}
	}
	return t, nil
}

func sortedMethods() []string {
	m := Methods()
	slices.Sort(m)
	return m
}

// fresh reports whether an event at time t still counts at now under a
// freshness window maxAge. maxAge 0 means the whole session counts. An
// event stamped slightly in the future (clock skew between nodes) counts:
// its age is negative, which is within any window.
func fresh(t, now time.Time, maxAge time.Duration) bool {
	return maxAge <= 0 || now.Sub(t) <= maxAge
}

// satisfiedBy reports whether events prove every term of c within the
// window. Terms name distinct methods, so distinct terms are always
// proven by distinct events.
func (c Combination) satisfiedBy(events []Event, now time.Time, maxAge time.Duration) bool {
	for _, t := range c {
		if !termProven(t, events, now, maxAge) {
			return false
		}
	}
	return true
}

func termProven(t Term, events []Event, now time.Time, maxAge time.Duration) bool {
	for i := range events {
		if t.matches(events[i]) && fresh(events[i].Time, now, maxAge) {
			return true
		}
	}
	return false
}

// missingFrom returns the terms of c that events do not prove.
func (c Combination) missingFrom(events []Event, now time.Time, maxAge time.Duration) Combination {
	var out Combination
	for _, t := range c {
		if !termProven(t, events, now, maxAge) {
			out = append(out, t)
		}
	}
	return out
}

// covers reports whether proving every term of c necessarily proves
// every term of d.
func (c Combination) covers(d Combination) bool {
	for _, u := range d {
		if !slices.ContainsFunc(c, func(t Term) bool { return t.implies(u) }) {
			return false
		}
	}
	return true
}
