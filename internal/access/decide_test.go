package access_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policytest"
	"github.com/stepgate/stepgate/internal/reason"
)

const decidePolicies = `auth_contexts:
  - {id: c2, name: Transfer}
  - {id: c3, name: Admin}
policies:
  - name: c2-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c2]}
    grant: {controls: [mfa]}
  - name: c3-passkey
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c3]}
    grant: {controls: [{strength: phishing-resistant}]}
  - name: risky-users-change-password
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {user_risk: [high]}
    grant: {operator: all-of, controls: [mfa, password-change]}
  - name: staff-register-with-mfa
    state: enabled
    users: {include: {groups: [staff]}}
    target: {user_actions: [register-security-info]}
    grant: {controls: [mfa]}
  - name: block-legacy
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {client_apps: [legacy]}
    grant: block
`

func decideSnapshot(t *testing.T) *policy.Snapshot {
	t.Helper()
	snap := policytest.Snapshot(t, decidePolicies)
	return snap
}

func TestDecide(t *testing.T) {
	snap := decideSnapshot(t)
	now := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	pwd := func(ago time.Duration) strength.Event {
		return strength.Event{Method: "password", Time: now.Add(-ago), AMR: []string{"pwd"}}
	}
	totp := func(ago time.Duration) strength.Event {
		return strength.Event{Method: "totp", Time: now.Add(-ago), AMR: []string{"otp"}}
	}
	have := func(m ...string) access.MethodSource { return func() ([]string, error) { return m, nil } }
	listFails := func() ([]string, error) { return nil, errors.New("store down") }
	for _, tc := range []struct {
		name     string
		contexts []string
		events   []strength.Event
		risk     string
		client   string
		after    time.Duration // a re-ask counting proofs from now minus after
		methods  access.MethodSource
		want     policy.Outcome
		reason   reason.Code
		offered  []string
		reask    access.Reask
		pwChange bool
		fails    bool
	}{
		{name: "ok/no-policy-applies", events: []strength.Event{pwd(time.Hour)}, methods: listFails, want: policy.OutcomeAllow},
		{name: "ok/mfa-met", contexts: []string{"c2"}, events: []strength.Event{pwd(time.Hour), totp(time.Hour)}, methods: listFails, want: policy.OutcomeAllow},
		{name: "challenge/mfa-offers-the-second-factor", contexts: []string{"c2"}, events: []strength.Event{pwd(time.Hour)},
			methods: have("totp", "password"), want: policy.OutcomeChallenge, reason: reason.ControlsNotSatisfied, offered: []string{"totp"}},
		{name: "block/no-usable-method", contexts: []string{"c3"}, events: []strength.Event{pwd(time.Hour)},
			methods: have("totp", "password"), want: policy.OutcomeBlock, reason: reason.NoUsableMethod},
		{name: "block/undeclared-context", contexts: []string{"c9"}, events: []strength.Event{pwd(time.Hour)},
			methods: have("totp", "password"), want: policy.OutcomeBlock, reason: reason.UnknownContext},
		{name: "block/policy", client: policy.ClientLegacy, events: []strength.Event{pwd(time.Hour)}, methods: listFails,
			want: policy.OutcomeBlock, reason: reason.Blocked},
		// The policies are met by the whole session; the re-ask asks the
		// proofs after its point to meet them again.
		{name: "challenge/max-age", contexts: []string{"c2"}, events: []strength.Event{pwd(time.Hour), totp(time.Hour)}, after: 10 * time.Minute,
			methods: have("totp", "password"), want: policy.OutcomeChallenge, reason: reason.MaxAgeExceeded, offered: []string{"totp", "password"}, reask: access.ReaskMaxAge},
		{name: "ok/max-age-met-by-fresh-proofs", contexts: []string{"c2"}, events: []strength.Event{pwd(time.Minute), totp(time.Minute)}, after: 10 * time.Minute,
			methods: listFails, want: policy.OutcomeAllow},
		// A password retyped after the point does not carry the old TOTP
		// proof into the re-ask.
		{name: "challenge/re-ask-counts-only-new-proofs", contexts: []string{"c2"}, events: []strength.Event{pwd(time.Hour), totp(time.Hour), pwd(time.Minute)},
			after: 10 * time.Minute, methods: have("totp", "password"), want: policy.OutcomeChallenge, reason: reason.MaxAgeExceeded, offered: []string{"totp"}, reask: access.ReaskMaxAge},
		{name: "challenge/password-change-after-mfa", risk: "high", events: []strength.Event{pwd(time.Hour), totp(time.Hour)},
			methods: listFails, want: policy.OutcomeChallenge, reason: reason.ControlsNotSatisfied, pwChange: true},
		{name: "challenge/mfa-before-password-change", risk: "high", events: []strength.Event{pwd(time.Hour)},
			methods: have("totp", "password"), want: policy.OutcomeChallenge, reason: reason.ControlsNotSatisfied, offered: []string{"totp"}},
		{name: "fail/methods-unlisted", contexts: []string{"c2"}, events: []strength.Event{pwd(time.Hour)}, methods: listFails, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &policy.Request{Subject: policy.Subject{ID: "u1", Username: "alice"}, App: "bank", AuthContexts: tc.contexts,
				Events: tc.events, UserRisk: tc.risk, ClientApp: policy.ClientBrowser, Now: now}
			if tc.client != "" {
				req.ClientApp = tc.client
			}
			a := access.Ask{Snapshot: snap, Request: req}
			if tc.after > 0 {
				a.ReaskAfter, a.Reask = now.Add(-tc.after), access.ReaskMaxAge
			}
			v, err := access.Decide(a, tc.methods)
			if tc.fails {
				if err == nil {
					t.Fatalf("verdict %+v, want the method source's error", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Outcome != tc.want || v.Reason != tc.reason || !slices.Equal(v.Methods, tc.offered) || v.Reask != tc.reask || v.PasswordChange != tc.pwChange {
				t.Errorf("verdict %s (%s) methods %v reask %q password change %v\nwant %s (%s) methods %v reask %q password change %v",
					v.Outcome, v.Reason, v.Methods, v.Reask, v.PasswordChange, tc.want, tc.reason, tc.offered, tc.reask, tc.pwChange)
			}
			if tc.after > 0 && v.Outcome != policy.OutcomeAllow && !v.ProofsAfter.Equal(a.ReaskAfter) {
				t.Errorf("proofs after %v, want the re-ask's point %v", v.ProofsAfter, a.ReaskAfter)
			}
			if v.Outcome == policy.OutcomeAllow && slices.Contains(tc.contexts, "c2") && !slices.Contains(v.ACRs, "c2") {
				t.Errorf("acrs %v, want c2 established", v.ACRs)
			}
		})
	}
}
