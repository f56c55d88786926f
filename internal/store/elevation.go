package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
)

// Assignment kinds: an active assignment holds the role all the time (a
// standing privilege, like User.Roles); an eligible one lets its holders
// activate the role for a while (an Elevation).
const (
	AssignActive   = "active"
	AssignEligible = "eligible"
)

// RoleAssignment gives a role to a user or a group, optionally only for
// some apps.
type RoleAssignment struct {
	ID   string
	Role string
	Kind string // AssignActive or AssignEligible
	// Principal is "user:<user id>" or "group:<group name>". A group's
	// assignment covers its direct members.
	Principal string
	// Scope lists the apps (OIDC client ids, gateway route apps) where
	// the role counts; empty means everywhere.
	Scope     []string
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// UserPrincipal and GroupPrincipal name an assignment's holder.
func UserPrincipal(id string) string    { return "user:" + id }
func GroupPrincipal(name string) string { return "group:" + name }

// Elevation states. A request is pending until it is approved (it turns
// active) or denied, or lapses (expired); an active elevation ends as
// expired at Until, or deactivated before (by its holder, an
// administrator, or because the holder is no longer eligible).
const (
	ElevationPending     = "pending"
	ElevationActive      = "active"
	ElevationDenied      = "denied"
	ElevationExpired     = "expired"
	ElevationDeactivated = "deactivated"
)

// Elevation is one request to activate an eligible role, and, once
// approved, the activation itself. Its terms (role, scope, duration,
// justification, ticket) never change after it is created: an approval
// is for exactly what was asked.
type Elevation struct {
	ID            string
	UserID        string
	Role          string
	Scope         []string // the eligible assignment's scope, copied when requested
	Duration      time.Duration
	Justification string
	Ticket        string
	State         string
	RequestedAt   time.Time
	// ProvenAt is when the requester gave the proof the role's
	// activation context asks for; zero until then. A request becomes
	// active only once proven.
	ProvenAt time.Time
	// Deadline is when a pending request lapses if nobody decides.
	Deadline time.Time
	// Decisions are the approvers' answers, in order.
	Decisions   []ElevationDecision
	ActivatedAt time.Time
	// Until is when an active elevation ends: ActivatedAt + Duration.
	Until time.Time
	// EndedAt, EndedBy and EndReason say how a request or elevation
	// stopped (denied, expired, deactivated).
	EndedAt   time.Time
	EndedBy   string
	EndReason string
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// UpdateElevation's refusals (see Elevation.CheckUpdate).
var (
	// ErrTermsChanged is a change to what was asked.
	ErrTermsChanged = errkind.New(errkind.Conflict, "an elevation's terms (requester, role, scope, duration, justification, ticket, request time) cannot change after it is requested")
	// ErrLifecycle is a change the elevation's lifecycle does not have.
	ErrLifecycle = errkind.New(errkind.Conflict, "the change is not one an elevation's lifecycle allows")
)

// SameTerms reports whether e and o ask for the same thing: requester,
// role, scope, duration, justification, ticket and request time, exactly
// (a stored role is lower-case already).
func (e Elevation) SameTerms(o Elevation) bool {
	return e.UserID == o.UserID && e.Role == o.Role &&
		slices.Equal(e.Scope, o.Scope) && e.Duration == o.Duration &&
		e.Justification == o.Justification && e.Ticket == o.Ticket && e.RequestedAt.Equal(o.RequestedAt)
}

// nextStates are the states each state may move to; an ended request
// or elevation (denied, expired, deactivated) moves nowhere.
var nextStates = map[string][]string{
	ElevationPending: {ElevationActive, ElevationDenied, ElevationExpired, ElevationDeactivated},
	ElevationActive:  {ElevationExpired, ElevationDeactivated},
}

// CheckUpdate reports why e may not be replaced by next, or nil. It is
// the lifecycle every backend's UpdateElevation enforces inside its
// compare-and-swap, so that no caller, however it errs, can:
//   - make an approval cover more than the approvers saw (terms changed:
//     a duration raised, a scope widened);
//   - bring an ended request back (an approval replayed after a denial,
//     an expiry or a deactivation);
//   - activate a request whose step-up was never given;
//   - stretch an active elevation (Until later than ActivatedAt +
//     Duration, or moved later; ActivatedAt moved);
//   - rewrite or drop an approver's answer.
func (e Elevation) CheckUpdate(next Elevation) error {
	switch {
	case !e.SameTerms(next):
		return ErrTermsChanged
	case next.State != e.State && !slices.Contains(nextStates[e.State], next.State):
		return fmt.Errorf("%w: %s cannot become %q", ErrLifecycle, e.State, next.State)
	case len(next.Decisions) < len(e.Decisions) || !slices.EqualFunc(e.Decisions, next.Decisions[:len(e.Decisions)], sameDecision):
		return fmt.Errorf("%w: earlier decisions cannot change", ErrLifecycle)
	case !e.ActivatedAt.IsZero() && !next.ActivatedAt.Equal(e.ActivatedAt):
		return fmt.Errorf("%w: the activation time cannot change", ErrLifecycle)
	case !e.Until.IsZero() && next.Until.After(e.Until):
		return fmt.Errorf("%w: an elevation's end can only come sooner", ErrLifecycle)
	case e.State != ElevationActive && next.State == ElevationActive:
		if next.ProvenAt.IsZero() {
			return fmt.Errorf("%w: a request becomes active only once its step-up is given", ErrLifecycle)
		}
		if next.ActivatedAt.IsZero() || !next.Until.Equal(next.ActivatedAt.Add(next.Duration)) {
			return fmt.Errorf("%w: an active elevation ends at its activation time plus its duration", ErrLifecycle)
		}
	}
	return nil
}

func sameDecision(a, b ElevationDecision) bool {
	return a.By == b.By && a.At.Equal(b.At) && a.Approve == b.Approve && a.Comment == b.Comment
}

// ElevationDecision is one approver's answer.
type ElevationDecision struct {
	By      string    `json:"by"` // the approver's user id
	At      time.Time `json:"at"`
	Approve bool      `json:"approve"`
	Comment string    `json:"comment,omitempty"`
}

// ElevationQuery selects elevations, newest request first. Empty fields
// match all.
type ElevationQuery struct {
	UserID string
	Role   string
	States []string
	// Before is the pagination cursor: only requests made before it (by
	// RequestedAt, then ID).
	Before   time.Time
	BeforeID string
	Limit    int // 0 means 100; at most 1000
}

// Grant is a role a user holds beyond User.Roles: from an active
// assignment (to the user or one of their groups), or an active
// elevation of a role the user is still eligible for (an eligible
// assignment to them or one of their groups). GetUser and GetUserByName
// fill User.Grants.
type Grant struct {
	Role  string
	Scope []string // empty: everywhere
	// Until is when an elevation ends; zero for an assignment.
	Until time.Time
	// Since is when an elevation began; zero for an assignment. An
	// elevation never counts before it (a clock set back does not bring
	// one back to life before its start, nor stretch it forward).
	Since time.Time
	// Elevation is the elevation's id; empty for an assignment.
	Elevation string
}

// At reports whether g counts at now for app.
func (g Grant) At(now time.Time, app string) bool {
	if g.Elevation != "" && (!now.Before(g.Until) || now.Before(g.Since)) {
		return false
	}
	return len(g.Scope) == 0 || slices.Contains(g.Scope, app)
}

// RolesAt returns the roles u holds at now for app: its standing roles
// and the grants that count then. It returns u.Roles itself when no grant
// adds a role, so the common case allocates nothing; treat the result as
// read-only.
func (u User) RolesAt(now time.Time, app string) []string {
	out := u.Roles
	shared := true
	for _, g := range u.Grants {
		if !g.At(now, app) || slices.Contains(out, g.Role) {
			continue
		}
		if shared {
			out = slices.Clip(slices.Clone(out))
			shared = false
		}
		out = append(out, g.Role)
	}
	return out
}

// GrantsEndAt returns when the next elevation of u that counts at now
// for app ends (zero when none does): anything derived from u's roles
// (a cached header, a token) must not outlive it.
func (u User) GrantsEndAt(now time.Time, app string) time.Time {
	var end time.Time
	for _, g := range u.Grants {
		if g.Elevation != "" && g.At(now, app) && (end.IsZero() || g.Until.Before(end)) {
			end = g.Until
		}
	}
	return end
}

// Elevations stores role assignments and elevations.
type Elevations interface {
	CreateRoleAssignment(ctx context.Context, a RoleAssignment) (RoleAssignment, error)
	// ListRoleAssignments returns the assignments of role, or all when
	// role is empty, ordered by role, then principal.
	ListRoleAssignments(ctx context.Context, role string) ([]RoleAssignment, error)
	DeleteRoleAssignment(ctx context.Context, id string) error

	CreateElevation(ctx context.Context, e Elevation) (Elevation, error)
	GetElevation(ctx context.Context, id string) (Elevation, error)
	ListElevations(ctx context.Context, q ElevationQuery) ([]Elevation, error)
	// UpdateElevation applies fn to the current record and stores the
	// result atomically (compare-and-swap on Version): of two racing
	// decisions, exactly one sees the record the other did not change.
	// A result that Elevation.CheckUpdate refuses is not stored, and its
	// error (ErrTermsChanged, ErrLifecycle) returned.
	UpdateElevation(ctx context.Context, id string, fn func(Elevation) (Elevation, error)) (Elevation, error)
}
