package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
)

// whatIfView is the What-If page's data: the form as filled in, and the
// decision once asked.
type whatIfView struct {
	Form     policy.WhatIf
	Contexts string
	Terms    string
	// StatementTables and StatementLabels are the statement's lists as
	// typed.
	StatementTables, StatementLabels string
	Asked                            bool
	Decision                         *policy.Decision
	// Roles are the user's roles, active (what the policies were
	// evaluated with), elevated and eligible apart; nil for a client.
	Roles   *access.WhatIfRoles
	Problem string
	// Choices for the select fields.
	Platforms, ClientApps, Risks, Actions, StatementClasses []string
}

// whatIf evaluates a hypothetical request against the live policies,
// the form version of POST /api/v1/whatif and "stepgate whatif". It
// reads a GET form: asking changes nothing, and the answer's address can
// be shared.
func (c *Console) whatIf(w http.ResponseWriter, r *http.Request, who *caller) error {
	q := r.URL.Query()
	v := whatIfView{Form: whatIfForm(q), Contexts: q.Get("contexts"), Terms: q.Get("terms"),
		StatementTables: q.Get("statement_tables"), StatementLabels: q.Get("statement_labels"),
		StatementClasses: policy.StatementClasses(),
		Platforms:        []string{policy.PlatformWindows, policy.PlatformMacOS, policy.PlatformLinux, policy.PlatformIOS, policy.PlatformAndroid, policy.PlatformChromeOS, policy.PlatformUnknown},
		ClientApps:       []string{policy.ClientBrowser, policy.ClientMobileDesktop, policy.ClientService, policy.ClientLegacy},
		Risks:            []string{policy.RiskNone, policy.RiskLow, policy.RiskMedium, policy.RiskHigh},
		Actions:          []string{policy.ActionRegisterSecurityInfo, policy.ActionRegisterDevice}}
	status := http.StatusOK
	if q.Has("ask") {
		v.Asked = true
		req, roles, err := c.WhatIf(r.Context(), &v.Form, c.Now())
		switch {
		case errors.Is(err, access.ErrInvalidWhatIf), errors.Is(err, access.ErrUnknownUser):
			v.Problem, status = strings.TrimPrefix(err.Error(), access.ErrInvalidWhatIf.Error()+": "), httpx.StatusOf(err)
		case err != nil:
			return err
		default:
			d := c.Policies.Evaluate(req, policy.EvaluateOptions{Explain: true})
			v.Decision, v.Roles = &d, roles
		}
	}
	c.render(w, r, who, status, "whatif", view{Title: "What-If", Section: "whatif", Data: v})
	return nil
}

// whatIfForm reads the form into the What-If description.
func whatIfForm(q url.Values) policy.WhatIf {
	return policy.WhatIf{
		User: strings.TrimSpace(q.Get("user")), Client: strings.TrimSpace(q.Get("client")),
		App: strings.TrimSpace(q.Get("app")), Contexts: list(q.Get("contexts")), Action: q.Get("action"),
		IP: strings.TrimSpace(q.Get("ip")), Country: strings.ToUpper(strings.TrimSpace(q.Get("country"))),
		Platform: q.Get("platform"), UserAgent: q.Get("user_agent"), ClientApp: q.Get("client_app"),
		DeviceID: strings.TrimSpace(q.Get("device_id")), DeviceCompliant: q.Get("device_compliant") == "on",
		DeviceTrustType: q.Get("device_trust_type"),
		SignInRisk:      q.Get("sign_in_risk"), UserRisk: q.Get("user_risk"),
		Auth: strings.TrimSpace(q.Get("auth")), PasswordChanged: strings.TrimSpace(q.Get("password_changed")),
		Terms: list(q.Get("terms")),
		Statement: policy.Statement{Class: q.Get("statement_class"), Command: strings.TrimSpace(q.Get("statement_command")),
			Tables: list(q.Get("statement_tables")), Labels: list(q.Get("statement_labels"))},
	}
}

// list splits "c1, c2" into its items.
func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}
