package console

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// exampleDocument prefills a new document: a working starting point
// that explains the format and the safe way to roll a policy out.
const exampleDocument = `# A policy document, in the same format as a policy file
# (see docs/policy.md). Documents kept here are enforced by every node.
#
# Start a new policy in report-only: it is evaluated and logged but never
# changes a decision. Watch what it would do on the overview, check the
# impact of enabling it (set state: enabled and press "Show impact"),
# then switch it to enabled on the policies page.
policies:
  - name: require-mfa-example
    description: Everyone proves a second factor for every app.
    state: report-only
    users:
      include: {users: [all]}
      # exclude: {groups: [breakglass]}   # keep a way in
    target:
      apps: {include: [all]}              # or the client ids of some apps
    grant:
      controls: [mfa]
`

// impactDays are the impact replay's choices.
var impactDays = []int{1, 7, 30, 90}

// documentView is the editor's data.
type documentView struct {
	Name    string
	YAML    string
	Version int64
	// New documents get a name field; stored ones keep theirs.
	New bool
	// Stored is the document as stored, for its history line.
	Stored   *admin.Document
	Days     int
	DayOpts  []int
	Problems []policy.Problem
	// Lines is the text numbered, with its problems, when there are any.
	Lines []numberedLine
	// Checked: the set compiles with this document.
	Checked bool
	Impact  *admin.Impact
	// Failed are the scenario tests the change fails; the editor then
	// offers to save anyway with a reason.
	Failed []string
	// DeleteFailed: the failures are those of deleting the document, so
	// the override goes with the delete form.
	DeleteFailed bool
	// Conflict is the version someone else saved meanwhile.
	Conflict *admin.Document
	Source   string
}

type numberedLine struct {
	N        int
	Text     string
	Problems []string
}

func (c *Console) newDocument(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showDocument(w, r, who, http.StatusOK, documentView{YAML: exampleDocument, New: true}, "")
}

func (c *Console) editDocument(w http.ResponseWriter, r *http.Request, who *caller) error {
	doc, err := c.in(r).Documents.Get(r.Context(), r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		return &pageError{status: httpx.StatusOf(err), msg: "There is no stored policy document named " + strconv.Quote(r.PathValue("name")) + ". Policies from policy files are read-only here; change them in their file."}
	}
	if err != nil {
		return err
	}
	return c.showDocument(w, r, who, http.StatusOK, documentView{Name: doc.Name, YAML: doc.YAML, Version: doc.Version, Stored: &doc}, "")
}

// showDocument renders the editor.
func (c *Console) showDocument(w http.ResponseWriter, r *http.Request, who *caller, status int, v documentView, problem string) error {
	if v.Days == 0 {
		v.Days = 7
	}
	v.DayOpts, v.Source = impactDays, admin.StoreSource+v.Name
	if len(v.Problems) > 0 {
		v.Lines = numberLines(v.YAML, v.Source, v.Problems)
	}
	title := "New policy document"
	if !v.New {
		title = "Policy document " + v.Name
	}
	c.render(w, r, who, status, "document", view{Title: title, Section: "policies", Notice: noticeOf(r), Error: problem, Data: v})
	return nil
}

// posted reads the editor's form.
func posted(r *http.Request) documentView {
	v := documentView{Name: strings.TrimSpace(r.PostFormValue("name")), YAML: r.PostFormValue("yaml")}
	v.Version, _ = strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	v.New = v.Version == 0
	v.Days, _ = strconv.Atoi(r.PostFormValue("days"))
	if !slices.Contains(impactDays, v.Days) {
		v.Days = 7
	}
	return v
}

func (v documentView) doc() admin.Document {
	return admin.Document{Name: v.Name, YAML: v.YAML, Version: v.Version}
}

// submitDocument validates the document, shows the impact of saving it,
// or saves it, by the button pressed.
func (c *Console) submitDocument(w http.ResponseWriter, r *http.Request, who *caller) error {
	v := posted(r)
	ctx := r.Context()
	switch r.PostFormValue("action") {
	case "validate":
		err := c.in(r).Validate(ctx, admin.Candidate{Doc: v.doc()})
		v.Checked = err == nil
		return c.documentResult(w, r, who, v, err)
	case "impact":
		imp, err := c.in(r).Impact(ctx, admin.Candidate{Doc: v.doc()}, v.Days)
		if err == nil {
			v.Impact, v.Checked = &imp, true
		}
		return c.documentResult(w, r, who, v, err)
	case "save":
		saved, err := c.in(r).Save(ctx, who.actor(), r.PostFormValue("reason"), v.doc(), r.PostFormValue("override_tests"))
		if err != nil {
			return c.documentResult(w, r, who, v, err)
		}
		return redirect(withNotice(inEnvironment(r, "/admin/documents/"+saved.Name), "saved"))
	}
	return &pageError{status: http.StatusBadRequest, msg: "Use the Validate, Show impact or Save button of the editor."}
}

// documentResult shows the editor again with the outcome of an action:
// problems inline, a conflict explained, or the result. What the
// administrator typed is always kept.
func (c *Console) documentResult(w http.ResponseWriter, r *http.Request, who *caller, v documentView, err error) error {
	ae := adminError(err)
	if err != nil && ae == nil {
		return err
	}
	status := http.StatusOK
	msg := ""
	if ae != nil {
		status, msg = httpx.StatusOf(ae), ae.Message
		v.Problems, v.Failed = ae.Problems, ae.Scenarios
		if ae.Kind == admin.Conflict {
			msg = c.conflict(r, &v)
		}
	}
	if !v.New && v.Conflict == nil {
		if stored, err := c.in(r).Documents.Get(r.Context(), v.Name); err == nil {
			v.Stored = &stored
		}
	}
	return c.showDocument(w, r, who, status, v, msg)
}

// conflict explains a version conflict and offers the other version: the
// form now carries its version, so saving again replaces it on purpose.
func (c *Console) conflict(r *http.Request, v *documentView) string {
	cur, err := c.in(r).Documents.Get(r.Context(), v.Name)
	if err != nil {
		return "Someone else changed or deleted this document since you opened it. Your text is kept below; reload the document to see theirs."
	}
	v.Conflict, v.Version, v.New = &cur, cur.Version, false
	return "Someone else saved this document since you opened it (" + cur.UpdatedBy + ", version " + strconv.FormatInt(cur.Version, 10) +
		"). Your text is kept below and their version is shown under it. Merge what you need; saving now replaces their version."
}

// keepDocument is the editor's answer when the change rule refuses a
// post: the text comes back with the refusal, nothing is lost.
func (c *Console) keepDocument(w http.ResponseWriter, r *http.Request, who *caller) error {
	return c.showDocument(w, r, who, http.StatusForbidden, posted(r),
		"Changes need a passkey used within the last hour, so nothing was done. Your text is kept below; confirm with your passkey (the button above), then submit again.")
}

// deleteDocument removes a stored document.
func (c *Console) deleteDocument(w http.ResponseWriter, r *http.Request, who *caller) error {
	name := r.PathValue("name")
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if r.PostFormValue("confirm") != "yes" {
		return c.afterDeleteRefused(w, r, who, name, "Tick the box to confirm the deletion; nothing was deleted.", nil)
	}
	err := c.in(r).Delete(r.Context(), who.actor(), r.PostFormValue("reason"), name, version, r.PostFormValue("override_tests"))
	if ae := adminError(err); ae != nil {
		switch ae.Kind {
		case admin.Conflict:
			return c.afterDeleteRefused(w, r, who, name, "Someone else saved this document since you opened it, so it was not deleted. Review their version below and delete again if you still mean to.", nil)
		case admin.TestsFailed:
			return c.afterDeleteRefused(w, r, who, name, ae.Message, ae.Scenarios)
		}
		return c.afterDeleteRefused(w, r, who, name, ae.Error(), nil)
	}
	if err != nil {
		return err
	}
	return redirect(withNotice(inEnvironment(r, "/admin/policies"), "deleted"))
}

// afterDeleteRefused shows the document again with why it was not
// deleted; failed are the scenario tests deleting it would fail, which
// the delete form then offers to override.
func (c *Console) afterDeleteRefused(w http.ResponseWriter, r *http.Request, who *caller, name, msg string, failed []string) error {
	doc, err := c.in(r).Documents.Get(r.Context(), name)
	if err != nil {
		return c.notFound(w, r, who)
	}
	return c.showDocument(w, r, who, http.StatusConflict, documentView{Name: doc.Name, YAML: doc.YAML, Version: doc.Version, Stored: &doc,
		Failed: failed, DeleteFailed: failed != nil}, msg)
}

// numberLines numbers the text and hangs each problem of the document on
// its line.
func numberLines(text, source string, probs []policy.Problem) []numberedLine {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	out := make([]numberedLine, len(lines))
	for i, l := range lines {
		out[i] = numberedLine{N: i + 1, Text: l}
	}
	for _, p := range probs {
		if p.File == source && p.Line >= 1 && p.Line <= len(out) {
			msg := p.Message
			if p.Path != "" {
				msg = p.Path + ": " + msg
			}
			out[p.Line-1].Problems = append(out[p.Line-1].Problems, msg)
		}
	}
	return out
}

func adminError(err error) *admin.Error {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}
