package policy

import (
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

func TestPasswordChangedThisSession(t *testing.T) {
	t.Parallel()
	ev := func(spec string) []strength.Event {
		e, err := strength.ParseEvents(spec, goldenNow)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tests := []struct {
		name    string
		events  []strength.Event
		changed time.Time
		want    bool
	}{
		{"ok/after-first-event", ev("pwd@-10m,totp@-9m"), goldenNow.Add(-5 * time.Minute), true},
		{"ok/same-instant", ev("pwd@-10m"), goldenNow.Add(-10 * time.Minute), true},
		{"ok/events-out-of-order", ev("totp@-9m,pwd@-20m"), goldenNow.Add(-15 * time.Minute), true},
		{"fail/before-session", ev("pwd@-10m"), goldenNow.Add(-time.Hour), false},
		{"fail/before-earliest-of-unordered", ev("totp@-9m,pwd@-20m"), goldenNow.Add(-25 * time.Minute), false},
		{"fail/never-changed", ev("pwd@-10m"), time.Time{}, false},
		{"fail/no-session", nil, goldenNow, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &Request{Events: tt.events, PasswordChangedAt: tt.changed, Now: goldenNow}
			if got := passwordChangedThisSession(r); got != tt.want {
				t.Errorf("passwordChangedThisSession = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSignInFrequencyReauth checks when a frequency adds its own
// "sign in again" requirement: only when the grant can be met without a
// fresh sign-in.
func TestSignInFrequencyReauth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		grant string
		want  bool
	}{
		{"ok/mfa-implies-sign-in", "{controls: [mfa]}", false},
		{"ok/phr-implies-sign-in", "{controls: [{strength: phishing-resistant}]}", false},
		{"ok/all-of-with-device", "{controls: [mfa, compliant-device]}", false},
		{"ok/one-of-strengths", "{operator: one-of, controls: [mfa, {strength: passwordless}]}", false},
		{"fail/one-of-with-device", "{operator: one-of, controls: [mfa, compliant-device]}", true},
		{"fail/device-only", "{controls: [compliant-device]}", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snap := mustCompile(t, policyYAML(allUsers+allApps+"    grant: "+tt.grant+"\n    session: {sign_in_frequency: 1h}\n"))
			got := false
			for _, grp := range snap.policies[0].grant.groups {
				for _, ct := range grp {
					got = got || ct.reauth
				}
			}
			if got != tt.want {
				t.Errorf("reauth requirement added = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestControlKindText(t *testing.T) {
	t.Parallel()
	for k := KindStrength; k <= KindApproval; k++ {
		b, _ := k.MarshalText()
		var back ControlKind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("round trip of %v: %v, %v", k, back, err)
		}
	}
	var k ControlKind
	if k.UnmarshalText([]byte("teleport")) == nil || k.UnmarshalText([]byte("")) == nil {
		t.Error("unknown kinds must not parse")
	}
}
