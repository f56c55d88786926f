// Package access builds the policy engine's Access Request from what a
// component sees: an HTTP request with its signed-in user and SSO
// session, or a What-If description of a hypothetical one. The OIDC
// provider, the gateway and the What-If command and endpoint all build
// requests here, so they describe the same sign-in the same way and the
// engine gives them the same answer. It also answers which of a user's
// methods a step-up can offer (AvailableMethods) and what adding or
// removing a sign-in method needs (RegisterCheck).
package access

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/geoip"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
)

// Errors of WhatIf. Both are the caller's mistake (HTTP 400, exit 2 or 1),
// unlike a storage failure.
var (
	// ErrUnknownUser means the What-If names a user that does not exist.
	ErrUnknownUser = errkind.New(errkind.Invalid, "unknown user")
	// ErrInvalidWhatIf means a What-If field has a value the engine
	// would not understand.
	ErrInvalidWhatIf = errkind.New(errkind.Invalid, "invalid what-if request")
)

// RequestFunc builds the Access Request for a browser request by a
// signed-in user to app. The OIDC provider and the gateway are handed
// the same one (Builder.Request), so both ask the policy engine the same
// question.
type RequestFunc func(r *http.Request, u store.User, s *store.Session, app string, now time.Time) *policy.Request

// Builder turns what a component knows about a request into a
// policy.Request. The zero value works: no GeoIP, only the TCP peer
// counts as the client's address.
type Builder struct {
	// GeoIP maps the client's address to a country; nil leaves the
	// country unknown, which only locations with
	// include_unknown_countries match.
	GeoIP *geoip.DB
	// ClientIP finds the client's address behind trusted proxies.
	ClientIP httpx.ClientIP
	// UserRisk, when set, is the user's current risk level (none, low,
	// medium, high), for user-risk conditions.
	UserRisk func(ctx context.Context, userID string) string
	// SessionRisks, when set, are the live detections other systems
	// reported about a session (or a token) of the user, which raise
	// its sign-in risk.
	SessionRisks func(ctx context.Context, userID, sessionID, tokenID string) []risk.SessionRisk
	// Eligible, when set, lists the roles a user may activate, for the
	// What-If's account of the user's roles.
	Eligible func(ctx context.Context, u store.User) ([]string, error)
}

// SignInRisk is the sign-in risk of a session: the level assessed at its
// sign-in, until a later proof with another method than the password
// remediates it (the MFA a risk policy demanded was completed).
func SignInRisk(events []store.AuthEvent) string {
	if len(events) == 0 || events[0].Risk == "" {
		return ""
	}
	for _, e := range events[1:] {
		if e.Method != strength.Password && !RegistrationOnly(e.Method) {
			return ""
		}
	}
	return events[0].Risk
}

// WithReported is the sign-in risk level with the reported detections
// of the session or token that still count: each until a proof with
// another method than the password, made after it was reported,
// remediates it, as a proof remediates the sign-in's own risk. A policy
// that asks a risky sign-in for MFA therefore has a way out, and a proof
// made before the report (perhaps by whoever the report is about) does
// not clear it.
func WithReported(level string, events []store.AuthEvent, reported []risk.SessionRisk) string {
	best, _ := risk.ParseLevel(level)
	for _, d := range reported {
		if d.Level <= best || provedSince(events, d.Since) {
			continue
		}
		best = d.Level
	}
	if best == risk.None {
		return ""
	}
	return best.String()
}

// provedSince reports whether events hold a proof other than the
// password made after t.
func provedSince(events []store.AuthEvent, t time.Time) bool {
	for _, e := range events {
		if e.Time.After(t) && e.Method != strength.Password && !RegistrationOnly(e.Method) {
			return true
		}
	}
	return false
}

// Request describes r, made by u within session s (nil before sign-in)
// to app, as the engine sees it at now. The caller sets what only it
// knows: requested contexts, a user action, a client app other than
// browser, device facts and risk.
//
// The subject's roles are those u holds at now for app (User.RolesAt):
// standing roles, and elevations and assignments scoped to app that
// count then. They are worked out here, with the app, rather than left
// to each caller, so that no enforcement point can judge an elevated
// user on the roles of another app, or on a role that has ended.
//
// The result shares u's group and role slices and the events' AMR
// slices rather than copying them; treat it as read-only. That keeps
// building a request on every proxied call to a handful of allocations
// (RolesAt adds one only for a user whose grants add a role).
func (b *Builder) Request(r *http.Request, u store.User, s *store.Session, app string, now time.Time) *policy.Request {
	// The address comes from the connection, and from X-Forwarded-For
	// only hop by hop through trusted proxies: a client that sends the
	// header itself cannot move into a trusted named location.
	ip := b.ClientIP.Of(r)
	req := &policy.Request{
		Subject:   policy.Subject{ID: u.ID, Username: u.Username, Groups: u.Groups, Roles: u.RolesAt(now, app)},
		App:       app,
		IP:        ip,
		Platform:  policy.PlatformFromUserAgent(r.UserAgent()),
		ClientApp: policy.ClientBrowser,
		Now:       now,
	}
	if b.GeoIP != nil {
		req.Country = b.GeoIP.Country(ip)
	}
	if s != nil {
		req.Events = Events(s.Events)
		req.SignInRisk = SignInRisk(s.Events)
		if b.SessionRisks != nil && s.ID != "" && r != nil {
			req.SignInRisk = WithReported(req.SignInRisk, s.Events, b.SessionRisks(r.Context(), u.ID, s.ID, ""))
		}
	}
	if b.UserRisk != nil && u.ID != "" && r != nil {
		req.UserRisk = b.UserRisk(r.Context(), u.ID)
	}
	return req
}

// Events converts a session's stored authentication events to the form
// the strength and policy engines evaluate. It returns nil for none.
func Events(evs []store.AuthEvent) []strength.Event {
	if len(evs) == 0 {
		return nil
	}
	out := make([]strength.Event, 0, len(evs))
	for _, e := range evs {
		if RegistrationOnly(e.Method) {
			// Recovery codes and temporary access passes open the
			// registration of a new method and nothing else: were they
			// to count here, a stolen password plus a code printed on
			// paper would pass any policy asking for MFA.
			continue
		}
		out = append(out, strength.Event{
			Method:            e.Method,
			Time:              e.Time,
			AMR:               e.AMR,
			PhishingResistant: e.PhishingResistant,
			AAGUID:            e.AAGUID,
			// Computed from the AMR rather than stored, so what counts as
			// user verification is decided in one place (package strength).
			UserVerified: strength.UserVerifiedAMR(e.AMR),
		})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// RegistrationOnly reports whether proofs of method are good for
// registering a new sign-in method only, and never for a policy's grant:
// recovery codes and temporary access passes.
func RegistrationOnly(method string) bool {
	return method == strength.RecoveryCode || method == tap.Method
}

// UserFinder looks users up by username; store.Users satisfies it.
type UserFinder interface {
	GetUserByName(ctx context.Context, username string) (store.User, error)
}

// WhatIfRoles is what a What-If says about the user's roles, with the
// roles that count and those that could apart, as an administrator asks
// "was she an admin then, or only allowed to become one?".
type WhatIfRoles struct {
	// Active are the roles the policies were evaluated with: the ones
	// the user holds at the What-If's time for its app, standing or
	// elevated.
	Active []string `json:"active"`
	// Elevated are the active roles that come from an elevation, and
	// when each ends.
	Elevated []ElevatedRole `json:"elevated,omitempty"`
	// Eligible are the roles the user may activate and does not hold
	// for the app at that time.
	Eligible []string `json:"eligible,omitempty"`
}

// ElevatedRole is a role held through an elevation until a time.
type ElevatedRole struct {
	Role  string    `json:"role"`
	Until time.Time `json:"until"`
}

// WhatIf resolves a What-If description into the request to evaluate at
// now: the user's groups and roles come from users (the roles those the
// user holds at now for the What-If's app, elevations included), and the
// country from GeoIP when w gives an IP but no country. For a user it
// also returns the roles apart: active, elevated and eligible (from
// eligible, nil leaving eligibility out). A mistake in w wraps
// ErrInvalidWhatIf, an unknown user ErrUnknownUser; anything else is a
// storage failure.
func (b *Builder) WhatIf(ctx context.Context, users UserFinder, w *policy.WhatIf, now time.Time) (*policy.Request, *WhatIfRoles, error) {
	var (
		subject policy.Subject
		roles   *WhatIfRoles
	)
	switch {
	case w.User != "" && w.Client != "":
		return nil, nil, fmt.Errorf("%w: give a user or a client, not both", ErrInvalidWhatIf)
	case w.User == "" && w.Client == "":
		return nil, nil, fmt.Errorf("%w: give the user (a username) or the client (a service client id) to evaluate for", ErrInvalidWhatIf)
	case w.User != "":
		u, err := users.GetUserByName(ctx, strings.TrimSpace(w.User))
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("%w %q; check the name with: stepgate user list", ErrUnknownUser, w.User)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("look up user %q: %w", w.User, err)
		}
		subject = policy.Subject{ID: u.ID, Username: u.Username, Groups: u.Groups, Roles: u.RolesAt(now, w.App)}
		if roles, err = b.whatIfRoles(ctx, u, subject.Roles, w.App, now); err != nil {
			return nil, nil, err
		}
	}
	req, err := w.Request(now, subject)
	if err != nil {
		// One line per mistake reads badly after "stepgate: " or inside a
		// JSON string; the parts are plain messages, nothing to unwrap.
		return nil, nil, fmt.Errorf("%w: %s", ErrInvalidWhatIf, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if req.Country == "" && b.GeoIP != nil && req.IP.IsValid() {
		req.Country = b.GeoIP.Country(req.IP)
	}
	return req, roles, nil
}

// whatIfRoles sorts u's roles for a What-If on app at now: active (as
// evaluated), elevated, and eligible but not active.
func (b *Builder) whatIfRoles(ctx context.Context, u store.User, active []string, app string, now time.Time) (*WhatIfRoles, error) {
	out := &WhatIfRoles{Active: slices.Clone(active)}
	if out.Active == nil {
		out.Active = []string{}
	}
	for _, g := range u.Grants {
		if g.Elevation != "" && g.At(now, app) && !slices.Contains(u.Roles, g.Role) {
			out.Elevated = append(out.Elevated, ElevatedRole{Role: g.Role, Until: g.Until})
		}
	}
	if b.Eligible == nil {
		return out, nil
	}
	eligible, err := b.Eligible(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list the roles %s is eligible for: %w", u.Username, err)
	}
	for _, r := range eligible {
		if !slices.Contains(active, r) {
			out.Eligible = append(out.Eligible, r)
		}
	}
	return out, nil
}
