package console

import (
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
)

// statsWindow is the period the policies page counts triggers over.
const statsWindow = 7 * 24 * time.Hour

// policiesView is the policies page's data.
type policiesView struct {
	Policies  []policyRowView
	Documents []admin.Document
	States    []string
	// ChangeRule is the built-in rule, shown read-only at the end.
	ChangeRule     string
	ChangeRuleYAML string
	// Since is where the counts start: the period is whole hours.
	Since time.Time
	// Refused is a state switch the scenario tests refused, offered
	// again with an override.
	Refused *refusedSwitch
	// Environment is the policy environment shown; Environments all of
	// them, for the tabs.
	Environment  string
	Environments []string
}

// refusedSwitch is a state switch that fails scenario tests.
type refusedSwitch struct {
	Policy, State, Reason string
	Failed                []string
}

// policyRowView is one policy with what it did in the last 7 days.
type policyRowView struct {
	admin.PolicyInfo
	Stats admin.PolicyStats
}

// policies lists the live policies with their sources and triggers.
func (c *Console) policies(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showPolicies(w, r, who, http.StatusOK, "", nil)
}

func (c *Console) showPolicies(w http.ResponseWriter, r *http.Request, who *caller, status int, problem string, refused *refusedSwitch) error {
	ctx := r.Context()
	infos, err := c.in(r).Policies(ctx)
	if err != nil {
		return err
	}
	o, err := c.in(r).Overview(ctx, statsWindow)
	if err != nil {
		return err
	}
	docs, err := c.in(r).Documents.List(ctx)
	if err != nil {
		return err
	}
	stats := map[string]admin.PolicyStats{}
	for _, s := range o.Policies {
		stats[s.Policy] = s
	}
	v := policiesView{Documents: docs, ChangeRule: ChangeRuleName, ChangeRuleYAML: changeRuleYAML, Since: o.Since,
		States: []string{string(policy.StateEnabled), string(policy.StateReportOnly), string(policy.StateDisabled)}, Refused: refused,
		Environment: c.in(r).Environment(), Environments: c.Service.EnvironmentNames}
	for _, p := range infos {
		v.Policies = append(v.Policies, policyRowView{PolicyInfo: p, Stats: stats[p.Name]})
	}
	c.render(w, r, who, status, "policies", view{Title: "Policies", Section: "policies", Notice: noticeOf(r), Error: problem, Data: v})
	return nil
}

// setState switches a stored policy between enabled, report-only and
// disabled. A refusal the administrator can act on (a file policy, a
// conflict) is shown on the policies page.
func (c *Console) setState(w http.ResponseWriter, r *http.Request, who *caller) error {
	name, state := r.PathValue("name"), r.PostFormValue("state")
	_, err := c.in(r).SetState(r.Context(), who.actor(), r.PostFormValue("reason"), name, state, r.PostFormValue("override_tests"))
	if ae := adminError(err); ae != nil {
		if ae.Kind == admin.TestsFailed {
			return c.showPolicies(w, r, who, httpx.StatusOf(ae), ae.Message,
				&refusedSwitch{Policy: name, State: state, Reason: r.PostFormValue("reason"), Failed: ae.Scenarios})
		}
		return c.showPolicies(w, r, who, httpx.StatusOf(ae), ae.Error(), nil)
	}
	if err != nil {
		return err
	}
	return redirect(withNotice(inEnvironment(r, "/admin/policies"), "state"))
}
