package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/elevate/observe"
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

// CommandLineWatch builds, for a command that changes elevations, the
// same observers the server has (audit trail, sign-in log, mail,
// webhook), so a request answered from the command line is recorded and
// told like one answered in the console. close sends what is queued and
// writes the sign-in log before the command exits.
func CommandLineWatch(ctx context.Context, cfg config.Config, st store.Store, log *slog.Logger) (observers []elevate.Observer, closeWatch func(context.Context), err error) {
	signIns := audit.NewSignInLog(st, audit.SignInLogOptions{})
	mail, err := emailSender(cfg.OTP, log)
	if err != nil {
		return nil, nil, err
	}
	deps := ElevationWatchDeps{Store: st, Roles: ElevationRoles(cfg.Elevation), Audit: audit.New(st, nil), SignIns: signIns.Write, Log: log}
	if n, ok := mail.(observe.Sender); ok {
		deps.Mail = n
	}
	watch, err := NewElevationWatch(cfg, deps)
	if err != nil {
		return nil, nil, err
	}
	return watch.Observers, func(ctx context.Context) {
		if err := watch.Close(ctx); err != nil {
			log.WarnContext(ctx, "elevation notices of this command were not all sent", "err", err)
		}
		if err := signIns.Close(ctx); err != nil {
			log.WarnContext(ctx, "sign-in log entries of this command were not all written", "err", err)
		}
	}, nil
}
