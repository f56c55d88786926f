package policy

import "strings"

// This file is the policy file format as written by people: plain values
// with yaml keys. Compile turns it into the evaluable Snapshot. The model
// holds no derived state, so the admin UI can later build Documents in
// code and run them through the same Compile.

// Document is one parsed policy file. A policy set may span several files
// (a policies_dir); Compile merges them and checks names across files.
type Document struct {
	// File is the name given to Parse, used in problems.
	File string `yaml:"-"`

	AuthContexts   []AuthContext   `yaml:"auth_contexts"`
	NamedLocations []NamedLocation `yaml:"named_locations"`
	Strengths      []StrengthDef   `yaml:"strengths"`
	TermsOfUse     []TermsOfUse    `yaml:"terms_of_use"`
	Policies       []Policy        `yaml:"policies"`

	// lines maps key paths to the line they were written on.
	lines map[string]int
}

// line returns where path was written. A key that is missing (the
// usual subject of "is required") has no line of its own, so the nearest
// enclosing key that was written stands in for it.
func (d *Document) line(path string) int {
	if d == nil {
		return 0
	}
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// AuthContext is a named sensitivity label that apps request and
// policies put a price on.
type AuthContext struct {
	// ID is c1..c99, the value apps send as acr_values and tokens carry in
	// the acrs claim.
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// NamedLocation is a set of networks and/or countries.
type NamedLocation struct {
	Name string `yaml:"name"`
	// Trusted marks networks the organisation controls; only IP-range
	// locations can be trusted.
	Trusted  bool     `yaml:"trusted"`
	IPRanges []string `yaml:"ip_ranges"`
	// Countries are ISO 3166-1 alpha-2 codes.
	Countries []string `yaml:"countries"`
	// IncludeUnknownCountries also matches requests whose country could
	// not be determined (no GeoIP data for the address).
	IncludeUnknownCountries bool `yaml:"include_unknown_countries"`
}

// StrengthDef is a custom authentication strength.
type StrengthDef struct {
	Name         string   `yaml:"name"`
	Description  string   `yaml:"description"`
	Combinations []string `yaml:"combinations"`
	// AAGUIDs limits WebAuthn proofs to these authenticator models.
	AAGUIDs []string `yaml:"aaguids"`
}

// TermsOfUse is a document users must accept.
type TermsOfUse struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
}

// Policy is one conditional access policy.
type Policy struct {
	Name        string      `yaml:"name"`
	Description string      `yaml:"description"`
	State       string      `yaml:"state"`
	Users       Assignments `yaml:"users"`
	Target      Target      `yaml:"target"`
	Conditions  Conditions  `yaml:"conditions"`
	Grant       Grant       `yaml:"grant"`
	Session     Session     `yaml:"session"`
	// Acknowledge lists hygiene checks the author has read and overrides,
	// such as admin-lockout.
	Acknowledge []string `yaml:"acknowledge"`
}

// Assignments say whom a policy is about. Exclude always wins.
type Assignments struct {
	Include Subjects `yaml:"include"`
	Exclude Subjects `yaml:"exclude"`
}

// Subjects are users (by username or id, or "all"), groups (nested groups
// count), roles, and service clients (by client id, or "all").
type Subjects struct {
	Users   []string `yaml:"users"`
	Groups  []string `yaml:"groups"`
	Roles   []string `yaml:"roles"`
	Clients []string `yaml:"clients"`
}

// Target says what a policy protects: exactly one of apps, authentication
// contexts or user actions.
type Target struct {
	Apps         IncludeExclude `yaml:"apps"`
	AuthContexts []string       `yaml:"auth_contexts"`
	UserActions  []string       `yaml:"user_actions"`
}

// IncludeExclude is a pair of lists where exclusion wins.
type IncludeExclude struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// Conditions narrow when an assigned, targeted policy applies. Every
// condition that is set must match.
type Conditions struct {
	UserRisk   []string       `yaml:"user_risk"`
	SignInRisk []string       `yaml:"sign_in_risk"`
	Platforms  IncludeExclude `yaml:"platforms"`
	Locations  IncludeExclude `yaml:"locations"`
	ClientApps []string       `yaml:"client_apps"`
	// DeviceFilter is a CEL rule over device.*, user.* and request.*.
	DeviceFilter DeviceFilter `yaml:"device_filter"`
	// Expression is a free CEL condition that must be true.
	Expression string `yaml:"expression"`
}

// DeviceFilter picks devices by a CEL rule. In include mode the policy
// applies only to devices the rule matches; in exclude mode it applies to
// every device except those.
type DeviceFilter struct {
	Mode string `yaml:"mode"`
	Rule string `yaml:"rule"`
}

// Grant is either block or a list of controls combined with an operator.
// In YAML, "grant: block" is short for "grant: {block: true}".
type Grant struct {
	Block    bool      `yaml:"block"`
	Operator string    `yaml:"operator"`
	Controls []Control `yaml:"controls"`
}

// Control is one grant control. In YAML it is a name (mfa,
// compliant-device, password-change, approval) or a one-key mapping
// naming its argument ({strength: phishing-resistant},
// {terms_of_use: tou-2025}).
type Control struct {
	Name string
	Arg  string
}

// Session holds session controls.
type Session struct {
	// SignInFrequency is a duration ("8h", "7d") or "every-time".
	SignInFrequency string `yaml:"sign_in_frequency"`
	// PersistentBrowser is "always" or "never".
	PersistentBrowser string `yaml:"persistent_browser"`
}
