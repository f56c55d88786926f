package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
)

// route is one API endpoint. Routes are a table so the router, the
// access rule, the OpenAPI document's test and the test that walks every
// route with a non-admin identity all read the same list.
type route struct {
	Method, Pattern string
	// Change marks an endpoint that changes something: it needs an
	// identity the audit trail can name (the API token or an admin
	// client), never just a request from this machine.
	Change bool
	// admin marks an endpoint of the admin service.
	admin   bool
	handler func(*API, http.ResponseWriter, *http.Request) error
}

// Routes lists the API's endpoints as METHOD PATTERN, for tests and the
// documentation.
func Routes() []string {
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.Method + " " + rt.Pattern
	}
	return out
}

var routes = []route{
	{Method: "GET", Pattern: "/api/v1/openapi.json", handler: (*API).openAPI},
	{Method: "POST", Pattern: "/api/v1/whatif", handler: (*API).whatIf},
	{Method: "GET", Pattern: "/api/v1/signins", handler: (*API).signIns},
	{admin: true, Method: "GET", Pattern: "/api/v1/signins/{seq}", handler: (*API).signIn},
	{admin: true, Method: "GET", Pattern: "/api/v1/overview", handler: (*API).overview},
	{admin: true, Method: "GET", Pattern: "/api/v1/policies", handler: (*API).policies},
	{admin: true, Method: "GET", Pattern: "/api/v1/policies/{name}", handler: (*API).policy},
	{admin: true, Method: "POST", Pattern: "/api/v1/policies/{name}/state", Change: true, handler: (*API).setState},
	{admin: true, Method: "GET", Pattern: "/api/v1/policy-documents", handler: (*API).documents},
	{admin: true, Method: "GET", Pattern: "/api/v1/policy-documents/{name}", handler: (*API).document},
	{admin: true, Method: "PUT", Pattern: "/api/v1/policy-documents/{name}", Change: true, handler: (*API).putDocument},
	{admin: true, Method: "DELETE", Pattern: "/api/v1/policy-documents/{name}", Change: true, handler: (*API).deleteDocument},
	{admin: true, Method: "POST", Pattern: "/api/v1/policy-documents/{name}/validate", handler: (*API).validateDocument},
	{admin: true, Method: "POST", Pattern: "/api/v1/policy-documents/{name}/impact", handler: (*API).impact},
	{admin: true, Method: "GET", Pattern: "/api/v1/policy-export", handler: (*API).export},
	{admin: true, Method: "GET", Pattern: "/api/v1/policy-environments", handler: (*API).environments},
	{admin: true, Method: "GET", Pattern: "/api/v1/policy-environments/{env}/history", handler: (*API).history},
	{admin: true, Method: "POST", Pattern: "/api/v1/policy-environments/{env}/promotion/review", handler: (*API).reviewPromotion},
	{admin: true, Method: "POST", Pattern: "/api/v1/policy-environments/{env}/promotion", Change: true, handler: (*API).promote},
	{admin: true, Method: "POST", Pattern: "/api/v1/policy-environments/{env}/rollback/review", handler: (*API).reviewRollback},
	{admin: true, Method: "POST", Pattern: "/api/v1/policy-environments/{env}/rollback", Change: true, handler: (*API).rollback},
	{admin: true, Method: "GET", Pattern: "/api/v1/users", handler: (*API).users},
	{admin: true, Method: "GET", Pattern: "/api/v1/users/{name}", handler: (*API).user},
	{admin: true, Method: "POST", Pattern: "/api/v1/users/{name}/revoke", Change: true, handler: (*API).revokeUser},
	{admin: true, Method: "POST", Pattern: "/api/v1/users/{name}/reset-mfa", Change: true, handler: (*API).resetMFA},
	{admin: true, Method: "POST", Pattern: "/api/v1/users/{name}/risk", Change: true, handler: (*API).setRisk},
	{admin: true, Method: "POST", Pattern: "/api/v1/users/{name}/disabled", Change: true, handler: (*API).setDisabled},
	{admin: true, Method: "GET", Pattern: "/api/v1/users/{name}/temporary-access-pass", handler: (*API).pass},
	{admin: true, Method: "POST", Pattern: "/api/v1/users/{name}/temporary-access-pass", Change: true, handler: (*API).issuePass},
	{admin: true, Method: "DELETE", Pattern: "/api/v1/users/{name}/temporary-access-pass", Change: true, handler: (*API).revokePass},
	{Method: "POST", Pattern: "/api/v1/risk/detections", Change: true, handler: (*API).reportDetection},
	{admin: true, Method: "GET", Pattern: "/api/v1/role-assignments", handler: (*API).assignments},
	{admin: true, Method: "POST", Pattern: "/api/v1/role-assignments", Change: true, handler: (*API).assign},
	{admin: true, Method: "DELETE", Pattern: "/api/v1/role-assignments/{id}", Change: true, handler: (*API).unassign},
	{admin: true, Method: "GET", Pattern: "/api/v1/elevations", handler: (*API).elevations},
	{admin: true, Method: "GET", Pattern: "/api/v1/elevations/{id}", handler: (*API).elevation},
	{admin: true, Method: "POST", Pattern: "/api/v1/elevations/{id}/approve", Change: true, handler: (*API).approve},
	{admin: true, Method: "POST", Pattern: "/api/v1/elevations/{id}/deny", Change: true, handler: (*API).deny},
	{admin: true, Method: "POST", Pattern: "/api/v1/elevations/{id}/revoke", Change: true, handler: (*API).revokeElevation},
	{Method: "GET", Pattern: databasePattern, handler: (*API).database},
}

// principalKey carries who is calling to the handlers.
type principalKey struct{}

// principal is an authorized caller.
type principal struct {
	actor admin.Actor
	// accountable is false for an anonymous request from this machine:
	// it may read, but a change needs an identity the audit trail names.
	accountable bool
	// database is set for a person admitted with a database's token
	// (databaseCaller): they may read that database's connection
	// information and nothing else.
	database string
}

func actorOf(r *http.Request) admin.Actor {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p.actor
}

// endpoint adapts a route: the change rule, then the handler.
func (a *API) endpoint(rt route) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		p, _ := r.Context().Value(principalKey{}).(principal)
		if p.database != "" && rt.Pattern != databasePattern {
			return &Error{Status: http.StatusForbidden, Code: "access_denied", Description: "a database's access token opens only its connection information", Debug: errDatabaseOnly}
		}
		if rt.Change && !p.accountable {
			return &Error{Status: http.StatusForbidden, Code: "access_denied",
				Description: "changes need an identity for the audit trail: send Authorization: Bearer with api.token, or an access token of a client with the " + adminScope + " scope"}
		}
		if rt.Method == http.MethodPost || rt.Method == http.MethodPut {
			if err := requireJSON(r); err != nil {
				return err
			}
		}
		if rt.admin && a.deps.Admin == nil {
			return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "the admin API is not enabled on this server"}
		}
		return rt.handler(a, w, r)
	})
}

// adminErr maps the service's refusals to API errors.
func adminErr(err error) error {
	var e *admin.Error
	if !errors.As(err, &e) {
		return err
	}
	out := &Error{Code: "invalid_request", Description: e.Message, Problems: e.Problems, Status: httpx.StatusOf(e)}
	switch e.Kind {
	case admin.NotFound:
		out.Code = "not_found"
	case admin.Conflict:
		out.Code = "conflict"
	case admin.ReadOnly:
		out.Code = "read_only"
	case admin.Forbidden:
		out.Code = "access_denied"
	case admin.Throttled:
		out.Code = "temporarily_unavailable"
	}
	return out
}

func (a *API) svc() *admin.Service { return a.deps.Admin }

// policySvc is the service working on the policy environment the
// request names with ?env= (production when it names none). params are
// the other query parameters the endpoint reads.
//
// Attack: a change meant for staging landing in production. A query the
// endpoint would not read whole (?Env=staging, ?environment=staging,
// env twice, or a pair that url.ParseQuery drops, as in ?x=1;env=staging
// which other servers split at the semicolon) used to fall back to
// production without a word. Only a query read exactly one way is
// served: one env at most, and no parameter the endpoint does not take.
func (a *API) policySvc(r *http.Request, params ...string) (*admin.Service, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badParam("query", "cannot be read one way only ("+err.Error()+"); separate parameters with & and percent-encode the rest")
	}
	for name := range q {
		if name != "env" && !slices.Contains(params, name) {
			return nil, badParam(strconv.Quote(name), "is not a parameter of this endpoint; name the policy environment with env, like ?env=staging")
		}
	}
	if len(q["env"]) > 1 {
		return nil, badParam("env", "is given more than once; name one policy environment")
	}
	svc, err := a.svc().In(q.Get("env"))
	if err != nil {
		return nil, adminErr(err)
	}
	return svc, nil
}

func (a *API) signIn(w http.ResponseWriter, r *http.Request) error {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq <= 0 {
		return badParam("seq", "must be the seq of a sign-in log entry, a positive whole number")
	}
	e, err := a.svc().SignIn(r.Context(), seq)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (a *API) overview(w http.ResponseWriter, r *http.Request) error {
	period := 24 * time.Hour
	if p := r.URL.Query().Get("period"); p != "" {
		d, err := strength.ParseDuration(p)
		if err != nil {
			return badParam("period", "must be a duration like 24h, 7d or 30d")
		}
		period = d
	}
	o, err := a.svc().Overview(r.Context(), period)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, struct {
		admin.Overview
		CompletionRate float64 `json:"completion_rate"`
	}{o, o.CompletionRate()})
	return nil
}

func (a *API) policies(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	ps, err := svc.Policies(r.Context())
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"policies": nonNil(ps)})
	return nil
}

func (a *API) policy(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	p, err := svc.Policy(r.Context(), r.PathValue("name"))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// change is the body of a change: the reason for the audit trail.
type change struct {
	Reason string `json:"reason"`
}

type stateChange struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	// OverrideTests is the reason to switch although scenario tests fail.
	OverrideTests string `json:"override_tests,omitempty"`
}

func (a *API) setState(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	var in stateChange
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	doc, err := svc.SetState(r.Context(), actorOf(r), in.Reason, r.PathValue("name"), in.State, in.OverrideTests)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

func (a *API) documents(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	docs, err := svc.Documents.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"documents": nonNil(docs)})
	return nil
}

func (a *API) document(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	doc, err := svc.Documents.Get(r.Context(), r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Status: httpx.StatusOf(err), Code: "not_found", Description: "no stored policy document named " + strconv.Quote(r.PathValue("name"))}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// documentBody is a document as PUT, validate and impact take it.
type documentBody struct {
	YAML string `json:"yaml"`
	// Version is the version read (0 to create); a stale one is a
	// conflict.
	Version int64  `json:"version"`
	Reason  string `json:"reason,omitempty"`
	// OverrideTests is the reason to save although scenario tests fail.
	OverrideTests string `json:"override_tests,omitempty"`
	// Delete asks for the impact of deleting the document (impact only).
	Delete bool `json:"delete,omitempty"`
	// Days of the sign-in log to replay (impact only; default 7).
	Days int `json:"days,omitempty"`
}

func (a *API) readDocument(w http.ResponseWriter, r *http.Request) (documentBody, admin.Document, error) {
	var in documentBody
	if err := decodeJSON(w, r, &in); err != nil {
		return in, admin.Document{}, err
	}
	return in, admin.Document{Name: r.PathValue("name"), YAML: in.YAML, Version: in.Version}, nil
}

func (a *API) putDocument(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	in, doc, err := a.readDocument(w, r)
	if err != nil {
		return err
	}
	saved, err := svc.Save(r.Context(), actorOf(r), in.Reason, doc, in.OverrideTests)
	if err != nil {
		return adminErr(err)
	}
	status := http.StatusOK
	if in.Version == 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, saved)
	return nil
}

// deleteDocument takes the version read and the reason as query
// parameters: a DELETE has no body.
func (a *API) deleteDocument(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r, "version", "reason", "override_tests")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	version, err := strconv.ParseInt(q.Get("version"), 10, 64)
	if err != nil || version <= 0 {
		return badParam("version", "must be the version of the document you read (GET it first), so a change made since is not lost")
	}
	if err := svc.Delete(r.Context(), actorOf(r), q.Get("reason"), r.PathValue("name"), version, q.Get("override_tests")); err != nil {
		return adminErr(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) validateDocument(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	_, doc, err := a.readDocument(w, r)
	if err != nil {
		return err
	}
	if err := svc.Validate(r.Context(), admin.Candidate{Doc: doc}); err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true})
	return nil
}

func (a *API) impact(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	in, doc, err := a.readDocument(w, r)
	if err != nil {
		return err
	}
	if in.Days == 0 {
		in.Days = 7
	}
	imp, err := svc.Impact(r.Context(), admin.Candidate{Doc: doc, Delete: in.Delete}, in.Days)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, imp)
	return nil
}

func (a *API) export(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.policySvc(r)
	if err != nil {
		return err
	}
	b, err := svc.Export(r.Context())
	if err != nil {
		return adminErr(err)
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	// The export is policy YAML served as application/yaml, which no
	// browser renders as a page; ?env= only chooses which set is written.
	_, _ = w.Write(b) //nolint:gosec // G705: not HTML, see above

	return nil
}

func (a *API) users(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Query()
	limit := 0
	if v := p.Get("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > admin.MaxUserPage {
			return badParam("limit", "must be a whole number from 1 to "+strconv.Itoa(admin.MaxUserPage))
		}
	}
	page, err := a.svc().Users(r.Context(), p.Get("q"), p.Get("cursor"), limit)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (a *API) user(w http.ResponseWriter, r *http.Request) error {
	u, err := a.svc().User(r.Context(), r.PathValue("name"))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (a *API) revokeUser(w http.ResponseWriter, r *http.Request) error {
	return a.userChange(w, r, func(ctx context.Context, reason, name string) (any, error) {
		return map[string]bool{"revoked": true}, a.svc().RevokeSessions(ctx, actorOf(r), reason, name)
	})
}

func (a *API) resetMFA(w http.ResponseWriter, r *http.Request) error {
	return a.userChange(w, r, func(ctx context.Context, reason, name string) (any, error) {
		n, err := a.svc().ResetMFA(ctx, actorOf(r), reason, name)
		return map[string]int{"methods_removed": n}, err
	})
}

func (a *API) setRisk(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Action string `json:"action"`
		Reason string `json:"reason"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Action != "confirm-compromised" && in.Action != "dismiss" {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: `action must be "confirm-compromised" or "dismiss"`}
	}
	if err := a.svc().SetRisk(r.Context(), actorOf(r), in.Reason, r.PathValue("name"), in.Action == "confirm-compromised"); err != nil {
		return adminErr(err)
	}
	return a.user(w, r)
}

func (a *API) setDisabled(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Disabled *bool  `json:"disabled"`
		Reason   string `json:"reason"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Disabled == nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: `send {"disabled": true} to disable the user or {"disabled": false} to enable them`}
	}
	if err := a.svc().SetDisabled(r.Context(), actorOf(r), in.Reason, r.PathValue("name"), *in.Disabled); err != nil {
		return adminErr(err)
	}
	return a.user(w, r)
}

func (a *API) pass(w http.ResponseWriter, r *http.Request) error {
	p, err := a.svc().Pass(r.Context(), r.PathValue("name"))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// issuePass answers the pass itself, once: it is stored hashed.
func (a *API) issuePass(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Lifetime string `json:"lifetime"`
		Once     bool   `json:"once"`
		Reason   string `json:"reason"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	lifetime, err := time.ParseDuration(in.Lifetime)
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: `lifetime must be a duration from 10m to 168h, like "1h"`}
	}
	p, err := a.svc().IssuePass(r.Context(), actorOf(r), in.Reason, r.PathValue("name"), lifetime, in.Once)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (a *API) revokePass(w http.ResponseWriter, r *http.Request) error {
	return a.userChange(w, r, func(ctx context.Context, reason, name string) (any, error) {
		return map[string]bool{"revoked": true}, a.svc().RevokePass(ctx, actorOf(r), reason, name)
	})
}

// userChange reads {"reason": ...} and applies fn to the named user.
func (a *API) userChange(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, reason, name string) (any, error)) error {
	var in change
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	out, err := fn(r.Context(), in.Reason, r.PathValue("name"))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
