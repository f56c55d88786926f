package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/elevate/observe"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/store"
)

// elevationSweepInterval is how often each node ends what is due: active
// elevations past their time, requests past their deadline, holders no
// longer eligible. A role stops counting at its end whether or not the
// sweep has run; the sweep records the end and tells people.
const elevationSweepInterval = time.Second

// activeElevationsRefresh is how often the active-elevations gauge reads
// the store at most, however often /metrics is scraped.
const activeElevationsRefresh = 15 * time.Second

// newElevation builds the elevation service for cfg over the app's
// store and live policies.
func (a *App) newElevation() (*elevate.Service, error) {
	checker, err := elevate.NewChecker(a.Policies.Load)
	if err != nil {
		return nil, err
	}
	roles := ElevationRoles(a.Config.Elevation)
	watch, err := NewElevationWatch(a.Config, ElevationWatchDeps{
		Store: a.Store, Roles: roles, Audit: a.Audit, SignIns: a.writeSignIn, Metrics: a.Metrics,
		Mail: a.Methods.Notifier, Log: a.Log,
	})
	if err != nil {
		return nil, err
	}
	a.elevationWatch = watch
	a.Metrics.WatchElevations(observe.CountActive(a.Store, time.Now), activeElevationsRefresh, nil)
	return &elevate.Service{
		Store: a.Store, Roles: roles, Proofs: checker,
		MaxPending: a.Config.Elevation.MaxPending, Observers: watch.Observers, Now: time.Now,
	}, nil
}

// ElevationWatchDeps are what watches elevations writes to.
type ElevationWatchDeps struct {
	Store store.Store
	Roles func(string) elevate.Role
	Audit *audit.Log
	// SignIns writes a sign-in log entry.
	SignIns func(context.Context, audit.SignIn) error
	// Metrics may be nil (the command line has none).
	Metrics *metrics.Metrics
	// Mail may be nil: no mail is sent (otp.email.sender none).
	Mail observe.Sender
	Log  *slog.Logger
}

// ElevationWatch is everything that watches elevations: the audit
// trail, the sign-in log, the metrics, mail and the webhook. The server
// and the command line build it alike, so a request approved from
// either is recorded and told alike; Close sends what is queued.
type ElevationWatch struct {
	Observers []elevate.Observer
	mailer    *observe.Mailer
	webhook   *observe.Webhook
}

// NewElevationWatch builds the observers for cfg.
func NewElevationWatch(cfg config.Config, d ElevationWatchDeps) (*ElevationWatch, error) {
	w := &ElevationWatch{Observers: []elevate.Observer{
		observe.Audit(d.Audit, d.Log), observe.SignIns(d.SignIns, d.Log), observe.Metrics(d.Metrics),
	}}
	if d.Mail != nil {
		w.mailer = observe.NewMailer(observe.MailOptions{
			Sender: d.Mail, Users: d.Store, Roles: d.Roles, Issuer: cfg.Server.Issuer, Metrics: d.Metrics, Log: d.Log,
		})
		w.Observers = append(w.Observers, w.mailer.Observe)
	} else if len(cfg.Elevation.Roles) > 0 {
		d.Log.Warn("elevation requests and outcomes are not mailed: otp.email.sender is none", "key", "elevation.roles")
	}
	if hook := cfg.Elevation.Webhook; hook.URL != "" {
		var err error
		if w.webhook, err = observe.NewWebhook(observe.WebhookOptions{
			URL: hook.URL, Secret: hook.Secret, Roles: d.Roles, Metrics: d.Metrics, Log: d.Log,
		}); err != nil {
			return nil, err
		}
		w.Observers = append(w.Observers, w.webhook.Observe)
	}
	return w, nil
}

// elevationNoticeGrace bounds how long shutting down waits for queued
// mail and webhook posts: a dead receiver must not hold up a restart.
const elevationNoticeGrace = 5 * time.Second

// Close sends the queued mail and webhook posts for a few seconds at
// most (until ctx ends, if sooner), then gives up the rest, logged.
func (w *ElevationWatch) Close(ctx context.Context) error {
	if w == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, elevationNoticeGrace)
	defer cancel()
	var errs []error
	if w.mailer != nil {
		errs = append(errs, w.mailer.Close(ctx))
	}
	if w.webhook != nil {
		errs = append(errs, w.webhook.Close(ctx))
	}
	return errors.Join(errs...)
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
