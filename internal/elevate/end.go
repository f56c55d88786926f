package elevate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// End reasons recorded on an elevation.
const (
	ReasonNoDecision   = "no-decision"
	ReasonTimeUp       = "time-up"
	ReasonByHolder     = "by-holder"
	ReasonNotEligible  = "no-longer-eligible"
	ReasonRoleDeleted  = "role-deleted"
	ReasonUserDisabled = "user-disabled"
)

// Deactivate ends the pending request or active elevation id before its
// time: its holder may end their own, an administrator (admin true) any.
// The role stops counting at once on this node, and on every node within
// the gateway's identity cache bound.
func (s *Service) Deactivate(ctx context.Context, id string, actor store.User, admin bool, why string) (store.Elevation, error) {
	why = strings.TrimSpace(why)
	if len(why) > MaxComment {
		return store.Elevation{}, invalid("the reason is longer than %d bytes; shorten it", MaxComment)
	}
	e, err := s.get(ctx, id)
	if err != nil {
		return e, err
	}
	if !admin && e.UserID != actor.ID {
		return store.Elevation{}, ErrNotYours
	}
	if why == "" {
		why = ReasonByHolder
		if e.UserID != actor.ID {
			why = "by-administrator"
		}
	}
	return s.end(ctx, id, e.State, store.ElevationDeactivated, actor.ID, actor.Username, why)
}

// end moves id from state from to state to, as actor, and announces it.
func (s *Service) end(ctx context.Context, id, from, to, actorID, actorName, why string) (store.Elevation, error) {
	now := s.now()
	e, err := s.Store.UpdateElevation(ctx, id, func(cur store.Elevation) (store.Elevation, error) {
		if cur.State != from || (cur.State != store.ElevationPending && cur.State != store.ElevationActive) {
			return cur, fmt.Errorf("%w (it is %s)", ErrDecided, cur.State)
		}
		if cur.State == store.ElevationActive && to == store.ElevationDeactivated && !now.Before(cur.Until) {
			// Already over: record it as the expiry it is.
			to, why = store.ElevationExpired, ReasonTimeUp
		}
		cur.State, cur.EndedAt, cur.EndedBy, cur.EndReason = to, now, actorID, why
		return cur, nil
	})
	if err != nil {
		return e, err
	}
	kind := Deactivated
	if e.State == store.ElevationExpired {
		kind = Expired
	}
	s.announce(ctx, Event{Kind: kind, Elevation: e, Requester: s.requester(ctx, e), Actor: actorID, ActorName: actorName, Comment: why, At: now})
	return e, nil
}

// Sweep ends what is due: active elevations past their time, pending
// requests past their deadline, and both for a user who is no longer
// eligible (the assignment or the group membership removed, the role
// deleted, the user disabled or deleted). Each end is a compare-and-swap,
// so nodes sweeping at once record each end once. The role stops
// counting at Until whether or not a sweep has run (store.Grant.At);
// the sweep records it and tells people.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now, n := s.now(), 0
	q := store.ElevationQuery{States: []string{store.ElevationPending, store.ElevationActive}, Limit: sweepPage}
	for {
		open, err := s.Store.ListElevations(ctx, q)
		if err != nil {
			return n, fmt.Errorf("list open elevations: %w", err)
		}
		for _, e := range open {
			ended, err := s.sweepOne(ctx, e, now)
			if err != nil {
				return n, err
			}
			if ended {
				n++
			}
		}
		if len(open) < sweepPage {
			return n, nil
		}
		last := open[len(open)-1]
		q.Before, q.BeforeID = last.RequestedAt, last.ID
	}
}

// sweepPage is how many open elevations a sweep reads at a time.
const sweepPage = 500

// sweepOne ends e when it is due at now.
func (s *Service) sweepOne(ctx context.Context, e store.Elevation, now time.Time) (bool, error) {
	to, why, err := s.due(ctx, e, now)
	if err != nil || to == "" {
		return false, err
	}
	if _, err := s.end(ctx, e.ID, e.State, to, "system", "", why); err != nil {
		if errors.Is(err, ErrDecided) || errors.Is(err, store.ErrConflict) {
			return false, nil // another node or a decision got there first
		}
		return false, err
	}
	return true, nil
}

// due says whether e must end at now, and how.
func (s *Service) due(ctx context.Context, e store.Elevation, t time.Time) (to, why string, err error) {
	switch {
	case e.State == store.ElevationActive && !t.Before(e.Until):
		return store.ElevationExpired, ReasonTimeUp, nil
	case e.State == store.ElevationPending && !t.Before(e.Deadline):
		return store.ElevationExpired, ReasonNoDecision, nil
	}
	u, err := s.Store.GetUser(ctx, e.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.ElevationDeactivated, ReasonNotEligible, nil
	case err != nil:
		return "", "", fmt.Errorf("user %s: %w", e.UserID, err)
	case u.Disabled:
		return store.ElevationDeactivated, ReasonUserDisabled, nil
	}
	if _, err := s.Store.GetRole(ctx, e.Role); errors.Is(err, store.ErrNotFound) {
		return store.ElevationDeactivated, ReasonRoleDeleted, nil
	} else if err != nil {
		return "", "", fmt.Errorf("role %s: %w", e.Role, err)
	}
	all, err := s.Eligible(ctx, u)
	if err != nil {
		return "", "", err
	}
	if !slices.ContainsFunc(all, func(el Eligibility) bool { return el.Role.Name == e.Role }) {
		return store.ElevationDeactivated, ReasonNotEligible, nil
	}
	return "", "", nil
}
