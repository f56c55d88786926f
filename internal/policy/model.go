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

	AuthContexts   []AuthContext   `yaml:"auth_contexts,omitempty"`
	NamedLocations []NamedLocation `yaml:"named_locations,omitempty"`
	Strengths      []StrengthDef   `yaml:"strengths,omitempty"`
	TermsOfUse     []TermsOfUse    `yaml:"terms_of_use,omitempty"`
	Policies       []Policy        `yaml:"policies,omitempty"`

	// lines maps key paths to the line they were written on.
	lines map[string]int
}

// Line returns the line the key path (like policies[2]) was written on,
// or 0 when unknown.
func (d *Document) Line(path string) int { return d.line(path) }

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
// policies say what it takes to meet.
type AuthContext struct {
	// ID is c1..c99, the value apps send as acr_values and tokens carry in
	// the acrs claim.
	ID          string `yaml:"id,omitempty"`
	Name        string `yaml:"name,omitempty"`
	Description string `yaml:"description,omitempty"`
}

// NamedLocation is a set of networks and/or countries.
type NamedLocation struct {
	Name string `yaml:"name,omitempty"`
	// Trusted marks networks the organisation controls; only IP-range
	// locations can be trusted.
	Trusted  bool     `yaml:"trusted,omitempty"`
	IPRanges []string `yaml:"ip_ranges,omitempty"`
	// Countries are ISO 3166-1 alpha-2 codes.
	Countries []string `yaml:"countries,omitempty"`
	// IncludeUnknownCountries also matches requests whose country could
	// not be determined (no GeoIP data for the address).
	IncludeUnknownCountries bool `yaml:"include_unknown_countries,omitempty"`
}

// StrengthDef is a custom authentication strength.
type StrengthDef struct {
	Name         string   `yaml:"name,omitempty"`
	Description  string   `yaml:"description,omitempty"`
	Combinations []string `yaml:"combinations,omitempty"`
	// AAGUIDs limits WebAuthn proofs to these authenticator models.
	AAGUIDs []string `yaml:"aaguids,omitempty"`
}

// TermsOfUse is a document users must accept.
type TermsOfUse struct {
	ID   string `yaml:"id,omitempty"`
	Name string `yaml:"name,omitempty"`
	URL  string `yaml:"url,omitempty"`
}

// Policy is one conditional access policy.
type Policy struct {
	Name        string      `yaml:"name,omitempty"`
	Description string      `yaml:"description,omitempty"`
	State       string      `yaml:"state,omitempty"`
	Users       Assignments `yaml:"users,omitempty"`
	Target      Target      `yaml:"target,omitempty"`
	Conditions  Conditions  `yaml:"conditions,omitempty"`
	Grant       Grant       `yaml:"grant,omitempty"`
	Session     Session     `yaml:"session,omitempty"`
	// Acknowledge lists hygiene checks the author has read and overrides,
	// such as admin-lockout.
	Acknowledge []string `yaml:"acknowledge,omitempty"`
}

// Assignments say whom a policy is about. Exclude always wins.
type Assignments struct {
	Include Subjects `yaml:"include,omitempty"`
	Exclude Subjects `yaml:"exclude,omitempty"`
}

// Subjects are users (by username or id, or "all"), groups (nested groups
// count), roles, and service clients (by client id, or "all").
type Subjects struct {
	Users   []string `yaml:"users,omitempty"`
	Groups  []string `yaml:"groups,omitempty"`
	Roles   []string `yaml:"roles,omitempty"`
	Clients []string `yaml:"clients,omitempty"`
}

// Target says what a policy protects: exactly one of apps, authentication
// contexts or user actions.
type Target struct {
	Apps         IncludeExclude `yaml:"apps,omitempty"`
	AuthContexts []string       `yaml:"auth_contexts,omitempty"`
	UserActions  []string       `yaml:"user_actions,omitempty"`
}

// IncludeExclude is a pair of lists where exclusion wins.
type IncludeExclude struct {
	Include []string `yaml:"include,omitempty"`
	Exclude []string `yaml:"exclude,omitempty"`
}

// Conditions narrow when an assigned, targeted policy applies. Every
// condition that is set must match.
type Conditions struct {
	UserRisk   []string       `yaml:"user_risk,omitempty"`
	SignInRisk []string       `yaml:"sign_in_risk,omitempty"`
	Platforms  IncludeExclude `yaml:"platforms,omitempty"`
	Locations  IncludeExclude `yaml:"locations,omitempty"`
	ClientApps []string       `yaml:"client_apps,omitempty"`
	// Statements narrows the policy to SQL statements through the
	// database gateway: their class, command, tables and labels.
	Statements StatementConditions `yaml:"statements,omitempty"`
	// DeviceFilter is a CEL rule over device.*, user.* and request.*.
	DeviceFilter DeviceFilter `yaml:"device_filter,omitempty"`
	// Expression is a free CEL condition that must be true.
	Expression string `yaml:"expression,omitempty"`
}

// StatementConditions match a SQL statement through the database
// gateway; a request that carries no statement never matches. Each list
// that is set must match, and a list matches when the statement has any
// of its values (see cond_statement.go for how each errs towards
// matching).
type StatementConditions struct {
	// Classes match a statement of a listed class or a more sensitive
	// one (session < read < utility < write < ddl < privilege < unknown).
	Classes []string `yaml:"classes,omitempty"`
	// Commands are commands as PostgreSQL names them (DELETE, "DROP
	// TABLE"); a first word covers every command it begins (DROP).
	Commands []string `yaml:"commands,omitempty"`
	// Tables are table or schema.table, compared without case.
	Tables []string `yaml:"tables,omitempty"`
	// Labels are labels of the database's configuration (pii).
	Labels []string `yaml:"labels,omitempty"`
}

// DeviceFilter picks devices by a CEL rule. In include mode the policy
// applies only to devices the rule matches; in exclude mode it applies to
// every device except those.
type DeviceFilter struct {
	Mode string `yaml:"mode,omitempty"`
	Rule string `yaml:"rule,omitempty"`
}

// Grant is either block or a list of controls combined with an operator.
// In YAML, "grant: block" is short for "grant: {block: true}".
type Grant struct {
	Block    bool      `yaml:"block,omitempty"`
	Operator string    `yaml:"operator,omitempty"`
	Controls []Control `yaml:"controls,omitempty"`
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
	SignInFrequency string `yaml:"sign_in_frequency,omitempty"`
	// PersistentBrowser is "always" or "never".
	PersistentBrowser string `yaml:"persistent_browser,omitempty"`
}

// MarshalYAML writes a control the way it is written by hand: a name,
// or a one-key mapping for a control with an argument.
func (c Control) MarshalYAML() (any, error) {
	if c.Arg == "" {
		return c.Name, nil
	}
	return map[string]string{c.Name: c.Arg}, nil
}

// MarshalYAML writes "grant: block" for a block grant.
func (g Grant) MarshalYAML() (any, error) {
	if g.Block {
		return "block", nil
	}
	type plain Grant // without this method
	return plain(g), nil
}
