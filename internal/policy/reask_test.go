package policy

import (
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// reaskPolicies: crm needs MFA, a c3 context a passkey; a risky user
// must change the password after MFA; the wiki asks for nothing.
const reaskPolicies = `auth_contexts:
  - {id: c3, name: Admin}
policies:
  - name: crm-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [crm]}}
    grant: {controls: [mfa]}
  - name: c3-passkey
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c3]}
    grant: {controls: [{strength: phishing-resistant}]}
  - name: risky-change
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [hr]}}
    conditions: {user_risk: [high]}
    grant: {controls: [mfa, password-change]}
`

// TestReask performs the re-ask attacks: a session that once held a
// strong proof answers a later re-ask with a weaker one.
func TestReask(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, reaskPolicies)
	t0 := time.Date(2040, 3, 1, 9, 0, 0, 0, time.UTC) // an arbitrary, injected clock
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	pwd := func(m int) strength.Event { return strength.Event{Method: strength.Password, Time: at(m)} }
	totp := func(m int) strength.Event { return strength.Event{Method: strength.TOTP, Time: at(m)} }
	passkey := func(m int) strength.Event {
		return strength.Event{Method: strength.WebAuthn, Time: at(m), UserVerified: true, PhishingResistant: true}
	}
	signedInStrong := []strength.Event{pwd(0), totp(1), passkey(2)}
	everything := []string{strength.WebAuthn, strength.TOTP, strength.Password}
	tests := []struct {
		name     string
		app      string
		contexts []string
		risk     string
		changed  time.Time
		events   []strength.Event
		after    time.Time
		allow    bool
		methods  []string // offered for a challenge
	}{
		{name: "fail/passkey-rule-password-after", contexts: []string{"c3"}, events: append(slices.Clone(signedInStrong), pwd(20)), after: at(10), methods: []string{strength.WebAuthn}},
		{name: "fail/passkey-rule-nothing-after", contexts: []string{"c3"}, events: signedInStrong, after: at(10), methods: []string{strength.WebAuthn}},
		{name: "ok/passkey-rule-passkey-after", contexts: []string{"c3"}, events: append(slices.Clone(signedInStrong), passkey(20)), after: at(10), allow: true},
		{name: "fail/mfa-rule-password-after", app: "crm", events: append(slices.Clone(signedInStrong), pwd(20)), after: at(10), methods: []string{strength.WebAuthn, strength.TOTP}},
		{name: "fail/mfa-rule-totp-after-without-password", app: "crm", events: append(slices.Clone(signedInStrong), totp(20)), after: at(10), methods: []string{strength.WebAuthn, strength.Password}},
		{name: "ok/mfa-rule-password-totp-after", app: "crm", events: append(slices.Clone(signedInStrong), pwd(20), totp(21)), after: at(10), allow: true},
		{name: "ok/mfa-rule-passkey-after", app: "crm", events: append(slices.Clone(signedInStrong), passkey(20)), after: at(10), allow: true},
		{name: "fail/max-age-proof-at-the-point", app: "crm", events: []strength.Event{pwd(10), totp(10)}, after: at(10), methods: everything},
		{name: "fail/no-policy-nothing-after", app: "wiki", events: signedInStrong, after: at(10), methods: []string{strength.WebAuthn, strength.Password}},
		{name: "fail/no-policy-second-factor-alone-after", app: "wiki", events: append(slices.Clone(signedInStrong), totp(20)), after: at(10), methods: []string{strength.WebAuthn, strength.Password}},
		{name: "ok/no-policy-password-after", app: "wiki", events: append(slices.Clone(signedInStrong), pwd(20)), after: at(10), allow: true},
		// The password was changed during this session, before the point:
		// the re-ask still knows when the session began.
		{name: "ok/password-changed-this-session", app: "hr", risk: RiskHigh, changed: at(3), events: []strength.Event{pwd(0), totp(1), pwd(20), totp(21)}, after: at(10), allow: true},
		{name: "fail/password-changed-before-this-session", app: "hr", risk: RiskHigh, changed: at(-1), events: []strength.Event{pwd(0), totp(1), pwd(20), totp(21)}, after: at(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := &Request{Subject: Subject{ID: "u1", Username: "admin"}, App: tt.app, AuthContexts: tt.contexts,
				UserRisk: tt.risk, PasswordChangedAt: tt.changed, Events: tt.events, Now: at(30)}
			d := snap.Reask(req, tt.after, EvaluateOptions{})
			if got := d.Outcome == OutcomeAllow; got != tt.allow {
				t.Fatalf("re-ask after %s: %s (missing %+v), want allow=%v", tt.after.Format(time.Kitchen), d.Outcome, d.Missing, tt.allow)
			}
			if tt.allow || tt.methods == nil {
				return
			}
			rest := slices.DeleteFunc(slices.Clone(d.Missing), Requirement.IsPasswordChange)
			methods, ok := StepUpMethods(rest, everything)
			if !ok || !slices.Equal(methods, tt.methods) {
				t.Fatalf("step-up offers %v (ok %v), want %v", methods, ok, tt.methods)
			}
			if len(req.Events) != len(tt.events) {
				t.Fatal("Reask changed the caller's request")
			}
		})
	}
}

// TestStepUpMethodsLeavesOutLongerPaths: a passkey rule never offers the
// password to a user with a passkey; a user without one still gets the
// password+security-key path, and MFA offers the password only beside
// the factor it pairs with.
func TestStepUpMethodsLeavesOutLongerPaths(t *testing.T) {
	t.Parallel()
	phr := []Requirement{{AnyOf: []Need{{Kind: KindStrength, Strength: strength.PhishingResistant,
		Options: [][]string{{"webauthn:uv"}, {"password", "webauthn"}}}}}}
	mfaFromNothing := []Requirement{{AnyOf: []Need{{Kind: KindStrength, Strength: strength.MFA,
		Options: [][]string{{"webauthn:uv"}, {"password", "webauthn"}, {"password", "totp"}}}}}}
	for _, tc := range []struct {
		name      string
		reqs      []Requirement
		available []string
		want      []string
	}{
		{"ok/passkey-rule-offers-the-passkey-only", phr, []string{"webauthn", "totp", "password"}, []string{"webauthn"}},
		{"ok/mfa-offers-password-beside-totp", mfaFromNothing, []string{"webauthn", "totp", "password"}, []string{"webauthn", "totp", "password"}},
		{"ok/mfa-without-totp-is-the-passkey", mfaFromNothing, []string{"webauthn", "password"}, []string{"webauthn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := StepUpMethods(tc.reqs, tc.available)
			if !ok || !slices.Equal(got, tc.want) {
				t.Fatalf("StepUpMethods = %v (ok %v), want %v", got, ok, tc.want)
			}
		})
	}
}

// TestProvenSince: a token's proof time is when the proofs its claims
// rest on began, not its last proof: a password retyped after a passkey
// leaves a passkey token's proof time at the passkey.
func TestProvenSince(t *testing.T) {
	t.Parallel()
	snap := mustCompile(t, reaskPolicies)
	t0 := time.Date(2040, 3, 1, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	pwd := strength.Event{Method: strength.Password, Time: at(0)}
	totp := strength.Event{Method: strength.TOTP, Time: at(5)}
	passkey := strength.Event{Method: strength.WebAuthn, Time: at(10), UserVerified: true, PhishingResistant: true}
	again := strength.Event{Method: strength.Password, Time: at(60)}
	for _, tc := range []struct {
		name     string
		app      string
		contexts []string
		acr      string
		events   []strength.Event
		want     time.Time
	}{
		{"ok/passkey-context-rests-on-the-passkey", "wiki", []string{"c3"}, strength.PhishingResistant, []strength.Event{pwd, totp, passkey, again}, at(10)},
		{"ok/mfa-app-rests-on-both-factors", "crm", nil, strength.MFA, []strength.Event{pwd, totp, again}, at(5)},
		{"ok/sign-in-only-rests-on-the-last-sign-in", "wiki", nil, strength.SingleFactor, []strength.Event{pwd, totp, again}, at(60)},
		{"ok/no-events", "wiki", nil, "", nil, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := &Request{Subject: Subject{ID: "u1"}, App: tc.app, AuthContexts: tc.contexts, Events: tc.events, Now: at(61)}
			if got := snap.ProvenSince(req, tc.acr); !got.Equal(tc.want) {
				t.Fatalf("ProvenSince = %s, want %s", got, tc.want)
			}
		})
	}
}

// BenchmarkReask compares a re-ask with the plain evaluation it adds to
// a max_age or single-use request.
func BenchmarkReask(b *testing.B) {
	doc, probs := Parse("p.yaml", []byte(reaskPolicies))
	if len(probs) > 0 {
		b.Fatal(probs)
	}
	snap, probs := Compile(nil, doc)
	if len(probs) > 0 {
		b.Fatal(probs)
	}
	t0 := time.Date(2040, 3, 1, 9, 0, 0, 0, time.UTC)
	req := &Request{Subject: Subject{ID: "u1"}, App: "crm", AuthContexts: []string{"c3"}, Now: t0.Add(time.Hour), Events: []strength.Event{
		{Method: strength.Password, Time: t0}, {Method: strength.TOTP, Time: t0.Add(time.Minute)},
		{Method: strength.WebAuthn, Time: t0.Add(50 * time.Minute), UserVerified: true, PhishingResistant: true},
		{Method: strength.Password, Time: t0.Add(51 * time.Minute)}, {Method: strength.TOTP, Time: t0.Add(52 * time.Minute)},
	}}
	b.Run("evaluate", func(b *testing.B) {
		for b.Loop() {
			snap.Evaluate(req, EvaluateOptions{})
		}
	})
	b.Run("reask", func(b *testing.B) {
		for b.Loop() {
			snap.Reask(req, t0.Add(45*time.Minute), EvaluateOptions{})
		}
	})
	b.Run("proven-since", func(b *testing.B) {
		for b.Loop() {
			snap.ProvenSince(req, strength.SingleFactor)
		}
	})
}
