package strength

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Built-in strength names. Each is also the acr value a token carries
// when the strength was met.
const (
	// MFA is any two factors, or one passwordless method that verifies the
	// person on the device.
	MFA = "mfa"
	// Passwordless is a user-verified passkey or a phone sign-in.
	Passwordless = "passwordless"
	// PhishingResistant needs a WebAuthn proof, which is bound to
	// Stepgate's origin and so cannot be relayed by a look-alike site.
	PhishingResistant = "phishing-resistant"
	// SingleFactor is any sign-in at all. On its own it asks for nothing a
	// signed-in user lacks; with a freshness window it means "sign in
	// again", which is what a policy's sign-in frequency needs.
	SingleFactor = "single-factor"
)

// builtins are defined in the same syntax as custom strengths so both go
// through one parser. Combinations are listed in the order a step-up page
// should offer them.
var builtins = []Def{
	{Name: MFA, Description: "two factors, or one passwordless method", Combinations: []string{
		"webauthn:uv", "push:uv",
		"password+webauthn", "password+push", "password+totp",
		"password+otp-sms", "password+otp-email", "password+recovery-code",
	}},
	{Name: Passwordless, Description: "a user-verified passkey or a phone sign-in", Combinations: []string{"webauthn:uv", "push:uv"}},
	{Name: PhishingResistant, Description: "a WebAuthn proof, alone with user verification or after a password", Combinations: []string{"webauthn:uv", "password+webauthn"}},
	{Name: SingleFactor, Description: "any sign-in", Combinations: []string{"password", "webauthn", "push:uv"}},
}

// IsBuiltin reports whether name is a built-in strength.
func IsBuiltin(name string) bool {
	return slices.ContainsFunc(builtins, func(d Def) bool { return d.Name == name })
}

// Strength is a named set of allowed method combinations.
type Strength struct {
	Name         string
	Description  string
	Combinations []Combination
	// AAGUIDs, when set, are the only authenticator models whose WebAuthn
	// proofs count toward this strength (lower-case UUIDs). A deployment
	// can so demand, say, its issued hardware keys for admin actions
	// while synced passkeys still count for everyday MFA.
	AAGUIDs []string
}

// ACR is the acr value a token carries when this strength was met.
func (s *Strength) ACR() string { return s.Name }

// Satisfied reports whether events meet one of the combinations, every
// event of it no older than maxAge at now (maxAge 0: any age).
func (s *Strength) Satisfied(events []Event, now time.Time, maxAge time.Duration) bool {
	events = s.admissible(events)
	for _, c := range s.Combinations {
		if c.satisfiedBy(events, now, maxAge) {
			return true
		}
	}
	return false
}

// Missing returns what the user could add to meet the strength: each
// option is a set of methods that, proven now, would complete one
// combination given the fresh events already present. Options that ask
// for more than another option are dropped, and the rest are ordered
// smallest first, then in the strength's own order. Nil means the
// strength is already met. Callers that know which methods the user has
// registered filter the options down to those the user can complete.
func (s *Strength) Missing(events []Event, now time.Time, maxAge time.Duration) []Combination {
	events = s.admissible(events)
	var opts []Combination
	for _, c := range s.Combinations {
		m := c.missingFrom(events, now, maxAge)
		if len(m) == 0 {
			return nil
		}
		opts = append(opts, m)
	}
	return minimal(opts)
}

// admissible drops WebAuthn proofs from authenticator models the
// strength does not accept. Without an allow-list it returns events as
// they are, so the common path does not allocate.
func (s *Strength) admissible(events []Event) []Event {
	if len(s.AAGUIDs) == 0 {
		return events
	}
	out := make([]Event, 0, len(events))
	for _, e := range events {
		if e.Method == WebAuthn && !slices.Contains(s.AAGUIDs, strings.ToLower(e.AAGUID)) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// minimal removes options that need at least as much as another option:
// with "webauthn" on offer, "webauthn:uv" is never the easier path.
func minimal(opts []Combination) []Combination {
	var keep []Combination
	for i, a := range opts {
		dominated := false
		for j, b := range opts {
			if i == j {
				continue
			}
			// a covers b: doing a does b too, so b is easier or equal. On a
			// tie keep the earlier one.
			if a.covers(b) && (!b.covers(a) || j < i) {
				dominated = true
				break
			}
		}
		if !dominated {
			keep = append(keep, a)
		}
	}
	slices.SortStableFunc(keep, func(a, b Combination) int { return len(a) - len(b) })
	return keep
}

// Implies reports whether meeting s always meets o as well, at the same
// freshness: every combination of s covers some combination of o.
func (s *Strength) Implies(o *Strength) bool {
	// A model allow-list on o is only implied by a narrower one on s.
	if len(o.AAGUIDs) > 0 && (len(s.AAGUIDs) == 0 || slices.ContainsFunc(s.AAGUIDs, func(a string) bool { return !slices.Contains(o.AAGUIDs, a) })) {
		return false
	}
	for _, c := range s.Combinations {
		if !slices.ContainsFunc(o.Combinations, c.covers) {
			return false
		}
	}
	return true
}

// Set is an immutable collection of strengths: the built-ins plus custom
// ones from configuration.
type Set struct {
	list   []*Strength
	byName map[string]*Strength
}

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	aaguidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// Def is a custom strength as written in configuration.
type Def struct {
	Name         string
	Description  string
	Combinations []string
	// AAGUIDs limits WebAuthn proofs to these authenticator models.
	AAGUIDs []string
}

// NewSet builds the built-in strengths and the custom defs. It reports
// every mistake at once, joined.
func NewSet(defs ...Def) (*Set, error) {
	s := &Set{byName: make(map[string]*Strength)}
	for _, b := range builtins {
		st, err := build(b)
		if err != nil {
			panic("strength: bad built-in: " + err.Error()) // a programming error caught by every test run
		}
		s.add(st)
	}
	var errs []error
	for _, d := range defs {
		if err := CheckName(d.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := s.byName[d.Name]; dup {
			errs = append(errs, fmt.Errorf("strength %q is defined twice (or is built in)", d.Name))
			continue
		}
		st, err := build(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.add(st)
	}
	return s, errors.Join(errs...)
}

// CheckName reports whether name can name a custom strength.
func CheckName(name string) error {
	switch {
	case IsBuiltin(name):
		return fmt.Errorf("strength %q is built in; choose another name", name)
	case !nameRE.MatchString(name):
		return fmt.Errorf("strength name %q must be lower-case letters, digits and hyphens, starting with a letter", name)
	}
	return nil
}

func build(d Def) (*Strength, error) {
	if len(d.Combinations) == 0 {
		return nil, fmt.Errorf("strength %q lists no combinations", d.Name)
	}
	st := &Strength{Name: d.Name, Description: d.Description}
	for _, a := range d.AAGUIDs {
		a = strings.ToLower(strings.TrimSpace(a))
		if !aaguidRE.MatchString(a) {
			return nil, fmt.Errorf("strength %q: %q is not an AAGUID; write it like cb69481e-8ff7-4039-93ec-0a2729a154a8", d.Name, a)
		}
		st.AAGUIDs = append(st.AAGUIDs, a)
	}
	for _, raw := range d.Combinations {
		c, err := ParseCombination(raw)
		if err != nil {
			return nil, fmt.Errorf("strength %q: %w", d.Name, err)
		}
		st.Combinations = append(st.Combinations, c)
	}
	return st, nil
}

func (s *Set) add(st *Strength) {
	s.list = append(s.list, st)
	s.byName[st.Name] = st
}

// Lookup returns the strength called name.
func (s *Set) Lookup(name string) (*Strength, bool) {
	st, ok := s.byName[name]
	return st, ok
}

// Names lists every strength, built-ins first, then custom ones in
// definition order.
func (s *Set) Names() []string {
	out := make([]string, len(s.list))
	for i, st := range s.list {
		out[i] = st.Name
	}
	return out
}

// Satisfied reports whether events meet strength name within maxAge; an
// unknown name is never met.
func (s *Set) Satisfied(name string, events []Event, now time.Time, maxAge time.Duration) bool {
	st, ok := s.byName[name]
	return ok && st.Satisfied(events, now, maxAge)
}

// SatisfiedNames lists every strength events meet within maxAge, in Names
// order. The OIDC provider uses it to pick the acr of a new token.
func (s *Set) SatisfiedNames(events []Event, now time.Time, maxAge time.Duration) []string {
	var out []string
	for _, st := range s.list {
		if st.Satisfied(events, now, maxAge) {
			out = append(out, st.Name)
		}
	}
	return out
}

// Missing returns the options that would meet strength name (see
// Strength.Missing); nil when it is met or unknown.
func (s *Set) Missing(name string, events []Event, now time.Time, maxAge time.Duration) []Combination {
	st, ok := s.byName[name]
	if !ok {
		return nil
	}
	return st.Missing(events, now, maxAge)
}

// Implies reports whether meeting strength a always meets b; false when
// either is unknown.
func (s *Set) Implies(a, b string) bool {
	sa, okA := s.byName[a]
	sb, okB := s.byName[b]
	return okA && okB && sa.Implies(sb)
}

// Strongest names the strongest built-in strength events meet — the acr
// of a token or assertion nobody asked a particular strength for.
func (s *Set) Strongest(events []Event, now time.Time) string {
	for _, name := range []string{PhishingResistant, Passwordless, MFA} {
		if s.Satisfied(name, events, now, 0) {
			return name
		}
	}
	return SingleFactor
}
