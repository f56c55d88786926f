package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/admin"
)

// The elevation endpoints: role assignments, elevation requests, the
// approvers' answers and an administrator's revoke.
//
// The API's callers are the API token and admin clients, never a person,
// so an answer names its approver: the user in the body. The elevation
// service holds that user to the same rules as in the console (a member
// of the role's approver group, never the requester, one answer each),
// and the audit trail records both the caller and the approver.

func (a *API) assignments(w http.ResponseWriter, r *http.Request) error {
	out, err := a.svc().Assignments(r.Context(), r.URL.Query().Get("role"))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"assignments": nonNil(out)})
	return nil
}

func (a *API) assign(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		admin.Assignment
		Reason string `json:"reason"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	out, err := a.svc().Assign(r.Context(), actorOf(r), in.Reason, in.Assignment)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// unassign takes the reason as a query parameter: a DELETE has no body.
func (a *API) unassign(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc().UnassignID(r.Context(), actorOf(r), r.URL.Query().Get("reason"), r.PathValue("id")); err != nil {
		return adminErr(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) elevations(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := admin.ElevationFilter{User: q.Get("user"), Role: q.Get("role"), Cursor: q.Get("cursor")}
	for _, st := range q["state"] {
		for s := range strings.SplitSeq(st, ",") {
			if s = strings.TrimSpace(s); s != "" {
				f.States = append(f.States, s)
			}
		}
	}
	if v := q.Get("limit"); v != "" {
		var err error
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > admin.MaxElevationPage {
			return badParam("limit", "must be a whole number from 1 to "+strconv.Itoa(admin.MaxElevationPage))
		}
	}
	page, err := a.svc().Elevations(r.Context(), f)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (a *API) elevation(w http.ResponseWriter, r *http.Request) error {
	e, err := a.svc().ElevationRequest(r.Context(), r.PathValue("id"))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (a *API) approve(w http.ResponseWriter, r *http.Request) error { return a.decide(w, r, true) }
func (a *API) deny(w http.ResponseWriter, r *http.Request) error    { return a.decide(w, r, false) }

// decide records the answer of the approver the body names.
func (a *API) decide(w http.ResponseWriter, r *http.Request, approve bool) error {
	var in struct {
		Approver string `json:"approver"`
		Comment  string `json:"comment"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Approver) == "" {
		return badParam("approver", "is required: the username of the member of the role's approver group who answers (never the requester)")
	}
	e, err := a.svc().Decide(r.Context(), actorOf(r), in.Approver, r.PathValue("id"), approve, in.Comment)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// revokeElevation ends a pending request or an active elevation as an
// administrator.
func (a *API) revokeElevation(w http.ResponseWriter, r *http.Request) error {
	var in change
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	e, err := a.svc().RevokeElevation(r.Context(), actorOf(r), in.Reason, r.PathValue("id"))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}
