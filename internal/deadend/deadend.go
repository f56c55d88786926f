// Package deadend finds dead ends: users in scope of an enabled policy
// who can never meet its grant with what they have registered, so every
// request the policy covers ends at a step-up page they cannot pass. For
// each it says why ("needs phishing-resistant; has password, totp") and
// whether registering one more method, within the registration rules,
// would get them through. The command line (stepgate policy deadends and
// policy lint --strict), the console, the impact replay of a change and
// the registration campaign after sign-in all ask this one package.
//
// Scope is decided by the policy engine itself (policy.GrantView.InScope)
// and the methods a user can prove with by access.AvailableMethods and
// policy.StepUpMethods, the same functions every step-up page uses, so
// the analysis cannot disagree with what users meet at the door.
package deadend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// Store is what the analysis reads: the users and their registered
// methods.
type Store interface {
	ListUsers(ctx context.Context) ([]store.User, error)
	access.CredentialLister
}

// Rules are the registration rules that decide whether a user may add a
// method on their own (the registration section of the configuration).
type Rules struct {
	// PhishingResistant: only a passkey proof opens a registration.
	PhishingResistant bool
	// Window is how long after an account's creation a user with no
	// method may register a first one after a password sign-in alone;
	// 0 is off.
	Window time.Duration
}

// Analyzer finds dead ends.
type Analyzer struct {
	Store Store
	// Methods are the deployment's methods beyond the password, in
	// prompt order (the authentication registry's names): the only
	// methods anyone can register.
	Methods []string
	Rules   Rules
	// HasPass reports whether the user holds a usable temporary access
	// pass, which opens a registration whatever the rules; nil: nobody
	// does.
	HasPass func(ctx context.Context, userID string) (bool, error)
	Now     func() time.Time
}

// Verdict is how a stranded user can get through.
type Verdict string

// Verdicts.
const (
	// Fixable: registering one of Finding.Register meets the grant, and
	// the user may register it on their own now.
	Fixable Verdict = "fixable"
	// Stuck: nothing the user can do alone gets them through: the grant
	// asks what no method gives (an approval), no enabled method would
	// meet it, or the registration rules do not let them add one (an
	// administrator's temporary access pass would).
	Stuck Verdict = "stuck"
)

// Finding is one user stranded by one policy.
type Finding struct {
	Policy string `json:"policy"`
	// Targets is what the policy protects, like "context c3 (Admin
	// action)": words a user may be shown, unlike the policy's name.
	Targets  string   `json:"targets"`
	Username string   `json:"username"`
	UserID   string   `json:"user_id"`
	Groups   []string `json:"groups,omitempty"`
	// Needs is what the grant asks that the user cannot give, like
	// "phishing-resistant" or "approval"; Has the methods they have.
	Needs []string `json:"needs"`
	Has   []string `json:"has"`
	// Register are the methods, any one of which, once registered,
	// meets what is missing (in prompt order); empty when none would.
	Register []string `json:"register,omitempty"`
	Verdict  Verdict  `json:"verdict"`
	// Why says it in words: "needs phishing-resistant; has password,
	// totp; fixable by registering webauthn".
	Why string `json:"why"`
}

// PolicyReport is one enabled policy's dead ends.
type PolicyReport struct {
	Policy  string `json:"policy"`
	Targets string `json:"targets"`
	// InScope counts the enabled users the policy is for.
	InScope  int       `json:"in_scope"`
	Stranded []Finding `json:"stranded,omitempty"`
	// Groups counts the stranded users per group they are a direct
	// member of, by name; users in no group count under "".
	Groups  map[string]int `json:"groups,omitempty"`
	Fixable int            `json:"fixable"`
	Stuck   int            `json:"stuck"`
}

// Nobody reports a policy that no one in its scope can meet: everyone it
// is for is stranded.
func (p PolicyReport) Nobody() bool { return p.InScope > 0 && len(p.Stranded) == p.InScope }

// Report is the dead ends of a policy set.
type Report struct {
	// Policies has one entry per enabled policy that can be met at all
	// (block policies refuse by design and are left out), in policy
	// order.
	Policies []PolicyReport `json:"policies"`
	// Users counts the enabled users looked at.
	Users int `json:"users"`
}

// Stranded counts the distinct users stranded by any policy.
func (r Report) Stranded() int { return len(r.StrandedUsers()) }

// StrandedUsers lists the distinct ids of users stranded by any policy.
func (r Report) StrandedUsers() map[string]bool {
	out := map[string]bool{}
	for _, p := range r.Policies {
		for _, f := range p.Stranded {
			out[f.UserID] = true
		}
	}
	return out
}

// Analyze finds every dead end of snap among the enabled users.
func (a *Analyzer) Analyze(ctx context.Context, snap *policy.Snapshot) (Report, error) {
	users, err := a.Store.ListUsers(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("list users: %w", err)
	}
	grants := snap.Grants()
	var rep Report
	reports := make([]PolicyReport, len(grants))
	for i, g := range grants {
		reports[i] = PolicyReport{Policy: g.Name, Targets: g.Targets}
	}
	for _, u := range users {
		if u.Disabled {
			continue
		}
		rep.Users++
		facts, err := a.factsOf(ctx, u)
		if err != nil {
			return Report{}, err
		}
		for i, g := range grants {
			if g.Block || !g.InScope(facts.subject) {
				continue
			}
			reports[i].InScope++
			if f, stranded := a.judge(g, grants, facts); stranded {
				reports[i].add(f)
			}
		}
	}
	for i, g := range grants {
		if !g.Block {
			rep.Policies = append(rep.Policies, reports[i])
		}
	}
	return rep, nil
}

// ForUser lists the dead ends of snap for u alone, in policy order.
func (a *Analyzer) ForUser(ctx context.Context, snap *policy.Snapshot, u store.User) ([]Finding, error) {
	facts, err := a.factsOf(ctx, u)
	if err != nil {
		return nil, err
	}
	grants := snap.Grants()
	var out []Finding
	for _, g := range grants {
		if g.Block || !g.InScope(facts.subject) {
			continue
		}
		if f, stranded := a.judge(g, grants, facts); stranded {
			out = append(out, f)
		}
	}
	return out, nil
}

func (p *PolicyReport) add(f Finding) {
	p.Stranded = append(p.Stranded, f)
	if p.Groups == nil {
		p.Groups = map[string]int{}
	}
	if len(f.Groups) == 0 {
		p.Groups[""]++
	}
	for _, g := range f.Groups {
		p.Groups[g]++
	}
	if f.Verdict == Fixable {
		p.Fixable++
	} else {
		p.Stuck++
	}
}

// facts is what the analysis knows of one user.
type facts struct {
	user    store.User
	subject *policy.Subject
	creds   []store.Credential
	// has are the methods the user can prove with, in prompt order,
	// password last (access.AvailableMethods).
	has []string
	// pass: the user holds a usable temporary access pass.
	pass bool
}

func (a *Analyzer) factsOf(ctx context.Context, u store.User) (facts, error) {
	creds, err := a.Store.ListCredentials(ctx, u.ID)
	if err != nil {
		return facts{}, fmt.Errorf("list credentials of %s: %w", u.Username, err)
	}
	has, err := access.AvailableMethods(ctx, staticCreds(creds), a.Methods, u)
	if err != nil {
		return facts{}, err
	}
	pass := false
	if a.HasPass != nil {
		if pass, err = a.HasPass(ctx, u.ID); err != nil {
			return facts{}, fmt.Errorf("read the temporary access pass of %s: %w", u.Username, err)
		}
	}
	now := a.now()
	return facts{
		user:    u,
		subject: &policy.Subject{ID: u.ID, Username: u.Username, Groups: u.Groups, Roles: u.RolesAt(now, "")},
		creds:   creds, has: has, pass: pass,
	}, nil
}

// staticCreds lists credentials already read.
type staticCreds []store.Credential

func (c staticCreds) ListCredentials(context.Context, string) ([]store.Credential, error) {
	return c, nil
}

func (a *Analyzer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// judge decides whether the user of f can meet g's grant, and if not,
// whether registering a method would get them through.
func (a *Analyzer) judge(g policy.GrantView, all []policy.GrantView, f facts) (Finding, bool) {
	needs, register, stranded := a.unmet(g, f.has)
	if !stranded {
		return Finding{}, false
	}
	out := Finding{Policy: g.Name, Targets: g.Targets, Username: f.user.Username, UserID: f.user.ID, Groups: f.user.Groups,
		Needs: needs, Has: f.has, Register: register, Verdict: Stuck}
	why := "needs " + strings.Join(needs, " and ") + "; has " + listOrNone(f.has)
	switch blocker := a.registrationBlocker(all, f); {
	case len(register) == 0:
		why += "; no method of this deployment would meet it"
	case blocker != "":
		why += "; registering " + strings.Join(register, " or ") + " would meet it, but " + blocker
	default:
		out.Verdict = Fixable
		why += "; fixable by registering " + strings.Join(register, " or ")
	}
	out.Why = why
	return out, true
}

// unmet lists what of g's grant the methods in has cannot meet, and the
// methods any one of which, registered, would meet all of it.
func (a *Analyzer) unmet(g policy.GrantView, has []string) (needs, register []string, stranded bool) {
	candidates := a.registrable()
	for _, grp := range g.Groups {
		if slices.ContainsFunc(grp, func(n policy.Need) bool { return meetable(n, has) }) {
			continue
		}
		stranded = true
		needs = append(needs, describe(grp))
		var fixes []string
		for _, m := range candidates {
			with := append(slices.Clone(has), m)
			if slices.ContainsFunc(grp, func(n policy.Need) bool { return meetable(n, with) }) {
				fixes = append(fixes, m)
			}
		}
		if register == nil {
			register = fixes
		} else {
			// One method must close every gap of the grant.
			register = slices.DeleteFunc(register, func(m string) bool { return !slices.Contains(fixes, m) })
		}
	}
	if len(register) == 0 {
		register = nil
	}
	return needs, register, stranded
}

// registrable are the methods a user can add: every method of the
// deployment but recovery codes, which recover and meet no grant.
func (a *Analyzer) registrable() []string {
	return slices.DeleteFunc(slices.Clone(a.Methods), func(m string) bool {
		return m == strength.RecoveryCode || m == strength.Password
	})
}

// meetable reports whether a user with the methods in has can meet n.
// A strength is met when one of its combinations is made of methods
// the user has, exactly as a step-up page decides what it can offer
// (policy.StepUpMethods). Stepgate keeps no device inventory, so a
// compliant device is taken to be within reach; terms of use are
// accepted on the step-up page and a password change is made on the
// password page. Nothing grants an approval yet.
func meetable(n policy.Need, has []string) bool {
	switch n.Kind {
	case policy.KindStrength:
		_, ok := policy.StepUpMethods([]policy.Requirement{{AnyOf: []policy.Need{n}}}, has)
		return ok
	case policy.KindApproval:
		return false
	}
	return true
}

// describe names what a group of controls asks: "phishing-resistant",
// "mfa or compliant-device".
func describe(grp []policy.Need) string {
	var out []string
	for _, n := range grp {
		switch n.Kind {
		case policy.KindStrength:
			out = append(out, n.Strength)
		case policy.KindTermsOfUse:
			out = append(out, "terms of use "+n.Terms)
		default:
			out = append(out, n.Kind.String())
		}
	}
	return strings.Join(out, " or ")
}

func listOrNone(methods []string) string {
	if len(methods) == 0 {
		return "no method"
	}
	return strings.Join(methods, ", ")
}

// registrationBlocker says why the user of f may not register a method
// on their own, or "" when they may: with a fresh proof of a method they
// have (passkeys only where the rules demand phishing-resistant proofs),
// with a recovery code (not where they do), with a usable temporary
// access pass from an administrator, or, with no method at all, within
// the registration window of a new account. It mirrors the security
// page's rules (web.Pages.addVerdict).
func (a *Analyzer) registrationBlocker(all []policy.GrantView, f facts) string {
	// A recovery code opens a registration too, except where proofs
	// must be phishing-resistant.
	provers := slices.ContainsFunc(f.creds, func(c store.Credential) bool {
		if a.Rules.PhishingResistant {
			return c.Type == strength.WebAuthn
		}
		return true
	})
	inWindow := len(f.creds) == 0 && a.Rules.Window > 0 && a.now().Before(f.user.CreatedAt.Add(a.Rules.Window))
	if !provers && !inWindow && !f.pass {
		return "registering a method takes a temporary access pass from an administrator"
	}
	// The register-security-info policies must be met too.
	for _, g := range all {
		if !slices.Contains(g.Actions, policy.ActionRegisterSecurityInfo) || !g.InScope(f.subject) {
			continue
		}
		if g.Block {
			return "policy " + g.Name + " blocks registering security info"
		}
		if _, _, stranded := a.unmet(g, f.has); stranded {
			return "policy " + g.Name + " on registering security info cannot be met either"
		}
	}
	return ""
}
