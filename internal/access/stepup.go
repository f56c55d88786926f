package access

import (
	"time"

	"github.com/stepgate/stepgate/internal/policy"
)

// Reask says why proofs the session already holds do not count for a
// step-up: the rule or the application asks for new ones.
type Reask string

// Re-asks. The zero value is none: the session lacks a proof it never
// had.
const (
	ReaskNone Reask = ""
	// ReaskSingleUse: each proof opens the page once (a gateway rule's
	// elevation: single-use).
	ReaskSingleUse Reask = "single-use"
	// ReaskMaxAge: the last proof is older than the rule's max_age or the
	// application's max_age parameter.
	ReaskMaxAge Reask = "max-age"
	// ReaskLogin: the application asked for a new sign-in (prompt=login).
	ReaskLogin Reask = "login"
)

// StepUp is what a step-up is for, as the component that asked for it
// knows it from its own records (the gateway's compiled routes, the OIDC
// provider's stored flow), never from the step-up page's address: the
// page states these as facts and offers only the methods that can meet
// Missing.
type StepUp struct {
	// App names the application that asked: a gateway route's app or an
	// OIDC client's name.
	App string
	// Contexts are the requested authentication contexts, with their
	// display names.
	Contexts []policy.AuthContext
	// Missing is what the session still lacks, as the policy engine
	// computed it (Decision.Missing, or the re-ask's).
	Missing []policy.Requirement
	// Reask, when set, says proofs made before now do not count, and
	// MaxAge is the window of a max-age re-ask.
	Reask  Reask
	MaxAge time.Duration
	// Blocked says the policies refuse the request whatever the user
	// proves.
	Blocked bool
}
