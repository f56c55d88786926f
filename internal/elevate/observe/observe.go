// Package observe watches just-in-time elevations: each transition an
// elevate.Service announces is recorded in the hash-chained audit trail
// and the sign-in log, counted in the metrics, and told to the people
// concerned by mail and to a chat tool by a signed webhook.
//
// Observers run inside the service's call, after its compare-and-swap
// won. What writes to the store (the audit trail, the sign-in log) is
// done there, detached from the caller's cancellation, so a client that
// hangs up cannot leave a step unrecorded; what waits on other machines
// (mail, the webhook) goes through a bounded queue, so a slow or dead
// receiver never holds up a request.
package observe

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// Source is the sign-in log source of elevation entries.
const Source = "elevation"

// writeTimeout bounds one record in the audit trail or the sign-in log.
const writeTimeout = 10 * time.Second

// Audit records each transition in the audit trail as the action
// "elevation.<kind>" on the target "elevation:<id>", with who caused it,
// their comment (the justification, for a request) and the request's
// terms.
func Audit(trail *audit.Log, log *slog.Logger) elevate.Observer {
	return func(ctx context.Context, e elevate.Event) {
		// Detached: the step has happened; a caller hanging up must not
		// keep it out of the trail.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		defer cancel()
		before, after := auditStates(e)
		if _, err := trail.Record(ctx, Actor(e), "elevation."+e.Kind, "elevation:"+e.Elevation.ID, comment(e), before, after); err != nil {
			log.ErrorContext(ctx, "write the audit trail", "action", "elevation."+e.Kind, "elevation", e.Elevation.ID, "err", err)
		}
	}
}

// auditTerms is an elevation as the audit trail shows it.
type auditTerms struct {
	State         string    `json:"state"`
	User          string    `json:"user,omitempty"`
	Role          string    `json:"role,omitempty"`
	Scope         []string  `json:"scope,omitempty"`
	Duration      string    `json:"duration,omitempty"`
	Justification string    `json:"justification,omitempty"`
	Ticket        string    `json:"ticket,omitempty"`
	Approvals     int       `json:"approvals,omitempty"`
	Until         time.Time `json:"until,omitzero"`
	EndReason     string    `json:"end_reason,omitempty"`
}

// auditStates are the state before the transition and the elevation
// after it.
func auditStates(e elevate.Event) (before, after any) {
	el := e.Elevation
	t := auditTerms{
		State: el.State, User: username(e), Role: el.Role, Scope: el.Scope, Duration: el.Duration.String(),
		Justification: el.Justification, Ticket: el.Ticket, Until: el.Until, EndReason: el.EndReason,
	}
	for _, d := range el.Decisions {
		if d.Approve {
			t.Approvals++
		}
	}
	switch {
	case e.Kind == elevate.Requested:
		return nil, t
	case (e.Kind == elevate.Expired || e.Kind == elevate.Deactivated) && !el.ActivatedAt.IsZero():
		return auditTerms{State: store.ElevationActive}, t
	}
	return auditTerms{State: store.ElevationPending}, t
}

// Actor names who caused a transition as the audit trail names people:
// user:<name> for a user, the operator as given (cli:<name>) for the
// command line, system for an end at its time.
func Actor(e elevate.Event) string {
	switch {
	case e.Actor == "system":
		return "system"
	case e.ActorName != "":
		return "user:" + e.ActorName
	case e.Actor == "":
		return "unknown"
	}
	return e.Actor
}

// comment is what the actor said: the justification for a request, the
// approver's comment, the reason for an end.
func comment(e elevate.Event) string {
	if e.Kind == elevate.Requested && e.Comment == "" {
		return e.Elevation.Justification
	}
	return e.Comment
}

func username(e elevate.Event) string {
	if e.Requester.Username != "" {
		return e.Requester.Username
	}
	return e.Elevation.UserID
}

// signInCodes are the reason code of each kind.
var signInCodes = map[string]reason.Code{
	elevate.Requested:   reason.ElevationRequested,
	elevate.Proven:      reason.ElevationProven,
	elevate.Approved:    reason.ElevationApproved,
	elevate.Denied:      reason.ElevationDenied,
	elevate.Activated:   reason.ElevationActivated,
	elevate.Expired:     reason.ElevationExpired,
	elevate.Deactivated: reason.ElevationDeactivated,
}

// SignIns writes each transition to the sign-in log, as an entry of the
// requester's under source elevation and app elevate.App: its decision is
// the kind (requested, proven, approved, denied, activated, expired,
// deactivated) and its reason the matching elevation-* code, qualified
// by the end reason for an end (elevation-expired:time-up).
func SignIns(write func(context.Context, audit.SignIn) error, log *slog.Logger) elevate.Observer {
	return func(ctx context.Context, e elevate.Event) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		defer cancel()
		if err := write(ctx, SignInEntry(e)); err != nil {
			log.ErrorContext(ctx, "write the sign-in log", "elevation", e.Elevation.ID, "kind", e.Kind, "err", err)
		}
	}
}

// SignInEntry is the sign-in log entry of e.
func SignInEntry(e elevate.Event) audit.SignIn {
	why := signInCodes[e.Kind]
	if (e.Kind == elevate.Expired || e.Kind == elevate.Deactivated) && isCode(e.Elevation.EndReason) {
		why = why.With(e.Elevation.EndReason)
	}
	return audit.SignIn{
		Time: e.At, Source: Source, App: elevate.App,
		UserID: e.Elevation.UserID, Username: e.Requester.Username,
		Decision: e.Kind, Reason: why,
		Elevation: &audit.ElevationFacts{
			ID: e.Elevation.ID, Role: e.Elevation.Role, Actor: Actor(e), Comment: plain(comment(e)), Until: e.Elevation.Until,
		},
	}
}

// isCode reports whether s is one of the end reasons the service
// records (time-up, no-longer-eligible, ...): a free-text reason an
// administrator typed stays in the comment, not in a code dashboards
// count by.
func isCode(s string) bool {
	switch s {
	case elevate.ReasonNoDecision, elevate.ReasonTimeUp, elevate.ReasonByHolder, elevate.ReasonNotEligible,
		elevate.ReasonRoleDeleted, elevate.ReasonUserDisabled, "by-administrator":
		return true
	}
	return false
}

// Metrics counts each transition, each activation by role, and, for an
// activation that followed approvals, how long the request waited for
// them: from its proof (or, were it unproven, its request) to the
// approval that made it active.
func Metrics(m *metrics.Metrics) elevate.Observer {
	return func(_ context.Context, e elevate.Event) {
		m.ElevationEvent(e.Kind)
		if e.Kind != elevate.Activated {
			return
		}
		el := e.Elevation
		m.ElevationActivated(el.Role)
		if approvedBy(el) == 0 {
			return
		}
		from := el.ProvenAt
		if from.IsZero() {
			from = el.RequestedAt
		}
		m.ElevationApproved(el.Role, el.ActivatedAt.Sub(from))
	}
}

func approvedBy(el store.Elevation) int {
	n := 0
	for _, d := range el.Decisions {
		if d.Approve {
			n++
		}
	}
	return n
}

// activePage and activePages bound one count of active elevations: a
// thousand a page, fifty pages.
const (
	activePage  = 1000
	activePages = 50
)

// CountActive counts the elevations active at now by role, from the
// store, a page at a time. It is what the active-elevations gauge shows,
// so the gauge is the same on every node and right after a restart.
func CountActive(st store.Elevations, now func() time.Time) metrics.ActiveCounter {
	return countActive(st, now, activePage, activePages)
}

func countActive(st store.Elevations, now func() time.Time, pageSize, pages int) metrics.ActiveCounter {
	return func(ctx context.Context) (map[string]int, error) {
		t := now()
		out := map[string]int{}
		q := store.ElevationQuery{States: []string{store.ElevationActive}, Limit: pageSize}
		for range pages {
			page, err := st.ListElevations(ctx, q)
			if err != nil {
				return nil, err
			}
			for _, e := range page {
				// Past its end but not yet swept: no longer counting.
				if t.Before(e.Until) && !t.Before(e.ActivatedAt) {
					out[e.Role]++
				}
			}
			if len(page) < pageSize {
				return out, nil
			}
			last := page[len(page)-1]
			q.Before, q.BeforeID = last.RequestedAt, last.ID
		}
		return nil, errTooManyActive
	}
}

var errTooManyActive = errors.New("more active elevations than one count reads; the gauge shows the last complete count")

// plain makes text a requester or administrator typed safe to put on
// one line: control characters (line breaks included) become spaces.
func plain(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
