package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/session"
)

// PasskeyLogin is passwordless sign-in with a discoverable passkey: the
// authenticator, not a typed user name, says whose account it is.
type PasskeyLogin interface {
	Name() string
	BeginLogin(ctx context.Context) (authn.Challenge, error)
	// FinishLogin calls spend once the answer's signature verified.
	FinishLogin(ctx context.Context, state, data []byte, spend func(context.Context) error) (userID string, p authn.Proof, err error)
}

// passkeyLogin adds a passkey ceremony to the sign-in page's view. A
// failure only hides the passkey button: the password form still works.
//
// The ceremony is sealed into the page, bound to the browser's CSRF
// cookie, and nothing is stored: a page view is anonymous, and a flood of
// them must not grow the database (see authn.LoginChallenges).
func (p *Pages) passkeyLogin(w http.ResponseWriter, r *http.Request, v *view) {
	if p.Passkeys == nil {
		return
	}
	ch, err := p.Passkeys.BeginLogin(r.Context())
	if err == nil {
		v.Ceremony, err = p.PasskeyChallenges.Seal(ch.State, p.csrf.ensureSeed(w, r))
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
	returnTo := httpx.SafeReturnTo(r.PostFormValue("return_to"))
	ip := p.ClientIP.Of(r).String()
	throttleKey := "passkey-ip:" + ip
	again := func(status int, msg string) error {
		v := view{Title: "Sign in", Error: msg, ReturnTo: returnTo}
		p.passkeyLogin(w, r, &v)
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
	const spentMsg = "This sign-in expired or was already used. Try again."
	c, err := p.PasskeyChallenges.Open(r.PostFormValue("ceremony"), p.csrf.seed(r))
	if errors.Is(err, authn.ErrNoCeremony) {
		return again(httpx.StatusOf(err), spentMsg)
	}
	if err != nil {
		return err
	}
	// Single use: the challenge is spent once its answer verified, so a
	// replayed assertion, or a second post racing the first, is refused.
	spend := func(ctx context.Context) error { return p.PasskeyChallenges.Spend(ctx, c) }
	userID, proof, err := p.Passkeys.FinishLogin(ctx, c.State, []byte(r.PostFormValue("data")), spend)
	if errors.Is(err, authn.ErrNoCeremony) {
		p.Log.InfoContext(ctx, "passkey sign-in refused: challenge already used", "ip", ip)
		return again(httpx.StatusOf(err), spentMsg)
	}
	if err != nil {
		if !errors.Is(err, authn.ErrInvalid) && !errors.Is(err, authn.ErrDisabledAccount) {
			return err
		}
		g.failed()
		p.Log.InfoContext(ctx, "passkey sign-in failed", "ip", ip, "reason", err.Error())
		if err := p.logAttempt(r, "sign-in", audit.SignIn{UserID: userID, Decision: "failure", Reason: reason.PasskeyRefused,
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
	p.afterSignIn(w, r, userID, returnTo)
	return nil
}
