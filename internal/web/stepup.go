package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// methodPassword is the password, which every account may have and which
// the users service verifies rather than a registered Method.
const methodPassword = "password"

// userMethods returns the methods u can prove, in prompt order: the
// registered methods that have credentials, then the password.
func (p *Pages) userMethods(r *http.Request, u store.User) ([]string, []store.Credential, error) {
	creds, err := p.Credentials.ListCredentials(r.Context(), u.ID)
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, m := range p.Methods.All() {
		if m.Name() == methodRecovery {
			// Recovery codes open a registration on the security page
			// and prove nothing else, so no step-up offers them.
			continue
		}
		if slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Type == m.Name() }) {
			out = append(out, m.Name())
		}
	}
	if u.PasswordHash != "" {
		out = append(out, methodPassword)
	}
	return out, creds, nil
}

func (p *Pages) label(method string) string {
	if m, ok := p.Methods.Get(method); ok {
		return m.Label()
	}
	return "Password"
}

// stepUpForm asks the signed-in user for a further proof. Whoever sent
// the user here (the OIDC provider, the gateway) checks the session again
// when the user returns, so this page only collects proofs. It offers
// the methods that can meet what the sender's decision, made again on
// the server for return_to, still misses; the methods= hint in its
// address counts only for a return address no sender recognises, and
// then only narrows the user's methods. Editing the address cannot skip
// a requirement, nor put a method that will not be enough on the page.
func (p *Pages) stepUpForm(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	returnTo := httpx.SafeReturnTo(q.Get("return_to"))
	sess, u, ok, err := p.requireSignIn(w, r, r.URL.RequestURI())
	if !ok || err != nil {
		return err
	}
	have, creds, err := p.userMethods(r, u)
	if err != nil {
		return err
	}
	v := view{Title: "Confirm it's you", User: &u, Session: &sess, Username: u.Username, ReturnTo: returnTo}
	offered := p.fillAsk(r, &v, have, creds, q.Get("methods"))
	method := q.Get("method")
	if method == "" && len(offered) == 1 {
		method = offered[0]
	}
	if method == "" || !slices.Contains(offered, method) {
		if len(offered) == 0 && v.Ask == nil {
			v.Error = "None of your registered sign-in methods can give the proof this page needs. Ask your administrator, or add a method on your security page."
		}
		for _, m := range offered {
			v.Choices = append(v.Choices, choice{Name: m, Label: p.label(m), URL: stepUpURL(returnTo, q.Get("methods"), m), Hint: p.methodHint(m, creds)})
		}
		p.render(w, r, http.StatusOK, "stepup", v)
		return nil
	}
	return p.beginVerify(w, r, v, method, creds)
}

func stepUpURL(returnTo, methods, method string) string {
	q := url.Values{"return_to": {returnTo}, "method": {method}}
	if methods != "" {
		q.Set("methods", methods)
	}
	return "/stepup?" + q.Encode()
}

// beginVerify starts a verification ceremony and renders its page.
func (p *Pages) beginVerify(w http.ResponseWriter, r *http.Request, v view, method string, creds []store.Credential) error {
	v.Method, v.MethodLabel, v.MethodHint = method, p.label(method), p.methodHint(method, creds)
	p.Metrics.Prompt(method, v.User.ID)
	if method == methodPassword {
		v.Kind = methodPassword
		p.render(w, r, http.StatusOK, "stepup", v)
		return nil
	}
	m, _ := p.Methods.Get(method)
	mine := slices.DeleteFunc(slices.Clone(creds), func(c store.Credential) bool { return c.Type != method })
	ch, err := m.BeginVerify(r.Context(), *v.User, mine)
	if errors.Is(err, authn.ErrThrottled) {
		// The method's own limit (wrong codes, codes sent, requests
		// waiting on a device) is an answer for the user, not a fault.
		v.Ceremony = ""
		return p.stepUpFailed(w, r, v, throttledStepUp, httpx.StatusOf(err))
	}
	if err != nil {
		return err
	}
	id, err := p.Ceremonies.Start(r.Context(), authn.Ceremony{UserID: v.User.ID, Method: method, Purpose: authn.PurposeVerify, State: ch.State})
	if err != nil {
		return err
	}
	v.Ceremony = id
	p.setShow(&v, ch.Show)
	p.render(w, r, http.StatusOK, "stepup", v)
	return nil
}

// setShow copies what a method wants shown into the view.
func (p *Pages) setShow(v *view, show map[string]any) {
	v.Show = show
	// A QR code arrives as a data: URL, which html/template rightly
	// refuses in src unless told it is safe; only PNG images pass.
	if qr, ok := show["qr"].(string); ok && strings.HasPrefix(qr, "data:image/png;base64,") {
		v.Show = maps.Clone(show)
		v.Show["qr"] = template.URL(qr) //nolint:gosec // a PNG data URL built by the server
	}
	v.Kind, _ = show["kind"].(string)
	if v.Kind == "" {
		v.Kind = "code"
	}
	if opts, ok := show["options"]; ok {
		b, _ := json.Marshal(opts)
		v.ShowJSON = string(b)
	}
}

// stepUp verifies the answer, appends it to the session as a new
// authentication event and rotates the session id (a token planted or
// stolen before the step-up dies with it). The method comes from the
// server-side ceremony, never from the form, so an answer to one method
// cannot be passed off as another.
func (p *Pages) stepUp(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	ctx := r.Context()
	returnTo := httpx.SafeReturnTo(r.PostFormValue("return_to"))
	sess, u, ok, err := p.requireSignIn(w, r, returnTo)
	if !ok || err != nil {
		return err
	}
	v := view{Title: "Confirm it's you", User: &u, Session: &sess, Username: u.Username, ReturnTo: returnTo}
	throttleKey := "user:" + u.ID
	g, locked, err := beginGuess(ctx, limit{p.Throttle, throttleKey})
	if err != nil {
		return err
	}
	// An answer that was never compared (a pending push, an expired
	// ceremony) gives its guess back.
	defer g.release(ctx)
	if locked {
		if err := p.logStepUp(r, u, "", "throttled", reason.TooManyFailures); err != nil {
			return err
		}
		return p.stepUpFailed(w, r, v, "Too many attempts. Wait a few minutes and try again.", http.StatusTooManyRequests)
	}
	var proof authn.Proof
	ceremonyID := r.PostFormValue("ceremony")
	if ceremonyID == "" {
		proof, err = p.verifyPassword(r, u)
		v.Kind, v.Method, v.MethodLabel = methodPassword, methodPassword, "Password"
	} else {
		proof, err = p.verifyCeremony(r, u, ceremonyID, &v)
	}
	switch {
	case errors.Is(err, authn.ErrPending):
		if wantsJSON(r) {
			writeJSONStatus(w, http.StatusAccepted, map[string]string{"status": "pending"})
			return nil
		}
		v.Ceremony = ""
		return p.stepUpFailed(w, r, v, "Your device has not answered yet. Answer there, then start again.", httpx.StatusOf(err))
	case errors.Is(err, authn.ErrNoCeremony):
		return p.stepUpFailed(w, r, v, "This step expired or was already used. Start again.", httpx.StatusOf(err))
	case errors.Is(err, authn.ErrThrottled):
		// Refused by the method's own count before the answer was
		// compared: the deferred release gives the guess back.
		v.Ceremony = ""
		return p.stepUpFailed(w, r, v, throttledStepUp, httpx.StatusOf(err))
	case errors.Is(err, authn.ErrInvalid), errors.Is(err, authn.ErrReplay), errors.Is(err, authn.ErrDenied):
		g.failed()
		p.Log.InfoContext(ctx, "step-up failed", "user", u.Username, "method", v.Method, "ip", p.ClientIP.Of(r).String(), "reason", err.Error())
		if err := p.logStepUp(r, u, v.Method, "failure", stepUpFailure(err)); err != nil {
			return err
		}
		msg := "That was not right. Try again."
		if errors.Is(err, authn.ErrReplay) {
			msg = "That code was already used. Wait for a new one."
		}
		if errors.Is(err, authn.ErrDenied) {
			msg = "The request was denied on your device."
		}
		return p.stepUpFailed(w, r, v, msg, httpx.StatusOf(err))
	case err != nil:
		return err
	}
	// The key counts guesses at every step-up method. A right password
	// gives back only its own guess: were it to clear the count, a
	// holder of the password could guess a TOTP code a few times, step up
	// with the password, and guess again without end. A right answer from
	// a stronger method clears it.
	if proof.Method == methodPassword {
		g.release(ctx)
	} else {
		_ = g[0].Succeeded(ctx)
	}
	// Logged before the session changes: a step-up the log cannot take
	// does not happen.
	if err := p.logStepUp(r, u, proof.Method, "success", ""); err != nil {
		return err
	}
	token, stepped, err := p.Sessions.StepUp(ctx, r, proof.Event(p.Now()))
	if err == nil && p.Risk != nil && proof.Method != methodPassword {
		p.Risk.Remediated(r, stepped)
	}
	if errors.Is(err, session.ErrNoSession) {
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(returnTo), http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	p.Log.InfoContext(ctx, "stepped up", "user", u.Username, "method", proof.Method, "credential", proof.CredentialID)
	p.Metrics.Completed(proof.Method)
	p.Sessions.SetCookie(w, token)
	if wantsJSON(r) {
		writeJSONStatus(w, http.StatusOK, map[string]string{"redirect": returnTo})
		return nil
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther) //nolint:gosec // httpx.SafeReturnTo admits local paths only
	return nil
}

// verifyPassword re-checks the password of the session's user: the
// username is the session's, never the form's.
func (p *Pages) verifyPassword(r *http.Request, u store.User) (authn.Proof, error) {
	_, err := p.Users.Authenticate(r.Context(), u.Username, r.PostFormValue("password"))
	if errors.Is(err, users.ErrInvalidCredentials) || errors.Is(err, users.ErrDisabled) {
		return authn.Proof{}, fmt.Errorf("%w: %w", authn.ErrInvalid, err)
	}
	return authn.Proof{Method: methodPassword, AMR: []string{"pwd"}}, err
}

// verifyCeremony checks an answer against the ceremony it belongs to.
// A wrong answer keeps the ceremony for another try until MaxAttempts.
func (p *Pages) verifyCeremony(r *http.Request, u store.User, id string, v *view) (authn.Proof, error) {
	ctx := r.Context()
	c, err := p.Ceremonies.Load(ctx, id, u.ID, authn.PurposeVerify)
	if err != nil {
		return authn.Proof{}, err
	}
	m, ok := p.Methods.Get(c.Method)
	if !ok || c.Method == methodRecovery {
		return authn.Proof{}, authn.ErrNoCeremony
	}
	v.Method, v.MethodLabel, v.Ceremony, v.Kind = c.Method, m.Label(), id, "code"
	creds, err := p.Credentials.ListCredentials(ctx, u.ID)
	if err != nil {
		return authn.Proof{}, err
	}
	creds = slices.DeleteFunc(creds, func(cr store.Credential) bool { return cr.Type != c.Method })
	proof, err := m.Verify(ctx, u, creds, c.State, authn.Response{Code: r.PostFormValue("code"), Data: []byte(r.PostFormValue("data"))})
	if err == nil {
		// Single use: of two concurrent correct answers only one
		// completes the ceremony.
		return proof, p.Ceremonies.Done(ctx, id)
	}
	if errors.Is(err, authn.ErrInvalid) || errors.Is(err, authn.ErrReplay) {
		alive, ferr := p.Ceremonies.Failed(ctx, id)
		if ferr != nil {
			return authn.Proof{}, ferr
		}
		if !alive {
			v.Ceremony = ""
		}
	}
	return proof, err
}

// throttledStepUp is the step-up page's answer to a method's own limit.
const throttledStepUp = "Too many attempts or codes for this method. Wait a few minutes and try again, or use another method."

// stepUpFailed shows the step-up page again with msg, or answers JSON to
// a script.
func (p *Pages) stepUpFailed(w http.ResponseWriter, r *http.Request, v view, msg string, status int) error {
	if wantsJSON(r) {
		writeJSONStatus(w, status, map[string]string{"error": msg})
		return nil
	}
	v.Error = msg
	// The page shown again still says who asked and why.
	if have, creds, err := p.userMethods(r, *v.User); err == nil {
		p.fillAsk(r, &v, have, creds, "")
		if v.Method != "" {
			v.MethodHint = p.methodHint(v.Method, creds)
		}
	}
	if v.Ceremony == "" && v.Method != "" && v.Method != methodPassword {
		// The ceremony is spent: offer a fresh start.
		v.Choices = []choice{{Name: v.Method, Label: v.MethodLabel, URL: stepUpURL(v.ReturnTo, "", v.Method), Hint: v.MethodHint}}
		v.Kind = ""
	}
	p.render(w, r, status, "stepup", v)
	return nil
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// logStepUp writes a step-up attempt to the sign-in log.
func (p *Pages) logStepUp(r *http.Request, u store.User, method, decision string, why reason.Code) error {
	return p.logMethod(r, "step-up", u, method, decision, why)
}

// logMethod writes to the sign-in log, under source, an attempt of u's
// with one method: prompted, and completed when decision is success.
func (p *Pages) logMethod(r *http.Request, source string, u store.User, method, decision string, why reason.Code) error {
	e := audit.SignIn{UserID: u.ID, Username: u.Username, Decision: decision, Reason: why}
	if method != "" {
		e.MethodsPrompted = []string{method}
		if decision == "success" {
			e.MethodsCompleted = e.MethodsPrompted
		}
	}
	return p.logAttempt(r, source, e)
}

// stepUpFailure is the sign-in log's reason code for a refused proof.
func stepUpFailure(err error) reason.Code {
	switch {
	case errors.Is(err, authn.ErrReplay):
		return reason.Replayed
	case errors.Is(err, authn.ErrDenied):
		return reason.DeniedOnDevice
	}
	return reason.InvalidProof
}
