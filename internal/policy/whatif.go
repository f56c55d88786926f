package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// WhatIf is the What-If tool's description of a hypothetical request,
// shared by "stepgate whatif" flags and POST /api/v1/whatif so both
// accept exactly the same things. The caller resolves the user to a
// Subject (groups and roles from the store) and, when Country is empty,
// the IP to a country with package geoip.
type WhatIf struct {
	// User is the username; Client a service client id instead.
	User   string `json:"user,omitempty" yaml:"user"`
	Client string `json:"client,omitempty" yaml:"client"`

	App      string   `json:"app,omitempty" yaml:"app"`
	Contexts []string `json:"contexts,omitempty" yaml:"contexts"`
	Action   string   `json:"action,omitempty" yaml:"action"`

	IP      string `json:"ip,omitempty" yaml:"ip"`
	Country string `json:"country,omitempty" yaml:"country"`
	// Platform wins over UserAgent when both are set.
	Platform  string `json:"platform,omitempty" yaml:"platform"`
	UserAgent string `json:"user_agent,omitempty" yaml:"user_agent"`
	ClientApp string `json:"client_app,omitempty" yaml:"client_app"`

	DeviceID         string            `json:"device_id,omitempty" yaml:"device_id"`
	DeviceCompliant  bool              `json:"device_compliant,omitempty" yaml:"device_compliant"`
	DeviceTrustType  string            `json:"device_trust_type,omitempty" yaml:"device_trust_type"`
	DeviceAttributes map[string]string `json:"device_attributes,omitempty" yaml:"device_attributes"`

	SignInRisk string `json:"sign_in_risk,omitempty" yaml:"sign_in_risk"`
	UserRisk   string `json:"user_risk,omitempty" yaml:"user_risk"`

	// Auth is the session's history, like "pwd@-5m,totp@-2m" (see
	// strength.ParseEvents).
	Auth string `json:"auth,omitempty" yaml:"auth"`
	// PasswordChanged is when the password was changed, as an offset
	// ("-2m") or an RFC 3339 time.
	PasswordChanged string   `json:"password_changed,omitempty" yaml:"password_changed"`
	Terms           []string `json:"terms,omitempty" yaml:"terms"`

	// Statement is a SQL statement through the database gateway (App is
	// then the database's name), as its classifier would describe it:
	// class, command, tables and labels hit.
	Statement Statement `json:"statement,omitzero" yaml:"statement"`
}

// Request builds the Request to evaluate at now for subject. For a
// client, subject may be zero: it becomes the client's identity. The
// result is validated, so a typo is an error rather than a different
// answer.
func (w *WhatIf) Request(now time.Time, subject Subject) (*Request, error) {
	if w.Client != "" {
		if w.User != "" {
			return nil, errors.New("give a user or a client, not both")
		}
		subject = Subject{Client: true, ID: w.Client}
	}
	r := &Request{
		Subject: subject, App: w.App, AuthContexts: w.Contexts, Action: w.Action,
		Country: w.Country, Platform: w.Platform, ClientApp: w.ClientApp,
		Device: Device{ID: w.DeviceID, IsCompliant: w.DeviceCompliant, TrustType: w.DeviceTrustType,
			Attributes: w.DeviceAttributes},
		SignInRisk: w.SignInRisk, UserRisk: w.UserRisk, AcceptedTerms: w.Terms, Now: now,
		Statement: w.Statement,
	}
	if r.Platform == "" && w.UserAgent != "" {
		r.Platform = PlatformFromUserAgent(w.UserAgent)
	}
	var errs []error
	if w.IP != "" {
		ip, err := netip.ParseAddr(w.IP)
		if err != nil {
			errs = append(errs, fmt.Errorf("ip %q is not an IP address", w.IP))
		}
		r.IP = ip
	}
	ev, err := strength.ParseEvents(w.Auth, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("auth: %w", err))
	}
	r.Events = ev
	if w.PasswordChanged != "" {
		pc, err := strength.ParseEvents("password@"+w.PasswordChanged, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("password_changed %q is neither an offset like -2m nor an RFC 3339 time", w.PasswordChanged))
		} else {
			r.PasswordChangedAt = pc[0].Time
		}
	}
	if err := r.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}
