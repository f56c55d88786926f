package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// flowLifetime bounds how long a user may take to sign in and step up.
const flowLifetime = 30 * time.Minute

// maxInteractions stops a flow that keeps sending the user back to sign
// in without progress (a misconfigured policy, or a bot).
const maxInteractions = 8

// knownScopes are the scopes Stepgate understands.
var knownScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// pkceChallenge is an S256 challenge: base64url of 32 bytes.
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// flow is an authorization request in progress. The browser carries it
// sealed with the secrets key (see sealFlow), so nothing the client asked
// for (acr_values, max_age, claims) can be edited away mid-flow.
type flow struct {
	ClientID      string         `json:"client_id"`
	RedirectURI   string         `json:"redirect_uri"`
	State         string         `json:"state,omitempty"`
	Nonce         string         `json:"nonce,omitempty"`
	Scope         []string       `json:"scope"`
	CodeChallenge string         `json:"code_challenge,omitempty"`
	Prompt        []string       `json:"prompt,omitempty"`
	MaxAge        int64          `json:"max_age"` // seconds; -1 when absent
	ACRValues     []string       `json:"acr_values,omitempty"`
	Claims        *ClaimsRequest `json:"claims,omitempty"`
	// Capabilities are the client capabilities (xms_cc) the client
	// registered or declared in the claims parameter.
	Capabilities []string  `json:"xms_cc,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	Interactions int       `json:"interactions,omitempty"`
}

// wants reports whether the flow's prompt includes v.
func (f *flow) wants(v string) bool { return slices.Contains(f.Prompt, v) }

// authorize starts a flow: it checks the client and redirect URI (errors
// there are shown to the user, never redirected, or the endpoint would be
// an open redirector), then the rest of the request (errors there go back
// to the client).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.ErrorPage(w, r, http.StatusBadRequest, "The sign-in request could not be read.")
		return
	}
	q := r.Form
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "acr_values", "claims"} {
		if len(q[k]) > 1 {
			p.ErrorPage(w, r, http.StatusBadRequest, fmt.Sprintf("The sign-in request repeats the parameter %s; the application must send it once.", k))
			return
		}
	}
	c, err := p.Clients.Get(r.Context(), q.Get("client_id"))
	if errors.Is(err, ErrUnknownClient) {
		p.ErrorPage(w, r, httpx.StatusOf(err), "The application that sent you here is not registered with this sign-in service (unknown client_id).")
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	redirect := q.Get("redirect_uri")
	if !c.HasRedirectURI(redirect) {
		p.Log.InfoContext(r.Context(), "authorize: redirect_uri not registered", "client", c.ID, "redirect_uri", redirect)
		p.ErrorPage(w, r, http.StatusBadRequest, "The application asked to return you to an address it has not registered (redirect_uri mismatch). Nothing was sent to it.")
		return
	}
	f, oe := p.parseFlow(q, c)
	if oe != nil {
		p.redirectError(w, r, c.ID, redirect, q.Get("state"), oe)
		return
	}
	id, err := p.sealFlow(f)
	if errors.Is(err, errFlowTooLarge) {
		// Shown, not redirected: the redirect would echo the oversized
		// state back.
		p.ErrorPage(w, r, httpx.StatusOf(err), fmt.Sprintf("The sign-in request is too large: its state, nonce, scope and claims together may take at most %d bytes. The application must send a shorter request.", maxFlowBytes))
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.continueFlow(w, r, id, f)
}

// maxFlowBytes bounds a flow as the browser carries it: sealed, it has
// to fit the sign-in page's return address.
const maxFlowBytes = 1400

// errFlowTooLarge means an authorization request exceeds maxFlowBytes.
var errFlowTooLarge = errkind.New(errkind.Invalid, "authorization request too large")

// errNoFlow means a flow did not open: altered, from another server, or
// past flowLifetime.
var errNoFlow = errkind.New(errkind.Invalid, "authorization request expired or altered")

// flowAAD binds sealed flows to their use, so no other sealed value of
// the server passes for one.
var flowAAD = []byte("oidc-flow")

// sealFlow returns the id of f: f itself, encrypted and authenticated.
//
// Anyone can start an authorization request by opening a client's
// sign-in link, before signing in. A flow kept in the store for each
// would let an anonymous client grow the database without bound (a flood
// of /authorize, each up to the size of a URL, kept for flowLifetime).
// Carried by the browser instead, a flow costs the server nothing until
// it ends in a code, which needs a signed-in user. Sealing keeps it as
// tamper-proof as a stored one; the expiry travels inside.
func (p *Provider) sealFlow(f *flow) (string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	if len(b) > maxFlowBytes {
		return "", errFlowTooLarge
	}
	return base64.RawURLEncoding.EncodeToString(p.Box.Seal(b, flowAAD)), nil
}

// openFlow returns the flow id carries, if it is unaltered and young
// enough.
func (p *Provider) openFlow(id string) (*flow, error) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || id == "" {
		return nil, errNoFlow
	}
	b, err := p.Box.Open(raw, flowAAD)
	if err != nil {
		return nil, errNoFlow
	}
	var f flow
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("sealed flow is corrupt: %w", err)
	}
	if !p.Now().Before(f.CreatedAt.Add(flowLifetime)) {
		return nil, errNoFlow
	}
	return &f, nil
}

// parseFlow checks everything but the client and redirect URI.
func (p *Provider) parseFlow(q url.Values, c *Client) (*flow, *Error) {
	bad := func(code, desc string) *Error { return oauthErr(code, http.StatusBadRequest, desc) }
	if q.Has("request") || q.Has("request_uri") {
		return nil, bad("request_not_supported", "request objects are not supported; send the parameters directly")
	}
	if q.Get("response_type") != "code" {
		return nil, bad("unsupported_response_type", "only response_type=code is supported")
	}
	if m := q.Get("response_mode"); m != "" && m != "query" {
		return nil, bad("invalid_request", "only response_mode=query is supported")
	}
	if !c.Allows(GrantAuthorizationCode) {
		return nil, bad("unauthorized_client", "this client may not use the authorization code flow")
	}
	f := &flow{
		ClientID: c.ID, RedirectURI: q.Get("redirect_uri"), State: q.Get("state"), Nonce: q.Get("nonce"),
		Scope: strings.Fields(q.Get("scope")), Prompt: strings.Fields(q.Get("prompt")),
		ACRValues: strings.Fields(q.Get("acr_values")), MaxAge: -1, CreatedAt: p.Now().UTC(),
	}
	for _, s := range f.Scope {
		if !slices.Contains(knownScopes, s) {
			return nil, bad("invalid_scope", fmt.Sprintf("scope %q is not supported; use %s", s, strings.Join(knownScopes, ", ")))
		}
	}
	for _, v := range f.Prompt {
		if !slices.Contains([]string{"none", "login", "consent", "select_account"}, v) {
			return nil, bad("invalid_request", fmt.Sprintf("prompt %q is not supported", v))
		}
	}
	if f.wants("none") && len(f.Prompt) > 1 {
		return nil, bad("invalid_request", "prompt=none cannot be combined with other values")
	}
	if s := q.Get("max_age"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, bad("invalid_request", "max_age must be a whole number of seconds, 0 or more")
		}
		f.MaxAge = n
	}
	method, challenge := q.Get("code_challenge_method"), q.Get("code_challenge")
	switch {
	case challenge == "" && c.Public:
		return nil, bad("invalid_request", "a public client must use PKCE: send code_challenge and code_challenge_method=S256")
	case challenge == "" && method != "":
		return nil, bad("invalid_request", "code_challenge_method without code_challenge")
	case challenge != "" && method != "S256":
		return nil, bad("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
	case challenge != "" && !pkceChallenge.MatchString(challenge):
		return nil, bad("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	}
	f.CodeChallenge = challenge
	claims, err := ParseClaims(q.Get("claims"))
	if err != nil {
		return nil, bad("invalid_request", err.Error())
	}
	f.Claims = claims
	f.Capabilities = slices.Clone(c.Capabilities)
	for _, cp := range claims.capabilities() {
		if !slices.Contains(f.Capabilities, cp) {
			f.Capabilities = append(f.Capabilities, cp)
		}
	}
	return f, nil
}

// resume continues a flow after the user signed in or stepped up.
func (p *Provider) resume(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("flow")
	f, err := p.openFlow(id)
	if errors.Is(err, errNoFlow) {
		p.ErrorPage(w, r, httpx.StatusOf(err), "This sign-in request has expired or was changed. Go back to the application and start again.")
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.continueFlow(w, r, id, f)
}

// continueFlow decides and acts: send the user to sign in or step up,
// refuse, or issue a code.
func (p *Provider) continueFlow(w http.ResponseWriter, r *http.Request, id string, f *flow) {
	ctx := r.Context()
	start := time.Now()
	entry := audit.SignIn{Source: "oidc", App: f.ClientID}
	v, err := p.decide(ctx, r, f, &entry)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	outcome := v.outcome()
	took := time.Since(start)
	p.Metrics.Decision("oidc", outcome, f.ClientID, took)
	if err := p.logDecision(r, &entry, v, outcome, took); err != nil {
		p.fail(w, r, err)
		return
	}
	if v.err == nil && (v.kind == verdictLogin || v.kind == verdictStepUp || v.kind == verdictPasswordChange) {
		if f.wants("none") {
			code := "interaction_required"
			if v.kind == verdictLogin {
				code = "login_required"
			}
			v = verdict{err: oauthErr(code, http.StatusBadRequest, v.why)}
		} else if f.Interactions >= maxInteractions {
			v = verdict{err: oauthErr("access_denied", http.StatusForbidden, "sign-in did not complete after several attempts")}
		}
	}
	if v.err != nil {
		p.redirectError(w, r, f.ClientID, f.RedirectURI, f.State, v.err)
		return
	}
	switch v.kind {
	case verdictLogin, verdictStepUp, verdictPasswordChange:
		// The count of interactions travels in the sealed flow; it stops
		// a browser sent round in circles, not an attacker, who could
		// start a new flow as easily.
		f.Interactions++
		next, err := p.sealFlow(f)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		q := url.Values{"return_to": {pathResume + "?flow=" + url.QueryEscape(next)}}
		page := "/login"
		switch v.kind {
		case verdictStepUp:
			page = "/stepup"
			if len(v.methods) > 0 {
				q.Set("methods", strings.Join(v.methods, ","))
			}
		case verdictPasswordChange:
			page = "/account/password"
		}
		http.Redirect(w, r, page+"?"+q.Encode(), http.StatusSeeOther)
	case verdictIssue:
		code, err := p.issueCode(ctx, f, v)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		p.redirectTo(w, r, f.RedirectURI, url.Values{"code": {code}, "state": {f.State}})
	}
}

// issueCode stores a grant and a single-use code for it.
func (p *Provider) issueCode(ctx context.Context, f *flow, v verdict) (string, error) {
	grantID, err := p.newGrant(ctx, f.ClientID, v.auth.UserID)
	if err != nil {
		return "", err
	}
	code := randomID(32)
	rec := codeRecord{ClientID: f.ClientID, RedirectURI: f.RedirectURI, CodeChallenge: f.CodeChallenge, GrantID: grantID, Auth: v.auth}
	return code, codes.At(code).Create(ctx, p.Store, rec, p.Now().Add(p.Lifetimes.Code))
}

// redirectError sends an error to the client's registered redirect URI.
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, clientID, redirect, state string, e *Error) {
	p.Log.InfoContext(r.Context(), "authorize refused", "client", clientID, "error", e.Code, "description", e.Description, "detail", e.Debug)
	p.redirectTo(w, r, redirect, url.Values{"error": {e.Code}, "error_description": {e.Description}, "state": {state}})
}

// redirectTo appends params (and iss, RFC 9207, so a client talking to
// several providers can tell which one answered) to a registered URI.
func (p *Provider) redirectTo(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	q := u.Query()
	for k, vs := range params {
		if len(vs) == 1 && vs[0] != "" {
			q.Set(k, vs[0])
		}
	}
	q.Set("iss", p.Issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther) //nolint:gosec // target is a registered redirect URI
}

func (p *Provider) fail(w http.ResponseWriter, r *http.Request, err error) {
	f := httpx.Fail(r.Context(), p.Log, "oidc request failed", err, "path", r.URL.Path)
	p.ErrorPage(w, r, f.Status, f.Message)
}

// sid derives the session id claim: stable across step-ups (which give
// the session a new storage id) and unlinkable to the cookie.
func (p *Provider) sid(s store.Session) string {
	m := hmac.New(sha256.New, p.SIDKey)
	fmt.Fprintf(m, "%s|%d", s.UserID, s.CreatedAt.UnixMicro())
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// loadSession returns the browser's session and its user, or
// session.ErrNoSession when there is none, or its user is gone or
// disabled.
func (p *Provider) loadSession(ctx context.Context, r *http.Request) (store.Session, store.User, error) {
	s, err := p.Sessions.Load(ctx, r)
	if err != nil {
		return s, store.User{}, err
	}
	u, err := p.Store.GetUser(ctx, s.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return s, u, session.ErrNoSession
	}
	return s, u, err
}

// logDecision writes the decision to the sign-in log. An error (a full
// log that fails closed) refuses the request: no unlogged decision goes
// through.
func (p *Provider) logDecision(r *http.Request, e *audit.SignIn, v verdict, outcome string, took time.Duration) error {
	if p.SignIns == nil {
		return nil
	}
	e.Decision, e.Reason = outcome, v.reason
	if e.ClientApp == "" {
		e.ClientApp = r.UserAgent()
	}
	e.MethodsPrompted = v.methods
	if v.kind == verdictIssue {
		e.MethodsCompleted = v.auth.AMR
	}
	e.LatencyMicros = took.Microseconds()
	return p.SignIns(r.Context(), *e)
}

// outcome is how the sign-in log and the metrics name v: allow, block,
// challenge (a step-up or a password change) or sign-in.
func (v verdict) outcome() string {
	switch {
	case v.err != nil:
		return "block"
	case v.kind == verdictStepUp || v.kind == verdictPasswordChange:
		return "challenge"
	case v.kind == verdictLogin:
		return "sign-in"
	}
	return "allow"
}
