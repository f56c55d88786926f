package app

import (
	"context"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/store"
)

// elevationSweepInterval is how often each node ends what is due: active
// elevations past their time, requests past their deadline, holders no
// longer eligible. A role stops counting at its end whether or not the
// sweep has run; the sweep records the end and tells people.
const elevationSweepInterval = time.Second

// newElevation builds the elevation service for cfg over the app's
// store and live policies.
func (a *App) newElevation() (*elevate.Service, error) {
	checker, err := elevate.NewChecker(a.Policies.Load)
	if err != nil {
		return nil, err
	}
	return &elevate.Service{
		Store: a.Store, Roles: ElevationRoles(a.Config.Elevation), Proofs: checker,
		MaxPending: a.Config.Elevation.MaxPending, Now: time.Now,
	}, nil
}

// ElevationRoles returns the activation settings of each role under cfg.
func ElevationRoles(cfg config.Elevation) func(string) elevate.Role {
	return func(name string) elevate.Role {
		c := cfg.RoleSettings(name)
		r := elevate.Role{
			Name: c.Role, MaxDuration: c.MaxDuration.D(), Context: c.Context, Notify: c.Notify,
			NeedJustification: c.Justification == "required", NeedTicket: c.Ticket == "required",
		}
		if c.Approvers != nil {
			r.Approvers = &elevate.Approvers{Group: c.Approvers.Group, Count: c.Approvers.Count, Expire: c.Approvers.Expire.D()}
		}
		return r
	}
}

// EligibleRoles lists the roles a user may activate under svc, for the
// What-If's account of a user's roles.
func EligibleRoles(svc *elevate.Service) func(ctx context.Context, u store.User) ([]string, error) {
	return func(ctx context.Context, u store.User) ([]string, error) {
		all, err := svc.Eligible(ctx, u)
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(all))
		for _, e := range all {
			out = append(out, e.Role.Name)
		}
		return out, nil
	}
}

// ForgetOnElevation is the observer that has forget (the gateway's)
// drop its cached identities when an elevation on this node starts or
// ends. A role already stops counting at its end on every request
// (User.RolesAt), but a deactivation before that end is only in the
// store: without this, a cached identity would keep the role for up to
// the cache's lifetime on the node where it was ended. Other nodes
// follow within that lifetime. Dropping on activation lets the first
// request after an approval see the role.
func ForgetOnElevation(forget func(userID string)) elevate.Observer {
	return func(_ context.Context, e elevate.Event) {
		switch e.Kind {
		case elevate.Activated, elevate.Expired, elevate.Deactivated:
			forget(e.Elevation.UserID)
		}
	}
}
