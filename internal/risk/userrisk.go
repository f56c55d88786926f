package risk

import "time"

// maxUserDetections bounds the detections a state keeps, so an attack
// that raises the same detection all day cannot grow a user record
// without limit; the sign-in log keeps every one.
const maxUserDetections = 20

// Resolutions say how a user's risk was last cleared.
const (
	ResolutionDismissed  = "dismissed"
	ResolutionRemediated = "remediated"
)

// UserRiskState is the risk that the account itself is compromised, as
// opposed to one sign-in. It accumulates detections (a leaked password,
// impossible travel, an administrator's report) until an administrator
// dismisses it or the user remediates (changes their password after
// proving a strong factor). The application stores it with the user;
// the methods change it in place.
type UserRiskState struct {
	Level Level `json:"level"`
	// Since is when Level was last raised or refreshed; low risk ages
	// out from it.
	Since time.Time `json:"since,omitzero"`
	// Detections are the most recent ones behind Level, oldest first.
	Detections []Detection `json:"detections,omitempty"`
	// Resolution is how the risk was last cleared: dismissed or
	// remediated; empty while risk is open or never was.
	Resolution string `json:"resolution,omitempty"`
	// Outside are detections other systems reported, each counting
	// until it expires; dismissal and remediation clear them too.
	Outside []OutsideDetection `json:"outside,omitempty"`
}

// Raise adds a detection. The level never drops on a lower detection:
// a low one after a high one leaves the user high. A detection at or
// above the current level restarts Since, so repeated low detections
// keep low risk from ageing out.
func (s *UserRiskState) Raise(d Detection, now time.Time) {
	if d.Level == None {
		return
	}
	if d.Level >= s.Level || s.Since.IsZero() {
		s.Since = now
	}
	s.Level = max(s.Level, d.Level)
	s.Resolution = ""
	s.Detections = append(s.Detections, d)
	if n := len(s.Detections); n > maxUserDetections {
		s.Detections = append([]Detection(nil), s.Detections[n-maxUserDetections:]...)
	}
}

// Dismiss clears the risk because an administrator judged the
// detections false positives.
func (s *UserRiskState) Dismiss(now time.Time) {
	*s = UserRiskState{Since: now, Resolution: ResolutionDismissed}
}

// ConfirmCompromised is an administrator saying the account is known to
// be in the wrong hands: high at once, whatever was detected.
func (s *UserRiskState) ConfirmCompromised(now time.Time) {
	s.Raise(Detection{Type: TypeAdmin, Level: High, Reason: ReasonConfirmedCompromised}, now)
}

// Remediated clears the risk because the user removed its cause, such
// as changing a leaked password after a strong step-up.
func (s *UserRiskState) Remediated(now time.Time) {
	*s = UserRiskState{Since: now, Resolution: ResolutionRemediated}
}

// Effective is the level a policy should see at now. Low risk ages out
// after lowAgeOut (DefaultUserRiskLowAgeOut when zero or negative)
// without a new detection: a single unfamiliar sign-in should not
// challenge a user for ever. Medium and high stay until dismissed or
// remediated, because someone has to look at them. Outside detections
// applying to the user count until their own expiry.
func (s UserRiskState) Effective(now time.Time, lowAgeOut time.Duration) Level {
	if lowAgeOut <= 0 {
		lowAgeOut = DefaultUserRiskLowAgeOut
	}
	own := s.Level
	if own == Low && !now.Before(s.Since.Add(lowAgeOut)) {
		own = None
	}
	return max(own, s.OutsideUserLevel(now))
}
