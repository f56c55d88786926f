package access

import (
	"time"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// TokenProofs are a session's events as an access token carries them.
// Proofs good only for registering a method (recovery codes, temporary
// access passes) are left out: they meet no policy, and a token has no
// use for them.
func TokenProofs(events []store.AuthEvent) []oauth.Proof {
	var out []oauth.Proof
	for _, e := range events {
		if RegistrationOnly(e.Method) {
			continue
		}
		out = append(out, oauth.Proof{
			Method: e.Method, Time: e.Time.Unix(), AMR: e.AMR,
			PhishingResistant: e.PhishingResistant, AAGUID: e.AAGUID, Risk: e.Risk,
		})
	}
	return out
}

// TokenEvents are the events a token's proofs stand for, for the
// access request of a request the token makes.
func TokenEvents(proofs []oauth.Proof) []store.AuthEvent {
	if len(proofs) == 0 {
		return nil
	}
	out := make([]store.AuthEvent, len(proofs))
	for i, p := range proofs {
		out[i] = store.AuthEvent{
			Method: p.Method, Time: time.Unix(p.Time, 0).UTC(), AMR: p.AMR,
			PhishingResistant: p.PhishingResistant, AAGUID: p.AAGUID, Risk: p.Risk,
		}
	}
	return out
}
