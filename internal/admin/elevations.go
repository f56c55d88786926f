package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
)

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
