package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// defaultSignInPage is how many entries a page holds unless limit says.
const defaultSignInPage = 100

// signInPage is the answer to GET /api/v1/signins.
type signInPage struct {
	SignIns []audit.SignIn `json:"signins"`
	// NextCursor fetches the next (older) page; empty on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

// signIns lists the sign-in log, newest first, a page at a time; with
// format=jsonl it streams every match as JSON Lines, for export.
func (a *API) signIns(w http.ResponseWriter, r *http.Request) error {
	if a.deps.SignIns == nil {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "this server keeps no sign-in log"}
	}
	params := r.URL.Query()
	q, err := a.signInQuery(r, params)
	if err != nil {
		return err
	}
	if format := params.Get("format"); format == "jsonl" {
		return a.exportSignIns(w, r, q)
	} else if format != "" {
		return badParam("format", "must be jsonl (or left out for a JSON page)")
	}
	rows, err := a.deps.SignIns.ListSignIns(r.Context(), q)
	if err != nil {
		return err
	}
	page := signInPage{SignIns: make([]audit.SignIn, 0, len(rows))}
	for _, row := range rows {
		e, err := audit.Decode(row)
		if err != nil {
			return err
		}
		page.SignIns = append(page.SignIns, e)
	}
	if len(rows) == q.Limit {
		page.NextCursor = strconv.FormatInt(rows[len(rows)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// exportSignIns writes every entry q selects (up to its limit when one
// was given) as JSON Lines.
func (a *API) exportSignIns(w http.ResponseWriter, r *http.Request, q store.SignInQuery) error {
	total := 0
	if r.URL.Query().Has("limit") {
		total = q.Limit
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err := audit.WalkSignIns(r.Context(), a.deps.SignIns, q, total, func(row store.SignIn) error {
		return enc.Encode(json.RawMessage(row.Body))
	})
	if err != nil {
		// The status line is gone; the client sees a cut stream, and the
		// log says why.
		a.deps.Log.ErrorContext(r.Context(), "export sign-ins", "err", err)
	}
	return nil
}

// signInQuery reads the filters: user (a user name), app, database,
// statement_class, decision, policy, since and until (RFC 3339), cursor
// and limit.
func (a *API) signInQuery(r *http.Request, p url.Values) (store.SignInQuery, error) {
	q := store.SignInQuery{App: p.Get("app"), Decision: p.Get("decision"), Policy: p.Get("policy"), Limit: defaultSignInPage,
		Database: p.Get("database"), StatementClass: p.Get("statement_class")}
	if c := q.StatementClass; c != "" && !slices.Contains(policy.StatementClasses(), c) {
		return q, badParam("statement_class", "must be one of "+strings.Join(policy.StatementClasses(), ", "))
	}
	if name := p.Get("user"); name != "" {
		u, err := a.deps.Users.GetUserByName(r.Context(), name)
		if errors.Is(err, store.ErrNotFound) {
			return q, badParam("user", fmt.Sprintf("there is no user named %q", name))
		}
		if err != nil {
			return q, err
		}
		q.UserID = u.ID
	}
	var err error
	for _, t := range []struct {
		name string
		into *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := p.Get(t.name); v != "" {
			if *t.into, err = time.Parse(time.RFC3339, v); err != nil {
				return q, badParam(t.name, "must be an RFC 3339 time like 2026-11-22T10:00:00Z")
			}
		}
	}
	if v := p.Get("cursor"); v != "" {
		if q.Before, err = strconv.ParseInt(v, 10, 64); err != nil || q.Before <= 0 {
			return q, badParam("cursor", "must be the next_cursor of an earlier page")
		}
	}
	if v := p.Get("limit"); v != "" {
		if q.Limit, err = strconv.Atoi(v); err != nil || q.Limit < 1 || q.Limit > 1000 {
			return q, badParam("limit", "must be a whole number from 1 to 1000")
		}
	}
	return q, nil
}

func badParam(name, problem string) error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: name + " " + problem}
}
