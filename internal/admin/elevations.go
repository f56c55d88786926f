package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
)

// AssignmentInfo is a role assignment as administrators see it.
type AssignmentInfo struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	Kind string `json:"kind"`
	// User or Group is who holds it (a username, a group name).
	User      string    `json:"user,omitempty"`
	Group     string    `json:"group,omitempty"`
	Scope     []string  `json:"scope"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Holder names who holds the assignment: "user alice", "group ops".
func (a AssignmentInfo) Holder() string {
	if a.User != "" {
		return "user " + a.User
	}
	return "group " + a.Group
}

// Assignment is an assignment to make, or to remove.
type Assignment struct {
	Role string `json:"role"`
	// Kind is store.AssignEligible (the default) or store.AssignActive.
	Kind string `json:"kind,omitempty"`
	// Exactly one of User (a username or id) and Group.
	User  string   `json:"user,omitempty"`
	Group string   `json:"group,omitempty"`
	Scope []string `json:"scope,omitempty"`
}

// scopeName is what an app id in a scope may look like: the characters
// of OIDC client ids and gateway route apps.
var scopeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// maxScope bounds the apps one assignment lists.
const maxScope = 50

// resolve checks a and finds its holder: the role and the user or group
// must exist, so a typo cannot make an assignment nobody holds.
func (s *Service) resolve(ctx context.Context, a *Assignment) (principal, holder string, err error) {
	a.Role = strings.ToLower(strings.TrimSpace(a.Role))
	a.User, a.Group = strings.TrimSpace(a.User), strings.TrimSpace(a.Group)
	switch a.Kind {
	case "":
		a.Kind = store.AssignEligible
	case store.AssignEligible, store.AssignActive:
	default:
		return "", "", invalid("kind must be %q or %q (got %q)", store.AssignEligible, store.AssignActive, a.Kind)
	}
	if a.Role == "" {
		return "", "", invalid("name the role")
	}
	if a.Role == Role {
		// The console and the API count only the standing role
		// (IsAdmin): an assignment would look like administrator access
		// without being it, and an elevated administrator could approve
		// further elevations.
		return "", "", invalid("%s is given only as a standing role, with: stepgate user set NAME --role %s", Role, Role)
	}
	if _, err := s.Store.GetRole(ctx, a.Role); errors.Is(err, store.ErrNotFound) {
		return "", "", &Error{Kind: NotFound, Message: fmt.Sprintf("no role %q; create it first with: stepgate role add %s", a.Role, a.Role)}
	} else if err != nil {
		return "", "", err
	}
	if err := checkScope(a.Scope); err != nil {
		return "", "", err
	}
	switch {
	case (a.User == "") == (a.Group == ""):
		return "", "", invalid("name exactly one holder: a user or a group")
	case a.User != "":
		u, err := s.userByName(ctx, a.User)
		if err != nil {
			return "", "", err
		}
		return store.UserPrincipal(u.ID), "user:" + u.Username, nil
	}
	if _, err := s.Store.GetGroup(ctx, a.Group); errors.Is(err, store.ErrNotFound) {
		return "", "", &Error{Kind: NotFound, Message: fmt.Sprintf("no group %q", a.Group)}
	} else if err != nil {
		return "", "", err
	}
	return store.GroupPrincipal(a.Group), "group:" + a.Group, nil
}

func checkScope(scope []string) error {
	if len(scope) > maxScope {
		return invalid("a scope lists at most %d apps (got %d)", maxScope, len(scope))
	}
	for _, app := range scope {
		if !scopeName.MatchString(app) {
			return invalid("scope %q is not an app id (an OIDC client id or a gateway route app: letters, digits, . _ : -)", app)
		}
	}
	return nil
}

// Assign makes a role assignment.
func (s *Service) Assign(ctx context.Context, actor Actor, reason string, a Assignment) (AssignmentInfo, error) {
	principal, holder, err := s.resolve(ctx, &a)
	if err != nil {
		return AssignmentInfo{}, err
	}
	made, err := s.Store.CreateRoleAssignment(ctx, store.RoleAssignment{
		ID: "ra_" + rand.Text(), Role: a.Role, Kind: a.Kind, Principal: principal, Scope: a.Scope, CreatedBy: string(actor),
	})
	if errors.Is(err, store.ErrConflict) {
		return AssignmentInfo{}, &Error{Kind: Conflict, Message: fmt.Sprintf("%s already has an %s assignment of %s; remove it first to change its scope", holder, a.Kind, a.Role)}
	}
	if err != nil {
		return AssignmentInfo{}, err
	}
	info := s.assignmentInfo(ctx, made, map[string]string{})
	return info, s.record(ctx, actor, "role.assign", "role:"+a.Role, reason, nil, info)
}

// Unassign removes the assignment matching a (its role, kind and
// holder). A holder who is no longer eligible loses their pending and
// active elevations of the role at the next sweep, within a second.
func (s *Service) Unassign(ctx context.Context, actor Actor, reason string, a Assignment) error {
	principal, holder, err := s.resolve(ctx, &a)
	if err != nil {
		return err
	}
	all, err := s.Store.ListRoleAssignments(ctx, a.Role)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(x store.RoleAssignment) bool { return x.Kind == a.Kind && x.Principal == principal })
	if i < 0 {
		return &Error{Kind: NotFound, Message: fmt.Sprintf("%s has no %s assignment of %s", holder, a.Kind, a.Role)}
	}
	return s.unassign(ctx, actor, reason, all[i])
}

// UnassignID removes the assignment id.
func (s *Service) UnassignID(ctx context.Context, actor Actor, reason, id string) error {
	all, err := s.Store.ListRoleAssignments(ctx, "")
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(x store.RoleAssignment) bool { return x.ID == id })
	if i < 0 {
		return &Error{Kind: NotFound, Message: fmt.Sprintf("no role assignment %q", id)}
	}
	return s.unassign(ctx, actor, reason, all[i])
}

func (s *Service) unassign(ctx context.Context, actor Actor, reason string, a store.RoleAssignment) error {
	if err := s.Store.DeleteRoleAssignment(ctx, a.ID); errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: NotFound, Message: fmt.Sprintf("no role assignment %q (removed meanwhile?)", a.ID)}
	} else if err != nil {
		return err
	}
	return s.record(ctx, actor, "role.unassign", "role:"+a.Role, reason, s.assignmentInfo(ctx, a, map[string]string{}), nil)
}

// Assignments lists the assignments of role, or of every role when role
// is empty.
func (s *Service) Assignments(ctx context.Context, role string) ([]AssignmentInfo, error) {
	all, err := s.Store.ListRoleAssignments(ctx, strings.ToLower(strings.TrimSpace(role)))
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	out := make([]AssignmentInfo, 0, len(all))
	for _, a := range all {
		out = append(out, s.assignmentInfo(ctx, a, names))
	}
	return out, nil
}

func (s *Service) assignmentInfo(ctx context.Context, a store.RoleAssignment, names map[string]string) AssignmentInfo {
	info := AssignmentInfo{ID: a.ID, Role: a.Role, Kind: a.Kind, Scope: nonNilStrings(a.Scope), CreatedBy: a.CreatedBy, CreatedAt: a.CreatedAt}
	if id, ok := strings.CutPrefix(a.Principal, "user:"); ok {
		info.User = s.username(ctx, id, names)
	} else {
		info.Group = strings.TrimPrefix(a.Principal, "group:")
	}
	return info
}

// username names the user id for people; an id that is no user's (a
// deleted user, "system", an operator) is shown as it is.
func (s *Service) username(ctx context.Context, id string, names map[string]string) string {
	if n, ok := names[id]; ok {
		return n
	}
	n := id
	if u, err := s.Store.GetUser(ctx, id); err == nil {
		n = u.Username
	}
	names[id] = n
	return n
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ElevationInfo is an elevation request as administrators and approvers
// see it.
type ElevationInfo struct {
	ID            string    `json:"id"`
	User          string    `json:"user"`
	UserID        string    `json:"user_id"`
	Role          string    `json:"role"`
	Scope         []string  `json:"scope"`
	Duration      string    `json:"duration"`
	Justification string    `json:"justification,omitempty"`
	Ticket        string    `json:"ticket,omitempty"`
	State         string    `json:"state"`
	RequestedAt   time.Time `json:"requested_at"`
	// Proven: the requester gave the proof the role's activation asks
	// for; until then nobody can approve.
	Proven    bool           `json:"proven"`
	ProvenAt  time.Time      `json:"proven_at,omitzero"`
	Deadline  time.Time      `json:"deadline"`
	Decisions []DecisionInfo `json:"decisions"`
	// Approvals so far, of Needed; ApproverGroup's members decide.
	Approvals     int       `json:"approvals"`
	Needed        int       `json:"approvals_needed"`
	ApproverGroup string    `json:"approver_group,omitempty"`
	ActivatedAt   time.Time `json:"activated_at,omitzero"`
	Until         time.Time `json:"until,omitzero"`
	EndedAt       time.Time `json:"ended_at,omitzero"`
	EndedBy       string    `json:"ended_by,omitempty"`
	EndReason     string    `json:"end_reason,omitempty"`
}

// DecisionInfo is one approver's answer.
type DecisionInfo struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Approve bool      `json:"approve"`
	Comment string    `json:"comment,omitempty"`
}

func (s *Service) elevationInfo(ctx context.Context, e store.Elevation, names map[string]string) ElevationInfo {
	info := ElevationInfo{
		ID: e.ID, User: s.username(ctx, e.UserID, names), UserID: e.UserID, Role: e.Role, Scope: nonNilStrings(e.Scope),
		Duration: e.Duration.String(), Justification: e.Justification, Ticket: e.Ticket, State: e.State,
		RequestedAt: e.RequestedAt, Proven: !e.ProvenAt.IsZero(), ProvenAt: e.ProvenAt, Deadline: e.Deadline,
		Decisions: make([]DecisionInfo, 0, len(e.Decisions)), ActivatedAt: e.ActivatedAt, Until: e.Until,
		EndedAt: e.EndedAt, EndReason: e.EndReason,
	}
	if e.EndedBy != "" {
		info.EndedBy = s.username(ctx, e.EndedBy, names)
	}
	for _, d := range e.Decisions {
		info.Decisions = append(info.Decisions, DecisionInfo{By: s.username(ctx, d.By, names), At: d.At, Approve: d.Approve, Comment: d.Comment})
		if d.Approve {
			info.Approvals++
		}
	}
	if ap := s.Elevation.Roles(e.Role).Approvers; ap != nil {
		info.Needed, info.ApproverGroup = ap.Count, ap.Group
	}
	return info
}

// ElevationFilter selects elevation requests, newest first.
type ElevationFilter struct {
	User   string // a username or id
	Role   string
	States []string // empty: all
	// Cursor is the Next of the page before.
	Cursor string
	Limit  int // 0: DefaultElevationPage
}

// ElevationPage is one page of elevation requests.
type ElevationPage struct {
	Elevations []ElevationInfo `json:"elevations"`
	// Next is the cursor of the following page; empty on the last.
	Next string `json:"next_cursor,omitempty"`
}

// Page sizes of elevation requests.
const (
	DefaultElevationPage = 50
	MaxElevationPage     = 500
)

var elevationStates = []string{store.ElevationPending, store.ElevationActive, store.ElevationDenied, store.ElevationExpired, store.ElevationDeactivated}

// Elevations lists a page of elevation requests matching f.
func (s *Service) Elevations(ctx context.Context, f ElevationFilter) (ElevationPage, error) {
	if err := s.elevationOn(); err != nil {
		return ElevationPage{}, err
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultElevationPage
	case f.Limit < 0 || f.Limit > MaxElevationPage:
		return ElevationPage{}, invalid("limit must be between 1 and %d (got %d)", MaxElevationPage, f.Limit)
	}
	for _, st := range f.States {
		if !slices.Contains(elevationStates, st) {
			return ElevationPage{}, invalid("state %q is not one of %s", st, strings.Join(elevationStates, ", "))
		}
	}
	q := store.ElevationQuery{Role: strings.ToLower(strings.TrimSpace(f.Role)), States: f.States, Limit: f.Limit + 1}
	if f.User != "" {
		u, err := s.userByName(ctx, f.User)
		if err != nil {
			return ElevationPage{}, err
		}
		q.UserID = u.ID
	}
	var err error
	if q.Before, q.BeforeID, err = parseCursor(f.Cursor); err != nil {
		return ElevationPage{}, err
	}
	found, err := s.Store.ListElevations(ctx, q)
	if err != nil {
		return ElevationPage{}, err
	}
	names := map[string]string{}
	page := ElevationPage{Elevations: make([]ElevationInfo, 0, min(len(found), f.Limit))}
	for _, e := range found[:min(len(found), f.Limit)] {
		page.Elevations = append(page.Elevations, s.elevationInfo(ctx, e, names))
	}
	if len(found) > f.Limit {
		last := found[f.Limit-1]
		page.Next = strconv.FormatInt(last.RequestedAt.UnixMicro(), 10) + "." + last.ID
	}
	return page, nil
}

// parseCursor reads a page cursor: the last request's time (µs) and id.
func parseCursor(c string) (time.Time, string, error) {
	if c == "" {
		return time.Time{}, "", nil
	}
	us, id, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || n <= 0 || id == "" {
		return time.Time{}, "", invalid("the cursor %q is not one this server gave; use next_cursor from the page before", c)
	}
	return time.UnixMicro(n).UTC(), id, nil
}

// ElevationRequest returns one elevation request.
func (s *Service) ElevationRequest(ctx context.Context, id string) (ElevationInfo, error) {
	if err := s.elevationOn(); err != nil {
		return ElevationInfo{}, err
	}
	e, err := s.Store.GetElevation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ElevationInfo{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no elevation request %q", id)}
	}
	if err != nil {
		return ElevationInfo{}, err
	}
	return s.elevationInfo(ctx, e, map[string]string{}), nil
}

// MayDecide says whether approver may answer the request now; the
// reason says why not. The answer itself is decided again, under the
// compare-and-swap, by Decide.
func (s *Service) MayDecide(e ElevationInfo, approver store.User) (bool, string) {
	role := s.Elevation.Roles(e.Role)
	switch {
	case e.State != store.ElevationPending:
		return false, "no longer pending"
	case role.Approvers == nil:
		return false, e.Role + " needs no approval"
	case approver.ID == e.UserID:
		return false, "your own request: another approver decides"
	case approver.Disabled || !slices.Contains(approver.Groups, role.Approvers.Group):
		return false, "only members of the group " + role.Approvers.Group + " decide"
	case !e.Proven:
		return false, "waiting for the requester's proof"
	case slices.ContainsFunc(e.Decisions, func(d DecisionInfo) bool { return d.By == approver.Username }):
		return false, "you already answered"
	}
	return true, ""
}

// Decide records the answer of the user named approver to the request
// id. actor is who asks for it (the approver themself in the console;
// the API token or the operator acting for them elsewhere); both go in
// the audit trail. The elevation service refuses the requester
// themself, anyone outside the role's approver group, an unproven
// request and a second answer.
func (s *Service) Decide(ctx context.Context, actor Actor, approver, id string, approve bool, comment string) (ElevationInfo, error) {
	if err := s.elevationOn(); err != nil {
		return ElevationInfo{}, err
	}
	if strings.TrimSpace(approver) == "" {
		return ElevationInfo{}, invalid("name the approver: the user who approves or denies")
	}
	u, err := s.userByName(ctx, approver)
	if err != nil {
		return ElevationInfo{}, err
	}
	e, err := s.Elevation.Decide(ctx, id, u, approve, comment)
	if errors.Is(err, elevate.ErrUnproven) {
		err = fmt.Errorf("%w: they give it on their roles page (/account/roles); answer once it shows as proven", err)
	}
	if err != nil {
		return ElevationInfo{}, elevationErr(err)
	}
	action := "elevation.deny"
	if approve {
		action = "elevation.approve"
	}
	info := s.elevationInfo(ctx, e, map[string]string{})
	return info, s.record(ctx, actor, action, "elevation:"+id, comment, nil, map[string]any{"approver": u.Username, "state": info.State, "comment": comment})
}

// RevokeElevation ends a pending request or an active elevation as an
// administrator: the role stops counting at once.
func (s *Service) RevokeElevation(ctx context.Context, actor Actor, reason, id string) (ElevationInfo, error) {
	if err := s.elevationOn(); err != nil {
		return ElevationInfo{}, err
	}
	if strings.ContainsFunc(reason, unicode.IsControl) {
		// The reason reaches the holder, the approvers and chat tools
		// through the notifications: one plain line, so it cannot forge
		// lines of its own there.
		return ElevationInfo{}, invalid("the reason must be plain text on one line")
	}
	// An API caller or an operator is no user: named by the actor alone
	// (api-token, client:ops, cli:root), never passed off as a username.
	who := store.User{ID: string(actor)}
	if name, ok := strings.CutPrefix(string(actor), "user:"); ok {
		if u, err := s.Store.GetUserByName(ctx, name); err == nil {
			who = u
		}
	}
	e, err := s.Elevation.Deactivate(ctx, id, who, true, reason)
	if err != nil {
		return ElevationInfo{}, elevationErr(err)
	}
	info := s.elevationInfo(ctx, e, map[string]string{})
	return info, s.record(ctx, actor, "elevation.revoke", "elevation:"+id, reason, nil, map[string]any{"user": info.User, "role": info.Role, "state": info.State})
}

// RequestFor stores a pending request of the user named name, as an
// administrator's help: it still needs the user's own proof on their
// roles page (/account/roles) and, where the role says so, approvals.
// Nothing here can stand in for the user's step-up.
func (s *Service) RequestFor(ctx context.Context, actor Actor, reason, name string, ask elevate.Ask) (ElevationInfo, error) {
	if err := s.elevationOn(); err != nil {
		return ElevationInfo{}, err
	}
	u, err := s.userByName(ctx, name)
	if err != nil {
		return ElevationInfo{}, err
	}
	e, err := s.Elevation.Request(ctx, u, ask)
	if err != nil {
		return ElevationInfo{}, elevationErr(err)
	}
	info := s.elevationInfo(ctx, e, map[string]string{})
	return info, s.record(ctx, actor, "elevation.request", "elevation:"+e.ID, reason, nil,
		map[string]any{"user": u.Username, "role": e.Role, "duration": info.Duration, "justification": e.Justification, "ticket": e.Ticket})
}

func (s *Service) elevationOn() error {
	if s.Elevation == nil {
		return &Error{Kind: NotFound, Message: "just-in-time elevation is not in use here"}
	}
	return nil
}

// elevationErrKinds turns the elevation service's refusals into the
// admin service's, keeping their words: they name the fix.
var elevationErrKinds = map[errkind.Kind]ErrorKind{
	errkind.Invalid:   Invalid,
	errkind.NotFound:  NotFound,
	errkind.Conflict:  Conflict,
	errkind.Forbidden: Forbidden,
	errkind.Throttled: Throttled,
}

func elevationErr(err error) error {
	if k, ok := elevationErrKinds[errkind.Of(err)]; ok {
		return &Error{Kind: k, Message: err.Error()}
	}
	return err
}
