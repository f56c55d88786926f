package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// clockSkew is how far other nodes' clocks may be off when checking the
// times in tokens this provider signed.
const clockSkew = 30 * time.Second

// AccessClaims are the claims of a JWT access token; the type lives in
// package oauth so the gateway reads tokens without importing the provider.
type AccessClaims = oauth.AccessClaims

// idClaims are the claims of an ID token.
type idClaims struct {
	jwt.Claims
	AuthTime int64    `json:"auth_time,omitempty"`
	Nonce    string   `json:"nonce,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	ACRs     []string `json:"acrs,omitempty"`
	SID      string   `json:"sid,omitempty"`
	AZP      string   `json:"azp,omitempty"`
	userClaims
}

// userClaims are the profile claims scopes release.
type userClaims struct {
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	Roles             []string `json:"roles,omitempty"`
}

// profile returns the claims scope (and the claims parameter) release;
// roles are the roles u holds for the client now (User.RolesAt).
func profile(u store.User, roles, scope, extra []string) userClaims {
	has := func(s, claim string) bool { return slices.Contains(scope, s) || slices.Contains(extra, claim) }
	var c userClaims
	if has("profile", "name") {
		c.Name = u.DisplayName
	}
	if has("profile", "preferred_username") {
		c.PreferredUsername = u.Username
	}
	if has("email", "email") && u.Email != "" {
		// Stepgate does not verify addresses itself; an administrator
		// sets them, so they are not claimed as verified.
		f := false
		c.Email, c.EmailVerified = u.Email, &f
	}
	if has("groups", "groups") {
		c.Groups = u.Groups
		c.Roles = roles
	}
	return c
}

// issued is what the token endpoint returns.
type issued struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// mint signs an access token and, for openid scope, an ID token.
func (p *Provider) mint(c *Client, u store.User, a authState, grantID string, withIDToken bool) (issued, error) {
	key, err := p.Keys.signing()
	if err != nil {
		return issued{}, err
	}
	now := p.Now()
	scope := strings.Join(a.Scope, " ")
	at := AccessClaims{
		Claims: jwt.Claims{
			Issuer: p.Issuer, Subject: u.ID, Audience: audience(c.ID, a),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(p.Lifetimes.AccessToken)),
			ID:     jtiFor(grantID),
		},
		ClientID: c.ID, Scope: scope, ACR: a.ACR, AMR: a.AMR, ACRs: a.ACRs, SID: a.SID,
		Capabilities: a.Capabilities, Username: u.Username, Proofs: access.TokenProofs(a.Proofs),
	}
	if !a.AuthTime.IsZero() {
		at.AuthTime = a.AuthTime.Unix()
	}
	if !a.ProofTime.IsZero() {
		at.ProofTime = a.ProofTime.Unix()
	}
	// The roles are those u holds now for the app the access token is
	// for (the client, or the database it was issued for); a token that
	// carries one from an elevation expires when the elevation ends, so
	// no token outlives the role it claims.
	life := p.Lifetimes.AccessToken
	if slices.Contains(a.Scope, "groups") {
		app := at.RolesApp()
		at.Groups, at.Roles = u.Groups, u.RolesAt(now, app)
		if end := u.GrantsEndAt(now, app); capExpiry(&at.Claims, end) {
			life = end.Sub(now)
		}
	}
	out := issued{TokenType: "Bearer", ExpiresIn: int64(life / time.Second), Scope: scope}
	if out.AccessToken, err = jwt.Signed(key.at).Claims(at).Serialize(); err != nil {
		return issued{}, fmt.Errorf("sign access token: %w", err)
	}
	if !withIDToken {
		return out, nil
	}
	// The ID token is the client's, with the client's roles.
	roles, roleEnd := u.RolesAt(now, c.ID), u.GrantsEndAt(now, c.ID)
	id := idClaims{
		Claims: jwt.Claims{
			Issuer: p.Issuer, Subject: u.ID, Audience: jwt.Audience{c.ID},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(p.Lifetimes.IDToken)),
		},
		AuthTime: at.AuthTime, Nonce: a.Nonce, ACR: a.ACR, AMR: a.AMR, ACRs: a.ACRs, SID: a.SID, AZP: c.ID,
		userClaims: profile(u, roles, a.Scope, a.IDTokenClaims),
	}
	if id.Roles != nil {
		capExpiry(&id.Claims, roleEnd)
	}
	if out.IDToken, err = jwt.Signed(key.jwt).Claims(id).Serialize(); err != nil {
		return issued{}, fmt.Errorf("sign ID token: %w", err)
	}
	return out, nil
}

// capExpiry brings c's expiry forward to end when end is set and
// earlier, and reports whether it did.
func capExpiry(c *jwt.Claims, end time.Time) bool {
	if end.IsZero() || !end.Before(c.Expiry.Time()) {
		return false
	}
	c.Expiry = jwt.NewNumericDate(end)
	return true
}

// jtiFor makes a token id that names its grant ("g.<grant>.<random>"),
// so checking revocation needs no lookup table; a token without a grant
// (client credentials) gets a plain random id.
func jtiFor(grantID string) string {
	if grantID == "" {
		return randomID(16)
	}
	return "g." + grantID + "." + randomID(12)
}

func grantOf(jti string) string {
	rest, ok := strings.CutPrefix(jti, "g.")
	if !ok {
		return ""
	}
	g, _, _ := strings.Cut(rest, ".")
	return g
}

// errInvalidToken is the public answer for every bad token: which check
// failed goes to the log only.
func errInvalidToken(debug error) *Error {
	return &Error{Code: "invalid_token", Status: 401, Description: "the access token is invalid, expired or revoked", Debug: debug}
}

// VerifyAccessToken checks a bearer token this provider issued: the
// signature with a published key whose algorithm is pinned (alg from the
// key, never from the token), typ at+jwt (so an ID token cannot pass as
// an access token), issuer, lifetime, and revocation.
//
// A token verified before is answered from the cache of verified tokens
// while the store's access mark is unchanged (see verifiedTokens); the
// mark is read before anything the verification reads, so a revocation
// that lands during a verification is never hidden by its result.
func (p *Provider) VerifyAccessToken(ctx context.Context, raw string) (*AccessClaims, error) {
	mark, trusted := p.verified.mark(ctx)
	var key [sha256.Size]byte
	if trusted {
		key = sha256.Sum256([]byte(raw))
		if c := p.cachedAccessToken(ctx, key, mark); c != nil {
			return c, nil
		}
	}
	c, f, err := p.verifyAccessToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	if trusted {
		p.rememberAccessToken(key, mark, c, f)
	}
	return c, nil
}

// verifyAccessToken is VerifyAccessToken without the cache.
func (p *Provider) verifyAccessToken(ctx context.Context, raw string) (*AccessClaims, facts, error) {
	var f facts
	if !canonicalSignature(raw) {
		return nil, f, errInvalidToken(errors.New("the signature is not in canonical base64url"))
	}
	tok, err := jwt.ParseSigned(raw, verifyAlgs)
	if err != nil {
		return nil, f, errInvalidToken(err)
	}
	if len(tok.Headers) != 1 {
		return nil, f, errInvalidToken(errors.New("not exactly one signature"))
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders["typ"].(string); !strings.EqualFold(typ, AccessTokenType) {
		return nil, f, errInvalidToken(fmt.Errorf("typ %q is not %s", typ, AccessTokenType))
	}
	key, ok := p.Keys.verificationKey(ctx, h.KeyID)
	if !ok {
		return nil, f, errInvalidToken(fmt.Errorf("unknown key id %q", h.KeyID))
	}
	if h.Algorithm != key.Alg {
		return nil, f, errInvalidToken(fmt.Errorf("alg %q does not match key %s (%s)", h.Algorithm, key.ID, key.Alg))
	}
	f.kid, f.alg = key.ID, key.Alg
	var c AccessClaims
	if err := tok.Claims(key.public.Key, &c); err != nil {
		return nil, f, errInvalidToken(err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: p.Issuer, Time: p.Now()}, clockSkew); err != nil {
		return nil, f, errInvalidToken(err)
	}
	if c.Expiry == nil || c.ID == "" {
		return nil, f, errInvalidToken(errors.New("missing exp or jti"))
	}
	grant, err := p.checkRevoked(ctx, c.ID)
	if err != nil {
		return nil, f, err
	}
	issued := grant.CreatedAt
	f.grantEnds = grant.ExpiresAt
	if issued.IsZero() && c.IssuedAt != nil {
		issued = c.IssuedAt.Time()
	}
	if err := p.checkEvents(ctx, c.Subject, issued); err != nil {
		return nil, f, err
	}
	if err := p.checkClient(ctx, c.ClientID, issued); err != nil {
		return nil, f, err
	}
	if f.user, err = p.checkUser(ctx, &c); err != nil {
		return nil, f, err
	}
	return &c, f, nil
}

// canonicalSignature reports whether the signature segment of compact
// token raw is base64url as the signer wrote it: no bits set that no
// byte uses. A lenient decoder ignores them, so each signature would
// have several spellings (sixteen for ES256's 86 characters) that all
// verify, each of them a token of its own to every cache keyed by the
// token's bytes.
func canonicalSignature(raw string) bool {
	i := strings.LastIndexByte(raw, '.')
	if i < 0 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(raw[i+1:])
	return err == nil
}

// checkUser refuses a token whose user is disabled, and one whose roles
// claim names a role its user does not hold now for the token's client.
//
// Disabling an account writes the flag and then revokes the user's
// tokens; were the second write lost (the database gone between them,
// the process killed), or the flag set by anything that writes users
// alone, the account would read as disabled while its tokens stayed
// good. The flag itself is therefore enough. Only a service client's
// token for itself has no user behind it; any other token whose user is
// gone is refused.
//
// A token issued while an elevation was active otherwise carries the
// role to every resource server that trusts the claim until the token
// expires, however early the elevation was ended; the same holds for a
// standing role taken away. Introspection, the userinfo endpoint, the
// gateway and the SDK's revocation check all verify tokens here, so all
// of them refuse it. It returns the user it read when the token names
// roles (nil otherwise), whose roles a cached verification checks again.
func (p *Provider) checkUser(ctx context.Context, c *AccessClaims) (*store.User, error) {
	u, err := p.Store.GetUser(ctx, c.Subject)
	if errors.Is(err, store.ErrNotFound) {
		if len(c.Roles) > 0 {
			return nil, errInvalidToken(&oauth.RoleEndedError{Role: c.Roles[0]})
		}
		if !serviceToken(c) {
			// A user's token outlives no user: found by no one, it would
			// pass elsewhere (the gateway) for a service client's.
			return nil, errInvalidToken(fmt.Errorf("user %s no longer exists", c.Subject))
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, errInvalidToken(fmt.Errorf("user %s is disabled", u.ID))
	}
	if len(c.Roles) == 0 {
		return nil, nil
	}
	held := u.RolesAt(p.Now(), c.RolesApp())
	for _, role := range c.Roles {
		if !slices.Contains(held, role) {
			return nil, errInvalidToken(&oauth.RoleEndedError{Role: role})
		}
	}
	return &u, nil
}

// serviceToken reports whether c is a service client's token for
// itself (client_credentials): its subject is the client, and no user
// signed in for it.
func serviceToken(c *AccessClaims) bool {
	return c.Subject == c.ClientID && c.AuthTime == 0 && c.SID == ""
}

// checkClient refuses a token whose client is no longer registered, or
// was registered after the token's authorization was made (issued). An
// administrator removes a client to end what it can do — decommissioned,
// or its secret leaked — and its tokens, for users and for itself, would
// otherwise stay good until they expire; a client registered later under
// the same id, perhaps another application, would inherit them. Times
// compare in whole seconds, as a token's iat counts them.
func (p *Provider) checkClient(ctx context.Context, clientID string, issued time.Time) error {
	if p.Clients == nil {
		return nil
	}
	c, err := p.Clients.Get(ctx, clientID)
	if errors.Is(err, ErrUnknownClient) {
		return errInvalidToken(fmt.Errorf("client %q is no longer registered", clientID))
	}
	if err != nil {
		return err
	}
	if !issued.IsZero() && c.CreatedAt.Unix() > issued.Unix() {
		return errInvalidToken(fmt.Errorf("client %q was registered at %s, after the token's authorization at %s", clientID, c.CreatedAt, issued))
	}
	return nil
}

// tokenGrant is what checkRevoked read of a token's grant: when it was
// made (the most precise time the token's authorization was made) and
// when it expires from the store; both zero for a token without one.
type tokenGrant struct {
	CreatedAt, ExpiresAt time.Time
}

// checkRevoked refuses a token on the deny list or of a revoked grant.
func (p *Provider) checkRevoked(ctx context.Context, jti string) (tokenGrant, error) {
	revoked, err := p.jtiRevoked(ctx, jti)
	if err != nil {
		return tokenGrant{}, err
	}
	if revoked {
		return tokenGrant{}, errInvalidToken(errors.New("token revoked"))
	}
	g := grantOf(jti)
	if g == "" {
		return tokenGrant{}, nil
	}
	rec, entry, err := grants.At(g).Entry(ctx, p.Store)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Revoked) {
		return tokenGrant{}, errInvalidToken(errors.New("grant revoked or expired"))
	}
	if err != nil {
		return tokenGrant{}, err
	}
	return tokenGrant{CreatedAt: rec.CreatedAt, ExpiresAt: entry.ExpiresAt}, nil
}

// checkEvents refuses what was issued to userID before a security event
// revoked it. The error wraps *RevokedError with the event's time.
func (p *Provider) checkEvents(ctx context.Context, userID string, issued time.Time) error {
	if p.Revocations == nil {
		return nil
	}
	revoked, nbf, err := p.Revocations.Revoked(ctx, userID, issued)
	if err != nil {
		return err
	}
	if revoked {
		return errInvalidToken(&RevokedError{NotBefore: nbf})
	}
	return nil
}

// verifyIDTokenHint checks an ID token this provider issued, for the
// end-session endpoint. It may have expired (OIDC RP-Initiated Logout
// 1.0 allows that); everything else is checked.
func (p *Provider) verifyIDTokenHint(ctx context.Context, raw string) (*idClaims, error) {
	tok, err := jwt.ParseSigned(raw, verifyAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, errors.New("not a signed JWT")
	}
	h := tok.Headers[0]
	// An access token or a gateway assertion is signed by the same keys
	// and names the same user, but resource servers and upstreams hold
	// them; accepted as a hint, either would let any of them sign the
	// user out. Only the ID token's own typ is accepted.
	if typ, _ := h.ExtraHeaders["typ"].(string); !strings.EqualFold(typ, IDTokenType) {
		return nil, fmt.Errorf("typ %q is not an ID token's (%s)", typ, IDTokenType)
	}
	key, ok := p.Keys.verificationKey(ctx, h.KeyID)
	if !ok || h.Algorithm != key.Alg {
		return nil, errors.New("not signed by a published key")
	}
	var c idClaims
	if err := tok.Claims(key.public.Key, &c); err != nil {
		return nil, err
	}
	if c.Issuer != p.Issuer {
		return nil, errors.New("issued by someone else")
	}
	return &c, nil
}
