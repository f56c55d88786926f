package app

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/recovery"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/web"
)

// Methods are the authentication methods of a deployment, built the same
// way for the server and the command line.
type Methods struct {
	Registry *authn.Registry
	TOTP     *totp.Method
	Recovery *recovery.Method
	// WebAuthn is nil when passkeys are off (the issuer's host is an IP
	// address and webauthn.rp_id is not set).
	WebAuthn *webauthn.Method
	Box      *secrets.Box
}

// NewMethods builds the methods for cfg over st. The secrets key comes
// from secrets.key or the key file in the data directory.
func NewMethods(cfg config.Config, st store.Store) (*Methods, error) {
	key, err := secrets.LoadKey(cfg.Secrets.Key, cfg.Server.DataDir)
	if err != nil {
		return nil, err
	}
	box, err := secrets.New(key)
	if err != nil {
		return nil, err
	}
	m := &Methods{
		Box:      box,
		TOTP:     totp.New(st, box, cfg.TOTP.Issuer, nil),
		Recovery: recovery.New(st, nil),
	}
	// Prompt order: phishing-resistant first, then app-based, then codes
	// sent over channels an attacker can intercept, recovery last.
	var methods []authn.Method
	if cfg.WebAuthn.RPID != "" {
		m.WebAuthn, err = webauthn.New(webauthn.Config{
			RPID: cfg.WebAuthn.RPID, RPName: cfg.WebAuthn.RPName,
			Origins: cfg.WebAuthn.Origins, AllowedAAGUIDs: cfg.WebAuthn.AllowedAAGUIDs,
		}, st, st, nil)
		if err != nil {
			return nil, err
		}
		methods = append(methods, m.WebAuthn)
	}
	m.Registry = authn.NewRegistry(append(methods, m.TOTP, m.Recovery)...)
	return m, nil
}

// credentialDetail adds a line about a credential on the security page.
func credentialDetail(c store.Credential) string {
	switch c.Type {
	case recovery.Name:
		return strconv.Itoa(recovery.Remaining(c)) + " of " + strconv.Itoa(recovery.Count) + " codes left"
	case webauthn.Name:
		if id := webauthn.AAGUID(c); id != "" && id != "00000000-0000-0000-0000-000000000000" {
			return "model " + id
		}
	}
	return ""
}

// registerCheck applies the register-security-info policies: nil when
// the user may register now, the methods to step up with when a proof is
// missing, blocked when the policies block it or no method of the user's
// can satisfy them.
func (a *App) registerCheck(r *http.Request, u store.User, s store.Session) ([]string, bool) {
	now := time.Now()
	req := a.Access.Request(r, u, &s, now)
	req.Action = policy.ActionRegisterSecurityInfo
	d := a.Policies.Evaluate(req, policy.EvaluateOptions{})
	switch d.Outcome {
	case policy.OutcomeAllow:
		return nil, false
	case policy.OutcomeBlock:
		return nil, true
	}
	available, err := a.availableMethods(r, u)
	if err != nil {
		a.Log.ErrorContext(r.Context(), "list methods", "err", err)
		return nil, true
	}
	methods, ok := policy.StepUpMethods(d.Missing, available)
	if !ok {
		return nil, true
	}
	return methods, false
}

// availableMethods are the methods u has, in prompt order, password last.
func (a *App) availableMethods(r *http.Request, u store.User) ([]string, error) {
	creds, err := a.Store.ListCredentials(r.Context(), u.ID)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	var out []string
	for _, name := range a.Methods.Registry.Names() {
		if slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Type == name }) {
			out = append(out, name)
		}
	}
	if u.PasswordHash != "" {
		out = append(out, strength.Password)
	}
	return out, nil
}

// ipThrottle counts failed sign-ins per client address. An office behind
// one NAT address has many users who mistype, so it allows far more
// failures than the per-account throttle before it slows down; a
// password spray across accounts from one address still hits it within
// a hundred tries.
func ipThrottle(st store.KV) *authn.Throttle {
	t := authn.NewThrottle(st, nil)
	t.Free = 100
	return t
}

// passkeys is the passwordless sign-in the pages offer, or nil (an untyped
// nil, which the pages test for) when passkeys are off.
func passkeys(m *Methods) web.PasskeyLogin {
	if m.WebAuthn == nil {
		return nil
	}
	return m.WebAuthn
}
