package web

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// passwordFreshness is how recent a proof must be to change the password:
// someone at an unlocked, signed-in browser must not be able to.
const passwordFreshness = 10 * time.Minute

// recentProofs reports whether s has a proof newer than
// passwordFreshness, and whether one of them was a second factor.
func recentProofs(s store.Session, now time.Time) (fresh, secondFactor bool) {
	for _, e := range s.Events {
		if now.Sub(e.Time) > passwordFreshness {
			continue
		}
		fresh = true
		if e.Method != methodPassword {
			secondFactor = true
		}
	}
	return fresh, secondFactor
}

// passwordForm lets the signed-in user change their password, after a
// fresh proof.
func (p *Pages) passwordForm(w http.ResponseWriter, r *http.Request) error {
	sess, u, ok, err := p.requireSignIn(w, r, r.URL.RequestURI())
	if !ok || err != nil {
		return err
	}
	returnTo := httpx.SafeReturnTo(r.URL.Query().Get("return_to"))
	v := view{Title: "Change password", User: &u, Session: &sess, ReturnTo: returnTo}
	if fresh, _ := recentProofs(sess, p.Now()); !fresh {
		v.Choices = []choice{{Label: "Confirm it's you first", URL: "/stepup?return_to=" + url.QueryEscape(r.URL.RequestURI())}}
	}
	p.render(w, r, http.StatusOK, "password", v)
	return nil
}

// changePassword sets the new password. That is a security event: every
// session and token of the user ends (continuous access evaluation), this
// one included, and the user signs in again with the new password. Made
// right after a second factor it is a secure change, which also
// remediates the user's risk.
func (p *Pages) changePassword(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	sess, u, ok, err := p.requireSignIn(w, r, "/account/password")
	if !ok || err != nil {
		return err
	}
	fresh, afterMFA := recentProofs(sess, p.Now())
	returnTo := httpx.SafeReturnTo(r.PostFormValue("return_to"))
	v := view{Title: "Change password", User: &u, Session: &sess, ReturnTo: returnTo}
	if !fresh {
		v.Error = "Changing the password needs a fresh proof of identity."
		v.Choices = []choice{{Label: "Confirm it's you first", URL: "/stepup?return_to=" + url.QueryEscape("/account/password")}}
		p.render(w, r, http.StatusForbidden, "password", v)
		return nil
	}
	pw := r.PostFormValue("new_password")
	if pw != r.PostFormValue("confirm_password") {
		v.Error = "The two passwords differ. Type the same new password twice."
		p.render(w, r, http.StatusBadRequest, "password", v)
		return nil
	}
	if err := p.Passwords.SetPassword(r.Context(), u.Username, pw); err != nil {
		if !errors.Is(err, users.ErrWeakPassword) {
			return err
		}
		v.Error = err.Error()
		p.render(w, r, http.StatusBadRequest, "password", v)
		return nil
	}
	p.Log.InfoContext(r.Context(), "password changed", "user", u.Username, "after_mfa", afterMFA)
	p.audit(r.Context(), u, "user.password-change")
	if p.PasswordChanged != nil {
		p.PasswordChanged(r.Context(), u.ID, afterMFA)
	}
	p.Sessions.ClearCookie(w)
	// Every session just ended: sign in with the new password, then go
	// on to where the user was headed (an application's sign-in flow).
	http.Redirect(w, r, "/login?password_changed&return_to="+url.QueryEscape(returnTo), http.StatusSeeOther)
	return nil
}
