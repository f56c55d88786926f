package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
)

// The elevation page: pending approvals, active elevations, history, and
// the role assignments that make users eligible.
//
// The console is for administrators only (its door refuses everyone
// else alike), so it is where administrators who are also members of a
// role's approver group answer requests, as themselves. Approvers who
// are not administrators are not let in here: opening the console's door
// to them would show them every other page too.

// elevationsPath is the page every elevation form comes back to.
const elevationsPath = "/admin/elevations"

// openLimit bounds the pending and active rows the page lists; a user has
// at most elevation.max_pending pending requests, and one active
// elevation per role.
const openLimit = admin.MaxElevationPage

// historyPage is how many ended requests one page of history shows.
const historyPage = 25

// pendingRow is a pending request with what the viewer may do with it.
type pendingRow struct {
	admin.ElevationInfo
	// MayDecide: the viewer may approve or deny it now; Why says why not.
	MayDecide bool
	Why       string
}

// elevationsView is the elevation page's data.
type elevationsView struct {
	Pending     []pendingRow
	Active      []admin.ElevationInfo
	History     []admin.ElevationInfo
	Assignments []admin.AssignmentInfo
	// Next links to the next page of history; empty on the last.
	Next string
	// Off: elevation is not in use on this server.
	Off bool
}

func (c *Console) elevations(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showElevations(w, r, who, http.StatusOK, "")
}

func (c *Console) showElevations(w http.ResponseWriter, r *http.Request, who *caller, status int, problem string) error {
	v, err := c.elevationsData(r, who)
	if err != nil {
		return err
	}
	c.render(w, r, who, status, "elevations", view{Title: "Elevation", Section: "elevations", Notice: noticeOf(r), Error: problem, Data: v})
	return nil
}

func (c *Console) elevationsData(r *http.Request, who *caller) (elevationsView, error) {
	ctx := r.Context()
	if c.Service.Elevation == nil {
		return elevationsView{Off: true}, nil
	}
	var v elevationsView
	pending, err := c.Service.Elevations(ctx, admin.ElevationFilter{States: []string{store.ElevationPending}, Limit: openLimit})
	if err != nil {
		return v, err
	}
	for _, e := range pending.Elevations {
		ok, why := c.Service.MayDecide(e, who.user)
		v.Pending = append(v.Pending, pendingRow{ElevationInfo: e, MayDecide: ok, Why: why})
	}
	active, err := c.Service.Elevations(ctx, admin.ElevationFilter{States: []string{store.ElevationActive}, Limit: openLimit})
	if err != nil {
		return v, err
	}
	v.Active = active.Elevations
	history, err := c.Service.Elevations(ctx, admin.ElevationFilter{
		States: []string{store.ElevationDenied, store.ElevationExpired, store.ElevationDeactivated},
		Cursor: r.URL.Query().Get("before"), Limit: historyPage,
	})
	if ae := adminError(err); ae != nil && ae.Kind == admin.Invalid {
		return v, &pageError{status: http.StatusBadRequest, msg: "That history page does not exist; start again from " + elevationsPath + "."}
	}
	if err != nil {
		return v, err
	}
	v.History = history.Elevations
	if history.Next != "" {
		v.Next = elevationsPath + "?" + url.Values{"before": {history.Next}}.Encode() + "#history"
	}
	v.Assignments, err = c.Service.Assignments(ctx, "")
	return v, err
}

// elevationChange runs one of the page's forms and comes back to the
// page with a notice; a refusal the caller can act on is shown on the
// page, with nothing changed.
func (c *Console) elevationChange(w http.ResponseWriter, r *http.Request, who *caller, notice string, act func() error) error {
	err := act()
	if ae := adminError(err); ae != nil {
		return c.showElevations(w, r, who, httpx.StatusOf(ae), refusal(ae))
	}
	if err != nil {
		return err
	}
	return redirect(withNotice(elevationsPath, notice))
}

// refusal words a refused change for the page.
func refusal(ae *admin.Error) string {
	msg := ae.Error()
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	return strings.TrimSuffix(msg, ".") + ". Nothing was changed."
}

// decide approves or denies a pending request as the signed-in
// administrator. The elevation service refuses them when they are the
// requester or outside the role's approver group, and an answer to a
// request that is no longer pending (a replayed form): exactly one
// answer of each approver counts.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, who *caller) error {
	var approve bool
	switch r.PostFormValue("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		return c.showElevations(w, r, who, http.StatusBadRequest, "Choose approve or deny. Nothing was changed.")
	}
	notice := "elevation-denied"
	if approve {
		notice = "elevation-approved"
	}
	return c.elevationChange(w, r, who, notice, func() error {
		_, err := c.Service.Decide(r.Context(), who.actor(), who.user.Username, r.PathValue("id"), approve, r.PostFormValue("comment"))
		return err
	})
}

// revokeElevation ends a pending request or an active elevation; the
// role stops counting at once.
func (c *Console) revokeElevation(w http.ResponseWriter, r *http.Request, who *caller) error {
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		return c.showElevations(w, r, who, http.StatusBadRequest, "Say why you revoke it: the holder and the audit trail see the reason. Nothing was changed.")
	}
	return c.elevationChange(w, r, who, "elevation-revoked", func() error {
		_, err := c.Service.RevokeElevation(r.Context(), who.actor(), reason, r.PathValue("id"))
		return err
	})
}

// assign makes a user or a group eligible for a role (or gives it
// standing, kind active), optionally only for some apps.
func (c *Console) assign(w http.ResponseWriter, r *http.Request, who *caller) error {
	a := admin.Assignment{Role: r.PostFormValue("role"), Kind: r.PostFormValue("kind")}
	holder := strings.TrimSpace(r.PostFormValue("holder"))
	switch r.PostFormValue("holder_type") {
	case "user":
		a.User = holder
	case "group":
		a.Group = holder
	default:
		return c.showElevations(w, r, who, http.StatusBadRequest, "Choose whether the holder is a user or a group. Nothing was changed.")
	}
	for app := range strings.SplitSeq(r.PostFormValue("scope"), ",") {
		if app = strings.TrimSpace(app); app != "" {
			a.Scope = append(a.Scope, app)
		}
	}
	return c.elevationChange(w, r, who, "assigned", func() error {
		_, err := c.Service.Assign(r.Context(), who.actor(), r.PostFormValue("reason"), a)
		return err
	})
}

// unassign removes a role assignment.
func (c *Console) unassign(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.elevationChange(w, r, who, "unassigned", func() error {
		return c.Service.UnassignID(r.Context(), who.actor(), r.PostFormValue("reason"), r.PathValue("id"))
	})
}
