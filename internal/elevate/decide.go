package elevate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/stepgate/stepgate/internal/store"
)

// Decide records approver's answer to the pending request id. Approval
// needs a member of the role's approver group other than the requester,
// a request its requester has proven, and no earlier answer of the same
// approver; enough approvals turn it active, one denial ends it. The
// answer is a compare-and-swap on the request: of two racing answers,
// or an answer racing the request's lapse, exactly one counts first and
// the other sees its outcome.
func (s *Service) Decide(ctx context.Context, id string, approver store.User, approve bool, comment string) (store.Elevation, error) {
	comment = strings.TrimSpace(comment)
	if len(comment) > MaxComment || strings.ContainsFunc(comment, unicode.IsControl) {
		return store.Elevation{}, invalid("the comment must be plain text on one line, at most %d bytes", MaxComment)
	}
	e, err := s.get(ctx, id)
	if err != nil {
		return e, err
	}
	role := s.Roles(e.Role)
	if err := mayDecide(role, e, approver); err != nil {
		return store.Elevation{}, err
	}
	if approve {
		// An approval must not turn active what the sweep is about to end:
		// a requester disabled or no longer eligible gets nothing.
		if err := s.stillEligible(ctx, e); err != nil {
			return store.Elevation{}, err
		}
	}
	now := s.now()
	var events []string
	e, err = s.Store.UpdateElevation(ctx, id, func(cur store.Elevation) (store.Elevation, error) {
		events = events[:0]
		if err := pendingAt(cur, now); err != nil {
			return cur, err
		}
		if cur.ProvenAt.IsZero() {
			return cur, ErrUnproven
		}
		if slices.ContainsFunc(cur.Decisions, func(d store.ElevationDecision) bool { return d.By == approver.ID }) {
			return cur, ErrAlreadyAnswered
		}
		cur.Decisions = append(slices.Clone(cur.Decisions), store.ElevationDecision{By: approver.ID, At: now, Approve: approve, Comment: comment})
		if !approve {
			cur.State, cur.EndedAt, cur.EndedBy, cur.EndReason = store.ElevationDenied, now, approver.ID, comment
			events = append(events, Denied)
			return cur, nil
		}
		events = append(events, Approved)
		if approvals(cur) >= role.Approvers.Count {
			activate(&cur, now)
			events = append(events, Activated)
		}
		return cur, nil
	})
	if err != nil {
		return e, s.lapseIfDue(ctx, id, err)
	}
	requester := s.requester(ctx, e)
	for _, k := range events {
		s.announce(ctx, Event{Kind: k, Elevation: e, Requester: requester, Actor: approver.ID, ActorName: approver.Username, Comment: comment, At: now})
	}
	return e, nil
}

// mayDecide refuses an approver who may not answer e.
func mayDecide(role Role, e store.Elevation, approver store.User) error {
	switch {
	case role.Approvers == nil:
		return fmt.Errorf("%w: %s needs no approval", ErrDecided, role.Name)
	case approver.ID == e.UserID:
		return ErrSelfApproval
	case approver.Disabled || !slices.Contains(approver.Groups, role.Approvers.Group):
		return fmt.Errorf("%w: approvers of %s are the members of the group %s", ErrNotApprover, role.Name, role.Approvers.Group)
	}
	return nil
}

func approvals(e store.Elevation) int {
	n := 0
	for _, d := range e.Decisions {
		if d.Approve {
			n++
		}
	}
	return n
}

// lapseIfDue records the lapse of a request that err found past its
// deadline, and returns the error to give the caller.
func (s *Service) lapseIfDue(ctx context.Context, id string, err error) error {
	if !errors.Is(err, errLapsed) {
		return err
	}
	if _, lerr := s.end(ctx, id, store.ElevationPending, store.ElevationExpired, "system", "", "no-decision"); lerr != nil && !errors.Is(lerr, ErrDecided) {
		return lerr
	}
	return fmt.Errorf("%w: it lapsed before anyone decided; ask again", ErrDecided)
}

// stillEligible refuses e when its requester is disabled, gone, or no
// longer eligible for its role.
func (s *Service) stillEligible(ctx context.Context, e store.Elevation) error {
	u, err := s.Store.GetUser(ctx, e.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return fmt.Errorf("%w: the requester's account is disabled or gone", ErrNotEligible)
	}
	if err != nil {
		return err
	}
	_, ok, err := s.eligibleFor(ctx, u, e.Role)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: the requester is no longer eligible for %s", ErrNotEligible, e.Role)
	}
	return nil
}
