package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// The roles pages: a user's eligible roles, the form that asks for one,
// the page a step-up returns to, and the end of an elevation. Every
// change is a CSRF-checked POST; a GET only shows.
const (
	rolesPath   = "/account/roles"
	confirmPath = "/account/roles/confirm"
	endPath     = "/account/roles/end"
)

// historyLength is how many ended requests the roles page lists.
const historyLength = 10

// durationChoices are the activation lengths the form offers, up to the
// role's maximum.
var durationChoices = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// rolesView is what the roles pages show.
type rolesView struct {
	Eligible []eligibleView
	Active   []elevationView
	Pending  []elevationView
	History  []elevationView
	// Request is the confirm page's request.
	Request *elevationView
}

// eligibleView is one role the user may ask for, with its limits and
// the form, which keeps what was typed after a refusal.
type eligibleView struct {
	Role          string
	Max           string
	Justification bool // required
	Ticket        bool // required
	Approval      string
	Proof         string
	Scope         string
	// Busy says why there is no form: the role is active, or a request
	// for it waits.
	Busy      string
	Durations []durationChoice
	Form      askForm
}

type durationChoice struct {
	Value, Label string
	Selected     bool
}

// askForm is what the user typed into a role's form.
type askForm struct {
	Duration, Justification, Ticket string
}

// elevationView is one request or elevation of the user's.
type elevationView struct {
	ID, Role, Duration, Justification, Ticket, Scope string
	// State says where it stands, in words.
	State       string
	RequestedAt time.Time
	Deadline    time.Time
	ActivatedAt time.Time
	Until       time.Time
	EndedAt     time.Time
	// NeedsProof: it waits for the user's step-up (the confirm page).
	NeedsProof bool
	// Open: pending or active, so it can be ended.
	Open      bool
	Decisions []string
}

// roles shows the user's eligible roles, what is active, what waits and
// what ended lately.
func (p *Pages) roles(w http.ResponseWriter, r *http.Request) error {
	sess, u, ok, err := p.requireSignIn(w, r, r.URL.RequestURI())
	if !ok || err != nil {
		return err
	}
	notice, err := p.rolesNotice(r, u)
	if err != nil {
		return err
	}
	return p.renderRoles(w, r, u, sess, http.StatusOK, notice, "", "", askForm{})
}

// rolesNotice says what the last change did, from the stored request
// the address names (never from text in the address).
func (p *Pages) rolesNotice(r *http.Request, u store.User) (string, error) {
	id := r.URL.Query().Get("done")
	if id == "" {
		return "", nil
	}
	e, err := p.ownElevation(r, u, id)
	if errors.Is(err, elevate.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	now := p.Now()
	switch {
	case e.State == store.ElevationActive && now.Before(e.Until):
		return fmt.Sprintf("Your role %s is active until %s.", e.Role, clock(e.Until, now)), nil
	case e.State == store.ElevationPending && !e.ProvenAt.IsZero():
		return fmt.Sprintf("Your request for %s now waits for approval.", e.Role), nil
	case e.State == store.ElevationDeactivated && e.ActivatedAt.IsZero():
		return fmt.Sprintf("Your request for %s is cancelled.", e.Role), nil
	case e.State == store.ElevationDeactivated:
		return fmt.Sprintf("Your role %s has ended.", e.Role), nil
	}
	return "", nil
}

// renderRoles shows the roles page; errMsg, with the role and form it
// is about, comes back from a refused request.
func (p *Pages) renderRoles(w http.ResponseWriter, r *http.Request, u store.User, sess store.Session, status int, notice, errMsg, formRole string, form askForm) error {
	ctx := r.Context()
	eligible, err := p.Elevation.Eligible(ctx, u)
	if err != nil {
		return err
	}
	mine, err := p.Elevation.Store.ListElevations(ctx, store.ElevationQuery{UserID: u.ID, Limit: 100})
	if err != nil {
		return err
	}
	now := p.Now()
	rv := &rolesView{}
	for _, e := range mine {
		ev := p.elevationView(e, now)
		switch {
		case e.State == store.ElevationActive && now.Before(e.Until):
			rv.Active = append(rv.Active, ev)
		case e.State == store.ElevationPending && now.Before(e.Deadline):
			rv.Pending = append(rv.Pending, ev)
		case len(rv.History) < historyLength:
			rv.History = append(rv.History, ev)
		}
	}
	for _, el := range eligible {
		v := p.eligibleView(el, rv)
		if el.Role.Name == formRole {
			v.Form = form
			v.Durations = durationList(el.Role.MaxDuration, form.Duration)
		}
		rv.Eligible = append(rv.Eligible, v)
	}
	v := view{Title: "Roles", User: &u, Session: &sess, Notice: notice, Error: errMsg, Roles: rv}
	p.render(w, r, status, "roles", v)
	return nil
}

// eligibleView describes el's limits, and whether it can be asked for now.
func (p *Pages) eligibleView(el elevate.Eligibility, rv *rolesView) eligibleView {
	role := el.Role
	v := eligibleView{
		Role: role.Name, Max: humanDuration(role.MaxDuration),
		Justification: role.NeedJustification, Ticket: role.NeedTicket,
		Approval: "None: the role turns active as soon as you confirm it's you.",
		Proof:    p.proofWords(role), Scope: roleScopeWords(el.Scope),
		Durations: durationList(role.MaxDuration, ""),
	}
	if a := role.Approvers; a != nil {
		who := "one member"
		if a.Count > 1 {
			who = fmt.Sprintf("%d members", a.Count)
		}
		v.Approval = fmt.Sprintf("%s of the group %s (never you) must approve, within %s.", upperFirst(who), a.Group, humanDuration(a.Expire))
	}
	for _, e := range rv.Active {
		if e.Role == role.Name {
			v.Busy = e.State + "."
		}
	}
	for _, e := range rv.Pending {
		if e.Role == role.Name {
			v.Busy = "A request for it is waiting (below)."
		}
	}
	return v
}

// proofWords says what activating role asks the user to prove.
func (p *Pages) proofWords(role elevate.Role) string {
	if role.Context == "" {
		return "A second factor from the last 10 minutes."
	}
	names := make([]string, 0, 1)
	for _, c := range p.Elevation.Proofs.Contexts(role) {
		names = append(names, c.Name)
	}
	return "What your organisation's policies ask for “" + strings.Join(names, ", ") + "”."
}

func roleScopeWords(scope []string) string {
	if len(scope) == 0 {
		return "Everywhere"
	}
	return "Only in " + joinAnd(scope)
}

// durationList is the form's choice of lengths up to max, with selected
// chosen (the maximum when nothing is).
func durationList(maxDuration time.Duration, selected string) []durationChoice {
	var ds []time.Duration
	for _, d := range durationChoices {
		if d >= elevate.MinDuration && d < maxDuration {
			ds = append(ds, d)
		}
	}
	ds = append(ds, maxDuration)
	if selected == "" {
		selected = maxDuration.String()
	}
	out := make([]durationChoice, len(ds))
	for i, d := range ds {
		out[i] = durationChoice{Value: d.String(), Label: humanDuration(d), Selected: d.String() == selected}
	}
	return out
}

// elevationView describes e for the pages.
func (p *Pages) elevationView(e store.Elevation, now time.Time) elevationView {
	v := elevationView{
		ID: e.ID, Role: e.Role, Duration: humanDuration(e.Duration), Justification: e.Justification, Ticket: e.Ticket,
		Scope: roleScopeWords(e.Scope), RequestedAt: e.RequestedAt, Deadline: e.Deadline,
		ActivatedAt: e.ActivatedAt, Until: e.Until, EndedAt: e.EndedAt,
	}
	role := p.Elevation.Roles(e.Role)
	switch {
	case e.State == store.ElevationActive && now.Before(e.Until):
		v.State, v.Open = "Active until "+clock(e.Until, now), true
	case e.State == store.ElevationActive:
		v.State = "Expired at " + clock(e.Until, now)
	case e.State == store.ElevationPending && !now.Before(e.Deadline):
		v.State = "Lapsed: nobody decided in time"
	case e.State == store.ElevationPending && e.ProvenAt.IsZero():
		v.State, v.NeedsProof, v.Open = "Waiting for you to confirm it's you, until "+clock(e.Deadline, now), true, true
	case e.State == store.ElevationPending:
		group := "an approver"
		if role.Approvers != nil {
			group = "the group " + role.Approvers.Group
		}
		v.State, v.Open = "Waiting for approval by "+group+", until "+clock(e.Deadline, now), true
	default:
		v.State = endWords(e)
	}
	for _, d := range e.Decisions {
		word := "Approved"
		if !d.Approve {
			word = "Denied"
		}
		line := word + " at " + clock(d.At, now)
		if d.Comment != "" {
			line += ": “" + d.Comment + "”"
		}
		v.Decisions = append(v.Decisions, line)
	}
	return v
}

// endWords says how an ended request or elevation ended.
func endWords(e store.Elevation) string {
	switch e.State {
	case store.ElevationDenied:
		return "Denied"
	case store.ElevationExpired:
		if e.EndReason == elevate.ReasonNoDecision {
			return "Lapsed: nobody decided in time"
		}
		return "Ended at its time"
	case store.ElevationDeactivated:
		switch e.EndReason {
		case elevate.ReasonByHolder:
			return "Ended by you"
		case elevate.ReasonNotEligible:
			return "Ended: you are no longer eligible"
		case elevate.ReasonRoleDeleted:
			return "Ended: the role was deleted"
		case elevate.ReasonUserDisabled:
			return "Ended: the account was disabled"
		case reasonRefused:
			return "Ended: your organisation's policy does not allow activating it from here"
		}
		if e.EndedBy != e.UserID {
			return "Ended by an administrator"
		}
		return "Ended by you"
	}
	return e.State
}

// reasonRefused ends a request whose activation the policies block.
const reasonRefused = "refused-by-policy"

// clock writes a time as the pages do: the time of day for today,
// with the date otherwise.
func clock(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04 UTC")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// askRole stores a request for a role, then tries its activation at
// once: a session with a recent enough proof needs no step-up.
func (p *Pages) askRole(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	sess, u, ok, err := p.requireSignIn(w, r, rolesPath)
	if !ok || err != nil {
		return err
	}
	role := r.PostFormValue("role")
	form := askForm{Duration: r.PostFormValue("duration"), Justification: r.PostFormValue("justification"), Ticket: r.PostFormValue("ticket")}
	var d time.Duration
	if form.Duration != "" {
		if d, err = time.ParseDuration(form.Duration); err != nil || d <= 0 {
			return p.renderRoles(w, r, u, sess, http.StatusBadRequest, "", "Choose how long you need the role from the list.", role, form)
		}
	}
	e, err := p.Elevation.Request(r.Context(), u, elevate.Ask{Role: role, Duration: d, Justification: form.Justification, Ticket: form.Ticket})
	if err != nil {
		msg, known := elevationMessage(err, role)
		if !known {
			return err
		}
		return p.renderRoles(w, r, u, sess, httpx.StatusOf(err), "", msg, role, form)
	}
	return p.prove(w, r, u, sess, e)
}

// prove checks the session's proofs for e's activation: met, it goes on
// to the roles page; not yet, to the step-up page, which returns to the
// confirm page of e; refused by policy, the request ends and the page
// says so.
func (p *Pages) prove(w http.ResponseWriter, r *http.Request, u store.User, sess store.Session, e store.Elevation) error {
	req := p.Access(r, u, &sess, p.Now())
	methods := func() ([]string, error) {
		have, _, err := p.userMethods(r, u)
		return have, err
	}
	e, v, err := p.Elevation.Prove(r.Context(), e.ID, u, req, methods)
	if err != nil {
		msg, known := elevationMessage(err, "")
		if !known {
			return err
		}
		return p.renderRoles(w, r, u, sess, httpx.StatusOf(err), "", msg, "", askForm{})
	}
	switch {
	case v.Outcome == policy.OutcomeAllow:
		http.Redirect(w, r, rolesPath+"?done="+url.QueryEscape(e.ID), http.StatusSeeOther)
	case v.Outcome == policy.OutcomeChallenge, v.Reason == reason.NoUsableMethod:
		// The step-up page offers the methods that can meet it, or, when
		// none of the user's can, says how to get one.
		q := url.Values{"return_to": {confirmURL(e.ID)}}
		http.Redirect(w, r, "/stepup?"+q.Encode(), http.StatusSeeOther)
	default:
		if _, err := p.Elevation.Deactivate(r.Context(), e.ID, u, false, reasonRefused); err != nil && !errors.Is(err, elevate.ErrDecided) {
			return err
		}
		msg := fmt.Sprintf("Your organisation's policy does not allow activating %s from here, whatever you prove. Ask your administrator if you need it.", e.Role)
		return p.renderRoles(w, r, u, sess, http.StatusForbidden, "", msg, "", askForm{})
	}
	return nil
}

// activated are the elevations of u's that count now, anywhere, for the
// account page.
func activated(u store.User, now time.Time) []store.Grant {
	var out []store.Grant
	for _, g := range u.Grants {
		if g.Elevation != "" && now.Before(g.Until) && !now.Before(g.Since) {
			out = append(out, g)
		}
	}
	return out
}

func confirmURL(id string) string { return confirmPath + "?id=" + url.QueryEscape(id) }

// confirmForm shows one of the user's requests, with the button that
// tries its activation again (after a step-up). It changes nothing.
func (p *Pages) confirmForm(w http.ResponseWriter, r *http.Request) error {
	sess, u, ok, err := p.requireSignIn(w, r, r.URL.RequestURI())
	if !ok || err != nil {
		return err
	}
	e, err := p.ownElevation(r, u, r.URL.Query().Get("id"))
	if errors.Is(err, elevate.ErrNotFound) {
		return p.noSuchRequest(w, r, u, sess)
	}
	if err != nil {
		return err
	}
	ev := p.elevationView(e, p.Now())
	v := view{Title: "Activate " + e.Role, User: &u, Session: &sess, Roles: &rolesView{Request: &ev}}
	p.render(w, r, http.StatusOK, "roleconfirm", v)
	return nil
}

// confirm tries the activation of one of the user's pending requests
// again, with the session's proofs as they are now.
func (p *Pages) confirm(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	id := r.PostFormValue("id")
	sess, u, ok, err := p.requireSignIn(w, r, confirmURL(id))
	if !ok || err != nil {
		return err
	}
	e, err := p.ownElevation(r, u, id)
	if errors.Is(err, elevate.ErrNotFound) {
		return p.noSuchRequest(w, r, u, sess)
	}
	if err != nil {
		return err
	}
	if e.State != store.ElevationPending || !e.ProvenAt.IsZero() {
		// Nothing to prove any more: the confirm page says where it stands.
		http.Redirect(w, r, confirmURL(e.ID), http.StatusSeeOther)
		return nil
	}
	return p.prove(w, r, u, sess, e)
}

// endRole ends one of the user's active elevations or pending requests.
func (p *Pages) endRole(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	sess, u, ok, err := p.requireSignIn(w, r, rolesPath)
	if !ok || err != nil {
		return err
	}
	e, err := p.Elevation.Deactivate(r.Context(), r.PostFormValue("id"), u, false, "")
	if err != nil {
		msg, known := elevationMessage(err, "")
		if !known {
			return err
		}
		return p.renderRoles(w, r, u, sess, httpx.StatusOf(err), "", msg, "", askForm{})
	}
	http.Redirect(w, r, rolesPath+"?done="+url.QueryEscape(e.ID), http.StatusSeeOther)
	return nil
}

// ownElevation returns the user's request id. Another user's request is
// not found, as one that does not exist: ids are not to be probed.
func (p *Pages) ownElevation(r *http.Request, u store.User, id string) (store.Elevation, error) {
	if id == "" {
		return store.Elevation{}, elevate.ErrNotFound
	}
	e, err := p.Elevation.Store.GetElevation(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && e.UserID != u.ID:
		return store.Elevation{}, elevate.ErrNotFound
	case err != nil:
		return store.Elevation{}, err
	}
	return e, nil
}

func (p *Pages) noSuchRequest(w http.ResponseWriter, r *http.Request, u store.User, sess store.Session) error {
	v := view{Title: "No such request", User: &u, Session: &sess, Error: "There is no such request among yours. It may have been made by another account."}
	p.render(w, r, http.StatusNotFound, "roleconfirm", v)
	return nil
}

// elevationMessage is what the page says about an error of the
// elevation service about role: its own words for the requester's
// mistakes and refusals. known is false for anything else (a store
// failure), which the caller shows as a generic failure, never the
// error's text.
func elevationMessage(err error, role string) (msg string, known bool) {
	switch {
	case errors.Is(err, elevate.ErrNotFound), errors.Is(err, elevate.ErrNotYours):
		return "There is no such request among yours.", true
	case errors.Is(err, elevate.ErrNotEligible):
		return "You are not eligible for that role. Ask your administrator if you need it.", true
	case errors.Is(err, elevate.ErrTooManyPending):
		return "You have too many requests waiting. Cancel one below, or wait for a decision.", true
	case errors.Is(err, elevate.ErrInvalid):
		return sentence(strings.TrimPrefix(err.Error(), elevate.ErrInvalid.Error()+": "), role), true
	case errors.Is(err, elevate.ErrDecided), errors.Is(err, elevate.ErrNotActive), errors.Is(err, elevate.ErrUnproven):
		return sentence(err.Error(), role), true
	}
	return "", false
}

// sentence makes a lowercase error message a sentence; one that starts
// with the role's name keeps it as it is spelled.
func sentence(s, role string) string {
	if role == "" || !strings.HasPrefix(s, role) {
		s = upperFirst(s)
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// ElevationStepUps is the elevation as a sender of users to the step-up
// page (a StepUpSource).
func (p *Pages) ElevationStepUps() StepUpSource { return elevationStepUps{p} }

type elevationStepUps struct{ p *Pages }

// StepUpFor describes the step-up that returnTo, the confirm page of one
// of the user's pending requests, continues: the role's activation
// context and what the session still lacks for it, decided again here
// from the stored request and the live policies. The address only names
// the request; another user's request, or one that no longer waits for
// a proof, is not described.
func (s elevationStepUps) StepUpFor(r *http.Request, u store.User, sess store.Session, returnTo string) (access.StepUp, bool) {
	p := s.p
	back, err := url.Parse(returnTo)
	if err != nil || back.Path != confirmPath || !p.rolesMounted() {
		return access.StepUp{}, false
	}
	e, err := p.ownElevation(r, u, back.Query().Get("id"))
	if err != nil || e.State != store.ElevationPending {
		return access.StepUp{}, false
	}
	role := p.Elevation.Roles(e.Role)
	out := access.StepUp{App: "Role activation", Contexts: p.Elevation.Proofs.Contexts(role)}
	if !e.ProvenAt.IsZero() {
		return out, true
	}
	// No method source: the page judges the user's methods itself.
	v, err := p.Elevation.Proofs.Check(role, p.Access(r, u, &sess, p.Now()), nil)
	switch {
	case err != nil:
		return access.StepUp{}, false
	case v.Outcome == policy.OutcomeBlock:
		out.Blocked = true
	case v.Outcome == policy.OutcomeChallenge:
		out.Missing, out.Reask = v.Missing, v.Reask
	}
	return out, true
}

var _ StepUpSource = elevationStepUps{}

// rolesMounted reports whether the roles pages are served.
func (p *Pages) rolesMounted() bool { return p.Elevation != nil && p.Access != nil }

// mountRoles registers the roles pages on mux.
func (p *Pages) mountRoles(mux *http.ServeMux) {
	if !p.rolesMounted() {
		return
	}
	mux.Handle("GET "+rolesPath, p.handle(p.roles))
	mux.Handle("POST "+rolesPath, p.handle(p.askRole))
	mux.Handle("GET "+confirmPath, p.handle(p.confirmForm))
	mux.Handle("POST "+confirmPath, p.handle(p.confirm))
	mux.Handle("POST "+endPath, p.handle(p.endRole))
}
