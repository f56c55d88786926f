package policy

import (
	"slices"
)

// AdminRole is the role that administers Stepgate. The lock-out check
// looks for policies that would keep every holder of it out.
const AdminRole = "admin"

// hygiene rejects policies that are valid but almost certainly a
// mistake, unless the author acknowledges the check by name. The cost of
// a false alarm is one line of YAML; the cost of a miss is an outage
// nobody can sign in to fix.
func (c *compiler) hygiene(d *Document, path string, in *Policy, p *compiledPolicy) {
	acked := func(check string) bool { return slices.Contains(in.Acknowledge, check) }
	if p.state == StateEnabled && locksOutAdmins(in, p) && !acked(AckAdminLockout) {
		c.addf(d, path, "blocks every administrator from every app, which would lock everyone out of Stepgate itself; "+
			"exclude a break-glass user or group, narrow it with a condition, or add \"acknowledge: [%s]\" if this is really intended", AckAdminLockout)
	}
	if p.target.kind == targetActions && !mfaOnly(p) && !acked(AckUserActionNonMFA) {
		c.addf(d, path+".grant", "protects a user action with something other than mfa or a strength; "+
			"a user registering security info often cannot meet device or terms controls yet and would be stuck; "+
			"use mfa or a strength, or add \"acknowledge: [%s]\" if this is really intended", AckUserActionNonMFA)
	}
}

// locksOutAdmins reports an enabled policy that denies (block, or only
// approval, which cannot be granted yet) every administrator every app
// under every circumstance.
func locksOutAdmins(in *Policy, p *compiledPolicy) bool {
	inc := &in.Users.Include
	coversAdmins := slices.Contains(inc.Users, "all") || slices.Contains(inc.Roles, AdminRole)
	return denies(p) && coversAdmins && !hasEntries(in.Users.Exclude) &&
		p.target.kind == targetApps && p.target.allApps && p.target.appsExcl.len() == 0 &&
		unconditional(in.Conditions)
}

func denies(p *compiledPolicy) bool {
	if p.grant.block {
		return true
	}
	for _, grp := range p.grant.groups {
		if !slices.ContainsFunc(grp, func(ct control) bool { return ct.kind != KindApproval }) {
			return true
		}
	}
	return false
}

// unconditional reports conditions that match every request: none set,
// or set to their "everything" forms.
func unconditional(in Conditions) bool {
	everyLevel := func(l []string) bool {
		return len(l) == 0 || len(l) == len(riskLevels) && !slices.ContainsFunc(riskLevels, func(r string) bool { return !slices.Contains(l, r) })
	}
	everything := func(ie IncludeExclude) bool {
		return len(ie.Exclude) == 0 && (len(ie.Include) == 0 || slices.Contains(ie.Include, "all"))
	}
	allClientApps := len(in.ClientApps) == 0 || !slices.ContainsFunc(clientApps, func(a string) bool { return !slices.Contains(in.ClientApps, a) })
	return everyLevel(in.UserRisk) && everyLevel(in.SignInRisk) && everything(in.Platforms) &&
		everything(in.Locations) && allClientApps && in.DeviceFilter.Rule == "" && in.Expression == "" &&
		!hasStatementConditions(in.Statements)
}

func hasStatementConditions(s StatementConditions) bool {
	return len(s.Classes)+len(s.Commands)+len(s.Tables)+len(s.Labels) > 0
}

// mfaOnly reports a grant made only of strengths (mfa included).
func mfaOnly(p *compiledPolicy) bool {
	if p.grant.block {
		return false
	}
	for _, grp := range p.grant.groups {
		if slices.ContainsFunc(grp, func(ct control) bool { return ct.kind != KindStrength }) {
			return false
		}
	}
	return true
}
