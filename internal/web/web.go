// Package web serves Stepgate's own browser pages: sign-in, sign-out and
// the account page, with their templates and static files embedded in the
// binary. Every state-changing form is CSRF-protected.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxFormBytes bounds sign-in form bodies.
const maxFormBytes = 64 << 10

// maxUsernameBytes bounds the user name a sign-in form may carry.
const maxUsernameBytes = 256

// Authenticator checks passwords.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (store.User, error)
}

// UserGetter loads the user behind a session.
type UserGetter interface {
	GetUser(ctx context.Context, id string) (store.User, error)
}

// PasswordSetter sets a user's password, applying the password policy.
type PasswordSetter interface {
	SetPassword(ctx context.Context, username, pw string) error
}

// RiskAssessor is the risk engine as the pages use it.
type RiskAssessor interface {
	Failed(r *http.Request, username string)
	SignedIn(r *http.Request, u store.User, password, deviceID string) (level string, detections []risk.Detection)
	Remediated(r *http.Request, s store.Session)
}

// CredentialStore reads and changes users' registered methods.
type CredentialStore interface {
	ListCredentials(ctx context.Context, userID string) ([]store.Credential, error)
	UpdateCredential(ctx context.Context, id string, fn func(store.Credential) (store.Credential, error)) (store.Credential, error)
	DeleteCredential(ctx context.Context, id string) error
}

// Deps are what the pages need.
type Deps struct {
	Users Authenticator
	Store UserGetter
	// Methods are the authentication methods beyond the password, in
	// prompt order; Credentials holds what users registered.
	Methods     *authn.Registry
	Credentials CredentialStore
	Ceremonies  *authn.Ceremonies
	// Throttle slows down guessing of passwords and codes per user;
	// IPThrottle per client address, with more slack for shared NATs.
	Throttle   *authn.Throttle
	IPThrottle *authn.Throttle
	// RegisterCheck says what a user must prove before registering a
	// security method (the register-security-info user action of the
	// conditional access policies): nil when nothing, or the methods
	// that would satisfy it. blocked means registration is refused.
	RegisterCheck func(r *http.Request, u store.User, s store.Session) (methods []string, blocked bool)
	// Risk, when set, assesses sign-ins (their risk goes on the session's
	// sign-in event) and hears of failures and remediations.
	Risk RiskAssessor
	// Metrics counts sign-ins and step-ups; nil counts nothing.
	Metrics *metrics.Metrics
	// Audit records changes users make to their own accounts (methods
	// added or removed, password changed) in the audit trail; nil skips.
	Audit func(ctx context.Context, actor, action, target string)
	// Passwords changes passwords (the users service); nil hides the
	// password page.
	Passwords PasswordSetter
	// PasswordChanged hears of a password change; afterMFA says it was
	// made right after a second factor (a secure change, which remediates
	// user risk).
	PasswordChanged func(ctx context.Context, userID string, afterMFA bool)
	// Revoke ends a user's sessions and tokens after a critical change
	// (a sign-in method removed).
	Revoke func(ctx context.Context, userID, reason string) error
	// Passkeys, when set, offers passwordless sign-in on the sign-in
	// page.
	Passkeys PasskeyLogin
	// PasskeyChallenges seals passwordless sign-ins into the page; it is
	// needed when Passkeys is set.
	PasskeyChallenges *authn.LoginChallenges
	// Detail adds a method-specific line to listed credentials.
	Detail CredentialDetail
	// SignIns writes sign-in attempts to the sign-in log; nil skips. An
	// error (a full log that fails closed) refuses the sign-in.
	SignIns func(ctx context.Context, e audit.SignIn) error

	// Registration is the built-in protection of security info.
	Registration Registration
	// KV keeps registration proofs (a redeemed pass, a used recovery
	// code) and "this wasn't me" links; nil turns both off.
	KV store.KV
	// Passes are the temporary access passes; nil turns them off.
	Passes *tap.Store
	// UserRisk is the user's current risk level, for the registration
	// window; nil counts none.
	UserRisk func(ctx context.Context, userID string) string
	// Notifier mails a notice of every change of methods; nil sends none.
	Notifier Notifier
	// ReportKey signs "this wasn't me" links; Issuer is the base of their
	// address, and they work for ReportLinkLifetime.
	ReportKey          []byte
	Issuer             string
	ReportLinkLifetime time.Duration
	// Place names where a request comes from (a country), for notices.
	Place func(r *http.Request) string
	// RaiseRisk sets a user's risk high after they reported a change of
	// their methods as not theirs.
	RaiseRisk func(ctx context.Context, userID string)

	// Offer, when set, is the registration campaign: the method a user
	// could register to meet policies they cannot meet now, offered
	// right after sign-in until they have answered "Not now"
	// OfferSnoozes times. It needs KV.
	Offer        func(ctx context.Context, u store.User) (RegistrationOffer, bool, error)
	OfferSnoozes int

	// Devices approve device authorizations (RFC 8628) on the device
	// page; nil leaves the page out.
	Devices DeviceApprovals

	// StepUps describe, for the step-up page, the requests that send
	// users there; nil leaves the page to its address's methods= hint.
	StepUps []StepUpSource

	// Elevation runs users' requests for their eligible roles, and
	// Access builds the access request their activation is decided on
	// (for the app elevate.App); the roles pages are served when both
	// are set.
	Elevation *elevate.Service
	Access    func(r *http.Request, u store.User, s *store.Session, now time.Time) *policy.Request

	Sessions *session.Manager
	CSRFKey  []byte
	Secure   bool // the issuer is https
	ClientIP httpx.ClientIP
	Log      *slog.Logger
	Now      func() time.Time
}

// Pages serves the browser pages.
type Pages struct {
	Deps
	csrf  *csrf
	pages map[string]*template.Template
}

// New parses the templates and returns the pages.
func New(d Deps) (*Pages, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	// Unset parts of the protection take their strict values: the
	// default freshness, no risk tolerated, no window.
	if d.Registration.Freshness <= 0 {
		d.Registration.Freshness = DefaultRegistration().Freshness
	}
	if d.Registration.WindowMaxRisk == "" {
		d.Registration.WindowMaxRisk = "none"
	}
	if d.ReportLinkLifetime <= 0 {
		d.ReportLinkLifetime = 7 * 24 * time.Hour
	}
	if d.Passkeys != nil && d.PasskeyChallenges == nil {
		return nil, errors.New("web: passkey sign-in needs PasskeyChallenges")
	}
	p := &Pages{Deps: d, csrf: newCSRF(d.CSRFKey, d.Secure), pages: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"fmtTime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"join":    strings.Join,
		"lower":   strings.ToLower,
	}
	layout := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	for _, name := range []string{"login", "stepup", "account", "logout", "error", "security", "enroll", "password", "report", "device", "roles", "roleconfirm", "offer"} {
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		p.pages[name] = t
	}
	return p, nil
}

// Mount registers the pages on mux.
func (p *Pages) Mount(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /{$}", http.RedirectHandler("/account", http.StatusSeeOther))
	mux.Handle("GET /login", p.handle(p.loginForm))
	mux.Handle("POST /login", p.handle(p.login))
	mux.Handle("POST /login/passkey", p.handle(p.loginPasskey))
	mux.Handle("GET /logout", p.handle(p.logoutForm))
	mux.Handle("POST /logout", p.handle(p.logout))
	mux.Handle("GET /account", p.handle(p.account))
	mux.Handle("GET "+offerPath, p.handle(p.offerForm))
	mux.Handle("POST "+offerPath, p.handle(p.snooze))
	mux.Handle("GET /stepup", p.handle(p.stepUpForm))
	mux.Handle("POST /stepup", p.handle(p.stepUp))
	mux.Handle("GET /account/security", p.handle(p.security))
	mux.Handle("GET /account/security/add", p.handle(p.enrollForm))
	mux.Handle("POST /account/security/add", p.handle(p.enroll))
	mux.Handle("POST /account/security/remove", p.handle(p.removeCredential))
	mux.Handle("POST /account/security/rename", p.handle(p.renameCredential))
	mux.Handle("POST /account/security/tap", p.handle(p.redeemPass))
	mux.Handle("POST /account/security/recover", p.handle(p.recoverWithCode))
	mux.Handle("GET /account/security/report", p.handle(p.reportForm))
	mux.Handle("POST /account/security/report", p.handle(p.report))
	if p.Devices != nil {
		mux.Handle("GET /device", p.handle(p.deviceForm))
		mux.Handle("POST /device", p.handle(p.deviceAnswer))
	}
	p.mountRoles(mux)
	if p.Passwords != nil {
		mux.Handle("GET /account/password", p.handle(p.passwordForm))
		mux.Handle("POST /account/password", p.handle(p.changePassword))
	}
}

// ErrorPage renders an error page with a message safe to show. Other
// features (the OIDC provider, the gateway) use it so every error looks
// the same.
func (p *Pages) ErrorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	httpx.NoStore(w)
	p.render(w, r, status, "error", view{Title: http.StatusText(status), Error: msg})
}

// AppErrorPage renders an error page that the gateway shows on an
// application's host (a refused, expired or failed request there), with
// links on to wherever helps: the application, the security page.
//
// Every address in it is absolute, to the issuer: a relative one would
// be the application's (its /static/style.css, its /login), which the
// gateway sends to sign-in or which does not exist. The page carries its
// own headers, since the gateway leaves the application's host without
// Stepgate's: a CSP that allows only the issuer's stylesheet and no
// script, no framing, and no Referer, so that following a link never
// hands the application's address (a callback's ticket) to the next
// site. It sets no cookie: the CSRF cookie belongs on Stepgate's host.
func (p *Pages) AppErrorPage(w http.ResponseWriter, r *http.Request, status int, msg string, links []httpx.Link) {
	base := strings.TrimSuffix(p.Issuer, "/")
	h := w.Header()
	httpx.NoStore(w)
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+origin(base)+"; img-src "+origin(base)+" data:; "+
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	v := view{Title: http.StatusText(status), Error: msg, Base: base, Links: links}
	if err := p.pages["error"].ExecuteTemplate(w, "layout", v); err != nil {
		p.Log.ErrorContext(r.Context(), "render page", "page", "error", "err", err)
	}
}

// origin is the scheme://host of an absolute URL, for a CSP source.
func origin(u string) string {
	x, err := url.Parse(u)
	if err != nil || x.Host == "" {
		return "'none'"
	}
	return x.Scheme + "://" + x.Host
}

// pageError is an error with a status and a message safe to show.
type pageError struct {
	status int
	public string
}

func (e *pageError) Error() string { return e.public }

// handle adapts a page function that returns an error; errors become
// status codes and error pages here and only here.
func (p *Pages) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		err := fn(w, r)
		if err == nil {
			return
		}
		var pe *pageError
		if !errors.As(err, &pe) {
			f := httpx.Fail(r.Context(), p.Log, "page failed", err, "path", r.URL.Path)
			pe = &pageError{f.Status, f.Message}
		}
		p.render(w, r, pe.status, "error", view{Title: http.StatusText(pe.status), Error: pe.public})
	})
}

// view is the data every template sees.
type view struct {
	Title    string
	CSRF     string
	User     *store.User
	Session  *store.Session
	Error    string
	Notice   string
	Username string
	ReturnTo string

	// Step-up and enrollment.
	Kind        string         // what the page asks for: password, code, totp, codes, webauthn-..., push, ...
	Method      string         // the method's name
	MethodLabel string         // the method's label
	Ceremony    string         // the ceremony id
	Show        map[string]any // what the method wants shown
	ShowJSON    string         // Show["options"] as JSON, for scripts
	Choices     []choice       // methods to choose from
	MethodHint  string         // where the proof of Method comes from
	Ask         *askView       // what the request that asked for a step-up is
	Credentials []credView     // the user's registered methods
	Addable     []choice       // methods the user can add
	Unlock      *unlockView    // what opens a registration
	Report      *reportView    // a "this wasn't me" link
	Device      *deviceView    // a device authorization
	Roles       *rolesView     // the roles pages
	Offer       *offerView     // the registration campaign's offer
	// RolesPage: the roles pages are served (the account pages link
	// to them). Activated are the user's elevated roles now.
	RolesPage bool
	Activated []store.Grant

	// Base is what the page's own links and stylesheet start with:
	// empty on Stepgate's host, the issuer's URL on an application's.
	Base string
	// Links are the ways on from an error page; none shows the link to
	// sign-in.
	Links []httpx.Link
}

// choice is a method offered on a page.
type choice struct {
	Name, Label, URL string
	Hint             string // where the proof comes from (the step-up page)
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.CSRF = p.csrf.token(w, r)
	v.RolesPage = p.rolesMounted()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := p.pages[name].ExecuteTemplate(w, "layout", v); err != nil {
		p.Log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
	}
}

func (p *Pages) loginForm(w http.ResponseWriter, r *http.Request) error {
	v := view{Title: "Sign in", ReturnTo: httpx.SafeReturnTo(r.URL.Query().Get("return_to"))}
	if r.URL.Query().Has("signed_out") {
		v.Notice = "You have signed out."
	}
	if r.URL.Query().Has("password_changed") {
		v.Notice = "Your password was changed. Sign in with the new one."
	}
	p.passkeyLogin(w, r, &v)
	p.render(w, r, http.StatusOK, "login", v)
	return nil
}

func (p *Pages) login(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	ctx := r.Context()
	username, returnTo := r.PostFormValue("username"), httpx.SafeReturnTo(r.PostFormValue("return_to"))
	ip := p.ClientIP.Of(r).String()
	// The failure counters and the risk history are keyed by the typed
	// name, which an anonymous client chooses: a name as long as the form
	// allows (64 KiB) would make each failed attempt store that much, for
	// days. No account has such a name, so it is refused unstored.
	if len(username) > maxUsernameBytes {
		p.render(w, r, http.StatusBadRequest, "login", view{Title: "Sign in", ReturnTo: returnTo,
			Error: fmt.Sprintf("A user name has at most %d characters. Check what you typed.", maxUsernameBytes)})
		return nil
	}
	// Guessing is slowed per account (a targeted attack) and per address
	// (one source spraying many accounts), before any password is hashed.
	userKey, ipKey := "login:"+strings.ToLower(strings.TrimSpace(username)), "ip:"+ip
	g, locked, err := beginGuess(ctx, limit{p.Throttle, userKey}, limit{p.IPThrottle, ipKey})
	if err != nil {
		return err
	}
	// A right password clears the account's count but only gives back
	// its own guess on the address, which others share.
	defer g.release(ctx)
	if locked {
		p.Metrics.SignIn("throttled")
		p.Log.InfoContext(ctx, "sign-in throttled", "username", username, "ip", ip)
		if err := p.logAttempt(r, "sign-in", audit.SignIn{Username: username, Decision: "throttled", Reason: reason.TooManyFailures,
			MethodsPrompted: []string{methodPassword}}); err != nil {
			return err
		}
		p.render(w, r, http.StatusTooManyRequests, "login", view{Title: "Sign in", Error: "Too many failed attempts. Wait a few minutes and try again.", Username: username, ReturnTo: returnTo})
		return nil
	}
	u, err := p.Users.Authenticate(ctx, username, r.PostFormValue("password"))
	if err != nil {
		msg := "Incorrect username or password."
		switch {
		case errors.Is(err, users.ErrDisabled):
			msg = "This account is disabled. Contact your administrator."
		case !errors.Is(err, users.ErrInvalidCredentials):
			return err
		}
		g.failed()
		if p.Risk != nil {
			p.Risk.Failed(r, username)
		}
		p.Metrics.SignIn("failure")
		p.Log.InfoContext(r.Context(), "sign-in failed", "username", username, "ip", ip, "reason", err.Error())
		why := reason.InvalidCredentials
		if errors.Is(err, users.ErrDisabled) {
			why = reason.AccountDisabled
		}
		if err := p.logAttempt(r, "sign-in", audit.SignIn{Username: username, Decision: "failure", Reason: why,
			MethodsPrompted: []string{methodPassword}}); err != nil {
			return err
		}
		v := view{Title: "Sign in", Error: msg, Username: username, ReturnTo: returnTo}
		p.passkeyLogin(w, r, &v)
		p.render(w, r, http.StatusUnauthorized, "login", v)
		return nil
	}
	_ = g[0].Succeeded(ctx)
	p.Metrics.SignIn("success")
	ev := store.AuthEvent{Method: "password", Time: p.Now().UTC(), AMR: []string{"pwd"}}
	entry := audit.SignIn{UserID: u.ID, Username: u.Username, Decision: "success",
		MethodsPrompted: []string{methodPassword}, MethodsCompleted: []string{methodPassword}}
	if p.Risk != nil {
		level, detections := p.Risk.SignedIn(r, u, r.PostFormValue("password"), p.device(w, r))
		ev.Risk, entry.Risk, entry.RiskLevel = level, logDetections(detections), level
		for _, d := range detections {
			ev.RiskReasons = append(ev.RiskReasons, d.Reason)
		}
	}
	// The entry is written before the session exists: a sign-in the log
	// cannot take does not happen.
	if err := p.logAttempt(r, "sign-in", entry); err != nil {
		return err
	}
	token, _, err := p.Sessions.Start(r.Context(), r, u.ID, ev, session.Meta{IP: ip, UserAgent: r.UserAgent()})
	if err != nil {
		return err
	}
	p.Log.InfoContext(r.Context(), "signed in", "user", u.Username, "ip", ip)
	p.Sessions.SetCookie(w, token)
	p.afterSignIn(w, r, u.ID, returnTo)
	return nil
}

func (p *Pages) logoutForm(w http.ResponseWriter, r *http.Request) error {
	// GET never changes state: it asks for a POST, so a link or an <img>
	// on another site cannot sign the user out.
	v := view{Title: "Sign out"}
	if s, err := p.Sessions.Load(r.Context(), r); err == nil {
		if u, err := p.Store.GetUser(r.Context(), s.UserID); err == nil {
			v.User = &u
		}
	}
	p.render(w, r, http.StatusOK, "logout", v)
	return nil
}

func (p *Pages) logout(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	if err := p.Sessions.End(r.Context(), r); err != nil {
		return err
	}
	p.Sessions.ClearCookie(w)
	http.Redirect(w, r, "/login?signed_out", http.StatusSeeOther)
	return nil
}

func (p *Pages) account(w http.ResponseWriter, r *http.Request) error {
	s, u, ok, err := p.requireSignIn(w, r, r.URL.RequestURI())
	if !ok || err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "account", view{Title: "Account", User: &u, Session: &s, Activated: activated(u, p.Now())})
	return nil
}

// requireSignIn returns the session and user of r. Without one it sends
// the browser to sign in, to come back to returnTo, and reports !ok.
func (p *Pages) requireSignIn(w http.ResponseWriter, r *http.Request, returnTo string) (store.Session, store.User, bool, error) {
	s, u, err := p.signedIn(r)
	if errors.Is(err, session.ErrNoSession) {
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(returnTo), http.StatusSeeOther)
		return s, u, false, nil
	}
	return s, u, err == nil, err
}

// signedIn returns the session and user of r. A session whose user is gone
// or disabled counts as no session.
func (p *Pages) signedIn(r *http.Request) (store.Session, store.User, error) {
	s, err := p.Sessions.Load(r.Context(), r)
	if err != nil {
		return s, store.User{}, err
	}
	u, err := p.Store.GetUser(r.Context(), s.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return s, u, session.ErrNoSession
	}
	return s, u, err
}

// deviceCookie names the browser for the risk engine's "new device"
// detection: a random, long-lived identifier with no other meaning.
const deviceCookie = "stepgate_device"

// device returns the browser's device identifier, giving it one when it
// has none (the first sign-in from a browser has no history to compare
// with, so it is not flagged for lacking one).
func (p *Pages) device(w http.ResponseWriter, r *http.Request) string {
	name := deviceCookie
	if p.Secure {
		name = "__Host-" + name
	}
	if c, err := r.Cookie(name); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	//nolint:gosec // Secure follows the issuer scheme, as for the session cookie
	http.SetCookie(w, &http.Cookie{Name: name, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		MaxAge: 400 * 24 * 3600, HttpOnly: true, Secure: p.Secure, SameSite: http.SameSiteLaxMode})
	return ""
}

// limit is a key counted by a throttle.
type limit struct {
	t   *authn.Throttle
	key string
}

// audit records a change u made to their own account.
func (p *Pages) audit(ctx context.Context, u store.User, action string) {
	if p.Audit != nil {
		p.Audit(ctx, "user:"+u.Username, action, "user:"+u.Username)
	}
}

// guess is one answer counted against several limits at once.
type guess []*authn.Attempt

// beginGuess reserves one guess under every limit before the answer is
// compared, and reports locked (reserving nothing) when any of them is
// locked. Reserving first is what holds parallel guesses to the limit.
func beginGuess(ctx context.Context, limits ...limit) (guess, bool, error) {
	var g guess
	for _, l := range limits {
		a, err := l.t.Begin(ctx, l.key)
		if err != nil {
			g.release(ctx)
			if errors.Is(err, authn.ErrThrottled) {
				return nil, true, nil
			}
			return nil, false, err
		}
		g = append(g, a)
	}
	return g, false, nil
}

// failed ends a wrong answer: it stays counted everywhere.
func (g guess) failed() {
	for _, a := range g {
		a.Failed()
	}
}

// release takes back whatever was not ended; deferred after beginGuess.
func (g guess) release(ctx context.Context) {
	for _, a := range g {
		_ = a.Release(ctx)
	}
}

// parseForm reads a bounded form body and checks its CSRF token.
func (p *Pages) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return &pageError{http.StatusBadRequest, "The form could not be read. Reload the page and try again."}
	}
	if !p.csrf.valid(r) {
		return &pageError{http.StatusForbidden, "This form has expired or was sent from another site. Reload the page and try again."}
	}
	return nil
}

// logDetections is the sign-in log's copy of the risk detections: the log
// keeps its own shape so that it does not depend on the detectors.
func logDetections(detections []risk.Detection) []audit.Detection {
	if len(detections) == 0 {
		return nil
	}
	logged := make([]audit.Detection, len(detections))
	for i, d := range detections {
		logged[i] = audit.Detection{Type: d.Type, Level: d.Level.String(), Reason: d.Reason, Evidence: d.Evidence}
	}
	return logged
}

// logAttempt writes e, from source, with the request's address and user
// agent.
func (p *Pages) logAttempt(r *http.Request, source string, e audit.SignIn) error {
	if p.SignIns == nil {
		return nil
	}
	e.Source = source
	e.IP = p.ClientIP.Of(r).String()
	e.ClientApp = r.UserAgent()
	return p.SignIns(r.Context(), e)
}
