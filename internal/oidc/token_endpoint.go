package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// maxFormBytes bounds back-channel request bodies.
const maxFormBytes = 64 << 10

// clientAssertionType is RFC 7523's assertion type for private_key_jwt.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime bounds private_key_jwt assertions, so their jti
// need only be remembered briefly to stop replay.
const maxAssertionLifetime = 5 * time.Minute

// clientAssertionAlgs are the asymmetric algorithms accepted for client
// assertions; HMAC would need a shared secret, which is what
// private_key_jwt exists to avoid.
var clientAssertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256, jose.PS256}

func clientAssertionAlgNames() []string {
	out := make([]string, len(clientAssertionAlgs))
	for i, a := range clientAssertionAlgs {
		out[i] = string(a)
	}
	return out
}

func errInvalidClient(debug error) *Error {
	return &Error{Code: "invalid_client", Status: http.StatusUnauthorized, Description: "client authentication failed", Debug: debug}
}

func errInvalidGrant(desc string, debug error) *Error {
	return &Error{Code: "invalid_grant", Status: http.StatusBadRequest, Description: desc, Debug: debug}
}

// parseBackChannel reads a form body; repeated parameters are refused
// (RFC 6749 3.2), which also stops parameter-pollution tricks.
func parseBackChannel(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, oauthErr("invalid_request", http.StatusBadRequest, "send the parameters as application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr("invalid_request", http.StatusBadRequest, "the request body could not be read")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, oauthErr("invalid_request", http.StatusBadRequest, "parameter "+k+" is repeated")
		}
	}
	return r.PostForm, nil
}

// authenticateClient checks the client's credentials by the one method
// it registered; presenting another is refused, so a confidential
// client can never be impersonated as public.
func (p *Provider) authenticateClient(r *http.Request, form url.Values) (*Client, error) {
	ctx := r.Context()
	basicID, basicSecret, hasBasic := r.BasicAuth()
	var id, method string
	switch {
	case hasBasic:
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, errInvalidClient(errors.New("basic credentials are not form-encoded"))
		}
		method = AuthSecretBasic
		if form.Get("client_id") != "" && form.Get("client_id") != id {
			return nil, errInvalidClient(errors.New("client_id differs from the basic credentials"))
		}
	case form.Get("client_assertion_type") != "":
		method = AuthPrivateKeyJWT
		id = form.Get("client_id")
	case form.Get("client_secret") != "":
		method, id = AuthSecretPost, form.Get("client_id")
	default:
		method, id = AuthNone, form.Get("client_id")
	}
	if id == "" && method == AuthPrivateKeyJWT {
		id = assertionSubject(form.Get("client_assertion"))
	}
	c, err := p.Clients.Get(ctx, id)
	if errors.Is(err, ErrUnknownClient) {
		return nil, errInvalidClient(fmt.Errorf("unknown client %q", id))
	}
	if err != nil {
		return nil, err
	}
	if c.AuthMethod != method {
		return nil, errInvalidClient(fmt.Errorf("client %s authenticates with %s, not %s", c.ID, c.AuthMethod, method))
	}
	switch method {
	case AuthSecretBasic:
		if !c.checkSecret(basicSecret) {
			return nil, errInvalidClient(fmt.Errorf("wrong secret for %s", c.ID))
		}
	case AuthSecretPost:
		if !c.checkSecret(form.Get("client_secret")) {
			return nil, errInvalidClient(fmt.Errorf("wrong secret for %s", c.ID))
		}
	case AuthPrivateKeyJWT:
		if err := p.checkClientAssertion(ctx, c, form); err != nil {
			return nil, errInvalidClient(err)
		}
	}
	return c, nil
}

// assertionSubject reads the sub of an unverified assertion only to find
// which client's keys to verify it with.
func assertionSubject(raw string) string {
	tok, err := jwt.ParseSigned(raw, clientAssertionAlgs)
	if err != nil {
		return ""
	}
	var c jwt.Claims
	if tok.UnsafeClaimsWithoutVerification(&c) != nil {
		return ""
	}
	return c.Subject
}

// checkClientAssertion verifies a private_key_jwt assertion (RFC 7523):
// signed by a registered key, iss and sub the client, aud this provider,
// short-lived, and its jti used once.
func (p *Provider) checkClientAssertion(ctx context.Context, c *Client, form url.Values) error {
	if form.Get("client_assertion_type") != clientAssertionType {
		return errors.New("unsupported client_assertion_type")
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), clientAssertionAlgs)
	if err != nil {
		return err
	}
	if c.JWKS == nil || len(tok.Headers) != 1 {
		return errors.New("no keys registered, or not one signature")
	}
	keys := c.JWKS.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = c.JWKS.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != tok.Headers[0].Algorithm {
			continue
		}
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return errors.New("assertion signature does not verify with the client's keys")
	}
	now := p.Now()
	exp := jwt.Expected{Issuer: c.ID, Subject: c.ID, Time: now}
	if err := claims.ValidateWithLeeway(exp, clockSkew); err != nil {
		return err
	}
	if !slices.ContainsFunc(claims.Audience, func(a string) bool {
		return a == p.Issuer || a == p.Issuer+pathToken || a == p.Issuer+pathIntrospect || a == p.Issuer+pathRevoke || a == p.Issuer+pathDeviceAuthorization
	}) {
		return errors.New("assertion audience is not this provider")
	}
	if claims.Expiry == nil || claims.Expiry.Time().After(now.Add(maxAssertionLifetime)) || claims.ID == "" {
		return errors.New("assertion needs jti and exp at most 5 minutes ahead")
	}
	err = kvspace.OIDCAssertion.At(c.ID+"|"+claims.ID).Create(ctx, p.Store, kvspace.Mark{}, claims.Expiry.Time().Add(clockSkew))
	if errors.Is(err, store.ErrConflict) {
		return errors.New("assertion replayed (jti already used)")
	}
	return err
}

// clientRequest reads a back-channel form and authenticates its client,
// answering the error itself when either fails.
func (p *Provider) clientRequest(w http.ResponseWriter, r *http.Request) (url.Values, *Client, bool) {
	form, err := parseBackChannel(w, r)
	if err != nil {
		p.writeError(w, r, err)
		return nil, nil, false
	}
	c, err := p.authenticateClient(r, form)
	if err != nil {
		p.writeError(w, r, err)
		return nil, nil, false
	}
	return form, c, true
}

// token is the token endpoint.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	form, c, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	grant := form.Get("grant_type")
	if !c.Allows(grant) {
		if !slices.Contains([]string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode}, grant) {
			p.writeError(w, r, oauthErr("unsupported_grant_type", http.StatusBadRequest, "grant_type must be authorization_code, refresh_token, client_credentials or "+GrantDeviceCode))
			return
		}
		p.writeError(w, r, oauthErr("unauthorized_client", http.StatusBadRequest, "this client may not use grant_type "+grant))
		return
	}
	// RFC 8707 2.2: a resource at the token endpoint may only repeat (or
	// narrow to) what the grant was made for; the database of a grant is
	// fixed when the user approves it, so any other value is refused.
	db, err := p.requestedDatabase(form)
	if err == nil && db != "" && (grant == GrantAuthorizationCode || grant == GrantClientCredentials) {
		err = errInvalidTarget("a database token is issued only through the device authorization grant: send resource with the device authorization request")
	}
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	var out issued
	switch grant {
	case GrantAuthorizationCode:
		out, err = p.exchangeCode(r.Context(), c, form)
	case GrantRefreshToken:
		out, err = p.refresh(r, c, form, db)
	case GrantClientCredentials:
		out, err = p.clientCredentials(r, c, form)
	case GrantDeviceCode:
		out, err = p.redeemDevice(r.Context(), c, form, db)
	}
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, out)
}

// exchangeCode redeems an authorization code once. A second redemption
// is an attack or a bug either way: it fails and revokes every token the
// first one issued (RFC 6749 4.1.2).
func (p *Provider) exchangeCode(ctx context.Context, c *Client, form url.Values) (issued, error) {
	code := form.Get("code")
	rec, err := claimOnce(ctx, p.Store, codes.At(code), func(r *codeRecord) *bool { return &r.Used })
	switch {
	case errors.Is(err, store.ErrNotFound) || code == "":
		return issued{}, errInvalidGrant("the authorization code is invalid or expired", nil)
	case errors.Is(err, errGrantUsed):
		if rerr := p.revokeGrant(ctx, rec.GrantID, "code-reuse"); rerr != nil {
			return issued{}, rerr
		}
		return issued{}, errInvalidGrant("the authorization code was already used; the tokens issued for it are revoked", errors.New("code replay"))
	case err != nil:
		return issued{}, err
	}
	if rec.ClientID != c.ID {
		// Burnt all the same: a code shown to the wrong client is leaked.
		_ = p.revokeGrant(ctx, rec.GrantID, "code-stolen")
		return issued{}, errInvalidGrant("the authorization code was issued to another client", fmt.Errorf("code of %s presented by %s", rec.ClientID, c.ID))
	}
	if form.Get("redirect_uri") != rec.RedirectURI {
		return issued{}, errInvalidGrant("redirect_uri does not match the authorization request", nil)
	}
	if err := checkPKCE(rec.CodeChallenge, form.Get("code_verifier")); err != nil {
		return issued{}, err
	}
	u, err := p.activeUser(ctx, rec.Auth.UserID)
	if err != nil {
		return issued{}, err
	}
	out, err := p.mint(c, u, rec.Auth, rec.GrantID, slices.Contains(rec.Auth.Scope, "openid"))
	if err != nil {
		return issued{}, err
	}
	if slices.Contains(rec.Auth.Scope, "offline_access") && c.Allows(GrantRefreshToken) {
		if out.RefreshToken, err = p.newRefreshToken(ctx, c.ID, rec.GrantID, rec.Auth); err != nil {
			return issued{}, err
		}
	}
	return out, nil
}

// checkPKCE verifies the code verifier against an S256 challenge. A
// verifier sent for a code issued without a challenge is refused too: it
// means the request and the redemption do not belong together.
func checkPKCE(challenge, verifier string) error {
	if challenge == "" {
		if verifier != "" {
			return errInvalidGrant("code_verifier sent, but the authorization request had no code_challenge", nil)
		}
		return nil
	}
	if len(verifier) < 43 || len(verifier) > 128 {
		return errInvalidGrant("code_verifier is missing or not 43-128 characters", nil)
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return errInvalidGrant("code_verifier does not match the code_challenge", nil)
	}
	return nil
}

func (p *Provider) activeUser(ctx context.Context, id string) (store.User, error) {
	u, err := p.Store.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return u, errInvalidGrant("the user no longer exists or is disabled", nil)
	}
	return u, err
}

func (p *Provider) newRefreshToken(ctx context.Context, clientID, grantID string, a authState) (string, error) {
	rt := randomID(32)
	rec := refreshRecord{ClientID: clientID, GrantID: grantID, Auth: a}
	g, active, err := p.grantActive(ctx, grantID)
	if err != nil {
		return "", err
	}
	if !active {
		return "", errInvalidGrant("the grant was revoked", nil)
	}
	return rt, refreshes.At(rt).Create(ctx, p.Store, rec, g.CreatedAt.Add(p.Lifetimes.RefreshToken))
}

// refresh rotates a refresh token. Presenting one that was already
// rotated means it was copied: the whole family is revoked, so the thief
// and the victim both lose access and the victim signs in again.
func (p *Provider) refresh(r *http.Request, c *Client, form url.Values, db string) (issued, error) {
	ctx := r.Context()
	rt := form.Get("refresh_token")
	if err := p.checkRefreshTarget(ctx, rt, db); err != nil {
		return issued{}, err
	}
	rec, err := claimOnce(ctx, p.Store, refreshes.At(rt), func(r *refreshRecord) *bool { return &r.Used })
	switch {
	case errors.Is(err, store.ErrNotFound) || rt == "":
		return issued{}, errInvalidGrant("the refresh token is invalid or expired", nil)
	case errors.Is(err, errGrantUsed):
		if rerr := p.revokeGrant(ctx, rec.GrantID, "refresh-reuse"); rerr != nil {
			return issued{}, rerr
		}
		return issued{}, errInvalidGrant("the refresh token was already used; its whole family is revoked", errors.New("refresh token replay"))
	case err != nil:
		return issued{}, err
	}
	if rec.ClientID != c.ID {
		return issued{}, errInvalidGrant("the refresh token was issued to another client", nil)
	}
	g, active, err := p.grantActive(ctx, rec.GrantID)
	if err != nil {
		return issued{}, err
	}
	if !active {
		return issued{}, errInvalidGrant("the grant was revoked", nil)
	}
	// A refresh grant from before a security event (password changed,
	// user disabled, admin revoke) is dead: the user signs in again.
	if err := p.checkEvents(ctx, rec.Auth.UserID, g.CreatedAt); err != nil {
		_ = p.revokeGrant(ctx, rec.GrantID, "security-event")
		return issued{}, errInvalidGrant("the grant was revoked by a security event; sign in again", err)
	}
	if s := form.Get("scope"); s != "" {
		// A refresh may narrow the scope, never widen it.
		narrowed := strings.Fields(s)
		for _, sc := range narrowed {
			if !slices.Contains(rec.Auth.Scope, sc) {
				return issued{}, oauthErr("invalid_scope", http.StatusBadRequest, "scope "+sc+" was not granted")
			}
		}
		rec.Auth.Scope = narrowed
	}
	u, err := p.activeUser(ctx, rec.Auth.UserID)
	if err != nil {
		return issued{}, err
	}
	if err := p.refreshAllowed(r, c, u, rec.Auth); err != nil {
		return issued{}, err
	}
	// The nonce belongs to the authentication request, not to refreshes.
	auth := rec.Auth
	auth.Nonce = ""
	out, err := p.mint(c, u, auth, rec.GrantID, slices.Contains(auth.Scope, "openid"))
	if err != nil {
		return issued{}, err
	}
	out.RefreshToken, err = p.newRefreshToken(ctx, c.ID, rec.GrantID, rec.Auth)
	return out, err
}

// checkRefreshTarget refuses a refresh whose resource is not the
// database its grant was made for: a refresh never changes a token's
// audience, so a token for one database (or for the client) cannot be
// turned into one for another. It reads the refresh token without using
// it up, so the refusal costs the client nothing; a grant's database is
// never changed, so the later redemption sees the same one.
func (p *Provider) checkRefreshTarget(ctx context.Context, rt, db string) error {
	if db == "" || rt == "" {
		return nil
	}
	rec, err := refreshes.At(rt).Get(ctx, p.Store)
	if errors.Is(err, store.ErrNotFound) {
		return errInvalidGrant("the refresh token is invalid or expired", nil)
	}
	if err != nil {
		return err
	}
	if rec.Auth.Database != db {
		return errInvalidTarget("the refresh token was issued for " + grantTarget(rec.Auth) + ", not the database " + db + ": a refresh keeps its audience; get a token for " + db + " with the device flow")
	}
	return nil
}

// grantTarget names what a grant's tokens are for, in error messages.
func grantTarget(a authState) string {
	if a.Database == "" {
		return "the client itself"
	}
	return "the database " + a.Database
}

// clientCredentials issues a token to a service client for itself,
// after the conditional access policies that include service clients
// (workload identities) had their say. A service cannot answer a
// challenge, so anything but allow refuses.
func (p *Provider) clientCredentials(r *http.Request, c *Client, form url.Values) (issued, error) {
	if c.Public {
		return issued{}, oauthErr("unauthorized_client", http.StatusBadRequest, "a public client cannot use client_credentials")
	}
	req := p.Access(r, store.User{}, nil, c.ID, p.Now())
	req.Subject = policy.Subject{Client: true, ID: c.ID}
	req.ClientApp = policy.ClientService
	// A service cannot answer a challenge: no method source, and
	// anything but allow refuses.
	if v, _ := access.Decide(access.Ask{Snapshot: p.snapshotFor(c.ID), Request: req}, nil); v.Outcome != policy.OutcomeAllow {
		return issued{}, &Error{Code: "unauthorized_client", Status: http.StatusBadRequest,
			Description: "conditional access does not allow this client to get a token", Debug: fmt.Errorf("%s (%s)", v.Reason, v.BlockedBy)}
	}
	scope := strings.Fields(form.Get("scope"))
	if slices.ContainsFunc(scope, func(s string) bool { return s == "openid" || s == "offline_access" }) {
		return issued{}, oauthErr("invalid_scope", http.StatusBadRequest, "openid and offline_access need a user; a service token has neither")
	}
	if slices.Contains(scope, AdminScope) && !slices.Contains(c.Scopes, AdminScope) {
		return issued{}, oauthErr("invalid_scope", http.StatusBadRequest, "client "+c.ID+" may not request "+AdminScope+"; list it in the client's scopes to admit it to the admin API")
	}
	service := store.User{ID: c.ID, Username: c.ID}
	return p.mint(c, service, authState{UserID: c.ID, Scope: scope}, "", false)
}

// refreshAllowed applies the conditional access policies to a refresh,
// through the decision core, as they were applied when the grant was
// made: the client's app, the contexts the grant carries, the user as
// they are now (groups, roles, user risk) and the proofs the grant was
// made with. A refresh token otherwise carries a decision for its whole
// life: a context whose policy asks for a sign-in every hour, a policy
// tightened since, or a user who became high risk would all be met by
// one old proof. A policy that now blocks, or asks for a proof those
// proofs do not give, ends the refresh with invalid_grant: the client
// sends the user through the authorization endpoint, where the step-up
// happens. The refresh is judged from the address it comes from, as
// every request is: a public client's is the user's device, a
// confidential client's its server, which location conditions must
// therefore allow (list its addresses as a named location if a policy
// would refuse them). A confidential client's server User-Agent says
// nothing of the user's device, so its refresh is judged on the
// platform the user signed in on: a policy that blocks a platform must
// not be passed, nor one that covers unknown platforms tripped, by a
// server's User-Agent.
func (p *Provider) refreshAllowed(r *http.Request, c *Client, u store.User, a authState) error {
	start := time.Now()
	req := p.Access(r, u, &store.Session{Events: a.Proofs}, c.ID, p.Now())
	req.AuthContexts = a.ACRs
	if !c.Public {
		req.Platform = a.Platform
	}
	snap := p.snapshotFor(c.ID)
	// A grant made before its proofs and platform were recorded: a block
	// on a platform or a risky sign-in added since would never see it,
	// so its user signs in again. Otherwise the core decides, with no
	// method source: nobody is there to step up.
	v := access.Verdict{Outcome: policy.OutcomeBlock, Reason: reason.GrantWithoutProofs}
	if len(a.Proofs) > 0 {
		v, _ = access.Decide(access.Ask{Snapshot: snap, Request: req}, nil)
	}
	took := time.Since(start)
	p.Metrics.Decision("oidc-refresh", v.Outcome.String(), c.ID, took)
	if v.Outcome == policy.OutcomeAllow && v.ReportOnlyUnmet == 0 {
		return nil
	}
	if p.SignIns != nil {
		e := audit.SignIn{Source: "oidc", App: c.ID, UserID: u.ID, Username: u.Username, LatencyMicros: took.Microseconds()}
		access.Record(&e, snap, req, &v)
		if err := p.SignIns(r.Context(), e); err != nil {
			return err
		}
	}
	if v.Outcome == policy.OutcomeAllow {
		return nil
	}
	return &Error{Code: "invalid_grant", Status: http.StatusBadRequest,
		Description: "conditional access asks for a new sign-in for this grant (" + string(v.Reason) + "); send the user through the authorization endpoint",
		Debug:       fmt.Errorf("refresh %s for %s", v.Outcome, v.Reason)}
}
