package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
)

// Request is everything Evaluate looks at: who, what, where, how, risk,
// and the session's authentication state. The caller resolves the
// country (internal/geoip) and the platform (PlatformFromUserAgent) first,
// so evaluation stays pure and fast.
type Request struct {
	Subject Subject `json:"subject"`

	// App is the OIDC client id or gateway app being accessed; empty when
	// the request is only a user action.
	App string `json:"app,omitempty"`
	// AuthContexts are the contexts the app requests (acr_values).
	AuthContexts []string `json:"auth_contexts,omitempty"`
	// Action is a user action: register-security-info or register-device.
	Action string `json:"action,omitempty"`

	IP netip.Addr `json:"ip"`
	// Country is an ISO 3166-1 alpha-2 code; empty when unknown.
	Country string `json:"country,omitempty"`
	// Platform is one of the Platform* constants; empty means unknown.
	Platform string `json:"platform,omitempty"`
	// ClientApp is browser, mobile-desktop, service or legacy; empty
	// means unknown.
	ClientApp string `json:"client_app,omitempty"`
	Device    Device `json:"device"`

	// SignInRisk and UserRisk are none, low, medium or high; empty means
	// none.
	SignInRisk string `json:"sign_in_risk,omitempty"`
	UserRisk   string `json:"user_risk,omitempty"`

	// Events are the session's authentication events, oldest first.
	Events []strength.Event `json:"-"`
	// PasswordChangedAt is when the user last changed their password;
	// zero when never or unknown.
	PasswordChangedAt time.Time `json:"password_changed_at,omitzero"`
	// AcceptedTerms are the ids of terms of use the user has accepted.
	AcceptedTerms []string `json:"accepted_terms,omitempty"`

	// Statement describes the SQL statement a request through the
	// database gateway runs; zero for every other request.
	Statement Statement `json:"statement,omitzero"`

	// Now is when the request started; freshness is measured from it.
	Now time.Time `json:"now"`

	// sessionStart is when the session began, set by Reask, whose copy
	// of Events holds only the proofs after the point it counts from.
	sessionStart time.Time
}

// Subject is the user or service client making the request.
type Subject struct {
	// Client is true for a service client (workload identity) rather than
	// a person; ID is then its client id.
	Client   bool   `json:"client,omitempty"`
	ID       string `json:"id,omitempty"`
	Username string `json:"username,omitempty"`
	// Groups are the groups the user is directly a member of; the
	// snapshot adds the groups those are nested in.
	Groups []string `json:"groups,omitempty"`
	Roles  []string `json:"roles,omitempty"`
}

// Statement is what a SQL statement does, as the database gateway's
// classifier read it; CEL conditions see it as statement.*.
type Statement struct {
	// Class is session, read, utility, write, ddl, privilege or unknown.
	Class string `json:"class,omitempty"`
	// Command is the statement's command ("SELECT", "DROP TABLE"), or
	// the commands of several joined by "; ".
	Command string `json:"command,omitempty"`
	// Tables are the relations it names, schema.table when a schema was
	// given.
	Tables []string `json:"tables,omitempty"`
	// Labels are the database's labels it hits.
	Labels []string `json:"labels,omitempty"`
	// Modifies are the data-modifying commands it runs (INSERT, UPDATE,
	// DELETE, MERGE), nested ones included: WITH d AS (DELETE ...)
	// SELECT has the command SELECT and modifies DELETE.
	Modifies []string `json:"modifies,omitempty"`
}

// Device is what is known about the device the request comes from.
type Device struct {
	ID          string `json:"id,omitempty"`
	IsCompliant bool   `json:"is_compliant,omitempty"`
	// TrustType is how the device is known: managed, registered, or empty.
	TrustType string `json:"trust_type,omitempty"`
	// Attributes are free-form values device filters can test.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Platforms, as PlatformFromUserAgent reports them.
const (
	PlatformWindows  = "windows"
	PlatformMacOS    = "macos"
	PlatformLinux    = "linux"
	PlatformIOS      = "ios"
	PlatformAndroid  = "android"
	PlatformChromeOS = "chromeos"
	PlatformUnknown  = "unknown"
)

// Client app types.
const (
	ClientBrowser       = "browser"
	ClientMobileDesktop = "mobile-desktop"
	ClientService       = "service"
	// ClientLegacy is a protocol that cannot do modern authentication
	// (basic auth over IMAP, SMTP, ...): it can never answer a challenge,
	// so the only useful control for it is block.
	ClientLegacy = "legacy"
)

// User actions.
const (
	ActionRegisterSecurityInfo = "register-security-info"
	ActionRegisterDevice       = "register-device"
)

// Risk levels.
const (
	RiskNone   = "none"
	RiskLow    = "low"
	RiskMedium = "medium"
	RiskHigh   = "high"
)

var (
	platforms   = []string{PlatformWindows, PlatformMacOS, PlatformLinux, PlatformIOS, PlatformAndroid, PlatformChromeOS, PlatformUnknown}
	clientApps  = []string{ClientBrowser, ClientMobileDesktop, ClientService, ClientLegacy}
	userActions = []string{ActionRegisterSecurityInfo, ActionRegisterDevice}
	riskLevels  = []string{RiskNone, RiskLow, RiskMedium, RiskHigh}
)

// riskLevel maps a level to 0..3; "" is none, anything else -1.
func riskLevel(s string) int {
	switch s {
	case "", RiskNone:
		return 0
	case RiskLow:
		return 1
	case RiskMedium:
		return 2
	case RiskHigh:
		return 3
	}
	return -1
}

// Validate reports every field of r that Evaluate would not understand.
// The What-If endpoint calls it so a typo like "mediun" is an error
// rather than a silently different answer; Evaluate itself treats unknown
// values as not matching anything.
func (r *Request) Validate() error {
	var errs []error
	check := func(field, v string, valid []string) {
		if v != "" && !slices.Contains(valid, v) {
			errs = append(errs, fmt.Errorf("%s %q is not one of %s", field, v, strings.Join(valid, ", ")))
		}
	}
	check("platform", r.Platform, platforms)
	check("client_app", r.ClientApp, clientApps)
	check("action", r.Action, userActions)
	check("sign_in_risk", r.SignInRisk, riskLevels)
	check("user_risk", r.UserRisk, riskLevels)
	if r.Country != "" && !isCountryCode(r.Country) {
		errs = append(errs, fmt.Errorf("country %q is not an upper-case ISO 3166-1 alpha-2 code like DE", r.Country))
	}
	if st := r.Statement; st.Class == "" && (st.Command != "" || len(st.Tables)+len(st.Labels)+len(st.Modifies) > 0) {
		errs = append(errs, fmt.Errorf("statement has no class; give one of %s (a request without a class is not a statement)", strings.Join(statementClasses, ", ")))
	}
	check("statement.class", r.Statement.Class, statementClasses)
	if r.Subject.ID == "" && r.Subject.Username == "" {
		errs = append(errs, errors.New("subject has neither id nor username"))
	}
	if r.Now.IsZero() {
		errs = append(errs, errors.New("now is not set"))
	}
	return errors.Join(errs...)
}

func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
