// Package policygen generates realistic policy sets and requests for
// benchmarks and comparisons: a tenant's worth of app, context, risk,
// location, device and block policies in the proportions real
// deployments have, deterministic for a given seed.
//
// It builds policy.Document values in code, the way the admin UI will,
// so it also exercises Compile on documents that never were YAML.
package policygen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
)

// CEL rules the generator uses, exported so a harness can translate
// them for another engine.
const (
	RuleUnmanaged = `device.trust_type != "managed"`
	RuleCorpOwned = `has(device.attributes.owner) && device.attributes.owner == "corp"`
	ExprWeekday   = `request.time.getDayOfWeek("UTC") >= 1 && request.time.getDayOfWeek("UTC") <= 5`
)

// Set is a generated policy set with its directory.
type Set struct {
	Doc    *policy.Document
	Users  []string
	Roles  []string
	Apps   []string
	Groups map[string][]string // group → parents
	// CELApps are apps some CEL policy targets; AllowRequest avoids them.
	CELApps []string
	rnd     *rand.Rand
}

// Directory returns the set's directory for policy.Compile.
func (s *Set) Directory() policy.Directory {
	return policy.NewDirectory(s.Users, s.Roles, s.Apps, s.Groups)
}

// Options tune generation.
type Options struct {
	Seed uint64
	// NoCEL leaves out device filters and expressions.
	NoCEL bool
}

var (
	contexts  = []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12"}
	roles     = []string{"admin", "auditor", "developer", "support"}
	countries = []string{"DE", "FR", "NL", "US", "GB", "JP", "BR", "IN"}
)

// Generate builds n policies.
func Generate(n int, opts Options) *Set {
	s := &Set{rnd: rand.New(rand.NewPCG(opts.Seed, 0x5e7a))} //nolint:gosec // deterministic test data, not secrets
	s.directory(n)
	s.Doc = &policy.Document{File: fmt.Sprintf("generated-%d.yaml", n)}
	s.declarations()
	for i := range n {
		s.Doc.Policies = append(s.Doc.Policies, s.policy(i, opts))
	}
	slices.Sort(s.CELApps)
	s.CELApps = slices.Compact(s.CELApps)
	return s
}

func (s *Set) directory(n int) {
	for i := range 100 {
		s.Users = append(s.Users, fmt.Sprintf("u-%04d", i))
	}
	s.Users = append(s.Users, "breakglass")
	s.Roles = roles
	for i := range max(20, n/3) {
		s.Apps = append(s.Apps, fmt.Sprintf("app-%03d", i))
	}
	s.Apps = append(s.Apps, "ci-bot", "sync-job")
	s.Groups = map[string][]string{"staff": nil, "contractors": nil, "breakglass": nil}
	for d := range 12 {
		dept := fmt.Sprintf("dept-%02d", d)
		s.Groups[dept] = []string{"staff"}
		for t := range 3 {
			s.Groups[fmt.Sprintf("team-%02d-%d", d, t)] = []string{dept}
		}
	}
}

func (s *Set) declarations() {
	d := s.Doc
	for _, c := range contexts {
		d.AuthContexts = append(d.AuthContexts, policy.AuthContext{ID: c, Name: "context " + c})
	}
	d.NamedLocations = []policy.NamedLocation{
		{Name: "office", Trusted: true, IPRanges: []string{"10.0.0.0/8", "2001:db8::/32"}},
		{Name: "vpn", Trusted: true, IPRanges: []string{"192.0.2.0/24"}},
		{Name: "sanctioned", Countries: []string{"KP", "IR", "SY"}},
		{Name: "eu", Countries: []string{"DE", "FR", "NL", "IT", "ES"}},
		{Name: "unknown-countries", IncludeUnknownCountries: true},
	}
	for b := range 10 {
		d.NamedLocations = append(d.NamedLocations, policy.NamedLocation{
			Name: fmt.Sprintf("branch-%d", b), IPRanges: []string{fmt.Sprintf("172.16.%d.0/24", b), fmt.Sprintf("2001:db9:%x::/48", b)}})
	}
	d.TermsOfUse = []policy.TermsOfUse{{ID: "tou-2025", Name: "Acceptable use"}}
	d.Strengths = []policy.StrengthDef{{Name: "totp-or-key", Combinations: []string{"password+totp", "webauthn:uv"}}}
}

func (s *Set) pick(list []string) string { return list[s.rnd.IntN(len(list))] }

func (s *Set) apps(k int) []string {
	var out []string
	for range k {
		out = append(out, s.pick(s.Apps[:len(s.Apps)-2]))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *Set) team() string {
	return fmt.Sprintf("team-%02d-%d", s.rnd.IntN(12), s.rnd.IntN(3))
}

func (s *Set) dept() string { return fmt.Sprintf("dept-%02d", s.rnd.IntN(12)) }

// people assigns a policy to a realistic audience, always excluding the
// break-glass group as administrators are told to.
func (s *Set) people() policy.Assignments {
	a := policy.Assignments{Exclude: policy.Subjects{Groups: []string{"breakglass"}}}
	switch r := s.rnd.IntN(10); {
	case r < 3:
		a.Include.Users = []string{"all"}
	case r < 6:
		a.Include.Groups = []string{s.dept(), s.team()}
	case r < 8:
		a.Include.Roles = []string{s.pick(roles)}
	case r < 9:
		a.Include.Groups = []string{"staff"}
		a.Exclude.Groups = append(a.Exclude.Groups, s.team())
	default:
		a.Include.Groups = []string{"contractors"}
	}
	return a
}

func (s *Set) policy(i int, opts Options) policy.Policy {
	p := policy.Policy{State: string(policy.StateEnabled), Users: s.people()}
	switch r := s.rnd.IntN(100); {
	case r < 5:
		p.State = string(policy.StateDisabled)
	case r < 15:
		p.State = string(policy.StateReportOnly)
	}
	kind := s.rnd.IntN(100)
	switch {
	case kind < 45:
		s.appPolicy(&p)
	case kind < 60:
		s.contextPolicy(&p)
	case kind < 68:
		s.riskPolicy(&p)
	case kind < 78:
		s.blockPolicy(&p)
	case kind < 86:
		s.allAppsPolicy(&p)
	case kind < 92 && !opts.NoCEL:
		s.celPolicy(&p)
	default:
		s.appPolicy(&p)
	}
	p.Name = fmt.Sprintf("p%04d-%s", i, p.Name)
	return p
}

func (s *Set) appPolicy(p *policy.Policy) {
	p.Name = "app"
	p.Target.Apps.Include = s.apps(1 + s.rnd.IntN(3))
	switch r := s.rnd.IntN(10); {
	case r < 3:
		p.Conditions.Locations = policy.IncludeExclude{Include: []string{"all"}, Exclude: []string{"all-trusted"}}
	case r < 4:
		p.Conditions.Platforms = policy.IncludeExclude{Include: []string{"ios", "android"}}
	case r < 5:
		p.Conditions.ClientApps = []string{"browser", "mobile-desktop"}
	}
	p.Grant = s.grant()
	if s.rnd.IntN(5) == 0 {
		p.Session.SignInFrequency = s.pick([]string{"1h", "8h", "1d", "7d"})
	}
}

func (s *Set) grant() policy.Grant {
	switch r := s.rnd.IntN(20); {
	case r < 11:
		return policy.Grant{Controls: []policy.Control{{Name: "mfa"}}}
	case r < 14:
		return policy.Grant{Controls: []policy.Control{{Name: "strength", Arg: "phishing-resistant"}}}
	case r < 17:
		return policy.Grant{Operator: "one-of", Controls: []policy.Control{{Name: "mfa"}, {Name: "compliant-device"}}}
	case r < 18:
		return policy.Grant{Controls: []policy.Control{{Name: "strength", Arg: "totp-or-key"}}}
	case r < 19:
		return policy.Grant{Controls: []policy.Control{{Name: "mfa"}, {Name: "terms_of_use", Arg: "tou-2025"}}}
	}
	return policy.Grant{Controls: []policy.Control{{Name: "compliant-device"}}}
}

func (s *Set) contextPolicy(p *policy.Policy) {
	p.Name = "context"
	p.Target.AuthContexts = []string{s.pick(contexts)}
	p.Grant = policy.Grant{Controls: []policy.Control{{Name: "strength", Arg: s.pick([]string{"mfa", "phishing-resistant", "passwordless"})}}}
	if s.rnd.IntN(3) == 0 {
		p.Session.SignInFrequency = s.pick([]string{"every-time", "10m", "1h"})
	}
}

func (s *Set) riskPolicy(p *policy.Policy) {
	p.Name = "risk"
	p.Target.Apps.Include = []string{"all"}
	if s.rnd.IntN(2) == 0 {
		p.Conditions.SignInRisk = []string{"medium", "high"}
		p.Grant = policy.Grant{Controls: []policy.Control{{Name: "mfa"}}}
		p.Session.SignInFrequency = "every-time"
		return
	}
	p.Conditions.UserRisk = []string{"high"}
	p.Grant = policy.Grant{Controls: []policy.Control{{Name: "mfa"}, {Name: "password-change"}}}
}

func (s *Set) blockPolicy(p *policy.Policy) {
	p.Name = "block"
	p.Grant = policy.Grant{Block: true}
	p.Target.Apps.Include = []string{"all"}
	switch s.rnd.IntN(5) {
	case 0:
		p.Conditions.ClientApps = []string{"legacy"}
	case 1:
		p.Conditions.Locations.Include = []string{"sanctioned"}
	case 2:
		p.Conditions.SignInRisk = []string{"high"}
	case 3:
		p.Target.Apps.Include = s.apps(2)
		p.Conditions.Locations = policy.IncludeExclude{Include: []string{"all"}, Exclude: []string{"all-trusted"}}
		p.Conditions.Platforms = policy.IncludeExclude{Include: []string{"android", "ios"}}
	default:
		p.Target.Apps.Include = s.apps(1)
		p.Conditions.Locations = policy.IncludeExclude{Include: []string{"all"}, Exclude: []string{"eu", "all-trusted"}}
	}
}

func (s *Set) allAppsPolicy(p *policy.Policy) {
	p.Name = "all-apps"
	p.Target.Apps = policy.IncludeExclude{Include: []string{"all"}, Exclude: s.apps(1)}
	p.Conditions.Locations = policy.IncludeExclude{Include: []string{"all"}, Exclude: []string{"all-trusted"}}
	p.Grant = policy.Grant{Controls: []policy.Control{{Name: "mfa"}}}
	if s.rnd.IntN(2) == 0 {
		p.Session.PersistentBrowser = s.pick([]string{"always", "never"})
	}
}

func (s *Set) celPolicy(p *policy.Policy) {
	p.Name = "device"
	p.Target.Apps.Include = s.apps(1)
	s.CELApps = append(s.CELApps, p.Target.Apps.Include...)
	switch s.rnd.IntN(3) {
	case 0:
		p.Conditions.DeviceFilter = policy.DeviceFilter{Mode: "include", Rule: RuleUnmanaged}
	case 1:
		p.Conditions.DeviceFilter = policy.DeviceFilter{Mode: "exclude", Rule: RuleCorpOwned}
	default:
		p.Conditions.Expression = ExprWeekday
	}
	p.Grant = policy.Grant{Operator: "one-of", Controls: []policy.Control{{Name: "mfa"}, {Name: "compliant-device"}}}
}

// Now is the fixed clock of generated requests.
var Now = time.Date(2025, 6, 3, 14, 0, 0, 0, time.UTC)

// AllowRequest is a well-authenticated employee working from home on a
// managed device, opening the busiest app no CEL policy targets: the hot
// path that must be allowed without allocating.
func (s *Set) AllowRequest() policy.Request {
	app := s.busiestApp()
	ev, _ := strength.ParseEvents("pwd@-2m,totp@-2m,webauthn:uv@-1m", Now)
	return policy.Request{
		Subject:       policy.Subject{ID: "u-0001", Username: "u-0001", Groups: []string{"team-03-1"}, Roles: []string{"developer"}},
		App:           app,
		AuthContexts:  []string{"c3"},
		IP:            netip.MustParseAddr("198.51.100.23"),
		Country:       "DE",
		Platform:      policy.PlatformWindows,
		ClientApp:     policy.ClientBrowser,
		Device:        policy.Device{ID: "d-1", IsCompliant: true, TrustType: "managed"},
		Events:        ev,
		AcceptedTerms: []string{"tou-2025"},
		Now:           Now,
	}
}

// busiestApp is the app most enabled policies name, among those no CEL
// policy targets.
func (s *Set) busiestApp() string {
	count := map[string]int{}
	for _, p := range s.Doc.Policies {
		if p.State == string(policy.StateEnabled) {
			for _, a := range p.Target.Apps.Include {
				count[a]++
			}
		}
	}
	best := ""
	for _, a := range s.Apps[:len(s.Apps)-2] {
		if !slices.Contains(s.CELApps, a) && (best == "" || count[a] > count[best]) {
			best = a
		}
	}
	return best
}

// Requests returns k varied requests: different people, apps, contexts,
// places, devices, risks and session states, so a sample sees every
// outcome.
func (s *Set) Requests(k int, seed uint64) []policy.Request {
	r := rand.New(rand.NewPCG(seed, 0x7e57)) //nolint:gosec // deterministic test data, not secrets
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	ips := []string{"10.1.2.3", "192.0.2.77", "172.16.4.9", "198.51.100.23", "203.0.113.5", "2001:db8::42", "2001:db9:3::7"}
	auths := []string{"", "pwd@-1m", "pwd@-30m,totp@-29m", "pwd@-3h,push@-3h", "webauthn:uv@-2m", "pwd@-2d,sms@-2d", "pwd@-5m,webauthn@-4m"}
	out := make([]policy.Request, 0, k)
	for range k {
		req := policy.Request{
			Subject:    policy.Subject{ID: pick(s.Users), Groups: []string{fmt.Sprintf("team-%02d-%d", r.IntN(12), r.IntN(3))}},
			App:        pick(s.Apps[:len(s.Apps)-2]),
			IP:         netip.MustParseAddr(pick(ips)),
			Country:    pick(append(countries, "", "KP")),
			Platform:   pick([]string{"windows", "macos", "ios", "android", "linux", ""}),
			ClientApp:  pick([]string{"browser", "browser", "mobile-desktop", "legacy", ""}),
			SignInRisk: pick([]string{"", "", "low", "medium", "high"}),
			UserRisk:   pick([]string{"", "", "", "low", "high"}),
			Now:        Now,
		}
		req.Subject.Username = req.Subject.ID
		if r.IntN(3) == 0 {
			req.Subject.Roles = []string{pick(roles)}
		}
		if r.IntN(6) == 0 {
			req.Subject.Groups = append(req.Subject.Groups, "contractors")
		}
		if r.IntN(3) == 0 {
			req.AuthContexts = []string{pick(contexts)}
		}
		if r.IntN(2) == 0 {
			req.Device = policy.Device{ID: "d", IsCompliant: r.IntN(2) == 0, TrustType: pick([]string{"managed", "registered", ""})}
			if r.IntN(2) == 0 {
				req.Device.Attributes = map[string]string{"owner": pick([]string{"corp", "byod"})}
			}
		}
		req.Events, _ = strength.ParseEvents(pick(auths), Now)
		if r.IntN(4) == 0 {
			req.AcceptedTerms = []string{"tou-2025"}
		}
		if r.IntN(8) == 0 {
			req.PasswordChangedAt = Now.Add(-time.Minute)
		}
		out = append(out, req)
	}
	return out
}
