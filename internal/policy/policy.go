package policy

import (
	"fmt"
	"slices"
)

// State is a policy's state.
type State string

// Policy states.
const (
	StateEnabled    State = "enabled"
	StateDisabled   State = "disabled"
	StateReportOnly State = "report-only"
)

var states = []string{string(StateEnabled), string(StateDisabled), string(StateReportOnly)}

// compiledPolicy is one policy, ready to evaluate.
type compiledPolicy struct {
	index      int
	name       string
	state      State
	users      assignment
	target     target
	userRisk   riskCond
	signInRisk riskCond
	platforms  platformCond
	locations  locationCond
	clientApps clientAppCond
	statements statementCond
	device     deviceFilter
	expr       *celProgram
	grant      grant
	session    sessionControls
}

// match checks the policy's assignments, target and conditions in the
// documented order and returns the first that does not match ("" when
// the policy applies). detail explains a CEL rule that failed and so
// counted as matching.
func (p *compiledPolicy) match(ctx *evalCtx, r *Request) (reason Reason, detail string) {
	if reason = p.users.match(&r.Subject); reason != "" {
		return reason, ""
	}
	if reason = p.target.match(r); reason != "" {
		return reason, ""
	}
	if reason = p.matchRisk(r); reason != "" {
		return reason, ""
	}
	if reason = p.platforms.match(r.Platform); reason != "" {
		return reason, ""
	}
	if p.locations.set {
		if reason = p.locations.match(ctx.where(r)); reason != "" {
			return reason, ""
		}
	}
	if reason = p.clientApps.match(r.ClientApp); reason != "" {
		return reason, ""
	}
	if reason = p.statements.match(&r.Statement); reason != "" {
		return reason, ""
	}
	return p.matchCEL(ctx, r)
}

// acknowledgements are the hygiene checks a policy may override.
const (
	AckAdminLockout     = "admin-lockout"
	AckUserActionNonMFA = "user-action-non-mfa"
)

var acknowledgements = []string{AckAdminLockout, AckUserActionNonMFA}

func (c *compiler) policy(d *Document, i, index int) *compiledPolicy {
	path := fmt.Sprintf("policies[%d]", i)
	in := &d.Policies[i]
	problemsBefore := len(c.problems)
	if c.required(d, path+".name", in.Name, "name the policy; logs and What-If show the name") {
		c.declare("policy", in.Name, d, path+".name")
	}
	p := &compiledPolicy{index: index, name: in.Name, state: State(in.State)}
	if !slices.Contains(states, in.State) {
		if in.State == "" {
			c.addf(d, path+".state", "is required; enabled, disabled or report-only (try report-only first to see its effect in the sign-in log)")
		} else {
			c.addf(d, path+".state", "%q is not a state%s", in.State, didYouMean(in.State, states))
		}
	}
	p.users = c.assignment(d, path+".users", in.Users)
	p.target = c.target(d, path+".target", in.Target)
	c.conditions(d, path+".conditions", in.Conditions, p)
	p.session = c.session(d, path+".session", in.Session)
	p.grant = c.grant(d, path+".grant", in, p.session.freq)
	c.checkClients(d, path, p)
	if p.statements.set && p.target.kind == targetActions {
		c.addf(d, path+".conditions.statements", "a user action is never a SQL statement, so this policy would never apply; target the database's app or an authentication context its statements ask for")
	}
	for j, a := range in.Acknowledge {
		if !slices.Contains(acknowledgements, a) {
			c.addf(d, fmt.Sprintf("%s.acknowledge[%d]", path, j), "unknown check %q%s", a, didYouMean(a, acknowledgements))
		}
	}
	if len(c.problems) == problemsBefore {
		c.hygiene(d, path, in, p) // only meaningful on an otherwise valid policy
	}
	return p
}

func (c *compiler) conditions(d *Document, path string, in Conditions, p *compiledPolicy) {
	p.userRisk = c.risk(d, path+".user_risk", in.UserRisk)
	p.signInRisk = c.risk(d, path+".sign_in_risk", in.SignInRisk)
	p.platforms = c.platformCond(d, path+".platforms", in.Platforms)
	p.locations = c.locationCond(d, path+".locations", in.Locations)
	p.clientApps = c.clientAppCond(d, path+".client_apps", in.ClientApps)
	p.statements = c.statementCond(d, path+".statements", in.Statements)
	p.device = c.deviceFilter(d, path+".device_filter", in.DeviceFilter)
	if in.Expression != "" {
		p.expr = c.cel(d, path+".expression", in.Expression)
	}
}

// checkClients: a service client has no one to answer a challenge, so a
// policy that includes clients may only block (as Entra allows for
// workload identities).
func (c *compiler) checkClients(d *Document, path string, p *compiledPolicy) {
	inc := &p.users.include
	if (inc.allClients || inc.clients.len() > 0) && !p.grant.block && len(p.grant.groups) > 0 {
		c.addf(d, path+".grant", "a policy that includes service clients can only block: a client cannot answer an MFA or device challenge; put people and clients in separate policies")
	}
}
