package risk

import (
	"testing"
	"time"
)

func TestUserRiskState(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	low := Detection{Type: TypeUnfamiliar, Level: Low, Reason: ReasonUnfamiliarProperties}
	medium := Detection{Type: TypeTravel, Level: Medium, Reason: ReasonAtypicalTravel}
	leaked := Detection{Type: TypeLeaked, Level: High, Reason: ReasonLeakedPassword}
	type step func(s *UserRiskState)
	raise := func(d Detection, at time.Duration) step {
		return func(s *UserRiskState) { s.Raise(d, t0.Add(at)) }
	}
	tests := []struct {
		name   string
		steps  []step
		at     time.Duration
		ageOut time.Duration
		want   Level
	}{
		{"ok/nothing", nil, 0, 0, None},
		{"fail/low-fresh", []step{raise(low, 0)}, 6 * day, 0, Low},
		{"ok/low-ages-out-after-seven-days", []step{raise(low, 0)}, 7 * day, 0, None},
		{"ok/low-custom-age-out", []step{raise(low, 0)}, 2 * day, day, None},
		{"fail/low-refreshed-by-new-low", []step{raise(low, 0), raise(low, 5*day)}, 10 * day, 0, Low},
		{"fail/medium-never-ages-out", []step{raise(medium, 0)}, 365 * day, 0, Medium},
		{"fail/low-after-high-stays-high", []step{raise(leaked, 0), raise(low, day)}, 30 * day, 0, High},
		{"ok/none-detection-ignored", []step{raise(Detection{Level: None}, 0)}, 0, 0, None},
		{"ok/dismissed", []step{raise(leaked, 0), func(s *UserRiskState) { s.Dismiss(t0.Add(day)) }}, 2 * day, 0, None},
		{"ok/remediated", []step{raise(leaked, 0), func(s *UserRiskState) { s.Remediated(t0.Add(day)) }}, 2 * day, 0, None},
		{"fail/confirmed-compromised", []step{raise(low, 0), func(s *UserRiskState) { s.ConfirmCompromised(t0.Add(day)) }}, 100 * day, 0, High},
		{"fail/raised-again-after-remediation", []step{raise(leaked, 0), func(s *UserRiskState) { s.Remediated(t0.Add(day)) }, raise(medium, 2*day)}, 3 * day, 0, Medium},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s UserRiskState
			for _, st := range tt.steps {
				st(&s)
			}
			if got := s.Effective(t0.Add(tt.at), tt.ageOut); got != tt.want {
				t.Errorf("Effective = %v, want %v (state %+v)", got, tt.want, s)
			}
		})
	}
	t.Run("ok/resolution-and-detections", func(t *testing.T) {
		t.Parallel()
		var s UserRiskState
		for i := range 30 {
			s.Raise(low, t0.Add(time.Duration(i)*time.Minute))
		}
		s.ConfirmCompromised(t0.Add(time.Hour))
		if len(s.Detections) != maxUserDetections || s.Detections[len(s.Detections)-1].Reason != ReasonConfirmedCompromised {
			t.Errorf("detections: %d, last %+v", len(s.Detections), s.Detections[len(s.Detections)-1])
		}
		if !s.Since.Equal(t0.Add(time.Hour)) || s.Resolution != "" {
			t.Errorf("since %v resolution %q", s.Since, s.Resolution)
		}
		s.Dismiss(t0.Add(2 * time.Hour))
		if s.Resolution != ResolutionDismissed || s.Level != None || len(s.Detections) != 0 {
			t.Errorf("after dismiss: %+v", s)
		}
		s.Raise(medium, t0.Add(3*time.Hour))
		s.Remediated(t0.Add(4 * time.Hour))
		if s.Resolution != ResolutionRemediated || s.Level != None {
			t.Errorf("after remediation: %+v", s)
		}
	})
}

// TestOutsideDetections: reported detections count until they expire,
// a repeated id is stored once, a flood of low ones never pushes out a
// high one, and dismissal clears them.
func TestOutsideDetections(t *testing.T) {
	t.Parallel()
	outside := func(id string, level Level, appliesTo string, expires time.Duration) OutsideDetection {
		return OutsideDetection{ID: id, Detection: Detection{Type: "edr", Level: level, Reason: "r"}, AppliesTo: appliesTo,
			SessionID: "s1", ReceivedAt: t0, ExpiresAt: t0.Add(expires)}
	}
	var s UserRiskState
	if !s.AddOutside(outside("a", High, AppliesToUser, time.Hour), t0) || s.AddOutside(outside("a", High, AppliesToUser, time.Hour), t0) {
		t.Fatal("the first add must store, a repeat must not")
	}
	s.AddOutside(outside("b", Medium, AppliesToSignIn, 2*time.Hour), t0)
	if got := s.Effective(t0, 0); got != High {
		t.Fatalf("user risk %v, want high", got)
	}
	if got := s.SignInRisks("s1", "", t0); len(got) != 1 || got[0].Level != Medium {
		t.Fatalf("sign-in risks %+v", got)
	}
	if got := s.Effective(t0.Add(time.Hour), 0); got != None {
		t.Fatalf("after expiry user risk %v, want none", got)
	}
	for i := range 2 * maxOutsideDetections {
		s.AddOutside(outside(string(rune('A'+i)), Low, AppliesToUser, 3*time.Hour), t0)
	}
	if len(s.Outside) != maxOutsideDetections || s.Effective(t0, 0) != High {
		t.Fatalf("after a flood: %d kept, level %v; want %d and still high", len(s.Outside), s.Effective(t0, 0), maxOutsideDetections)
	}
	s.Dismiss(t0)
	if len(s.Outside) != 0 || s.Effective(t0, 0) != None {
		t.Fatalf("after dismissal: %+v", s)
	}
}
