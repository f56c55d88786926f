package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/httpx"
)

// environmentsView is the environments page's data: each policy
// environment's current release.
type environmentsView struct {
	Environments []admin.Release
	Names        []string
}

// environments lists the policy environments with their versions, and
// offers a promotion between two of them.
func (c *Console) environments(w http.ResponseWriter, r *http.Request, who *caller) error {
	var v environmentsView
	v.Names = c.Service.EnvironmentNames
	for _, name := range v.Names {
		svc, err := c.Service.In(name)
		if err != nil {
			return err
		}
		head, err := svc.Documents.Head(r.Context())
		if err != nil {
			return err
		}
		head.Env = name
		v.Environments = append(v.Environments, head)
	}
	c.render(w, r, who, http.StatusOK, "environments", view{Title: "Policy environments", Section: "policies", Notice: noticeOf(r), Data: v})
	return nil
}

// historyView is an environment's history page's data.
type historyView struct {
	Env      string
	Releases []admin.Release
}

func (c *Console) history(w http.ResponseWriter, r *http.Request, who *caller) error {
	env := r.PathValue("env")
	rels, err := c.Service.History(r.Context(), env)
	if err != nil {
		return environmentErr(err)
	}
	c.render(w, r, who, http.StatusOK, "history", view{Title: "History of " + env, Section: "policies", Notice: noticeOf(r),
		Data: historyView{Env: env, Releases: rels}})
	return nil
}

// reviewView is the review page of a promotion or a rollback, and the
// form that applies it.
type reviewView struct {
	admin.Review
	// Rollback: the review is of restoring FromVersion of Env.
	Rollback bool
	Days     int
	DayOpts  []int
	Reason   string
}

// choosePromotion takes the environments page's choice of from and to
// to the review of that promotion.
func (c *Console) choosePromotion(_ http.ResponseWriter, r *http.Request, _ *caller) error {
	from, to := r.FormValue("from"), r.FormValue("to")
	if _, err := c.Service.In(to); err != nil || from == "" {
		return &pageError{status: http.StatusBadRequest, msg: "Choose the environments to promote from and to on the environments page."}
	}
	return redirect("/admin/environments/" + url.PathEscape(to) + "/promote?from=" + url.QueryEscape(from))
}

// reviewPromotion shows what promoting ?from= to the environment of the
// path would change.
func (c *Console) reviewPromotion(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showPromotion(w, r, who, http.StatusOK, "")
}

func (c *Console) showPromotion(w http.ResponseWriter, r *http.Request, who *caller, status int, problem string) error {
	from := r.FormValue("from")
	if from == "" {
		return &pageError{status: http.StatusBadRequest, msg: "Choose the environment to promote from on the environments page."}
	}
	days := reviewDays(r)
	rev, err := c.Service.ReviewPromotion(r.Context(), from, r.PathValue("env"), days)
	if err != nil {
		return environmentErr(err)
	}
	return c.showReview(w, r, who, status, reviewView{Review: rev, Days: days}, problem)
}

// reviewRollback shows what restoring ?version= of the environment of
// the path would change.
func (c *Console) reviewRollback(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showRollback(w, r, who, http.StatusOK, "")
}

func (c *Console) showRollback(w http.ResponseWriter, r *http.Request, who *caller, status int, problem string) error {
	version, err := strconv.ParseInt(r.FormValue("version"), 10, 64)
	if err != nil || version < 1 {
		return &pageError{status: http.StatusBadRequest, msg: "Choose the version to restore on the environment's history page."}
	}
	days := reviewDays(r)
	rev, err := c.Service.ReviewRollback(r.Context(), r.PathValue("env"), version, days)
	if err != nil {
		return environmentErr(err)
	}
	return c.showReview(w, r, who, status, reviewView{Review: rev, Rollback: true, Days: days}, problem)
}

func (c *Console) showReview(w http.ResponseWriter, r *http.Request, who *caller, status int, v reviewView, problem string) error {
	v.DayOpts, v.Reason = impactDays, r.PostFormValue("reason")
	title := fmt.Sprintf("Promote %s to %s", v.FromEnv, v.Env)
	if v.Rollback {
		title = fmt.Sprintf("Roll %s back to version %d", v.Env, v.FromVersion)
	}
	c.render(w, r, who, status, "review", view{Title: title, Section: "policies", Error: problem, Data: v})
	return nil
}

func reviewDays(r *http.Request) int {
	days, _ := strconv.Atoi(r.FormValue("days"))
	if !slices.Contains(impactDays, days) {
		return 7
	}
	return days
}

// promote applies a reviewed promotion; a refusal shows the review
// again, as it is now, with why.
func (c *Console) promote(w http.ResponseWriter, r *http.Request, who *caller) error {
	p := admin.Promotion{From: r.PostFormValue("from"), To: r.PathValue("env"), Reason: r.PostFormValue("reason"),
		OverrideTests: r.PostFormValue("override_tests")}
	p.FromVersion, _ = strconv.ParseInt(r.PostFormValue("from_version"), 10, 64)
	p.ToVersion, _ = strconv.ParseInt(r.PostFormValue("to_version"), 10, 64)
	_, err := c.Service.Promote(r.Context(), who.actor(), p)
	if ae := adminError(err); ae != nil {
		return c.showPromotion(w, r, who, httpx.StatusOf(ae), ae.Message)
	}
	if err != nil {
		return err
	}
	return redirect(withNotice("/admin/environments/"+url.PathEscape(p.To)+"/history", "promoted"))
}

// rollBack applies a reviewed rollback, as promote does.
func (c *Console) rollBack(w http.ResponseWriter, r *http.Request, who *caller) error {
	rb := admin.Rollback{Env: r.PathValue("env"), Reason: r.PostFormValue("reason"), OverrideTests: r.PostFormValue("override_tests")}
	rb.Version, _ = strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	rb.HeadVersion, _ = strconv.ParseInt(r.PostFormValue("head_version"), 10, 64)
	_, err := c.Service.RollBack(r.Context(), who.actor(), rb)
	if ae := adminError(err); ae != nil {
		return c.showRollback(w, r, who, httpx.StatusOf(ae), ae.Message)
	}
	if err != nil {
		return err
	}
	return redirect(withNotice("/admin/environments/"+url.PathEscape(rb.Env)+"/history", "rolled-back"))
}

// keepPromotion and keepRollback answer a post the change rule refused
// (no recent passkey): the review again, with the reason typed.
func (c *Console) keepPromotion(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showPromotion(w, r, who, http.StatusForbidden, passkeyNeeded)
}

func (c *Console) keepRollback(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showRollback(w, r, who, http.StatusForbidden, passkeyNeeded)
}

const passkeyNeeded = "Changes need a passkey used within the last hour, so nothing was done. Confirm with your passkey (the button above), then submit again."

// environmentErr shows a refusal about an environment (not configured,
// no such version) as a page that says so.
func environmentErr(err error) error {
	if ae := adminError(err); ae != nil && (ae.Kind == admin.NotFound || ae.Kind == admin.Invalid) {
		return &pageError{status: httpx.StatusOf(ae), msg: ae.Message}
	}
	return err
}
