package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// view is what every console template sees.
type view struct {
	Title string
	// Section is the navigation entry to highlight.
	Section string
	User    *store.User
	CSRF    string
	// Back is this page, for its forms to return to.
	Back   string
	Change changeState
	Notice string
	Error  string
	// Env is the policy environment the page works on, when it is not
	// production: the forms carry it and the links keep it.
	Env string
	// Data is the page's own.
	Data any
	// Approver: the page is the approvals page, seen by someone who
	// may not be an administrator: no console navigation.
	Approver bool
}

// pageNames are the console's pages, each rendered in layout.html with
// the shared pieces of partials.html.
var pageNames = []string{"overview", "policies", "document", "whatif", "signins", "signin", "users", "user", "elevations", "approvals", "catalog", "deadends", "environments", "history", "review", "error", "refused"}

func parseTemplates() (map[string]*template.Template, error) {
	layout, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, err
	}
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes page name. It renders into a buffer first, so a template
// failure becomes a clean error page rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, who *caller, status int, name string, v view) {
	if who != nil {
		v.User, v.Change, v.Approver = &who.user, who.change, who.approver
		v.CSRF = c.Forms.CSRFToken(w, r)
		v.Back = backTo(r)
	}
	if env := r.FormValue("env"); env != admin.ProductionEnvironment {
		v.Env = env
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.Log.ErrorContext(r.Context(), "render console page", "page", name, "err", err)
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("Something went wrong on our side; the server log has the details.")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// notices are the messages a page shows after a change (?notice=...):
// fixed texts, so the query string cannot put words on the page.
var notices = map[string]string{
	"state":              "The policy's state was changed. Every node enforces it within seconds.",
	"saved":              "The document was saved. Every node enforces it within seconds.",
	"deleted":            "The document was deleted.",
	"promoted":           "The promotion was made: the environment's stored documents were replaced in one change. Every node enforces them within seconds.",
	"rolled-back":        "The earlier version was restored as a new version. Every node enforces it within seconds.",
	"revoked":            "Every session and token of the user was ended.",
	"mfa-reset":          "The user's sign-in methods were removed (the password stays) and their sessions ended.",
	"risk-confirmed":     "The user is confirmed compromised: user risk is high and their sessions ended.",
	"risk-dismissed":     "The user's risk was dismissed.",
	"disabled":           "The user was disabled and their sessions ended.",
	"enabled":            "The user was enabled.",
	"tap-revoked":        "The user's temporary access pass was revoked.",
	"elevation-approved": "Your approval was recorded. The role turns active once enough approvers have approved.",
	"elevation-denied":   "The request was denied; the requester is told.",
	"answered-approved":  "Your approval was recorded. The role turns active once enough approvers have approved.",
	"answered-denied":    "You denied the request; the requester is told.",
	"elevation-revoked":  "The elevation was ended. The role stops counting at once.",
	"assigned":           "The role assignment was made.",
	"unassigned":         "The role assignment was removed. Requests and elevations its holders no longer qualify for end within a second.",
}

// withNotice adds a notice to a console path.
func withNotice(path, notice string) string {
	u, err := url.Parse(path)
	if err != nil {
		return "/admin"
	}
	q := u.Query()
	q.Set("notice", notice)
	u.RawQuery = q.Encode()
	return u.String()
}

// envQuery is the query that keeps a page on the policy environment
// env ("" for production).
func envQuery(env string) string {
	if env == "" || env == admin.ProductionEnvironment {
		return ""
	}
	return "?env=" + url.QueryEscape(env)
}

// inEnvironment is path in the policy environment the request names.
func inEnvironment(r *http.Request, path string) string {
	return path + envQuery(r.FormValue("env"))
}

func noticeOf(r *http.Request) string { return notices[r.URL.Query().Get("notice")] }

var funcs = template.FuncMap{
	"fmtTime": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join":      strings.Join,
	"dur":       func(d time.Duration) string { return policy.Duration(d).String() },
	"pathEsc":   url.PathEscape,
	"sentence":  func(r policy.Reason) string { return r.Sentence() },
	"result":    resultText,
	"pct":       func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
	"outcome":   outcomeClass,
	"describe":  describeRequirement,
	"source":    sourceText,
	"short":     func(source string, line int) string { return sourceText(filepath.Base(source), line) },
	"problemAt": problemAt,
	"dict":      dict,
	"envq":      envQuery,
	"latency": func(us int64) string {
		return (time.Duration(us) * time.Microsecond).Round(100 * time.Microsecond).String()
	},
}

// dict builds a map from key, value pairs, to hand a partial template
// several values.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict needs key, value pairs")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// resultText says what a policy result means.
func resultText(r policy.Result) string {
	switch r {
	case policy.ResultApplied:
		return "applied"
	case policy.ResultNotApplied:
		return "did not apply"
	case policy.ResultReportOnlySuccess:
		return "report-only: would have allowed"
	case policy.ResultReportOnlyFailure:
		return "report-only: would have blocked"
	case policy.ResultReportOnlyUserActionRequired:
		return "report-only: would have challenged"
	case policy.ResultReportOnlyNotApplied:
		return "report-only: would not have applied"
	}
	return string(r)
}

// outcomeClass is the badge style of a decision or attempt.
func outcomeClass(decision string) string {
	switch decision {
	case "allow", "success", "proven", "approved", "activated":
		return "ok"
	case "challenge", "requested":
		return "warn"
	case "block", "failure", "throttled", "denied":
		return "bad"
	}
	return "muted"
}

// describeRequirement writes "strength phishing-resistant within 1h or
// mfa".
func describeRequirement(r policy.Requirement) string {
	alts := make([]string, len(r.AnyOf))
	for i, n := range r.AnyOf {
		alts[i] = n.String()
	}
	return strings.Join(alts, " or ")
}

// sourceText writes where a policy is defined: file:line or the stored
// document.
func sourceText(source string, line int) string {
	if strings.HasPrefix(source, admin.StoreSource) {
		return "stored document " + strings.TrimPrefix(source, admin.StoreSource)
	}
	if line > 0 {
		return fmt.Sprintf("%s:%d", source, line)
	}
	return source
}

// problemAt writes where a problem is: "line 7" in the document being
// edited, file:line elsewhere.
func problemAt(p policy.Problem, editing string) string {
	switch {
	case p.File == editing && p.Line > 0:
		return fmt.Sprintf("line %d", p.Line)
	case p.File == editing:
		return "the document"
	case p.File == "":
		return "the policy set"
	}
	return sourceText(p.File, p.Line)
}
