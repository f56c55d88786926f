package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// ControlKind is the kind of a grant control. The constants are declared
// in prompt order: a step-up page asks for them in this order.
type ControlKind uint8

// Control kinds, in prompt order.
const (
	KindStrength ControlKind = iota + 1
	KindCompliantDevice
	KindPasswordChange
	KindTermsOfUse
	KindApproval
)

var kindNames = [...]string{"", "strength", "compliant-device", "password-change", "terms-of-use", "approval"}

func (k ControlKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText writes the kind's name.
func (k ControlKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *ControlKind) UnmarshalText(b []byte) error {
	for c := KindStrength; c <= KindApproval; c++ {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown control kind %q", b)
}

// Control names as written in policy files.
const (
	ControlMFA             = "mfa"
	ControlCompliantDevice = "compliant-device"
	ControlPasswordChange  = "password-change"
	ControlApproval        = "approval"
	ControlStrength        = "strength"
	ControlTermsOfUse      = "terms_of_use"
)

var controlNames = []string{ControlMFA, ControlCompliantDevice, ControlPasswordChange, ControlApproval, ControlStrength, ControlTermsOfUse}

// EveryTimeSkew is the freshness window of "sign_in_frequency:
// every-time": the proof must be newer than the start of the request
// minus this much. Without an allowance, the request that follows a
// step-up (a redirect, a retried POST) would itself be challenged again,
// forever; five minutes covers a slow step-up page and clock skew
// between nodes while still demanding a proof for this visit.
const EveryTimeSkew = 5 * time.Minute

// control is one compiled grant control.
type control struct {
	kind      ControlKind
	strength  *strength.Strength
	maxAge    time.Duration // freshness window for strengths; 0 = whole session
	terms     string
	label     string // as shown in results, precomputed so evaluation never formats
	everyTime bool   // maxAge comes from sign_in_frequency: every-time
	reauth    bool   // added by sign-in frequency rather than written in the grant
}

// grant is the compiled grant: block, or groups of controls that must
// all be met, each group met by any one of its controls. all-of [a, b]
// is [[a] [b]]; one-of [a, b] is [[a b]].
type grant struct {
	block  bool
	oneOf  bool
	groups [][]control
}

func (g *grant) operator() string {
	switch {
	case g.block:
		return "block"
	case g.oneOf:
		return "one-of"
	}
	return "all-of"
}

// satisfied reports whether r meets every group.
func (g *grant) satisfied(r *Request) bool {
	for _, grp := range g.groups {
		if !groupSatisfied(grp, r) {
			return false
		}
	}
	return true
}

func groupSatisfied(grp []control, r *Request) bool {
	for i := range grp {
		if grp[i].satisfied(r) {
			return true
		}
	}
	return false
}

func (c *control) satisfied(r *Request) bool {
	switch c.kind {
	case KindStrength:
		return c.strength.Satisfied(r.Events, r.Now, c.maxAge)
	case KindCompliantDevice:
		return r.Device.IsCompliant
	case KindPasswordChange:
		return passwordChangedThisSession(r)
	case KindTermsOfUse:
		return slices.Contains(r.AcceptedTerms, c.terms)
	}
	return false // approval: not grantable until just-in-time access lands
}

// passwordChangedThisSession: the password was changed at or after the
// session's first authentication. A change before this session does not
// count: the risk that demanded it was detected since. A re-ask (see
// Reask) counts proofs from a later point, but the session still began
// at its first event.
func passwordChangedThisSession(r *Request) bool {
	start := r.sessionStart
	if start.IsZero() {
		start = firstEvent(r.Events)
	}
	if r.PasswordChangedAt.IsZero() || start.IsZero() {
		return false
	}
	return !r.PasswordChangedAt.Before(start)
}

// frequency is a compiled sign-in frequency.
type frequency struct {
	window    time.Duration
	everyTime bool
}

func (f frequency) set() bool { return f.window > 0 }

func (c *compiler) grant(d *Document, path string, pol *Policy, freq frequency) grant {
	in := pol.Grant
	g := grant{block: in.Block}
	switch {
	case in.Block && (in.Operator != "" || len(in.Controls) > 0):
		c.addf(d, path, "block cannot be combined with operator or controls; a blocked request has nothing to prove")
		return g
	case in.Block:
		return g
	case len(in.Controls) == 0:
		c.addf(d, path, "is required; write grant: block, or list controls like [mfa, compliant-device]")
		return g
	}
	switch in.Operator {
	case "", "all-of":
	case "one-of":
		g.oneOf = true
	default:
		c.addf(d, path+".operator", "%q is not an operator%s", in.Operator, didYouMean(in.Operator, []string{"all-of", "one-of"}))
	}
	ctls := c.controls(d, path+".controls", in.Controls, freq)
	if g.oneOf {
		g.groups = [][]control{ctls}
	} else {
		for _, ct := range ctls {
			g.groups = append(g.groups, []control{ct})
		}
	}
	c.checkPasswordChange(d, path, pol, ctls, g.oneOf)
	if freq.set() && !c.grantReauthenticates(g) {
		sf, _ := c.strengths.Lookup(strength.SingleFactor)
		g.groups = append(g.groups, []control{{kind: KindStrength, strength: sf, maxAge: freq.window,
			everyTime: freq.everyTime, label: "sign-in", reauth: true}})
	}
	return g
}

func (c *compiler) controls(d *Document, path string, in []Control, freq frequency) []control {
	var out []control
	seen := map[string]bool{}
	for i, ct := range in {
		p := fmt.Sprintf("%s[%d]", path, i)
		cc, ok := c.control(d, p, ct, freq)
		if !ok {
			continue
		}
		if seen[cc.label] {
			c.addf(d, p, "%s is listed twice", cc.label)
			continue
		}
		seen[cc.label] = true
		out = append(out, cc)
	}
	slices.SortStableFunc(out, func(a, b control) int { return int(a.kind) - int(b.kind) })
	return out
}

func (c *compiler) control(d *Document, path string, in Control, freq frequency) (control, bool) {
	switch in.Name {
	case ControlMFA:
		return c.strengthControl(d, path, strength.MFA, freq)
	case ControlStrength:
		return c.strengthControl(d, path+".strength", in.Arg, freq)
	case ControlCompliantDevice:
		return control{kind: KindCompliantDevice, label: ControlCompliantDevice}, true
	case ControlPasswordChange:
		return control{kind: KindPasswordChange, label: ControlPasswordChange}, true
	case ControlApproval:
		return control{kind: KindApproval, label: ControlApproval}, true
	case ControlTermsOfUse:
		if _, ok := c.termIndex[in.Arg]; !ok {
			c.addf(d, path+".terms_of_use", "unknown terms of use %q%s", in.Arg, didYouMean(in.Arg, c.termIDs()))
			return control{}, false
		}
		return control{kind: KindTermsOfUse, terms: in.Arg, label: "terms-of-use:" + in.Arg}, true
	case "block":
		c.addf(d, path, "block is not a control; write grant: block")
	default:
		c.addf(d, path, "unknown control %q%s", in.Name, didYouMean(in.Name, controlNames))
	}
	return control{}, false
}

func (c *compiler) strengthControl(d *Document, path, name string, freq frequency) (control, bool) {
	st, ok := c.strengths.Lookup(name)
	if !ok && c.brokenStrengths[name] {
		return control{}, false
	}
	if !ok {
		c.addf(d, path, "unknown strength %q%s", name, didYouMean(name, c.strengths.Names()))
		return control{}, false
	}
	label := name
	if name != strength.MFA {
		label = "strength:" + name
	}
	return control{kind: KindStrength, strength: st, maxAge: freq.window, everyTime: freq.everyTime, label: label}, true
}

// checkPasswordChange enforces Entra's rule: a password change is only
// asked of a user flagged as risky, and only together with a strength, so
// the person changing the password has proven more than the password an
// attacker may hold.
func (c *compiler) checkPasswordChange(d *Document, path string, pol *Policy, ctls []control, oneOf bool) {
	if !slices.ContainsFunc(ctls, func(ct control) bool { return ct.kind == KindPasswordChange }) {
		return
	}
	if len(pol.Conditions.UserRisk) == 0 {
		c.addf(d, path+".controls", "password-change needs a conditions.user_risk condition: it is the remedy for a user whose password may be known to someone else")
	}
	if oneOf || !slices.ContainsFunc(ctls, func(ct control) bool { return ct.kind == KindStrength }) {
		c.addf(d, path+".controls", "password-change must be combined with mfa (or a strength) under operator all-of, so an attacker holding the old password cannot set a new one")
	}
}

// grantReauthenticates reports whether every way of meeting g already
// includes a fresh sign-in, which makes a separate sign-in frequency
// requirement redundant.
func (c *compiler) grantReauthenticates(g grant) bool {
	sf, _ := c.strengths.Lookup(strength.SingleFactor)
	implies := func(ct control) bool { return ct.kind == KindStrength && ct.strength.Implies(sf) }
	for _, grp := range g.groups {
		if slices.ContainsFunc(grp, func(ct control) bool { return !implies(ct) }) {
			continue
		}
		return true // this group can only be met by a fresh sign-in
	}
	return false
}

func (c *compiler) termIDs() []string {
	ids := make([]string, len(c.terms))
	for i, t := range c.terms {
		ids[i] = t.ID
	}
	return ids
}

// sessionControls are a policy's compiled session controls.
type sessionControls struct {
	freq       frequency
	persistent string // "", "always", "never"
}

func (c *compiler) session(d *Document, path string, in Session) sessionControls {
	var s sessionControls
	switch f := in.SignInFrequency; f {
	case "":
	case "every-time":
		s.freq = frequency{window: EveryTimeSkew, everyTime: true}
	default:
		dur, err := strength.ParseDuration(f)
		switch {
		case err != nil:
			c.addf(d, path+".sign_in_frequency", "%q is neither every-time nor a duration like 10m, 8h or 7d", f)
		case dur < time.Minute || dur > 365*24*time.Hour:
			c.addf(d, path+".sign_in_frequency", "%s is outside 1m..365d; use every-time for a proof at each visit", f)
		default:
			s.freq = frequency{window: dur}
		}
	}
	switch in.PersistentBrowser {
	case "", "always", "never":
		s.persistent = in.PersistentBrowser
	default:
		c.addf(d, path+".persistent_browser", "%q is not a mode%s", in.PersistentBrowser, didYouMean(in.PersistentBrowser, []string{"always", "never"}))
	}
	return s
}

// describe writes the session controls for results: "sign-in every 8h".
func (sc sessionControls) describe() string {
	var parts []string
	switch {
	case sc.freq.everyTime:
		parts = append(parts, "sign-in every time")
	case sc.freq.set():
		parts = append(parts, "sign-in every "+formatDuration(sc.freq.window))
	}
	if sc.persistent != "" {
		parts = append(parts, "persistent browser "+sc.persistent)
	}
	return strings.Join(parts, ", ")
}
