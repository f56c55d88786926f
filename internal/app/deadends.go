package app

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/deadend"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/web"
)

// DeadEnds builds the dead-end analysis of cfg's deployment over st: its
// methods and its registration rules. The server and the command line
// build it the same way.
func DeadEnds(cfg config.Config, st store.Store, m *Methods, now func() time.Time) *deadend.Analyzer {
	a := &deadend.Analyzer{
		Store: st, Methods: m.Registry.Names(), Now: now,
		Rules: deadend.Rules{PhishingResistant: cfg.Registration.PhishingResistant, Window: cfg.Registration.Window.D()},
	}
	if m.Passes != nil {
		a.HasPass = func(ctx context.Context, userID string) (bool, error) {
			p, err := m.Passes.Get(ctx, userID)
			if errors.Is(err, tap.ErrNone) {
				return false, nil
			}
			return err == nil && p.Usable(now()), err
		}
	}
	return a
}

// deadEnds is the analysis of the running server.
func (a *App) deadEnds() *deadend.Analyzer {
	return DeadEnds(a.Config, a.Store, a.Methods, time.Now)
}

// registrationOffer is the registration campaign's offer for u: the
// method that gets them through the first live policy they cannot meet
// but could after registering it, with every such policy it fixes.
func (a *App) registrationOffer(ctx context.Context, u store.User) (web.RegistrationOffer, bool, error) {
	found, err := a.deadEnds().ForUser(ctx, a.Policies.Load(), u)
	if err != nil {
		return web.RegistrationOffer{}, false, err
	}
	var o web.RegistrationOffer
	for _, f := range found {
		if f.Verdict != deadend.Fixable {
			continue
		}
		if o.Method == "" {
			o.Method, o.Why = f.Register[0], f.Why
		}
		if slices.Contains(f.Register, o.Method) {
			o.Policies = append(o.Policies, f.Policy)
			if !slices.Contains(o.For, f.Targets) {
				o.For = append(o.For, f.Targets)
			}
		}
	}
	return o, o.Method != "", nil
}
