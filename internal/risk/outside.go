package risk

import (
	"slices"
	"time"
)

// Where an outside detection counts.
const (
	// AppliesToUser raises the user's risk: every decision about them.
	AppliesToUser = "user"
	// AppliesToSignIn raises the sign-in risk of one session or token.
	AppliesToSignIn = "sign-in"
)

// maxOutsideDetections bounds the outside detections a state keeps, so a
// system reporting in a loop cannot grow a user record without limit.
// Past it the least serious, oldest one goes first: a flood of low
// reports never pushes out a high one.
const maxOutsideDetections = 50

// OutsideDetection is a detection another system (a SIEM, an EDR, a
// fraud engine) reported through the API. It counts from ReceivedAt
// until ExpiresAt, then stops counting on its own.
type OutsideDetection struct {
	// ID names the detection; repeating a report (the same idempotency
	// key) yields the same ID, and a state holds each ID once.
	ID string `json:"id"`
	Detection
	// AppliesTo is AppliesToUser or AppliesToSignIn.
	AppliesTo string `json:"applies_to"`
	// SessionID or TokenID name what a sign-in detection applies to.
	SessionID string `json:"session_id,omitempty"`
	TokenID   string `json:"token_id,omitempty"`
	// Source is who reported it: the API token or client.
	Source     string    `json:"source"`
	Revoke     bool      `json:"revoke,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Live reports whether d counts at now: until it expires. It counts
// from the moment it is stored, on every node, even one whose clock is
// behind the one that received it.
func (d OutsideDetection) Live(now time.Time) bool {
	return now.Before(d.ExpiresAt)
}

// AddOutside adds d unless a detection with its ID is there already
// (a repeated report), dropping those that expired. It reports whether
// d was added.
func (s *UserRiskState) AddOutside(d OutsideDetection, now time.Time) bool {
	if slices.ContainsFunc(s.Outside, func(o OutsideDetection) bool { return o.ID == d.ID }) {
		return false
	}
	s.Outside = slices.DeleteFunc(s.Outside, func(o OutsideDetection) bool { return !now.Before(o.ExpiresAt) })
	s.Outside = append(s.Outside, d)
	for len(s.Outside) > maxOutsideDetections {
		least := 0
		for i, o := range s.Outside {
			if o.Level < s.Outside[least].Level {
				least = i
			}
		}
		s.Outside = slices.Delete(s.Outside, least, least+1)
	}
	s.Resolution = ""
	return true
}

// OutsideUserLevel is the highest level of the live outside detections
// that apply to the user.
func (s UserRiskState) OutsideUserLevel(now time.Time) Level {
	level := None
	for _, o := range s.Outside {
		if o.AppliesTo == AppliesToUser && o.Live(now) {
			level = max(level, o.Level)
		}
	}
	return level
}

// SessionRisk is an outside sign-in detection as a decision sees it:
// its level and when it was received, so that a proof made after it
// can remediate it as it remediates the sign-in's own risk.
type SessionRisk struct {
	Level Level
	Since time.Time
}

// SignInRisks are the live outside detections of the session sessionID
// or the token tokenID (either may be empty).
func (s UserRiskState) SignInRisks(sessionID, tokenID string, now time.Time) []SessionRisk {
	var out []SessionRisk
	for _, o := range s.Outside {
		if o.AppliesTo != AppliesToSignIn || !o.Live(now) {
			continue
		}
		if (sessionID != "" && o.SessionID == sessionID) || (tokenID != "" && o.TokenID == tokenID) {
			out = append(out, SessionRisk{Level: o.Level, Since: o.ReceivedAt})
		}
	}
	return out
}
