package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/session"
)

// PasskeyLogin is passwordless sign-in with a discoverable passkey: the
// authenticator, not a typed user name, says whose account it is.
type PasskeyLogin interface {
	Name() string
	BeginLogin(ctx context.Context) (authn.Challenge, error)
	FinishLogin(ctx context.Context, state, data []byte) (userID string, p authn.Proof, err error)
}

// passkeyLogin adds a passkey ceremony to the sign-in page's view. A
// failure only hides the passkey button: the password form still works.
func (p *Pages) passkeyLogin(r *http.Request, v *view) {
	if p.Passkeys == nil {
		return
	}
	ch, err := p.Passkeys.BeginLogin(r.Context())
	if err == nil {
		v.Ceremony, err = p.Ceremonies.Start(r.Context(), authn.Ceremony{Method: p.Passkeys.Name(), Purpose: authn.PurposeLogin, State: ch.State})
	}
	if err != nil {
		p.Log.ErrorContext(r.Context(), "start passkey sign-in", "err", err)
		v.Ceremony = ""
		return
	}
	p.setShow(v, ch.Show)
}

// loginPasskey finishes a passwordless sign-in. Failures are throttled per
// client address, since no account is known until the signature checks.
func (p *Pages) loginPasskey(w http.ResponseWriter, r *http.Request) error {
	if p.Passkeys == nil {
		return &pageError{http.StatusNotFound, "Passkey sign-in is not enabled here."}
	}
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	ctx := r.Context()
	returnTo := safeReturnTo(r.PostFormValue("return_to"))
	ip := p.ClientIP.Of(r).String()
	throttleKey := "passkey-ip:" + ip
	again := func(status int, msg string) error {
		v := view{Title: "Sign in", Error: msg, ReturnTo: returnTo}
		p.passkeyLogin(r, &v)
		p.render(w, r, status, "login", v)
		return nil
	}
	// The key is an address, which many people share: it is counted by
	// the address throttle, which has room for an office behind one NAT
	// and never locks for good (else a hundred junk answers would shut
	// everyone there out of passkey sign-in). A passkey's signature
	// cannot be guessed anyway.
	addresses := p.IPThrottle
	if addresses == nil {
		addresses = p.Throttle
	}
	g, locked, err := beginGuess(ctx, limit{addresses, throttleKey})
	if err != nil {
		return err
	}
	if locked {
		return again(http.StatusTooManyRequests, "Too many attempts. Wait a few minutes and try again.")
	}
	defer g.release(ctx)
	id := r.PostFormValue("ceremony")
	c, err := p.Ceremonies.Load(ctx, id, "", authn.PurposeLogin)
	if errors.Is(err, authn.ErrNoCeremony) {
		return again(http.StatusBadRequest, "This sign-in expired or was already used. Try again.")
	}
	if err != nil {
		return err
	}
	// Single use, whatever the outcome: a passkey answer is bound to
	// this challenge, and a new attempt gets a new one.
	if err := p.Ceremonies.Done(ctx, id); err != nil {
		return again(http.StatusBadRequest, "This sign-in expired or was already used. Try again.")
	}
	userID, proof, err := p.Passkeys.FinishLogin(ctx, c.State, []byte(r.PostFormValue("data")))
	if err != nil {
		if !errors.Is(err, authn.ErrInvalid) && !errors.Is(err, authn.ErrDisabledAccount) {
			return err
		}
		g.failed()
		p.Log.InfoContext(ctx, "passkey sign-in failed", "ip", ip, "reason", err.Error())
		if err := p.logAttempt(r, "sign-in", audit.SignIn{UserID: userID, Decision: "failure", Reason: "passkey-refused",
			MethodsPrompted: []string{"webauthn"}}); err != nil {
			return err
		}
		msg := "That passkey could not sign you in. Try again, or use your password."
		if errors.Is(err, authn.ErrDisabledAccount) {
			msg = "This account is disabled. Contact your administrator."
		}
		return again(http.StatusUnauthorized, msg)
	}
	// The key is an address, which many people share: a success gives
	// back only its own guess.
	g.release(ctx)
	if err := p.logAttempt(r, "sign-in", audit.SignIn{UserID: userID, Decision: "success",
		MethodsPrompted: []string{proof.Method}, MethodsCompleted: []string{proof.Method}}); err != nil {
		return err
	}
	token, _, err := p.Sessions.Start(ctx, r, userID, proof.Event(p.Now()), session.Meta{IP: ip, UserAgent: r.UserAgent()})
	if err != nil {
		return err
	}
	p.Log.InfoContext(ctx, "signed in", "user_id", userID, "ip", ip, "method", proof.Method, "credential", proof.CredentialID)
	p.Sessions.SetCookie(w, token)
	http.Redirect(w, r, returnTo, http.StatusSeeOther) //nolint:gosec // safeReturnTo admits local paths only
	return nil
}
