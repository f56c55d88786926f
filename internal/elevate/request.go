package elevate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// proofWindow is how long a request without approvers waits for its
// requester's proof before it lapses.
const proofWindow = 15 * time.Minute

// Ask is what a user asks for. Duration zero means the role's maximum.
type Ask struct {
	Role          string
	Duration      time.Duration
	Justification string
	Ticket        string
}

// Request validates a and stores it as a pending request of u's. Nothing
// is stored when a is refused. The request still needs its requester's
// proof (Prove) and, where the role says so, approvals.
func (s *Service) Request(ctx context.Context, u store.User, a Ask) (store.Elevation, error) {
	a.Role = strings.ToLower(strings.TrimSpace(a.Role))
	a.Justification, a.Ticket = strings.TrimSpace(a.Justification), strings.TrimSpace(a.Ticket)
	el, ok, err := s.eligibleFor(ctx, u, a.Role)
	if err != nil {
		return store.Elevation{}, err
	}
	if !ok {
		return store.Elevation{}, fmt.Errorf("%w %q; an administrator makes you eligible with: stepgate role eligible %s --user %s", ErrNotEligible, a.Role, a.Role, u.Username)
	}
	if err := checkAsk(el.Role, &a); err != nil {
		return store.Elevation{}, err
	}
	if err := s.checkOpen(ctx, u, a.Role); err != nil {
		return store.Elevation{}, err
	}
	now := s.now()
	deadline := now.Add(proofWindow)
	if el.Role.Approvers != nil {
		deadline = now.Add(el.Role.Approvers.Expire)
	}
	e, err := s.Store.CreateElevation(ctx, store.Elevation{
		ID: newID(), UserID: u.ID, Role: a.Role, Scope: el.Scope, Duration: a.Duration,
		Justification: a.Justification, Ticket: a.Ticket, State: store.ElevationPending,
		RequestedAt: now, Deadline: deadline,
	})
	if err != nil {
		return store.Elevation{}, fmt.Errorf("store the request: %w", err)
	}
	s.announce(ctx, Event{Kind: Requested, Elevation: e, Requester: u, Actor: u.ID, ActorName: u.Username, At: now})
	return e, nil
}

// checkAsk refuses what the role does not allow, and fills in the
// default duration.
func checkAsk(r Role, a *Ask) error {
	if a.Duration == 0 {
		a.Duration = r.MaxDuration
	}
	switch {
	case a.Duration < MinDuration:
		return invalid("the duration %s is shorter than the shortest activation, %s", a.Duration, MinDuration)
	case a.Duration > r.MaxDuration:
		return invalid("the duration %s is longer than %s allows; ask for %s or less", a.Duration, r.Name, r.MaxDuration)
	case r.NeedJustification && a.Justification == "":
		return invalid("%s needs a justification: say why you need it", r.Name)
	case r.NeedTicket && a.Ticket == "":
		return invalid("%s needs a ticket reference (the change or incident you work on)", r.Name)
	case len(a.Justification) > MaxJustification:
		return invalid("the justification is longer than %d bytes; shorten it", MaxJustification)
	case len(a.Ticket) > MaxTicket:
		return invalid("the ticket reference is longer than %d bytes; shorten it", MaxTicket)
	case strings.ContainsFunc(a.Justification+a.Ticket, unicode.IsControl):
		return invalid("the justification and ticket must be plain text on one line")
	}
	return nil
}

// checkOpen refuses a request when u already has one open for role, or
// too many undecided ones.
func (s *Service) checkOpen(ctx context.Context, u store.User, role string) error {
	open, err := s.Store.ListElevations(ctx, store.ElevationQuery{UserID: u.ID, States: []string{store.ElevationPending, store.ElevationActive}, Limit: 1000})
	if err != nil {
		return fmt.Errorf("list your requests: %w", err)
	}
	now, pending := s.now(), 0
	for _, e := range open {
		switch {
		case e.State == store.ElevationActive && now.Before(e.Until) && e.Role == role:
			return invalid("%s is already active until %s; deactivate it first to ask again", role, e.Until.UTC().Format(time.RFC3339))
		case e.State == store.ElevationPending && now.Before(e.Deadline) && e.Role == role:
			return invalid("a request for %s is already waiting (%s); cancel it first to ask again", role, e.ID)
		case e.State == store.ElevationPending && now.Before(e.Deadline):
			pending++
		}
	}
	if pending >= s.MaxPending {
		return fmt.Errorf("%w: you have %d waiting; cancel one or wait for a decision", ErrTooManyPending, pending)
	}
	return nil
}

// Prove checks the requester's proofs (req, built from their session or
// token by the enforcement point) against the role's activation context.
// On allow the request is marked proven, and turns active at once when
// the role needs no approval. Anything else comes back as the verdict,
// for the caller to send the requester to the step-up page; the request
// is unchanged.
func (s *Service) Prove(ctx context.Context, id string, u store.User, req *policy.Request, methods access.MethodSource) (store.Elevation, access.Verdict, error) {
	e, err := s.get(ctx, id)
	if err != nil {
		return e, access.Verdict{}, err
	}
	if e.UserID != u.ID {
		return store.Elevation{}, access.Verdict{}, ErrNotYours
	}
	role := s.Roles(e.Role)
	v, err := s.Proofs.Check(role, req, methods)
	if err != nil || v.Outcome != policy.OutcomeAllow {
		return e, v, err
	}
	now := s.now()
	var events []string
	e, err = s.Store.UpdateElevation(ctx, id, func(cur store.Elevation) (store.Elevation, error) {
		events = events[:0]
		if err := pendingAt(cur, now); err != nil {
			return cur, err
		}
		if !cur.ProvenAt.IsZero() {
			return cur, nil
		}
		cur.ProvenAt = now
		events = append(events, Proven)
		if role.Approvers == nil {
			activate(&cur, now)
			events = append(events, Activated)
		}
		return cur, nil
	})
	if err != nil {
		return e, v, s.lapseIfDue(ctx, id, err)
	}
	for _, k := range events {
		s.announce(ctx, Event{Kind: k, Elevation: e, Requester: u, Actor: u.ID, ActorName: u.Username, At: now})
	}
	return e, v, nil
}

func (s *Service) get(ctx context.Context, id string) (store.Elevation, error) {
	e, err := s.Store.GetElevation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return e, fmt.Errorf("%w %q", ErrNotFound, id)
	}
	return e, err
}

// errLapsed marks a pending request found past its deadline inside a
// compare-and-swap, which then records the lapse.
var errLapsed = errors.New("the request lapsed before anyone decided")

// pendingAt refuses a request that cannot move on at now.
func pendingAt(e store.Elevation, now time.Time) error {
	switch {
	case e.State != store.ElevationPending:
		return fmt.Errorf("%w (it is %s)", ErrDecided, e.State)
	case !now.Before(e.Deadline):
		return errLapsed
	}
	return nil
}

// activate turns a pending request active at now. Until is fixed here
// from the duration that was asked for and approved, and never moves.
func activate(e *store.Elevation, now time.Time) {
	e.State = store.ElevationActive
	e.ActivatedAt = now
	e.Until = now.Add(e.Duration)
}
