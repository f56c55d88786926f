package access

import (
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
)

// TestWithReported: a reported sign-in detection raises a session's risk
// until a proof other than the password made after the report remediates
// it; a proof from before the report (perhaps the thief's) does not.
func TestWithReported(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	pw := store.AuthEvent{Method: strength.Password, Time: t0}
	totpBefore := store.AuthEvent{Method: "totp", Time: t0.Add(time.Minute)}
	totpAfter := store.AuthEvent{Method: "totp", Time: t0.Add(time.Hour)}
	passAfter := store.AuthEvent{Method: tap.Method, Time: t0.Add(time.Hour)}
	high := []risk.SessionRisk{{Level: risk.High, Since: t0.Add(10 * time.Minute)}}
	for _, tc := range []struct {
		name     string
		level    string
		events   []store.AuthEvent
		reported []risk.SessionRisk
		want     string
	}{
		{"ok/nothing", "", []store.AuthEvent{pw}, nil, ""},
		{"ok/own-risk-kept", "medium", []store.AuthEvent{pw}, nil, "medium"},
		{"fail/reported-high", "", []store.AuthEvent{pw}, high, "high"},
		{"fail/raises-own-medium", "medium", []store.AuthEvent{pw}, high, "high"},
		{"fail/proof-before-report", "", []store.AuthEvent{pw, totpBefore}, high, "high"},
		{"fail/password-after-report", "", []store.AuthEvent{pw, {Method: strength.Password, Time: t0.Add(time.Hour)}}, high, "high"},
		{"fail/registration-only-after-report", "", []store.AuthEvent{pw, passAfter}, high, "high"},
		{"ok/mfa-after-report", "", []store.AuthEvent{pw, totpAfter}, high, ""},
		{"ok/lower-report-keeps-own", "high", []store.AuthEvent{pw}, []risk.SessionRisk{{Level: risk.Low, Since: t0}}, "high"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := WithReported(tc.level, tc.events, tc.reported); got != tc.want {
				t.Errorf("WithReported = %q, want %q", got, tc.want)
			}
		})
	}
}
