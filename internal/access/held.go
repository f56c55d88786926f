package access

import (
	"time"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
)

// HeldStatement is a SQL statement the database gateway holds while the
// user whose session sent it proves more in a browser: the gateway asks
// the OpenID Provider to hold it (a user code and a link the client is
// shown), the user opens the link, signs in as the same user and proves
// what the statement's policies ask for, and the gateway, which polls,
// runs the statement on the proofs the browser session made.
type HeldStatement struct {
	// UserID is the only user who may approve it.
	UserID string
	// Database is the app the statement's policies target.
	Database string
	// Contexts are the authentication contexts the statement asks for.
	Contexts []string
	// Statement is what the statement does, as policies see it.
	Statement policy.Statement
	// ProofsAfter, when set, makes the step-up single use: only proofs
	// made after it count, and the approval carries only those.
	ProofsAfter time.Time
	// From is the database client's address, shown on the approval page.
	From string
}

// HoldTicket is a held statement as the gateway tells its client: the
// code and the link to approve it with, and how long they are good for.
// Handle names the hold to the provider and is never shown.
type HoldTicket struct {
	Handle   string
	UserCode string
	Link     string
	Expires  time.Time
}

// HoldState is where a held statement's approval stands.
type HoldState int

// The states: no answer yet; approved (Proofs are the browser session's,
// given to the gateway once); denied by the user or refused by the
// policies (Why says which); gone (expired, or already collected).
const (
	HoldPending HoldState = iota + 1
	HoldApproved
	HoldDenied
	HoldGone
)

// HoldAnswer is the answer to a poll of a held statement.
type HoldAnswer struct {
	State  HoldState
	Proofs []oauth.Proof
	Why    string
}
