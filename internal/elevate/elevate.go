// Package elevate is just-in-time elevation: a user eligible for a role
// asks to hold it for a while, proves what the role's activation context
// demands on the normal step-up page, and — where the role says so —
// waits for approvers. While active, the role counts wherever a standing
// role counts (store.User.RolesAt); it ends at its time, or earlier when
// its holder or an administrator ends it, or when the holder stops being
// eligible.
//
// Every transition is a compare-and-swap on the stored elevation, so two
// approvers racing, an approval racing the request's expiry, or two
// nodes sweeping at once all end in exactly one outcome; and every
// transition is announced to the observers (audit trail, sign-in log,
// notifications, metrics) once, by the node whose write won.
package elevate

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
)

// App is the app name activation decisions are evaluated and logged
// under: policies can target it like any other app.
const App = "stepgate-elevation"

// Store is what elevation touches.
type Store interface {
	store.Elevations
	GetUser(ctx context.Context, id string) (store.User, error)
	GetGroup(ctx context.Context, name string) (store.Group, error)
	GetRole(ctx context.Context, name string) (store.Role, error)
	ListUsers(ctx context.Context) ([]store.User, error)
}

// Role is how one role is activated (config elevation.roles, with the
// defaults filled in).
type Role struct {
	Name                          string
	MaxDuration                   time.Duration
	NeedJustification, NeedTicket bool
	// Context is the authentication context activation asks for; empty
	// means the built-in rule: MFA from the last 10 minutes.
	Context string
	// Approvers is nil when activation needs no approval.
	Approvers *Approvers
	Notify    []string
}

// Approvers are who must approve a role's activation.
type Approvers struct {
	Group  string
	Count  int
	Expire time.Duration
}

// Limits on what a request may carry.
const (
	MaxJustification = 500
	MaxTicket        = 100
	MaxComment       = 500
	// MinDuration is the shortest activation that can be asked for.
	MinDuration = time.Minute
)

// Errors. Each names the problem in words a requester can act on; the
// wrapping adds the specifics.
var (
	ErrNotEligible     = errkind.New(errkind.Forbidden, "not eligible for this role")
	ErrInvalid         = errkind.New(errkind.Invalid, "invalid elevation request")
	ErrTooManyPending  = errkind.New(errkind.Throttled, "too many undecided requests")
	ErrNotApprover     = errkind.New(errkind.Forbidden, "not an approver of this role")
	ErrSelfApproval    = errkind.New(errkind.Forbidden, "a requester cannot approve their own request")
	ErrDecided         = errkind.New(errkind.Conflict, "the request is no longer pending")
	ErrAlreadyAnswered = errkind.New(errkind.Conflict, "you already answered this request")
	ErrUnproven        = errkind.New(errkind.Conflict, "the requester has not given the proof the role asks for yet")
	ErrNotActive       = errkind.New(errkind.Conflict, "the elevation is not active")
	ErrNotYours        = errkind.New(errkind.Forbidden, "not your elevation")
	ErrNotFound        = errkind.New(errkind.NotFound, "no such elevation request")
)

// Event kinds, in the order a request can go through them.
const (
	Requested   = "requested"
	Proven      = "proven"
	Approved    = "approved"
	Denied      = "denied"
	Activated   = "activated"
	Expired     = "expired"
	Deactivated = "deactivated"
)

// Event is one transition of an elevation, announced once.
type Event struct {
	Kind      string
	Elevation store.Elevation
	// Requester is the user the elevation is for.
	Requester store.User
	// Actor is who caused it: a user id, "system" for expiry and
	// eligibility checks, or the operator's name for the command line.
	Actor     string
	ActorName string
	Comment   string
	At        time.Time
}

// Observer is told of every transition: audit trail, sign-in log,
// notifications, metrics. It must not block (queue slow work).
type Observer func(ctx context.Context, e Event)

// Service runs elevation requests.
type Service struct {
	Store Store
	// Roles returns the activation settings of a role.
	Roles func(name string) Role
	// Proofs decides whether a requester's proofs meet a role's
	// activation context.
	Proofs *Checker
	// MaxPending bounds a user's undecided requests.
	MaxPending int
	Observers  []Observer
	Now        func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) announce(ctx context.Context, e Event) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	for _, o := range s.Observers {
		o(ctx, e)
	}
}

func (s *Service) requester(ctx context.Context, e store.Elevation) store.User {
	u, err := s.Store.GetUser(ctx, e.UserID)
	if err != nil {
		return store.User{ID: e.UserID}
	}
	return u
}

func newID() string { return "elv_" + rand.Text() }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
