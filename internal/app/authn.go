package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/otp"
	"github.com/stepgate/stepgate/internal/authn/push"
	"github.com/stepgate/stepgate/internal/authn/recovery"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/config"
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
	// Email and SMS are nil when their sender is none.
	Email, SMS *otp.Method
	Push       *push.Method
	// OnFraudReport, when set, hears "this wasn't me" answers to push
	// requests (the risk engine raises the user's risk).
	OnFraudReport func(ctx context.Context, userID string)
	// WebAuthn is nil when passkeys are off (the issuer's host is an IP
	// address and webauthn.rp_id is not set).
	WebAuthn *webauthn.Method
	Box      *secrets.Box
	// Notifier mails notices of changes to users' sign-in methods: the
	// email sender of one-time codes, or nil when it is none.
	Notifier web.Notifier
	// Passes are the temporary access passes administrators issue.
	Passes *tap.Store
	// Models names passkeys' authenticator models: the built-in names
	// and those of webauthn.metadata_file.
	Models *webauthn.Models
}

// NewMethods builds the methods for cfg over st. The secrets key comes
// from secrets.key or the key file in the data directory. sessionUser
// names the signed-in user of a request, for the push device routes; the
// command line, which serves no routes, passes nil.
func NewMethods(cfg config.Config, st store.Store, log *slog.Logger, sessionUser func(*http.Request) (string, error)) (*Methods, error) {
	key, err := secrets.LoadKey(cfg.Secrets.Key, cfg.Server.DataDir)
	if err != nil {
		return nil, err
	}
	box, err := secrets.New(key)
	if err != nil {
		return nil, err
	}
	models, err := webauthn.NewModels(cfg.WebAuthn.MetadataFile)
	if err != nil {
		return nil, fmt.Errorf("webauthn.metadata_file: %w; download the FIDO metadata BLOB from https://mds3.fidoalliance.org/ or remove the key", err)
	}
	m := &Methods{
		Models:   models,
		Box:      box,
		TOTP:     totp.New(st, box, cfg.TOTP.Issuer, nil),
		Recovery: recovery.New(st, nil),
		Passes:   tap.New(st, nil),
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
	throttle := authn.NewThrottle(st, nil)
	if sessionUser == nil {
		// The command line serves no push device routes, so this is never
		// asked; push.New refuses a nil one, which used to break every
		// "stepgate user" command that builds the methods (totp,
		// totp-code, recovery-codes, reset-mfa).
		sessionUser = func(*http.Request) (string, error) {
			return "", errors.New("no signed-in user: the command line serves no pages")
		}
	}
	frame, err := web.NewFrame()
	if err != nil {
		return nil, err
	}
	if m.Push, err = push.New(push.Options{
		Creds: st, KV: st, SessionUser: sessionUser, Frame: frame, Secure: strings.HasPrefix(cfg.Server.Issuer, "https://"),
		Throttle: throttle, Log: log,
		OnFraudReport: func(ctx context.Context, userID string) {
			log.WarnContext(ctx, "a user reported a sign-in request as not theirs", "user_id", userID)
			if m.OnFraudReport != nil {
				m.OnFraudReport(ctx, userID)
			}
		},
	}); err != nil {
		return nil, err
	}
	methods = append(methods, m.Push, m.TOTP)
	d := otp.Deps{Creds: st, KV: st, Box: box, HashKey: otp.DeriveHashKey(key), Throttle: throttle, Log: log}
	if sender, err := smsSender(cfg.OTP, log); err != nil {
		return nil, err
	} else if sender != nil {
		if m.SMS, err = otp.NewSMS(d, sender); err != nil {
			return nil, err
		}
		methods = append(methods, m.SMS)
	}
	if sender, err := emailSender(cfg.OTP, log); err != nil {
		return nil, err
	} else if sender != nil {
		if m.Email, err = otp.NewEmail(d, sender); err != nil {
			return nil, err
		}
		methods = append(methods, m.Email)
		m.Notifier, _ = sender.(web.Notifier)
	}
	m.Registry = authn.NewRegistry(append(methods, m.Recovery)...)
	return m, nil
}

// emailSender returns the configured sender of email codes, or nil.
func emailSender(o config.OTP, log *slog.Logger) (otp.Sender, error) {
	switch o.Email.Sender {
	case "smtp":
		s := o.SMTP
		return otp.NewSMTPSender(otp.SMTPOptions{Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, From: s.From, InsecureLoopback: s.InsecureLoopback})
	case "log":
		return otp.NewLogSender(log), nil
	}
	return nil, nil
}

// smsSender returns the configured sender of text-message codes, or nil.
func smsSender(o config.OTP, log *slog.Logger) (otp.Sender, error) {
	switch o.SMS.Sender {
	case "webhook":
		return otp.NewWebhookSender(otp.WebhookOptions{URL: o.Webhook.URL, Secret: o.Webhook.Secret})
	case "log":
		return otp.NewLogSender(log), nil
	}
	return nil, nil
}

// CredentialDetail adds a line about a credential wherever it is listed
// (the security page, the console's user page): the codes left, or a
// passkey's authenticator model by name.
func (m *Methods) CredentialDetail(c store.Credential) string {
	switch c.Type {
	case recovery.Name:
		return strconv.Itoa(recovery.Remaining(c)) + " of " + strconv.Itoa(recovery.Count) + " codes left"
	case webauthn.Name:
		return m.Models.Describe(webauthn.AAGUID(c))
	}
	return ""
}

// registerCheck adapts access.RegisterCheck to the pages: the methods to
// step up with, or blocked; a failure to list methods blocks.
func (a *App) registerCheck(r *http.Request, u store.User, s store.Session) ([]string, bool) {
	req := a.Access.Request(r, u, &s, "", time.Now())
	methods, blocked, err := access.RegisterCheck(a.Policies.Load(), req, func() ([]string, error) { return a.availableMethods(r, u) })
	if err != nil {
		a.Log.ErrorContext(r.Context(), "list methods", "err", err)
	}
	return methods, blocked
}

// availableMethods are the methods u has, in this deployment's prompt
// order, password last.
func (a *App) availableMethods(r *http.Request, u store.User) ([]string, error) {
	return access.AvailableMethods(r.Context(), a.Store, a.Methods.Registry.Names(), u)
}

// ipThrottle counts failed sign-ins per client address. An office behind
// one NAT address has many users who mistype, so it allows far more
// failures than the per-account throttle before it slows down; a
// password spray across accounts from one address still hits it within
// a hundred tries.
func ipThrottle(st store.KV) *authn.Throttle {
	t := authn.NewThrottle(st, nil)
	t.Free = 100
	t.HardLimit = 0 // an address is shared: never locked for good
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

// sessionUser names the signed-in user of r, for the push routes.
func (a *App) sessionUser(r *http.Request) (string, error) {
	s, err := a.Sessions.Load(r.Context(), r)
	if err != nil {
		return "", err
	}
	return s.UserID, nil
}

// registration is the built-in protection of security info as cfg sets it.
func registration(r config.Registration) web.Registration {
	return web.Registration{
		Freshness: r.Freshness.D(), PhishingResistant: r.PhishingResistant,
		Window: r.Window.D(), WindowMaxRisk: r.WindowMaxRisk,
	}
}

// place names the country a request comes from, for notices; empty
// without a GeoIP database.
func (a *App) place(r *http.Request) string {
	if a.GeoIP == nil {
		return ""
	}
	return a.GeoIP.Country(a.Access.ClientIP.Of(r))
}
