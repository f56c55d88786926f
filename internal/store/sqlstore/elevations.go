package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

var assignments = table[store.RoleAssignment]{
	name:    "role_assignments",
	key:     "id",
	columns: "id, role, kind, principal, scope_json, created_by, created_at, updated_at, version",
	scan: func(r scanner) (store.RoleAssignment, error) {
		var a store.RoleAssignment
		var scope string
		var created, updated int64
		if err := r.Scan(&a.ID, &a.Role, &a.Kind, &a.Principal, &scope, &a.CreatedBy, &created, &updated, &a.Version); err != nil {
			return a, err
		}
		a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
		return a, fromJSON(scope, &a.Scope)
	},
	values: func(a store.RoleAssignment) ([]string, []any) {
		return []string{"role", "kind", "principal", "scope_json", "created_by", "created_at", "updated_at", "version"},
			[]any{strings.ToLower(a.Role), a.Kind, a.Principal, toJSON(nonNil(a.Scope)), a.CreatedBy, micros(a.CreatedAt), micros(a.UpdatedAt), a.Version}
	},
	keyOf:     func(a store.RoleAssignment) string { return a.ID },
	versionOf: func(a store.RoleAssignment) int64 { return a.Version },
	stamp: func(a *store.RoleAssignment, now time.Time, v int64) {
		a.Role = strings.ToLower(a.Role)
		a.CreatedAt, a.UpdatedAt, a.Version = orNow(a.CreatedAt, now), now.UTC().Truncate(time.Microsecond), v
	},
}

const elevationColumns = "id, user_id, role, scope_json, duration_us, justification, ticket, state, requested_at, proven_at, deadline, " +
	"decisions_json, activated_at, until_at, ended_at, ended_by, end_reason, created_at, updated_at, version"

var elevations = table[store.Elevation]{
	name:    "elevations",
	key:     "id",
	columns: elevationColumns,
	scan: func(r scanner) (store.Elevation, error) {
		var e store.Elevation
		var scope, decisions string
		var dur, requested, proven, deadline, activated, until, ended, created, updated int64
		err := r.Scan(&e.ID, &e.UserID, &e.Role, &scope, &dur, &e.Justification, &e.Ticket, &e.State, &requested, &proven, &deadline,
			&decisions, &activated, &until, &ended, &e.EndedBy, &e.EndReason, &created, &updated, &e.Version)
		if err != nil {
			return e, err
		}
		e.Duration = time.Duration(dur) * time.Microsecond
		e.RequestedAt, e.ProvenAt, e.Deadline = fromMicros(requested), fromMicros(proven), fromMicros(deadline)
		e.ActivatedAt, e.Until, e.EndedAt = fromMicros(activated), fromMicros(until), fromMicros(ended)
		e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
		if err := fromJSON(scope, &e.Scope); err != nil {
			return e, fmt.Errorf("elevation %s scope: %w", e.ID, err)
		}
		if err := fromJSON(decisions, &e.Decisions); err != nil {
			return e, fmt.Errorf("elevation %s decisions: %w", e.ID, err)
		}
		return e, nil
	},
	values: func(e store.Elevation) ([]string, []any) {
		decisions := e.Decisions
		if decisions == nil {
			decisions = []store.ElevationDecision{}
		}
		return []string{"user_id", "role", "scope_json", "duration_us", "justification", "ticket", "state", "requested_at", "proven_at", "deadline",
				"decisions_json", "activated_at", "until_at", "ended_at", "ended_by", "end_reason", "created_at", "updated_at", "version"},
			[]any{e.UserID, strings.ToLower(e.Role), toJSON(nonNil(e.Scope)), e.Duration.Microseconds(), e.Justification, e.Ticket, e.State,
				micros(e.RequestedAt), micros(e.ProvenAt), micros(e.Deadline), toJSON(decisions), micros(e.ActivatedAt), micros(e.Until),
				micros(e.EndedAt), e.EndedBy, e.EndReason, micros(e.CreatedAt), micros(e.UpdatedAt), e.Version}
	},
	keyOf:     func(e store.Elevation) string { return e.ID },
	versionOf: func(e store.Elevation) int64 { return e.Version },
	stamp: func(e *store.Elevation, now time.Time, v int64) {
		e.Role = strings.ToLower(e.Role)
		e.CreatedAt, e.UpdatedAt, e.Version = orNow(e.CreatedAt, now), now.UTC().Truncate(time.Microsecond), v
	},
}

func (s *DB) CreateRoleAssignment(ctx context.Context, a store.RoleAssignment) (store.RoleAssignment, error) {
	return assignments.create(ctx, s, a)
}

func (s *DB) ListRoleAssignments(ctx context.Context, role string) ([]store.RoleAssignment, error) {
	if role == "" {
		return assignments.list(ctx, s, "", "role, principal, kind")
	}
	return assignments.list(ctx, s, "role = ?", "role, principal, kind", strings.ToLower(role))
}

func (s *DB) DeleteRoleAssignment(ctx context.Context, id string) error {
	defer s.accessChanged()
	return assignments.delete(ctx, s, id)
}

// deleteAssignments removes, inside tx, the assignments where matches.
func (s *DB) deleteAssignments(ctx context.Context, tx *sql.Tx, where string, arg any) error {
	_, err := tx.ExecContext(ctx, s.q("DELETE FROM role_assignments WHERE "+where), arg)
	return err
}

func (s *DB) CreateElevation(ctx context.Context, e store.Elevation) (store.Elevation, error) {
	return elevations.create(ctx, s, e)
}

func (s *DB) GetElevation(ctx context.Context, id string) (store.Elevation, error) {
	return elevations.get(ctx, s, s.db, "id = ?", id)
}

// UpdateElevation enforces the elevation's lifecycle (its terms fixed,
// no way back from an end, no activation without the step-up, no
// longer life) inside the compare-and-swap, against the stored record.
func (s *DB) UpdateElevation(ctx context.Context, id string, fn func(store.Elevation) (store.Elevation, error)) (store.Elevation, error) {
	defer s.accessChanged()
	return elevations.update(ctx, s, id, func(cur store.Elevation) (store.Elevation, error) {
		next, err := fn(cur)
		if err != nil {
			return next, err
		}
		if err := cur.CheckUpdate(next); err != nil {
			return next, fmt.Errorf("update elevation %q: %w", id, err)
		}
		return next, nil
	})
}

// maxElevationPage bounds one page of ListElevations: a larger Limit
// gets this many, not the default.
const maxElevationPage = 1000

// ListElevations pages newest request first; the cursor is the last
// row's (RequestedAt, ID).
func (s *DB) ListElevations(ctx context.Context, q store.ElevationQuery) ([]store.Elevation, error) {
	var where []string
	var args []any
	if q.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, q.UserID)
	}
	if q.Role != "" {
		where, args = append(where, "role = ?"), append(args, strings.ToLower(q.Role))
	}
	if len(q.States) > 0 {
		where = append(where, "state IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(q.States)), ", ")+")")
		for _, st := range q.States {
			args = append(args, st)
		}
	}
	if !q.Before.IsZero() {
		where = append(where, "(requested_at < ? OR (requested_at = ? AND id < ?))")
		args = append(args, micros(q.Before), micros(q.Before), q.BeforeID)
	}
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = 100
	case limit > maxElevationPage:
		limit = maxElevationPage
	}
	return elevations.list(ctx, s, strings.Join(where, " AND "), fmt.Sprintf("requested_at DESC, id DESC LIMIT %d", limit), args...)
}

// withGrants fills u.Grants: the active assignments to u or its groups
// and u's active elevations not yet past their end at the store's clock
// whose role u is still eligible for. An elevation is still checked
// against the clock wherever it is used; this only keeps ended ones from
// being carried around.
//
// Eligibility is checked here, at every lookup, so that an elevation
// stops counting on every node the moment its holder leaves the eligible
// group, or the eligible assignment or the role is deleted, before
// anything has marked it deactivated.
func (s *DB) withGrants(ctx context.Context, u store.User, err error) (store.User, error) {
	if err != nil {
		return u, err
	}
	principals := []any{store.UserPrincipal(u.ID)}
	for _, g := range u.Groups {
		principals = append(principals, store.GroupPrincipal(g))
	}
	holders := "principal IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(principals)), ", ") + ")"
	query := "SELECT role, scope_json, 0, 0, '' FROM role_assignments WHERE kind = ? AND " + holders +
		" UNION ALL SELECT e.role, e.scope_json, e.activated_at, e.until_at, e.id FROM elevations e" +
		" WHERE e.user_id = ? AND e.state = ? AND e.until_at > ?" +
		" AND EXISTS (SELECT 1 FROM role_assignments a WHERE a.role = e.role AND a.kind = ? AND a." + holders + ")"
	args := append([]any{store.AssignActive}, principals...)
	args = append(args, u.ID, store.ElevationActive, micros(s.now()), store.AssignEligible)
	args = append(args, principals...)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return u, fmt.Errorf("user %s grants: %w", u.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var g store.Grant
		var scope string
		var since, until int64
		if err := rows.Scan(&g.Role, &scope, &since, &until, &g.Elevation); err != nil {
			return u, fmt.Errorf("user %s grants: %w", u.ID, err)
		}
		g.Since, g.Until = fromMicros(since), fromMicros(until)
		if err := fromJSON(scope, &g.Scope); err != nil {
			return u, fmt.Errorf("user %s grant scope: %w", u.ID, err)
		}
		if len(g.Scope) == 0 {
			g.Scope = nil
		}
		u.Grants = append(u.Grants, g)
	}
	return u, rows.Err()
}
