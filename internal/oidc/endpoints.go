package oidc

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/store"
)

// bearerToken reads an RFC 6750 bearer token from the Authorization
// header (the only place Stepgate accepts one: tokens in URLs end up in
// logs).
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// userinfo returns the signed-in user's claims for a valid access token.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	raw := bearerToken(r)
	if raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stepgate"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "send the access token in an Authorization: Bearer header"})
		return
	}
	c, err := p.VerifyAccessToken(r.Context(), raw)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	if c.IssuedForResource() {
		// A database's token: the database gateway keeps it as a
		// password, and it must open nothing but that database.
		p.writeError(w, r, &Error{Code: "invalid_token", Status: http.StatusUnauthorized,
			Description: "the token was issued for a database, not for this client; use a token issued for the client itself",
			Debug:       fmt.Errorf("audience %v of client %s", c.Audience, c.ClientID)})
		return
	}
	scope := strings.Fields(c.Scope)
	if !slices.Contains(scope, "openid") {
		p.writeError(w, r, &Error{Code: "insufficient_scope", Status: http.StatusForbidden, Description: "the token was not issued for the openid scope"})
		return
	}
	u, err := p.Store.GetUser(r.Context(), c.Subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		p.writeError(w, r, errInvalidToken(errors.New("user gone or disabled")))
		return
	}
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Sub string `json:"sub"`
		userClaims
	}{u.ID, profile(u, u.RolesAt(p.Now(), c.ClientID), scope, nil)})
}

// introspection is an RFC 7662 response with RFC 9470's claims.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	ACRs      []string `json:"acrs,omitempty"`
	SID       string   `json:"sid,omitempty"`
}

// introspect answers whether an access token is active, for resource
// servers. Callers authenticate as a registered confidential client.
// Every inactive token gets the same answer, {"active": false}.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	form, caller, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	if caller.Public {
		p.writeError(w, r, errInvalidClient(errors.New("public clients may not introspect")))
		return
	}
	c, err := p.VerifyAccessToken(r.Context(), form.Get("token"))
	if err == nil && c.IssuedForResource() {
		// A database's token is that database's password and nothing
		// else: a resource server that trusted "active" alone would
		// accept one replayed at it, so it is inactive to every client.
		err = &Error{Code: "invalid_token", Debug: fmt.Errorf("audience %v is a database, introspected by client %s", c.Audience, caller.ID)}
	}
	if err != nil {
		var oe *Error
		if !errors.As(err, &oe) {
			p.writeError(w, r, err)
			return
		}
		p.Log.DebugContext(r.Context(), "introspection: inactive token", "detail", oe.Debug)
		writeJSON(w, http.StatusOK, introspection{Active: false})
		return
	}
	out := introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, Username: c.Username, TokenType: "Bearer",
		Sub: c.Subject, Aud: c.Audience, Iss: c.Issuer, Jti: c.ID,
		ACR: c.ACR, AMR: c.AMR, AuthTime: c.AuthTime, ACRs: c.ACRs, SID: c.SID,
	}
	out.Exp = c.Expiry.Time().Unix()
	if c.IssuedAt != nil {
		out.Iat = c.IssuedAt.Time().Unix()
	}
	if c.NotBefore != nil {
		out.Nbf = c.NotBefore.Time().Unix()
	}
	writeJSON(w, http.StatusOK, out)
}

// revoke is RFC 7009 revocation. A refresh token revokes its whole grant
// (and so the access tokens minted from it); an access token is put on
// the deny list until it expires. Unknown tokens and tokens of other
// clients get 200 as the RFC asks, revealing nothing.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	form, c, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	ctx, tok := r.Context(), form.Get("token")
	if rec, err := refreshes.At(tok).Get(ctx, p.Store); err == nil {
		if rec.ClientID == c.ID {
			err = p.revokeGrant(ctx, rec.GrantID, "revoked-by-client")
		}
		p.revokeDone(w, r, err)
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		p.writeError(w, r, err)
		return
	}
	if at, err := p.VerifyAccessToken(ctx, tok); err == nil && at.ClientID == c.ID {
		p.revokeDone(w, r, p.revokeJTI(ctx, at.ID, at.Subject, at.Expiry.Time().Add(clockSkew)))
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (p *Provider) revokeDone(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// endSession is RP-initiated logout. With an ID token hint that this
// provider issued for the browser's current session, the session ends
// and the browser goes to the client's registered post-logout URI. A
// request without a valid hint could come from any site, so the user is
// asked to confirm on the sign-out page instead.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.ErrorPage(w, r, http.StatusBadRequest, "The sign-out request could not be read.")
		return
	}
	ctx := r.Context()
	hint := r.Form.Get("id_token_hint")
	if hint == "" {
		http.Redirect(w, r, "/logout", http.StatusSeeOther)
		return
	}
	claims, err := p.verifyIDTokenHint(ctx, hint)
	if err != nil {
		p.Log.InfoContext(ctx, "end session: bad id_token_hint", "err", err)
		p.ErrorPage(w, r, http.StatusBadRequest, "The application's sign-out request carries an ID token this service did not issue.")
		return
	}
	clientID := r.Form.Get("client_id")
	if clientID == "" && len(claims.Audience) == 1 {
		clientID = claims.Audience[0]
	}
	if !slices.Contains(claims.Audience, clientID) {
		p.ErrorPage(w, r, http.StatusBadRequest, "The sign-out request's client_id does not match its ID token.")
		return
	}
	target := r.Form.Get("post_logout_redirect_uri")
	c, err := p.Clients.Get(ctx, clientID)
	if err != nil || (target != "" && !slices.Contains(c.PostLogoutRedirectURIs, target)) {
		p.ErrorPage(w, r, http.StatusBadRequest, "The application asked to return you to an address it has not registered for sign-out.")
		return
	}
	if s, _, err := p.loadSession(ctx, r); err == nil && p.sid(s) == claims.SID && s.UserID == claims.Subject {
		if err := p.Sessions.End(ctx, r); err != nil {
			p.fail(w, r, err)
			return
		}
		p.Sessions.ClearCookie(w)
		p.Log.InfoContext(ctx, "signed out by application", "client", clientID, "user", s.UserID)
	}
	if target == "" {
		http.Redirect(w, r, "/login?signed_out", http.StatusSeeOther)
		return
	}
	u, _ := url.Parse(target)
	q := u.Query()
	if st := r.Form.Get("state"); st != "" {
		q.Set("state", st)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther) //nolint:gosec // a registered post-logout URI
}
