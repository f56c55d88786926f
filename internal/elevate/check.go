package elevate

import (
	"fmt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/policy"
)

// BuiltinRuleName is the built-in policy a role without a context of its
// own activates under.
const BuiltinRuleName = "elevation-needs-recent-mfa"

// builtinRuleYAML is what activating a role takes when the role names no
// authentication context: a second factor from the last ten minutes, so
// a stolen session cookie or a browser left unlocked is not enough to
// turn eligibility into privilege. It is a policy document evaluated by
// the same engine as every other, so the step-up page and the sign-in
// log explain it like any other policy.
var builtinRuleYAML = fmt.Sprintf(`policies:
  - name: %s
    description: Activating a role needs a second factor from the last ten minutes.
    state: enabled
    users:
      include: {users: [all]}
    target:
      apps: {include: [%s]}
    grant:
      controls: [mfa]
    session:
      sign_in_frequency: 10m
`, BuiltinRuleName, App)

// Checker decides whether a requester's proofs meet what a role's
// activation asks for: the live policies for the app App and the role's
// context, and the built-in rule when the role names none.
type Checker struct {
	// Live returns the policies in force.
	Live    func() *policy.Snapshot
	builtin *policy.Snapshot
}

// NewChecker compiles the built-in rule.
func NewChecker(live func() *policy.Snapshot) (*Checker, error) {
	doc, probs := policy.Parse("built-in:elevation", []byte(builtinRuleYAML))
	snap, cprobs := policy.Compile(nil, doc)
	if all := append(probs, cprobs...); len(all) > 0 {
		return nil, fmt.Errorf("the built-in elevation rule does not compile: %w", all)
	}
	return &Checker{Live: live, builtin: snap}, nil
}

// Check decides req (the requester's access request, as the enforcement
// point built it from their session or token) for activating role. A
// challenge names the methods of the user's (methods) that can meet it.
func (c *Checker) Check(role Role, req *policy.Request, methods access.MethodSource) (access.Verdict, error) {
	req.App = App
	req.AuthContexts = nil
	if role.Context != "" {
		req.AuthContexts = []string{role.Context}
	}
	v, err := access.Decide(access.Ask{Snapshot: c.Live(), Request: req}, methods)
	if err != nil || v.Outcome != policy.OutcomeAllow || role.Context != "" {
		return v, err
	}
	return access.Decide(access.Ask{Snapshot: c.builtin, Request: req}, methods)
}

// Contexts describes role's activation context for the step-up page.
func (c *Checker) Contexts(role Role) []policy.AuthContext {
	if role.Context == "" {
		return []policy.AuthContext{{ID: "", Name: "Activate " + role.Name}}
	}
	for _, ac := range c.Live().AuthContexts() {
		if ac.ID == role.Context {
			return []policy.AuthContext{ac}
		}
	}
	return []policy.AuthContext{{ID: role.Context, Name: role.Context}}
}
