package app

import (
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
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
