package web

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// credView is a registered method as the security page lists it.
type credView struct {
	ID, Type, Label, Name string
	CreatedAt, LastUsedAt time.Time
	Detail                string
}

// CredentialDetail, when set, adds a method-specific line to a listed
// credential ("7 codes left", "sent to a•••@example.com").
type CredentialDetail func(c store.Credential) string

// security lists the user's methods and offers to add more.
func (p *Pages) security(w http.ResponseWriter, r *http.Request) error {
	sess, u, ok, err := p.requireSignIn(w, r, r.URL.RequestURI())
	if !ok || err != nil {
		return err
	}
	n := securityNotice{}
	switch {
	case r.URL.Query().Has("added"):
		n.notice = "The method was added."
	case r.URL.Query().Has("removed"):
		n.notice = "The method was removed."
	case r.URL.Query().Has("unlocked"):
		n.notice = "You can now add a sign-in method."
	}
	return p.renderSecurity(w, r, u, sess, http.StatusOK, n)
}

// securityNotice is what the security page says above the methods.
type securityNotice struct {
	notice, msg string
	// gate, when not open, explains what a change needs and offers it.
	gate     verdict
	returnTo string
}

// unlockView offers what opens a registration on the security page.
type unlockView struct {
	StepUpURL string // a step-up with an existing method
	Pass      bool   // a temporary access pass form
	Recovery  bool   // a recovery code form
	ReturnTo  string
}

// renderSecurity shows the security page with n.
func (p *Pages) renderSecurity(w http.ResponseWriter, r *http.Request, u store.User, sess store.Session, status int, n securityNotice) error {
	creds, err := p.Credentials.ListCredentials(r.Context(), u.ID)
	if err != nil {
		return err
	}
	v := view{Title: "Security", User: &u, Session: &sess, Notice: n.notice, Error: n.msg}
	for _, c := range creds {
		cv := credView{ID: c.ID, Type: c.Type, Label: p.label(c.Type), Name: c.Name, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt}
		if p.Detail != nil {
			cv.Detail = p.Detail(c)
		}
		v.Credentials = append(v.Credentials, cv)
	}
	for _, m := range p.Methods.All() {
		v.Addable = append(v.Addable, choice{Name: m.Name(), Label: m.Label(), URL: "/account/security/add?method=" + url.QueryEscape(m.Name())})
	}
	returnTo := n.returnTo
	if returnTo == "" {
		returnTo = "/account/security"
	}
	unlock := &unlockView{Pass: p.Passes != nil && p.KV != nil, ReturnTo: returnTo}
	switch n.gate.gate {
	case gateStepUp:
		q := url.Values{"return_to": {returnTo}, "methods": {strings.Join(n.gate.methods, ",")}}
		unlock.StepUpURL = "/stepup?" + q.Encode()
		unlock.Recovery = n.gate.recovery
		if v.Error == "" {
			v.Error = "Changing your sign-in methods needs a fresh proof with one of them (not the password)."
		}
	case gateUnlock:
		unlock.Recovery = n.gate.recovery
		if v.Error == "" {
			v.Error = p.unlockMessage(creds, n.gate)
		}
	default:
		// Offered always, for the day a user lost their methods.
		unlock.Recovery = hasRecovery(creds) && !p.Registration.PhishingResistant
	}
	v.Unlock = unlock
	p.render(w, r, status, "security", v)
	return nil
}

// unlockMessage says why a registration needs a pass or a recovery code.
func (p *Pages) unlockMessage(creds []store.Credential, v verdict) string {
	switch {
	case len(creds) == 0:
		return "To add your first sign-in method, enter the temporary access pass your administrator gave you."
	case p.Registration.PhishingResistant:
		return "Changing your sign-in methods needs a passkey or security key. Without one, ask your administrator for a temporary access pass."
	case v.recovery:
		return "Changing your sign-in methods needs a proof with one of them. Use a recovery code, or a temporary access pass from your administrator."
	}
	return "Changing your sign-in methods needs a proof with one of them. Ask your administrator for a temporary access pass."
}

// enrollForm starts registering a method, after the conditional access
// policies for registering security info had their say: an attacker with
// a stolen password must not be able to add their own second factor.
func (p *Pages) enrollForm(w http.ResponseWriter, r *http.Request) error {
	sess, u, ok, err := p.requireSignIn(w, r, r.URL.RequestURI())
	if !ok || err != nil {
		return err
	}
	m, ok := p.Methods.Get(r.URL.Query().Get("method"))
	if !ok {
		return &pageError{http.StatusNotFound, "There is no such sign-in method."}
	}
	creds, err := p.Credentials.ListCredentials(r.Context(), u.ID)
	if err != nil {
		return err
	}
	v, err := p.addVerdict(r, u, sess, creds, m.Name())
	if err != nil {
		return err
	}
	if done, err := p.gateChange(w, r, u, sess, v, r.URL.RequestURI()); done || err != nil {
		return err
	}
	if done, err := p.registerAllowed(w, r, u, sess); done || err != nil {
		return err
	}
	ch, err := m.BeginEnroll(r.Context(), u, strings.TrimSpace(r.URL.Query().Get("name")))
	if err != nil {
		return err
	}
	id, err := p.Ceremonies.Start(r.Context(), authn.Ceremony{UserID: u.ID, Method: m.Name(), Purpose: authn.PurposeEnroll, State: ch.State})
	if err != nil {
		return err
	}
	page := view{Title: "Add " + strings.ToLower(m.Label()), User: &u, Session: &sess, Method: m.Name(), MethodLabel: m.Label(), Ceremony: id,
		ReturnTo: enrollReturn(r.URL.Query().Get("return_to"))}
	p.setShow(&page, ch.Show)
	p.render(w, r, http.StatusOK, "enroll", page)
	return nil
}

// registerAllowed applies the register-security-info policies. It
// answers the request itself (done) when the user must step up first or
// is blocked.
func (p *Pages) registerAllowed(w http.ResponseWriter, r *http.Request, u store.User, sess store.Session) (bool, error) {
	if p.RegisterCheck == nil {
		return false, nil
	}
	methods, blocked := p.RegisterCheck(r, u, sess)
	switch {
	case blocked:
		return true, &pageError{http.StatusForbidden, "Your organisation's policies do not allow registering security methods from here."}
	case methods != nil:
		q := url.Values{"return_to": {r.URL.RequestURI()}, "methods": {strings.Join(methods, ",")}}
		http.Redirect(w, r, "/stepup?"+q.Encode(), http.StatusSeeOther)
		return true, nil
	}
	return false, nil
}

// enroll finishes a registration.
func (p *Pages) enroll(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	ctx := r.Context()
	sess, u, ok, err := p.requireSignIn(w, r, "/account/security")
	if !ok || err != nil {
		return err
	}
	id := r.PostFormValue("ceremony")
	c, err := p.Ceremonies.Load(ctx, id, u.ID, authn.PurposeEnroll)
	if errors.Is(err, authn.ErrNoCeremony) {
		return &pageError{httpx.StatusOf(err), "This registration expired or was already completed. Start again from your security page."}
	}
	if err != nil {
		return err
	}
	m, ok := p.Methods.Get(c.Method)
	if !ok {
		return &pageError{http.StatusBadRequest, "There is no such sign-in method."}
	}
	// Checked again at the finish: the proof that allowed the start may
	// have gone stale, or its pass been revoked, in between.
	creds, err := p.Credentials.ListCredentials(ctx, u.ID)
	if err != nil {
		return err
	}
	verdict, err := p.addVerdict(r, u, sess, creds, m.Name())
	if err != nil {
		return err
	}
	if verdict.gate != gateOpen {
		_ = p.Ceremonies.Done(ctx, id)
		p.Log.InfoContext(ctx, "security method refused: no fresh proof", "user", u.Username, "method", m.Name())
		if err := p.logSecurity(r, u, m.Name(), "failure", reason.RegistrationNotAllowed); err != nil {
			return err
		}
		if wantsJSON(r) {
			writeJSONStatus(w, http.StatusForbidden, map[string]string{"error": "Adding a sign-in method needs a fresh proof. Start again from your security page."})
			return nil
		}
		_, err := p.gateChange(w, r, u, sess, verdict, "/account/security")
		return err
	}
	res, err := m.FinishEnroll(ctx, u, c.State, authn.Response{Code: r.PostFormValue("code"), Data: []byte(r.PostFormValue("data"))})
	if errors.Is(err, authn.ErrNotAllowed) {
		// Trying again with the same authenticator cannot help: say why
		// and end the ceremony.
		_ = p.Ceremonies.Done(ctx, id)
		p.Log.InfoContext(ctx, "security method refused", "user", u.Username, "method", m.Name(), "reason", err.Error())
		return &pageError{httpx.StatusOf(err), "Your organisation does not allow this kind of device or sign-in method here. Use one it approved, or ask your administrator."}
	}
	if done, err := p.enrollStepOutcome(w, r, u, sess, m, id, res, err); done || err != nil {
		return err
	}
	if errors.Is(err, authn.ErrInvalid) || errors.Is(err, authn.ErrReplay) {
		alive, ferr := p.Ceremonies.Failed(ctx, id)
		if ferr != nil {
			return ferr
		}
		if !alive {
			// The wrong answers used the ceremony up: it is gone.
			return &pageError{httpx.StatusOf(authn.ErrNoCeremony), "Too many wrong answers. Start the registration again from your security page."}
		}
		if wantsJSON(r) {
			writeJSONStatus(w, httpx.StatusOf(err), map[string]string{"error": "That was not right. Try again."})
			return nil
		}
		// Show the same step again; the server-side state is unchanged.
		_ = p.Ceremonies.Done(ctx, id)
		return p.retryEnroll(w, r, u, sess, m, httpx.StatusOf(err), "That was not right. Check the code and try again.")
	}
	if err != nil {
		return err
	}
	if err := p.Ceremonies.Done(ctx, id); err != nil {
		return err
	}
	if verdict.via == methodRecovery {
		// A recovery code registers one new method, the lost one's
		// successor; anything more needs a proof with that method. The
		// proof is spent here, atomically: of two registrations finished
		// at once on one code, the second is undone.
		err := regProofs.At(sess.ID).Delete(ctx, p.KV)
		if errors.Is(err, store.ErrNotFound) {
			if derr := p.Credentials.DeleteCredential(ctx, res.Credential.ID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
				return derr
			}
			return &pageError{httpx.StatusOf(errRecoverySpent), "Your recovery code was already used to add a method. Confirm it's you with that method to add more."}
		}
		if err != nil {
			return err
		}
	}
	// A method may hand the browser a cookie of its own (a push device
	// keeps its device secret in one); it is set, never shown.
	if ck, ok := res.Show["set_cookie"].(*http.Cookie); ok {
		http.SetCookie(w, ck)
	}
	if name := strings.TrimSpace(r.PostFormValue("name")); name != "" && res.Credential.ID != "" {
		_, _ = p.Credentials.UpdateCredential(ctx, res.Credential.ID, func(c store.Credential) (store.Credential, error) {
			c.Name = truncate(name, 64)
			return c, nil
		})
	}
	p.Log.InfoContext(ctx, "security method added", "user", u.Username, "method", m.Name(), "credential", res.Credential.ID, "allowed_by", verdict.via)
	p.audit(ctx, u, "user.method-add."+m.Name())
	if err := p.methodChanged(r, u, change{Added: true, Method: m.Name(), CredentialID: res.Credential.ID, Via: verdict.via}); err != nil {
		return err
	}
	next := "/account/security?added"
	if rt := enrollReturn(r.PostFormValue("return_to")); rt != "" {
		next = rt
	}
	if wantsJSON(r) {
		writeJSONStatus(w, http.StatusOK, map[string]string{"redirect": next})
		return nil
	}
	http.Redirect(w, r, next, http.StatusSeeOther) //nolint:gosec // enrollReturn admits local paths only
	return nil
}

// enrollReturn is where a registration started from elsewhere (the
// registration campaign's offer, on the way to an application) goes once
// the method is added: a local path (httpx.SafeReturnTo), or "" for the
// security page itself, where the added method is shown. The security
// pages and the offer are never a way on, so no link can loop a user
// through registrations. Nor is a page that forwards there by its own
// return_to (the step-up page, the sign-in page), however deeply
// nested: /stepup?return_to=/account/security/add... would lead into
// another registration as surely.
func enrollReturn(s string) string {
	if s == "" {
		return ""
	}
	rt := httpx.SafeReturnTo(s)
	if !enrollWayOn(rt, 0) {
		return ""
	}
	return rt
}

// enrollWayOn reports whether the local path rt, and every return_to it
// carries on, stays off the security pages and the offer. A way on
// nested deeper than any page of Stepgate's nests one is refused.
func enrollWayOn(rt string, depth int) bool {
	u, err := url.Parse(rt)
	if err != nil || depth > 3 || isOfferPath(rt) {
		return false
	}
	if p := path.Clean(u.Path); p == "/account" || p == "/account/security" || strings.HasPrefix(p, "/account/security/") {
		return false
	}
	for _, next := range u.Query()["return_to"] {
		if !enrollWayOn(httpx.SafeReturnTo(next), depth+1) {
			return false
		}
	}
	return true
}

// retryEnroll starts the registration over with an error message: a new
// secret and a new ceremony, since the old one may have been seen.
func (p *Pages) retryEnroll(w http.ResponseWriter, r *http.Request, u store.User, sess store.Session, m authn.Method, status int, msg string) error {
	ch, err := m.BeginEnroll(r.Context(), u, "")
	if err != nil {
		return err
	}
	id, err := p.Ceremonies.Start(r.Context(), authn.Ceremony{UserID: u.ID, Method: m.Name(), Purpose: authn.PurposeEnroll, State: ch.State})
	if err != nil {
		return err
	}
	v := view{Title: "Add " + strings.ToLower(m.Label()), User: &u, Session: &sess, Method: m.Name(), MethodLabel: m.Label(), Ceremony: id, Error: msg,
		ReturnTo: enrollReturn(r.PostFormValue("return_to"))}
	p.setShow(&v, ch.Show)
	p.render(w, r, status, "enroll", v)
	return nil
}

// errRecoverySpent refuses a second method registered on one recovery
// code: its proof was spent by the first.
var errRecoverySpent = errkind.New(errkind.Forbidden, "the recovery code's registration was already spent")

// enrollStepOutcome answers the outcomes of FinishEnroll that neither
// finish nor fail the registration: a next step of the same ceremony
// (a code was sent to the number just given), an answer not in the form
// asked for, a limit reached, a ceremony gone. It reports done when it
// answered; each is a page saying what to do, never a server error.
func (p *Pages) enrollStepOutcome(w http.ResponseWriter, r *http.Request, u store.User, sess store.Session, m authn.Method, id string, res authn.Enrolled, err error) (bool, error) {
	ctx := r.Context()
	var bad *authn.InputError
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, authn.ErrNextStep):
		// The ceremony goes on with its id and state; only the page moves
		// to the next step.
		if wantsJSON(r) {
			writeJSONStatus(w, http.StatusOK, map[string]any{"ceremony": id, "next": res.Show})
			return true, nil
		}
		v := view{Title: "Add " + strings.ToLower(m.Label()), User: &u, Session: &sess, Method: m.Name(), MethodLabel: m.Label(), Ceremony: id,
			ReturnTo: enrollReturn(r.PostFormValue("return_to"))}
		p.setShow(&v, res.Show)
		p.render(w, r, http.StatusOK, "enroll", v)
		return true, nil
	case errors.As(err, &bad):
		_ = p.Ceremonies.Done(ctx, id)
		return true, p.retryEnroll(w, r, u, sess, m, httpx.StatusOf(bad), bad.Fix)
	case errors.Is(err, authn.ErrThrottled):
		_ = p.Ceremonies.Done(ctx, id)
		return true, &pageError{httpx.StatusOf(err), "Too many codes or attempts. Wait a few minutes, then start again from your security page."}
	case errors.Is(err, authn.ErrNoCeremony):
		_ = p.Ceremonies.Done(ctx, id)
		return true, &pageError{httpx.StatusOf(err), "This registration expired or was already completed. Start again from your security page."}
	}
	return false, nil
}

// ownedCredential loads the form's credential if it is the user's: ids
// are never trusted to belong to whoever sends them.
func (p *Pages) ownedCredential(r *http.Request, u store.User) (store.Credential, []store.Credential, error) {
	creds, err := p.Credentials.ListCredentials(r.Context(), u.ID)
	if err != nil {
		return store.Credential{}, nil, err
	}
	i := slices.IndexFunc(creds, func(c store.Credential) bool { return c.ID == r.PostFormValue("id") })
	if i < 0 {
		return store.Credential{}, nil, &pageError{http.StatusNotFound, "That method is not registered to your account."}
	}
	return creds[i], creds, nil
}

// removeCredential removes a method after a fresh step-up with another
// method than the one being removed when the user has one, so a stolen
// password or an unlocked, signed-in browser cannot strip a factor.
func (p *Pages) removeCredential(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	sess, u, ok, err := p.requireSignIn(w, r, "/account/security")
	if !ok || err != nil {
		return err
	}
	cred, creds, err := p.ownedCredential(r, u)
	if err != nil {
		return err
	}
	if v := p.removeVerdict(sess, creds, cred); v.gate != gateOpen {
		if err := p.logSecurity(r, u, cred.Type, "failure", reason.RemovalNotAllowed); err != nil {
			return err
		}
		return p.renderSecurity(w, r, u, sess, http.StatusForbidden, securityNotice{
			msg: "Removing a sign-in method needs a fresh proof of identity with another of your methods (not the password).", gate: v,
		})
	}
	if err := p.Credentials.DeleteCredential(r.Context(), cred.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	p.Log.InfoContext(r.Context(), "security method removed", "user", u.Username, "method", cred.Type, "credential", cred.ID)
	p.audit(r.Context(), u, "user.method-remove."+cred.Type)
	if err := p.methodChanged(r, u, change{Method: cred.Type, CredentialID: cred.ID, Via: "fresh-proof"}); err != nil {
		return err
	}
	// Removing a method is a critical change: whatever was signed in or
	// issued with it stops working now (continuous access evaluation).
	// The user signs in again, with what remains.
	if p.Revoke != nil {
		if err := p.Revoke(r.Context(), u.ID, "method-removed"); err != nil {
			return err
		}
		p.Sessions.ClearCookie(w)
		http.Redirect(w, r, "/login?return_to=%2Faccount%2Fsecurity", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/account/security?removed", http.StatusSeeOther)
	return nil
}

// renameCredential changes a method's label.
func (p *Pages) renameCredential(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	_, u, ok, err := p.requireSignIn(w, r, "/account/security")
	if !ok || err != nil {
		return err
	}
	cred, _, err := p.ownedCredential(r, u)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		return &pageError{http.StatusBadRequest, "Give the method a name."}
	}
	if _, err := p.Credentials.UpdateCredential(r.Context(), cred.ID, func(c store.Credential) (store.Credential, error) {
		c.Name = truncate(name, 64)
		return c, nil
	}); err != nil {
		return err
	}
	http.Redirect(w, r, "/account/security", http.StatusSeeOther)
	return nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
