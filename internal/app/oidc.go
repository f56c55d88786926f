package app

import (
	"context"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/web"
)

// KeyRingFor builds the signing key ring for cfg; "stepgate keys" uses
// it too, so the CLI and the server rotate by the same rules.
func KeyRingFor(cfg config.Config, st store.KV) *oidc.KeyRing {
	o := cfg.OIDC
	return oidc.NewKeyRing(st, oidc.KeyPolicy{
		Alg: o.SigningAlg, Rotation: o.KeyRotation.D(), PublishAhead: o.KeyPublishAhead.D(),
		// A retired key stays published while a token it signed can
		// still be valid, plus a minute for clock skew.
		Retain: max(o.AccessTokenLifetime.D(), o.IDTokenLifetime.D()) + time.Minute,
	}, nil)
}

// buildOIDC builds the OpenID Provider: clients, keys and endpoints.
func (a *App) buildOIDC(ctx context.Context, pages *web.Pages) error {
	cfg := a.Config.OIDC
	clients, err := oidc.NewClients(a.Store, ClientsOptions(cfg.Clients))
	if err != nil {
		return err
	}
	a.Clients = clients
	// Policies loaded before this point already checked app targets
	// against the same clients, through AppSources.
	a.Keys = KeyRingFor(a.Config, a.Store)
	if err := a.Keys.Maintain(ctx); err != nil {
		return err
	}
	sidKey, err := sharedSecret(ctx, a.Store, "oidc-sid")
	if err != nil {
		return fmt.Errorf("load session id key: %w", err)
	}
	appPolicies, err := a.appPolicies()
	if err != nil {
		return err
	}
	a.OIDC = oidc.New(oidc.Deps{
		Issuer: a.Config.Server.Issuer, Store: a.Store, Sessions: a.Sessions, Clients: clients, Keys: a.Keys,
		Policies: a.Policies, AppPolicies: appPolicies, Access: a.Access.Request, Methods: a.Methods.Registry, Revocations: a.Revoker,
		Lifetimes: oidc.Lifetimes{
			Code: cfg.CodeLifetime.D(), AccessToken: cfg.AccessTokenLifetime.D(),
			IDToken: cfg.IDTokenLifetime.D(), RefreshToken: cfg.RefreshTokenLifetime.D(),
		},
		Device: oidc.DeviceOptions{
			Lifetime: cfg.Device.Lifetime.D(), Interval: cfg.Device.Interval.D(),
			MaxPending: cfg.Device.MaxPending, MaxBytes: int64(cfg.Device.MaxBytes), PerAddress: cfg.Device.PerAddress,
		},
		Databases: a.Config.DatabaseNames(),
		SIDKey:    sidKey, Box: a.Methods.Box, ErrorPage: pages.ErrorPage, Log: a.Log, Metrics: a.Metrics, SignIns: a.writeSignIn,
	})
	pages.Devices = a.OIDC
	return nil
}
