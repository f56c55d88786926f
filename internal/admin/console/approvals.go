package console

import (
	"net/http"
	"slices"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
)

// The approvals page, /approvals: where members of a role's approver
// group who are not administrators answer elevation requests. It is
// served by the console's own checks (the CSRF token, the live policies
// for the console, and the built-in rule that a change needs a recent
// passkey) behind a door of its own, so that the console's door stays
// closed to everyone but administrators. It shows only the requests of
// roles whose approver group the user is in: nobody else learns who
// asked for what, or why.

// approvalsPath is the approvals page.
const approvalsPath = "/approvals"

// approvalsView is the approvals page's data.
type approvalsView struct {
	Pending []pendingRow
	// Off: elevation is not in use on this server.
	Off bool
}

func (c *Console) approvals(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showApprovals(w, r, who, http.StatusOK, "")
}

func (c *Console) showApprovals(w http.ResponseWriter, r *http.Request, who *caller, status int, problem string) error {
	v := approvalsView{Off: c.Service.Elevation == nil}
	if !v.Off {
		pending, err := c.Service.Elevations(r.Context(), admin.ElevationFilter{States: []string{store.ElevationPending}, Limit: openLimit})
		if err != nil {
			return err
		}
		for _, e := range pending.Elevations {
			if !c.approverOf(e, who.user) {
				continue
			}
			ok, why := c.Service.MayDecide(e, who.user)
			v.Pending = append(v.Pending, pendingRow{ElevationInfo: e, MayDecide: ok, Why: why})
		}
	}
	c.render(w, r, who, status, "approvals", view{Title: "Approvals", Section: "approvals", Notice: noticeOf(r), Error: problem, Data: v})
	return nil
}

// approverOf reports whether u is in the approver group of e's role.
func (c *Console) approverOf(e admin.ElevationInfo, u store.User) bool {
	return e.ApproverGroup != "" && slices.Contains(u.Groups, e.ApproverGroup)
}

// approverDecide answers a request as the signed-in user. The elevation
// service decides whether they may: a member of the role's approver
// group, not the requester, once, and only while the request is
// pending and proven.
func (c *Console) approverDecide(w http.ResponseWriter, r *http.Request, who *caller) error {
	var approve bool
	switch r.PostFormValue("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		return c.showApprovals(w, r, who, http.StatusBadRequest, "Choose approve or deny. Nothing was changed.")
	}
	_, err := c.Service.Decide(r.Context(), who.actor(), who.user.Username, r.PathValue("id"), approve, r.PostFormValue("comment"))
	if ae := adminError(err); ae != nil {
		return c.showApprovals(w, r, who, httpx.StatusOf(ae), refusal(ae))
	}
	if err != nil {
		return err
	}
	notice := "answered-denied"
	if approve {
		notice = "answered-approved"
	}
	return redirect(withNotice(approvalsPath, notice))
}
