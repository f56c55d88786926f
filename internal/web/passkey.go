package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// Passwordless signs users in without a username or password: with a
// discoverable passkey, whose answer names the user.
type Passwordless interface {
	BeginLogin(ctx context.Context) (authn.Challenge, error)
	// FinishLogin verifies the answer and returns the user it belongs to.
	FinishLogin(ctx context.Context, state, data []byte) (userID string, proof authn.Proof, err error)
}

// passkeyForm starts a passwordless sign-in.
func (p *Pages) passkeyForm(w http.ResponseWriter, r *http.Request) error {
	returnTo := safeReturnTo(r.URL.Query().Get("return_to"))
	ch, err := p.Passwordless.BeginLogin(r.Context())
	if err != nil {
		return err
	}
	id, err := p.Ceremonies.Start(r.Context(), authn.Ceremony{Method: "webauthn", Purpose: authn.PurposeLogin, State: ch.State})
	if err != nil {
		return err
	}
	v := view{Title: "Sign in with a passkey", ReturnTo: returnTo, Ceremony: id}
	p.setShow(&v, ch.Show)
	v.Kind = "passkey-login"
	p.render(w, r, http.StatusOK, "login", v)
	return nil
}

// passkeyLogin finishes a passwordless sign-in and starts a session.
func (p *Pages) passkeyLogin(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	ctx := r.Context()
	returnTo := safeReturnTo(r.PostFormValue("return_to"))
	id := r.PostFormValue("ceremony")
	c, err := p.Ceremonies.Load(ctx, id, "", authn.PurposeLogin)
	if err != nil {
		return p.passkeyFailed(w, r, "This sign-in expired. Start again.", http.StatusBadRequest)
	}
	userID, proof, err := p.Passwordless.FinishLogin(ctx, c.State, []byte(r.PostFormValue("data")))
	if err == nil {
		err = p.Ceremonies.Done(ctx, id)
	}
	var u store.User
	if err == nil {
		u, err = p.Store.GetUser(ctx, userID)
		if err == nil && u.Disabled {
			err = authn.ErrInvalid
		}
	}
	if err != nil {
		if !errors.Is(err, authn.ErrInvalid) && !errors.Is(err, authn.ErrNoCeremony) && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		p.Log.InfoContext(ctx, "passkey sign-in failed", "ip", p.ClientIP.Of(r).String(), "reason", err.Error())
		return p.passkeyFailed(w, r, "That passkey could not sign you in.", http.StatusUnauthorized)
	}
	token, _, err := p.Sessions.Start(ctx, r, u.ID, proof.Event(p.Now()), session.Meta{IP: p.ClientIP.Of(r).String(), UserAgent: r.UserAgent()})
	if err != nil {
		return err
	}
	p.Log.InfoContext(ctx, "signed in", "user", u.Username, "method", "webauthn", "credential", proof.CredentialID)
	p.Sessions.SetCookie(w, token)
	if wantsJSON(r) {
		writeJSONStatus(w, http.StatusOK, map[string]string{"redirect": returnTo})
		return nil
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther) //nolint:gosec // safeReturnTo admits local paths only
	return nil
}

func (p *Pages) passkeyFailed(w http.ResponseWriter, r *http.Request, msg string, status int) error {
	if wantsJSON(r) {
		writeJSONStatus(w, status, map[string]string{"error": msg})
		return nil
	}
	p.render(w, r, status, "login", view{Title: "Sign in", Error: msg})
	return nil
}
