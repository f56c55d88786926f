package app

import (
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/store"
)

// CommandLineElevation builds the elevation service the command line
// runs against the store: the server's role settings and the given
// observers, without the live policies. It cannot prove a request (nil
// Proofs): only the requester does, on the step-up their roles page
// starts, so an operator can create, answer and end requests but never
// stand in for the step-up.
func CommandLineElevation(cfg config.Config, st store.Store, observers ...elevate.Observer) *elevate.Service {
	return &elevate.Service{Store: st, Roles: ElevationRoles(cfg.Elevation), MaxPending: cfg.Elevation.MaxPending, Observers: observers, Now: time.Now}
}
