package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// signInPageSize is how many entries a page of the log shows.
const signInPageSize = 50

// filterTime is the format of the since and until fields (an HTML
// datetime-local input), read as UTC.
const filterTime = "2006-01-02T15:04"

// signInsView is the sign-in log page's data.
type signInsView struct {
	Filter    url.Values
	Decisions []string
	// Classes are the SQL statement classes the class filter offers.
	Classes []string
	Page    admin.SignInPage
	// NextURL is the next (older) page with the same filters.
	NextURL string
	Problem string
}

// signIns lists the sign-in log, newest first, filtered.
func (c *Console) signIns(w http.ResponseWriter, r *http.Request, who *caller) error {
	q := r.URL.Query()
	v := signInsView{Filter: q, Decisions: []string{"allow", "challenge", "block", "success", "failure", "throttled",
		// The steps of a just-in-time elevation (source elevation).
		"requested", "proven", "approved", "denied", "activated", "expired", "deactivated"},
		Classes: policy.StatementClasses()}
	status := http.StatusOK
	query, err := c.signInQuery(r, q)
	var fp filterProblem
	switch {
	case errors.As(err, &fp):
		v.Problem, status = string(fp), httpx.StatusOf(fp)
	case err != nil:
		return err
	default:
		if v.Page, err = c.Service.SignIns(r.Context(), query); err != nil {
			return err
		}
	}
	if v.Page.Next > 0 {
		next := url.Values{}
		for k, vs := range q {
			next[k] = vs
		}
		next.Set("cursor", strconv.FormatInt(v.Page.Next, 10))
		v.NextURL = "/admin/signins?" + next.Encode()
	}
	c.render(w, r, who, status, "signins", view{Title: "Sign-in log", Section: "signins", Data: v})
	return nil
}

// filterProblem is a sign-in log filter the administrator must fix.
type filterProblem string

func (p filterProblem) Error() string { return string(p) }

// Kind makes a filterProblem the administrator's mistake to fix.
func (filterProblem) Kind() errkind.Kind { return errkind.Invalid }

// signInQuery reads the filters; a filterProblem names one to fix.
func (c *Console) signInQuery(r *http.Request, q url.Values) (store.SignInQuery, error) {
	sq := store.SignInQuery{App: strings.TrimSpace(q.Get("app")), Decision: q.Get("decision"),
		Policy: strings.TrimSpace(q.Get("policy")), Limit: signInPageSize,
		Database: strings.TrimSpace(q.Get("database")), StatementClass: q.Get("statement_class")}
	if c := sq.StatementClass; c != "" && !slices.Contains(policy.StatementClasses(), c) {
		return sq, filterProblem("The statement class must be one of " + strings.Join(policy.StatementClasses(), ", ") + ".")
	}
	if name := strings.TrimSpace(q.Get("user")); name != "" {
		u, err := c.Users.GetUserByName(r.Context(), strings.ToLower(name))
		if errors.Is(err, store.ErrNotFound) {
			return sq, filterProblem("There is no user named " + strconv.Quote(name) + ". Check the name on the users page.")
		}
		if err != nil {
			return sq, err
		}
		sq.UserID = u.ID
	}
	for _, f := range []struct {
		name string
		into *time.Time
	}{{"since", &sq.Since}, {"until", &sq.Until}} {
		if s := q.Get(f.name); s != "" {
			t, err := time.Parse(filterTime, s)
			if err != nil {
				return sq, filterProblem("The " + f.name + " filter must be a date and time like 2026-03-01T09:30 (UTC).")
			}
			*f.into = t
		}
	}
	if s := q.Get("cursor"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return sq, filterProblem("The page cursor is not valid; start again from the first page.")
		}
		sq.Before = n
	}
	return sq, nil
}

// signInView is the sign-in detail page's data.
type signInView struct {
	Entry admin.Entry
	// Why is the decision in a sentence or two.
	Why []string
	// Enforced and ReportOnly split the policy results.
	Enforced, ReportOnly []policy.PolicyResult
}

// signIn explains one entry of the log, policy by policy.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request, who *caller) error {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq <= 0 {
		return c.notFound(w, r, who)
	}
	e, err := c.Service.SignIn(r.Context(), seq)
	if err != nil {
		return err
	}
	v := signInView{Entry: e, Why: explainEntry(e)}
	for _, p := range e.Policies {
		if p.State == policy.StateReportOnly {
			v.ReportOnly = append(v.ReportOnly, p)
		} else {
			v.Enforced = append(v.Enforced, p)
		}
	}
	c.render(w, r, who, http.StatusOK, "signin", view{Title: "Sign-in " + strconv.FormatInt(seq, 10), Section: "signins", Data: v})
	return nil
}

// explainEntry says why the decision came out as it did: which policies
// blocked or asked for more, and which report-only ones would have.
func explainEntry(e admin.Entry) []string {
	var out []string
	for _, p := range e.Policies {
		switch {
		case p.Result == policy.ResultApplied && !p.Satisfied:
			out = append(out, "Policy "+p.Policy+" applied and was not satisfied: "+p.Reason.Sentence()+controlsText(p))
		case p.Result == policy.ResultReportOnlyUserActionRequired || p.Result == policy.ResultReportOnlyFailure:
			out = append(out, "Report-only policy "+p.Policy+" "+strings.TrimPrefix(resultText(p.Result), "report-only: ")+" ("+p.Reason.Sentence()+")")
		}
	}
	switch {
	case len(out) > 0:
	case e.Decision == "allow" && len(e.Policies) > 0:
		out = append(out, "Every policy that applied was satisfied.")
	case e.Decision == "allow":
		out = append(out, "No policy applied to this request.")
	case e.Reason != "":
		out = append(out, "The reason recorded: "+string(e.Reason)+".")
		if e.Reason.Known() {
			out = append(out, e.Reason.Sentence())
		}
	}
	return out
}

// controlsText lists an applied policy's unmet controls.
func controlsText(p policy.PolicyResult) string {
	var missing []string
	for _, ct := range p.Controls {
		if !ct.Satisfied {
			missing = append(missing, ct.String())
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return " It requires " + strings.Join(missing, " and ") + "."
}
