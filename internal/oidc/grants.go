package oidc

import (
	"context"
	"errors"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Grants in the key/value space. Bearer values (codes, refresh tokens)
// are stored under their SHA-256 only, so a read of the database yields
// nothing that can be replayed.
var (
	codes     = kvspace.JSON[codeRecord](kvspace.OIDCCode)
	grants    = kvspace.JSON[grantRecord](kvspace.OIDCGrant)
	refreshes = kvspace.JSON[refreshRecord](kvspace.OIDCRefresh)
)

// errGrantUsed is returned when a single-use value is presented again.
var errGrantUsed = errors.New("already used")

// authState is what the user proved, as it goes into every token minted
// from one grant. A refresh copies it unchanged: it can never raise acr
// or move auth_time.
type authState struct {
	UserID   string    `json:"user_id"`
	SID      string    `json:"sid,omitempty"`
	AuthTime time.Time `json:"auth_time"`
	// ProofTime is when the proofs that acr and acrs rest on began
	// (policy.Snapshot.ProvenSince): no later than AuthTime, and earlier
	// when the last proof alone does not meet them.
	ProofTime    time.Time `json:"proof_time,omitzero"`
	ACR          string    `json:"acr,omitempty"`
	AMR          []string  `json:"amr,omitempty"`
	ACRs         []string  `json:"acrs,omitempty"`
	Scope        []string  `json:"scope"`
	Nonce        string    `json:"nonce,omitempty"`
	Capabilities []string  `json:"xms_cc,omitempty"`
	// Claims are extra claims the claims parameter asked for, by where.
	IDTokenClaims  []string `json:"id_token_claims,omitempty"`
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`
	// Proofs are the session's authentication events when the grant was
	// made, and the platform the user made them on: a refresh is judged
	// by the policies on them (refreshAllowed), and access tokens carry
	// the proofs (the prf claim). A grant made before they were recorded
	// has none and does not refresh: its user signs in again once.
	Proofs   []store.AuthEvent `json:"proofs,omitempty"`
	Platform string            `json:"platform,omitempty"`
	// Database is the database the grant's access tokens are for (RFC
	// 8707 resource urn:stepgate:database:NAME), their only audience;
	// empty for tokens for the client itself.
	Database string `json:"database,omitempty"`
}

// codeRecord is an authorization code's grant.
type codeRecord struct {
	ClientID      string    `json:"client_id"`
	RedirectURI   string    `json:"redirect_uri"`
	CodeChallenge string    `json:"code_challenge,omitempty"`
	GrantID       string    `json:"grant_id"`
	Auth          authState `json:"auth"`
	Used          bool      `json:"used,omitempty"`
}

// grantRecord is one authorization: every token minted from a code, and
// the refresh token family that follows it. Revoking it revokes them all.
type grantRecord struct {
	ClientID  string    `json:"client_id"`
	UserID    string    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked,omitempty"`
	// Reason says why it was revoked (code-reuse, refresh-reuse,
	// revoked-by-client), for the log and introspection debugging.
	Reason string `json:"reason,omitempty"`
}

// refreshRecord is one refresh token of a family.
type refreshRecord struct {
	ClientID string    `json:"client_id"`
	GrantID  string    `json:"grant_id"`
	Auth     authState `json:"auth"`
	Used     bool      `json:"used,omitempty"`
}

// claimOnce marks the single-use record at key used and returns it as it
// was. Compare-and-swap makes two concurrent redemptions impossible: one
// wins, the other sees errGrantUsed with the record, so the caller can
// revoke what the first redemption issued.
func claimOnce[T any](ctx context.Context, kv kvspace.Updater, ref kvspace.Ref[T], used func(*T) *bool) (T, error) {
	var rec T
	err := ref.Update(ctx, kv, func(cur T) (T, error) {
		rec = cur
		u := used(&cur)
		if *u {
			return cur, errGrantUsed
		}
		*u = true
		return cur, nil
	})
	return rec, err
}

// newGrant stores a grant that lives as long as its longest token.
func (p *Provider) newGrant(ctx context.Context, clientID, userID string) (string, error) {
	id := randomID(16)
	return id, p.createGrant(ctx, id, clientID, userID)
}

// createGrant stores the grant id.
func (p *Provider) createGrant(ctx context.Context, id, clientID, userID string) error {
	now := p.Now()
	g := grantRecord{ClientID: clientID, UserID: userID, CreatedAt: now.UTC()}
	return grants.At(id).Create(ctx, p.Store, g, now.Add(p.grantLifetime()))
}

func (p *Provider) grantLifetime() time.Duration {
	return max(p.Lifetimes.RefreshToken, p.Lifetimes.AccessToken, p.Lifetimes.IDToken)
}

// revokeGrant revokes a grant and so every token minted from it.
func (p *Provider) revokeGrant(ctx context.Context, id, reason string) error {
	var user string
	err := grants.At(id).Update(ctx, p.Store, func(g grantRecord) (grantRecord, error) {
		if !g.Revoked {
			g.Revoked, g.Reason = true, reason
		}
		user = g.UserID
		return g, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // expired: nothing left to revoke
	}
	if err == nil {
		p.revoked(user)
	}
	return err
}

// revoked tells OnRevoke of a revocation of user's token or grant.
func (p *Provider) revoked(userID string) {
	if p.OnRevoke != nil {
		p.OnRevoke(userID)
	}
}

// grantActive reports whether a grant exists and is not revoked.
func (p *Provider) grantActive(ctx context.Context, id string) (grantRecord, bool, error) {
	g, err := grants.At(id).Get(ctx, p.Store)
	if errors.Is(err, store.ErrNotFound) {
		return g, false, nil
	}
	return g, err == nil && !g.Revoked, err
}

// revokeJTI puts one access token of user on the deny list until it
// expires.
func (p *Provider) revokeJTI(ctx context.Context, jti, user string, exp time.Time) error {
	err := kvspace.OIDCRevokedToken.At(jti).Create(ctx, p.Store, kvspace.Mark{}, exp)
	if errors.Is(err, store.ErrConflict) {
		err = nil // already denied
	}
	if err == nil {
		p.revoked(user)
	}
	return err
}

func (p *Provider) jtiRevoked(ctx context.Context, jti string) (bool, error) {
	return kvspace.OIDCRevokedToken.At(jti).Exists(ctx, p.Store)
}
