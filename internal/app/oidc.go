package app

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/policy"
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
func (a *App) buildOIDC(ctx context.Context, pages *web.Pages, trusted []netip.Prefix) error {
	cfg := a.Config.OIDC
	clients, err := oidc.NewClients(a.Store, cfg.Clients, nil)
	if err != nil {
		return err
	}
	a.Clients = clients
	a.Keys = KeyRingFor(a.Config, a.Store)
	if err := a.Keys.Maintain(ctx); err != nil {
		return err
	}
	sidKey, err := sharedSecret(ctx, a.Store, "secrets/oidc-sid")
	if err != nil {
		return fmt.Errorf("load session id key: %w", err)
	}
	access := &accessBuilder{clientIP: httpx.ClientIP{Trusted: trusted}}
	a.OIDC = oidc.New(oidc.Deps{
		Issuer: a.Config.Server.Issuer, Store: a.Store, Sessions: a.Sessions, Clients: clients, Keys: a.Keys,
		Policies: a.Policies, Access: access.request,
		Lifetimes: oidc.Lifetimes{
			Code: cfg.CodeLifetime.D(), AccessToken: cfg.AccessTokenLifetime.D(),
			IDToken: cfg.IDTokenLifetime.D(), RefreshToken: cfg.RefreshTokenLifetime.D(),
		},
		SIDKey: sidKey, ErrorPage: pages.ErrorPage, Log: a.Log,
	})
	return nil
}

// accessBuilder turns a browser request by a signed-in user into the
// conditional access request the policy engine evaluates.
type accessBuilder struct {
	clientIP httpx.ClientIP
}

func (b *accessBuilder) request(r *http.Request, u store.User, s *store.Session, now time.Time) *policy.Request {
	req := &policy.Request{
		Subject:   policy.Subject{ID: u.ID, Username: u.Username, Groups: u.Groups, Roles: u.Roles},
		IP:        b.clientIP.Of(r),
		Platform:  policy.PlatformFromUserAgent(r.UserAgent()),
		ClientApp: policy.ClientBrowser,
		Now:       now,
	}
	if s != nil {
		req.Events = make([]strength.Event, len(s.Events))
		for i, e := range s.Events {
			req.Events[i] = strength.Event{Method: e.Method, Time: e.Time, AMR: e.AMR,
				PhishingResistant: e.PhishingResistant, UserVerified: strength.UserVerifiedAMR(e.AMR)}
		}
	}
	return req
}
