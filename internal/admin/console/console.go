// Package console is the admin console at /admin: server-rendered pages
// over the admin service (overview charts, policies and their editor
// with the impact replay, What-If, the sign-in log, users, elevation
// requests and role assignments, and the catalog), with a little
// hand-written JavaScript and no front-end build.
//
// The console is an app like any other: every request is decided by the
// live policies for admin.ConsoleApp, and every change additionally by a
// built-in policy that asks for a recent passkey proof. Only users with
// the admin.Role role get past the door; everyone else gets the same 403
// on every route, so the console's shape is not disclosed either.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SessionLoader finds the browser's Stepgate session.
type SessionLoader interface {
	Load(ctx context.Context, r *http.Request) (store.Session, error)
}

// UserStore reads users.
type UserStore interface {
	GetUser(ctx context.Context, id string) (store.User, error)
	GetUserByName(ctx context.Context, username string) (store.User, error)
}

// Forms puts CSRF tokens in forms and checks them: the sign-in pages'
// signed double-submit token, so one cookie protects every form.
type Forms interface {
	CSRFToken(w http.ResponseWriter, r *http.Request) string
	CheckCSRF(r *http.Request) bool
}

// Deps is what the console works with.
type Deps struct {
	Service  *admin.Service
	Sessions SessionLoader
	Users    UserStore
	// Access describes a browser request for the policy engine.
	Access func(r *http.Request, u store.User, s *store.Session, app string, now time.Time) *policy.Request
	// WhatIf resolves a What-If description (the API's and the CLI's).
	// For a user it also returns their roles, active and eligible apart.
	WhatIf func(ctx context.Context, w *policy.WhatIf, now time.Time) (*policy.Request, *access.WhatIfRoles, error)
	// Policies are the live policies.
	Policies *policy.Engine
	// Methods are the sign-in methods u has, in prompt order.
	Methods func(r *http.Request, u store.User) ([]string, error)
	// Passkeys says whether this server offers passkeys at all (they need
	// a host name as relying party id): without them no change can pass
	// the built-in rule, and the console says why.
	Passkeys bool
	Forms    Forms
	Log      *slog.Logger
	Now      func() time.Time
}

// Console serves the admin console.
type Console struct {
	Deps
	// changeRule is the built-in policy every change must also satisfy.
	changeRule *policy.Snapshot
	pages      map[string]*template.Template
}

// New parses the templates and compiles the built-in change rule.
func New(d Deps) (*Console, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	rule, err := compileChangeRule()
	if err != nil {
		return nil, err
	}
	c := &Console{Deps: d, changeRule: rule}
	if c.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	return c, nil
}

// route is one console page or form target.
type route struct {
	method, path string
	page         pageFunc
	// keep, when set, shows the submitted form again when a change is
	// refused for want of a recent passkey, so nothing typed is lost.
	keep pageFunc
}

// pageFunc serves one console request for the admitted caller.
type pageFunc func(w http.ResponseWriter, r *http.Request, who *caller) error

// routes is the one table Mount registers and Routes reports, so a test
// walking Routes covers every route there is.
func (c *Console) routes() []route {
	return []route{
		{method: "GET", path: "/admin", page: c.overview},
		{method: "GET", path: "/admin/policies", page: c.policies},
		{method: "GET", path: "/admin/policies/deadends", page: c.deadEnds},
		{method: "POST", path: "/admin/policies/{name}/state", page: c.setState},
		{method: "GET", path: "/admin/documents/new", page: c.newDocument},
		{method: "GET", path: "/admin/documents/{name}", page: c.editDocument},
		{method: "POST", path: "/admin/documents", page: c.submitDocument, keep: c.keepDocument},
		{method: "POST", path: "/admin/documents/{name}/delete", page: c.deleteDocument},
		{method: "GET", path: "/admin/environments", page: c.environments},
		{method: "GET", path: "/admin/environments/promote", page: c.choosePromotion},
		{method: "GET", path: "/admin/environments/{env}/history", page: c.history},
		{method: "GET", path: "/admin/environments/{env}/promote", page: c.reviewPromotion},
		{method: "POST", path: "/admin/environments/{env}/promote", page: c.promote, keep: c.keepPromotion},
		{method: "GET", path: "/admin/environments/{env}/rollback", page: c.reviewRollback},
		{method: "POST", path: "/admin/environments/{env}/rollback", page: c.rollBack, keep: c.keepRollback},
		{method: "GET", path: "/admin/whatif", page: c.whatIf},
		{method: "GET", path: "/admin/signins", page: c.signIns},
		{method: "GET", path: "/admin/signins/{seq}", page: c.signIn},
		{method: "GET", path: "/admin/users", page: c.users},
		{method: "GET", path: "/admin/users/{name}", page: c.user},
		{method: "POST", path: "/admin/users/{name}/revoke", page: c.revokeSessions},
		{method: "POST", path: "/admin/users/{name}/reset-mfa", page: c.resetMFA},
		{method: "POST", path: "/admin/users/{name}/risk", page: c.setRisk},
		{method: "POST", path: "/admin/users/{name}/disabled", page: c.setDisabled},
		{method: "POST", path: "/admin/users/{name}/tap", page: c.issuePass},
		{method: "POST", path: "/admin/users/{name}/tap-revoke", page: c.revokePass},
		{method: "GET", path: "/admin/elevations", page: c.elevations},
		{method: "POST", path: "/admin/elevations/{id}/decide", page: c.decide},
		{method: "POST", path: "/admin/elevations/{id}/revoke", page: c.revokeElevation},
		{method: "POST", path: "/admin/role-assignments", page: c.assign},
		{method: "POST", path: "/admin/role-assignments/{id}/delete", page: c.unassign},
		{method: "GET", path: "/admin/catalog", page: c.catalog},
		{method: "GET", path: "/admin/static/{file}", page: c.static},
		// Anything else under /admin, and other methods on the routes
		// above, pass the same door before they learn it does not exist.
		{path: "/admin", page: c.notFound},
		{path: "/admin/", page: c.notFound},
	}
}

// Route is a console route: its method ("" for any) and path pattern.
type Route struct{ Method, Path string }

// Routes lists every route Mount registers.
func Routes() []Route {
	var out []Route
	for _, rt := range (*Console)(nil).routes() {
		out = append(out, Route{Method: rt.method, Path: rt.path})
	}
	return out
}

// approvalRoutes are the approvals door's: the page where approvers who
// are not administrators answer elevation requests. They pass every check
// a console change passes but the administrator's role.
func (c *Console) approvalRoutes() []route {
	return []route{
		{method: "GET", path: approvalsPath, page: c.approvals},
		{method: "POST", path: approvalsPath + "/{id}/decide", page: c.approverDecide},
	}
}

// ApprovalRoutes lists the approvals door's routes.
func ApprovalRoutes() []Route {
	var out []Route
	for _, rt := range (*Console)(nil).approvalRoutes() {
		out = append(out, Route{Method: rt.method, Path: rt.path})
	}
	return out
}

// Mount registers the console and the approvals page on mux.
func (c *Console) Mount(mux *http.ServeMux) {
	for _, rt := range c.routes() {
		mux.Handle(rt.pattern(), c.serve(rt, c.admit))
	}
	for _, rt := range c.approvalRoutes() {
		mux.Handle(rt.pattern(), c.serve(rt, c.admitApprover))
	}
}

func (rt route) pattern() string {
	if rt.method == "" {
		return rt.path
	}
	return rt.method + " " + rt.path
}

// serve runs every check of a console request, in order, before the
// page: the door (signed in, and an administrator but on the approvals
// page), the form's CSRF token, the live policies for the console, and
// for a change the built-in rule.
func (c *Console) serve(rt route, door func(*http.Request) (*caller, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		who, err := door(r)
		if err == nil && r.Method == http.MethodPost {
			err = c.checkForm(w, r)
		}
		if err == nil {
			err = c.enforceLive(r, who)
		}
		if err == nil {
			err = c.checkEnvironment(r)
		}
		if err == nil {
			who.change = c.changeState(r, who)
			err = c.dispatch(w, r, rt, who)
		}
		if err != nil {
			c.fail(w, r, who, err)
		}
	})
}

// dispatch refuses a change the built-in rule does not allow, keeping
// the form when the route can, and otherwise serves the page.
func (c *Console) dispatch(w http.ResponseWriter, r *http.Request, rt route, who *caller) error {
	if r.Method != http.MethodPost || who.change.Allowed {
		return rt.page(w, r, who)
	}
	if rt.keep != nil {
		return rt.keep(w, r, who)
	}
	return errChangeRefused
}

// checkEnvironment refuses a request naming a policy environment (env,
// in the query or the form) that is not configured, before any page
// acts on it: no page can fall back to another environment's policies.
//
// Attack: env named twice (in the query and the form, or twice in
// either) is read by each reader its own way (Go takes the form's
// first, other servers and filters in front the last): a proxy rule
// that guards production by env saw staging while the change landed in
// production. A request naming it more than once is refused.
func (c *Console) checkEnvironment(r *http.Request) error {
	if r.FormValue("env"); len(r.Form["env"]) > 1 {
		return &pageError{status: http.StatusBadRequest, msg: "The request names the policy environment (env) more than once. Open the page from the console's own links and try again."}
	}
	if _, err := c.Service.In(r.FormValue("env")); err != nil {
		return &pageError{status: http.StatusNotFound, msg: adminError(err).Message + "."}
	}
	return nil
}

// in is the service working on the policy environment the request
// names (production when it names none); checkEnvironment has refused
// one that is not configured.
func (c *Console) in(r *http.Request) *admin.Service {
	svc, err := c.Service.In(r.FormValue("env"))
	if err != nil {
		panic("console: an unchecked policy environment reached a page: " + err.Error())
	}
	return svc
}

func (c *Console) notFound(http.ResponseWriter, *http.Request, *caller) error {
	return &pageError{status: http.StatusNotFound, msg: "There is no such console page."}
}

// staticFiles are the console's own static files and their types; only
// these names are served.
var staticFiles = map[string]string{
	"console.css": "text/css; charset=utf-8",
	"console.js":  "text/javascript; charset=utf-8",
}

func (c *Console) static(w http.ResponseWriter, r *http.Request, _ *caller) error {
	for name, typ := range staticFiles {
		if name != r.PathValue("file") {
			continue
		}
		b, err := staticFS.ReadFile("static/" + name)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", typ)
		_, _ = w.Write(b)
		return nil
	}
	return c.notFound(w, r, nil)
}

// pageError is a refusal with a status and a message safe to show.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

// redirect sends the browser elsewhere (303), as an error so that every
// check can end the request the same way.
type redirect string

func (r redirect) Error() string { return "redirect to " + string(r) }

// errChangeRefused: the built-in change rule wants a recent passkey.
var errChangeRefused = errkind.New(errkind.Forbidden, "change refused: no recent passkey proof")

// errDenied is the one answer every console route gives to a signed-in
// user who is not an administrator.
var errDenied = &pageError{status: http.StatusForbidden,
	msg: "The Stepgate console is for administrators. If you need it, ask one to give you the " + admin.Role + " role."}

// fail is where errors become responses, and only here.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, who *caller, err error) {
	var (
		to redirect
		pe *pageError
		ae *admin.Error
	)
	switch {
	case errors.As(err, &to):
		http.Redirect(w, r, string(to), http.StatusSeeOther)
	case errors.Is(err, errChangeRefused):
		c.render(w, r, who, httpx.StatusOf(err), "refused", view{Title: "Changes need a passkey"})
	case errors.As(err, &pe):
		c.errorPage(w, r, who, pe.status, pe.msg)
	case errors.As(err, &ae):
		c.errorPage(w, r, who, httpx.StatusOf(ae), ae.Error())
	default:
		f := httpx.Fail(r.Context(), c.Log, "console request failed", err, "path", r.URL.Path)
		c.errorPage(w, r, who, f.Status, f.Message)
	}
}

// errorPage shows msg: in the console's frame to an administrator, bare
// to anyone else.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, who *caller, status int, msg string) {
	c.render(w, r, who, status, "error", view{Title: http.StatusText(status), Error: msg})
}
