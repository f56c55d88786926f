package config

import (
	"strings"
	"testing"
	"time"
)

// TestElevationApproversDecode: a role's approvers, an optional section
// behind a pointer, decode from the one-line form the documentation
// shows and from the block form, strictly (an unknown key is a problem
// with its path), and a role without them needs no approval.
func TestElevationApproversDecode(t *testing.T) {
	t.Parallel()
	cfg, _ := mustResolve(t, `elevation:
  roles:
    - {role: bank-admin, approvers: {group: admins}}
    - role: ops
      approvers:
        group: leads
        count: 2
        expire: 2h
    - role: plain
`, Flags{}, nil)
	bank := cfg.Elevation.RoleSettings("bank-admin")
	if bank.Approvers == nil || bank.Approvers.Group != "admins" || bank.Approvers.Count != 1 || bank.Approvers.Expire.D() != DefaultApprovalExpiry {
		t.Errorf("bank-admin approvers %+v, want group admins, count 1, expire 24h", bank.Approvers)
	}
	ops := cfg.Elevation.RoleSettings("ops")
	if ops.Approvers == nil || ops.Approvers.Group != "leads" || ops.Approvers.Count != 2 || ops.Approvers.Expire.D() != 2*time.Hour {
		t.Errorf("ops approvers %+v, want group leads, count 2, expire 2h", ops.Approvers)
	}
	if p := cfg.Elevation.RoleSettings("plain"); p.Approvers != nil {
		t.Errorf("plain approvers %+v, want none", p.Approvers)
	}
	ps := problemsOf(t, "elevation:\n  roles:\n    - {role: ops, approvers: {group: leads, cuont: 2}}\n", Flags{}, nil)
	if len(ps) != 1 || ps[0].Path != "elevation.roles[0].approvers.cuont" || !strings.Contains(ps[0].Message, `"count"`) {
		t.Errorf("a misspelt approvers key: %v", ps)
	}
}
