package api

import (
	"net/http"

	"github.com/stepgate/stepgate/internal/admin"
)

// environmentInfo is one policy environment and its current release.
type environmentInfo struct {
	Name      string `json:"name"`
	Version   int64  `json:"version"`
	Documents int    `json:"documents"`
}

func (a *API) environments(w http.ResponseWriter, r *http.Request) error {
	out := []environmentInfo{}
	for _, name := range a.svc().EnvironmentNames {
		svc, err := a.svc().In(name)
		if err != nil {
			return adminErr(err)
		}
		head, err := svc.Documents.Head(r.Context())
		if err != nil {
			return err
		}
		out = append(out, environmentInfo{Name: name, Version: head.Version, Documents: len(head.Documents)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"environments": out})
	return nil
}

func (a *API) history(w http.ResponseWriter, r *http.Request) error {
	rels, err := a.svc().History(r.Context(), r.PathValue("env"))
	if err != nil {
		return adminErr(err)
	}
	if rels == nil {
		rels = []admin.Release{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"environment": r.PathValue("env"), "releases": rels})
	return nil
}

// reviewBody asks for the review of a promotion (From) or a rollback
// (Version).
type reviewBody struct {
	From    string `json:"from,omitempty"`
	Version int64  `json:"version,omitempty"`
	Days    int    `json:"days,omitempty"`
}

func (a *API) reviewPromotion(w http.ResponseWriter, r *http.Request) error {
	var in reviewBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.From == "" {
		return badParam("from", "name the policy environment to promote from, like staging")
	}
	rev, err := a.svc().ReviewPromotion(r.Context(), in.From, r.PathValue("env"), daysOr7(in.Days))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, rev)
	return nil
}

func (a *API) promote(w http.ResponseWriter, r *http.Request) error {
	var in admin.Promotion
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.To != "" && in.To != r.PathValue("env") {
		return badParam("to", "leave it out or repeat the environment of the path")
	}
	in.To = r.PathValue("env")
	rel, err := a.svc().Promote(r.Context(), actorOf(r), in)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, rel)
	return nil
}

func (a *API) reviewRollback(w http.ResponseWriter, r *http.Request) error {
	var in reviewBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Version < 1 {
		return badParam("version", "name the version to restore (GET the history for them)")
	}
	rev, err := a.svc().ReviewRollback(r.Context(), r.PathValue("env"), in.Version, daysOr7(in.Days))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, rev)
	return nil
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request) error {
	var in admin.Rollback
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Env != "" && in.Env != r.PathValue("env") {
		return badParam("env", "leave it out or repeat the environment of the path")
	}
	in.Env = r.PathValue("env")
	rel, err := a.svc().RollBack(r.Context(), actorOf(r), in)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, rel)
	return nil
}

func daysOr7(days int) int {
	if days == 0 {
		return 7
	}
	return days
}
