package console

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/policy"
)

// ChangeRuleSource names the built-in change rule where policy results
// and problems name their file.
const ChangeRuleSource = "built-in:console-changes"

// ChangeRuleName is the name of the built-in policy every console change
// must satisfy.
const ChangeRuleName = "console-changes-need-passkey"

// changeRuleYAML is the rule every change made in the console must meet
// besides the live policies: a stolen session cookie, or an unlocked
// browser left alone, must not be enough to rewrite the policies that
// protect everything else. It is a policy document, compiled and
// evaluated by the same engine as every other policy, so its result
// reads like any other in the console's explanations. Operators cannot
// edit or disable it; their own policies for the console app come on
// top of it.
var changeRuleYAML = fmt.Sprintf(`policies:
  - name: %s
    description: Every change made in the admin console needs a passkey (a phishing-resistant proof) used within the last hour.
    state: enabled
    users:
      include: {users: [all]}
    target:
      apps: {include: [%s]}
    grant:
      controls:
        - strength: phishing-resistant
    session:
      sign_in_frequency: 1h
`, ChangeRuleName, admin.ConsoleApp)

// ChangeRuleYAML is the built-in change rule as a policy document, for
// the documentation and the policies page.
func ChangeRuleYAML() string { return changeRuleYAML }

func compileChangeRule() (*policy.Snapshot, error) {
	doc, probs := policy.Parse(ChangeRuleSource, []byte(changeRuleYAML))
	snap, cprobs := policy.Compile(nil, doc)
	if all := append(probs, cprobs...); len(all) > 0 {
		return nil, fmt.Errorf("the console's built-in change rule does not compile: %w", all)
	}
	return snap, nil
}

// changeState is whether the caller may change things now, and if not,
// how to become able to.
type changeState struct {
	Allowed bool
	// StepUp is the step-up page that gives the missing proof and comes
	// back; empty when no method of the user's can give it (they must
	// register a passkey first).
	StepUp string
	// PasskeysOff: the server offers no passkeys, so the console stays
	// read-only until the operator turns them on.
	PasskeysOff bool
	// Decision is the built-in rule's decision with its policy result,
	// for the explanation.
	Decision policy.Decision
}

// Result is the built-in policy's result in Decision.
func (s changeState) Result() policy.PolicyResult {
	if len(s.Decision.Policies) == 0 {
		return policy.PolicyResult{}
	}
	return s.Decision.Policies[0]
}

// changeState evaluates the built-in change rule for the request: every
// page shows it (forms stay disabled until it allows), every form post
// is refused without it.
func (c *Console) changeState(r *http.Request, who *caller) changeState {
	d := c.changeRule.Evaluate(who.request, policy.EvaluateOptions{Explain: true})
	st := changeState{Allowed: d.Outcome == policy.OutcomeAllow, Decision: d, PasskeysOff: !c.Passkeys}
	if st.Allowed {
		return st
	}
	v, _ := access.Challenge(d.Missing, d.Reason, func() ([]string, error) { return who.methods, nil })
	if v.Outcome == policy.OutcomeChallenge && slices.Contains(v.Methods, "webauthn") {
		st.StepUp = stepUpURL(backTo(r), v.Methods)
	}
	return st
}
