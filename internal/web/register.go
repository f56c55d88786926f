package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// methodRecovery is the recovery-code method, which recovers an account
// and does nothing else.
const methodRecovery = "recovery-code"

// Registration is the built-in protection of security info: what adding
// or removing a sign-in method takes, whatever the policies say. A stolen
// password alone must never be enough to register the thief's own
// second factor, which would then pass every step-up.
type Registration struct {
	// Freshness is how recent the proof with an existing method must be.
	Freshness time.Duration
	// PhishingResistant demands a passkey proof for changes.
	PhishingResistant bool
	// Window is how long after an account's creation a first method may
	// be registered after a password sign-in alone; 0 is off.
	Window time.Duration
	// WindowMaxRisk is the highest sign-in and user risk at which the
	// window applies: none, low, medium or any.
	WindowMaxRisk string
}

// DefaultRegistration is the protection with the configuration's
// defaults, for pages built without one.
func DefaultRegistration() Registration {
	return Registration{Freshness: 10 * time.Minute, Window: 14 * 24 * time.Hour, WindowMaxRisk: "none"}
}

// gate is the verdict on a change of security info.
type gate int

const (
	// gateOpen: the change may go ahead.
	gateOpen gate = iota
	// gateStepUp: a fresh proof with one of the user's methods is missing.
	gateStepUp
	// gateUnlock: no method of the user's can give the proof (there is
	// none, or none of the kind required): a temporary access pass, or
	// for a user who has one a recovery code, must open the registration.
	gateUnlock
	// gateNoRecoveryYet: recovery codes before any other method.
	gateNoRecoveryYet
)

// verdict is what a change needs, and what allowed it when it may go.
type verdict struct {
	gate gate
	// methods can give the missing proof (gateStepUp).
	methods []string
	// via names what allowed the change (the audit trail says it).
	via string
	// recovery says a recovery code can open the registration.
	recovery bool
}

// regProof is a proof good for registering methods only: a redeemed
// temporary access pass or a used recovery code. It is kept apart from
// the session's authentication events, keyed by the session, so no
// policy, token or gateway decision can ever count it.
type regProof struct {
	Method    string    `json:"method"`
	Ref       string    `json:"ref"` // the pass id or the recovery credential id
	Time      time.Time `json:"time"`
	ExpiresAt time.Time `json:"expires_at"`
}

// regProofs are the registration proofs, by session.
var regProofs = kvspace.JSON[regProof](kvspace.RegistrationProof)

// provers are the user's credentials that can prove it is them for a
// change: any but recovery codes, and passkeys only when phishing-
// resistant proofs are required.
func (p *Pages) provers(creds []store.Credential) []store.Credential {
	return slices.DeleteFunc(slices.Clone(creds), func(c store.Credential) bool {
		return c.Type == methodRecovery || (p.Registration.PhishingResistant && c.Type != "webauthn")
	})
}

// freshProof reports whether the session holds a proof, newer than the
// freshness window, made with one of provers other than the credential
// exclude. The password never counts: it is what an attacker has.
func (p *Pages) freshProof(s store.Session, provers []store.Credential, exclude string) bool {
	now := p.Now()
	for _, e := range s.Events {
		if e.Method == methodPassword || e.CredentialID == "" || e.CredentialID == exclude {
			continue
		}
		if now.Sub(e.Time) > p.Registration.Freshness || e.Time.After(now.Add(time.Minute)) {
			continue
		}
		if p.Registration.PhishingResistant && !e.PhishingResistant {
			continue
		}
		if slices.ContainsFunc(provers, func(c store.Credential) bool { return c.ID == e.CredentialID && c.Type == e.Method }) {
			return true
		}
	}
	return false
}

// methodNames are the distinct method names of creds, in prompt order.
func (p *Pages) methodNames(creds []store.Credential) []string {
	var out []string
	for _, m := range p.Methods.All() {
		if slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Type == m.Name() }) {
			out = append(out, m.Name())
		}
	}
	return out
}

// addVerdict says whether u may add a method of kind method now.
func (p *Pages) addVerdict(r *http.Request, u store.User, s store.Session, creds []store.Credential, method string) (verdict, error) {
	provers := p.provers(creds)
	hasOther := slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Type != methodRecovery })
	if method == methodRecovery && !hasOther {
		// Codes made with a password alone would be a thief's second
		// factor for the account's recovery.
		return verdict{gate: gateNoRecoveryYet}, nil
	}
	if p.freshProof(s, provers, "") {
		return verdict{gate: gateOpen, via: "fresh-proof"}, nil
	}
	rp, ok, err := p.loadRegProof(r.Context(), u, s, creds)
	if err != nil {
		return verdict{}, err
	}
	// A recovery code recovers: it opens the registration of a new
	// method, not of more recovery codes, and not where a phishing-
	// resistant proof is required.
	recoveryUsable := hasRecovery(creds) && !p.Registration.PhishingResistant
	if ok && (rp.Method == tap.Method || (recoveryUsable && method != methodRecovery)) {
		return verdict{gate: gateOpen, via: rp.Method}, nil
	}
	if len(creds) == 0 && p.inWindow(r, u, s) {
		return verdict{gate: gateOpen, via: "registration-window"}, nil
	}
	if names := p.methodNames(provers); len(names) > 0 {
		return verdict{gate: gateStepUp, methods: names, recovery: recoveryUsable && method != methodRecovery}, nil
	}
	return verdict{gate: gateUnlock, recovery: recoveryUsable && method != methodRecovery}, nil
}

// removeVerdict says whether u may remove the credential cred now: only
// with a fresh proof by another method where the user has one, never
// with a pass or a recovery code, which open registrations only.
func (p *Pages) removeVerdict(s store.Session, creds []store.Credential, cred store.Credential) verdict {
	provers := p.provers(creds)
	exclude := cred.ID
	if !slices.ContainsFunc(provers, func(c store.Credential) bool { return c.ID != cred.ID }) {
		// The user's only method can prove its own removal.
		exclude = ""
	}
	if p.freshProof(s, provers, exclude) {
		return verdict{gate: gateOpen, via: "fresh-proof"}
	}
	names := p.methodNames(slices.DeleteFunc(slices.Clone(provers), func(c store.Credential) bool { return c.ID == exclude }))
	if len(names) == 0 {
		return verdict{gate: gateUnlock}
	}
	return verdict{gate: gateStepUp, methods: names}
}

func hasRecovery(creds []store.Credential) bool {
	return slices.ContainsFunc(creds, func(c store.Credential) bool { return c.Type == methodRecovery })
}

// riskRank orders risk levels; "" and none are no risk.
func riskRank(level string) int {
	switch level {
	case "low":
		return 1
	case "medium":
		return 2
	case "high":
		return 3
	}
	return 0
}

// inWindow reports whether u, who has no method, may register a first
// one with the password sign-in of s: within the window after the
// account was created, from a sign-in and a user without risk (or below
// the configured limit).
func (p *Pages) inWindow(r *http.Request, u store.User, s store.Session) bool {
	reg := p.Registration
	if reg.Window <= 0 || u.CreatedAt.IsZero() || p.Now().Sub(u.CreatedAt) > reg.Window {
		return false
	}
	if reg.WindowMaxRisk == "any" {
		return true
	}
	limit := riskRank(reg.WindowMaxRisk)
	if len(s.Events) == 0 || riskRank(s.Events[0].Risk) > limit {
		return false
	}
	if p.UserRisk != nil && riskRank(p.UserRisk(r.Context(), u.ID)) > limit {
		return false
	}
	return true
}

// loadRegProof returns the session's registration proof while it holds:
// unexpired, and its pass not revoked or its recovery codes not removed.
func (p *Pages) loadRegProof(ctx context.Context, u store.User, s store.Session, creds []store.Credential) (regProof, bool, error) {
	if p.KV == nil {
		return regProof{}, false, nil
	}
	rp, err := regProofs.At(s.ID).Get(ctx, p.KV)
	if errors.Is(err, store.ErrNotFound) {
		return regProof{}, false, nil
	}
	if err != nil {
		return regProof{}, false, fmt.Errorf("read the registration proof: %w", err)
	}
	if !p.Now().Before(rp.ExpiresAt) {
		return regProof{}, false, nil
	}
	switch rp.Method {
	case tap.Method:
		return rp, p.Passes != nil && p.Passes.Valid(ctx, u.ID, rp.Ref), nil
	case methodRecovery:
		return rp, slices.ContainsFunc(creds, func(c store.Credential) bool { return c.ID == rp.Ref }), nil
	}
	return regProof{}, false, nil
}

// saveRegProof records a registration proof for the session s.
func (p *Pages) saveRegProof(ctx context.Context, s store.Session, rp regProof) error {
	_ = regProofs.At(s.ID).Delete(ctx, p.KV)
	return regProofs.At(s.ID).Create(ctx, p.KV, rp, rp.ExpiresAt)
}

// gateChange answers a request whose change of security info is not
// allowed yet: a step-up that comes back to returnTo, or the security
// page explaining what opens the registration. It reports done when it
// answered.
func (p *Pages) gateChange(w http.ResponseWriter, r *http.Request, u store.User, s store.Session, v verdict, returnTo string) (bool, error) {
	switch v.gate {
	case gateOpen:
		return false, nil
	case gateNoRecoveryYet:
		return true, p.renderSecurity(w, r, u, s, http.StatusForbidden, securityNotice{
			msg: "Recovery codes can be made once you have another sign-in method, such as an authenticator app or a passkey. Add one first.",
		})
	case gateStepUp:
		if r.Method == http.MethodGet {
			q := url.Values{"return_to": {returnTo}, "methods": {strings.Join(v.methods, ",")}}
			http.Redirect(w, r, "/stepup?"+q.Encode(), http.StatusSeeOther)
			return true, nil
		}
	}
	return true, p.renderSecurity(w, r, u, s, http.StatusForbidden, securityNotice{gate: v, returnTo: returnTo})
}

// redeemPass takes a temporary access pass typed on the security page:
// the session may then register methods, for as long as the pass lives
// and at most the freshness window, and for nothing else.
func (p *Pages) redeemPass(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	ctx := r.Context()
	returnTo := httpx.SafeReturnTo(r.PostFormValue("return_to"))
	sess, u, ok, err := p.requireSignIn(w, r, "/account/security")
	if !ok || err != nil {
		return err
	}
	if p.Passes == nil || p.KV == nil {
		return &pageError{http.StatusNotFound, "Temporary access passes are not in use here."}
	}
	return p.unlock(w, r, u, sess, returnTo, tap.Method, func() (regProof, error) {
		pass, err := p.Passes.Redeem(ctx, u.ID, r.PostFormValue("pass"))
		if errors.Is(err, tap.ErrInvalid) || errors.Is(err, tap.ErrUsed) {
			return regProof{}, authn.ErrInvalid
		}
		if err != nil {
			return regProof{}, err
		}
		exp := p.Now().Add(p.Registration.Freshness)
		if pass.ExpiresAt.Before(exp) {
			exp = pass.ExpiresAt
		}
		return regProof{Method: tap.Method, Ref: pass.ID, Time: p.Now().UTC(), ExpiresAt: exp}, nil
	})
}

// recoverWithCode takes a recovery code typed on the security page: the
// session may then register one new method (the lost one's successor),
// within the freshness window, and nothing else.
func (p *Pages) recoverWithCode(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	ctx := r.Context()
	returnTo := httpx.SafeReturnTo(r.PostFormValue("return_to"))
	sess, u, ok, err := p.requireSignIn(w, r, "/account/security")
	if !ok || err != nil {
		return err
	}
	m, found := p.Methods.Get(methodRecovery)
	if !found || p.KV == nil || p.Registration.PhishingResistant {
		return &pageError{http.StatusNotFound, "Recovery codes cannot open a registration here. Ask your administrator for a temporary access pass."}
	}
	return p.unlock(w, r, u, sess, returnTo, methodRecovery, func() (regProof, error) {
		creds, err := p.Credentials.ListCredentials(ctx, u.ID)
		if err != nil {
			return regProof{}, err
		}
		creds = slices.DeleteFunc(creds, func(c store.Credential) bool { return c.Type != methodRecovery })
		if len(creds) == 0 {
			return regProof{}, authn.ErrInvalid
		}
		proof, err := m.Verify(ctx, u, creds, nil, authn.Response{Code: r.PostFormValue("code")})
		if err != nil {
			return regProof{}, err
		}
		return regProof{Method: methodRecovery, Ref: proof.CredentialID, Time: p.Now().UTC(), ExpiresAt: p.Now().Add(p.Registration.Freshness)}, nil
	})
}

// unlock runs check, a guessable answer's verification, under the
// user's throttle, and on success records the registration proof, logs
// it and sends the browser back.
func (p *Pages) unlock(w http.ResponseWriter, r *http.Request, u store.User, s store.Session, returnTo, method string, check func() (regProof, error)) error {
	ctx := r.Context()
	throttleKey := "user:" + u.ID
	g, locked, err := beginGuess(ctx, limit{p.Throttle, throttleKey})
	if err != nil {
		return err
	}
	defer g.release(ctx)
	if locked {
		if err := p.logSecurity(r, u, method, "throttled", reason.TooManyFailures); err != nil {
			return err
		}
		return p.renderSecurity(w, r, u, s, http.StatusTooManyRequests, securityNotice{msg: "Too many attempts. Wait a few minutes and try again.", returnTo: returnTo})
	}
	rp, err := check()
	if errors.Is(err, authn.ErrInvalid) || errors.Is(err, authn.ErrReplay) {
		g.failed()
		if err := p.logSecurity(r, u, method, "failure", stepUpFailure(err)); err != nil {
			return err
		}
		msg := "That pass is not valid. Check it, or ask your administrator for a new one."
		if method == methodRecovery {
			msg = "That recovery code is not valid, or was already used."
		}
		return p.renderSecurity(w, r, u, s, httpx.StatusOf(err), securityNotice{msg: msg, returnTo: returnTo})
	}
	if err != nil {
		return err
	}
	_ = g[0].Succeeded(ctx)
	if err := p.logSecurity(r, u, method, "success", reason.RegistrationUnlocked); err != nil {
		return err
	}
	if err := p.saveRegProof(ctx, s, rp); err != nil {
		return err
	}
	p.Log.InfoContext(ctx, "registration opened", "user", u.Username, "with", method)
	p.audit(ctx, u, "user.registration-unlock."+method)
	if returnTo == "/account" || returnTo == "/account/security" {
		returnTo = "/account/security?unlocked"
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther) //nolint:gosec // httpx.SafeReturnTo admits local paths only
	return nil
}

// logSecurity writes a change or an attempt on the user's security info
// to the sign-in log.
func (p *Pages) logSecurity(r *http.Request, u store.User, method, decision string, why reason.Code) error {
	return p.logMethod(r, "security-info", u, method, decision, why)
}
