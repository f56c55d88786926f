package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// Key/value prefixes. Bearer values (codes, refresh tokens, flow ids) are
// stored under their SHA-256 only, so a read of the database yields
// nothing that can be replayed.
const (
	prefixCode      = "oidc/code/"
	prefixGrant     = "oidc/grant/"
	prefixRefresh   = "oidc/refresh/"
	prefixRevoked   = "oidc/revoked/"
	prefixAssertion = "oidc/assertion/"
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
	// made, and IP, Country and Platform where and on what the user made
	// them: a refresh is judged by the policies on them (refreshAllowed).
	// A grant made before they were recorded has none and does not
	// refresh: its user signs in again once.
	Proofs   []store.AuthEvent `json:"proofs,omitempty"`
	IP       string            `json:"ip,omitempty"`
	Country  string            `json:"country,omitempty"`
	Platform string            `json:"platform,omitempty"`
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

func hashKey(prefix, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return prefix + hex.EncodeToString(sum[:])
}

func (p *Provider) putJSON(ctx context.Context, key string, v any, expires time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.Store.CreateKV(ctx, key, b, expires)
	return err
}

func (p *Provider) getJSON(ctx context.Context, key string, v any) error {
	e, err := p.Store.GetKV(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return fmt.Errorf("%s: stored record is corrupt: %w", key, err)
	}
	return nil
}

// claimOnce marks the single-use record at key used and returns it as it
// was. Compare-and-swap makes two concurrent redemptions impossible: one
// wins, the other sees errGrantUsed with the record, so the caller can
// revoke what the first redemption issued.
func claimOnce[T any](ctx context.Context, kv store.KV, key string, used func(*T) *bool) (T, error) {
	var rec T
	var already bool
	_, err := kv.UpdateKV(ctx, key, func(b []byte) ([]byte, error) {
		rec = *new(T)
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, err
		}
		u := used(&rec)
		if already = *u; already {
			return b, nil
		}
		*u = true
		return json.Marshal(&rec)
	})
	if err != nil {
		return rec, err
	}
	if already {
		return rec, errGrantUsed
	}
	return rec, nil
}

// newGrant stores a grant that lives as long as its longest token.
func (p *Provider) newGrant(ctx context.Context, clientID, userID string) (string, error) {
	id := randomID(16)
	now := p.Now()
	g := grantRecord{ClientID: clientID, UserID: userID, CreatedAt: now.UTC()}
	return id, p.putJSON(ctx, prefixGrant+id, g, now.Add(p.grantLifetime()))
}

func (p *Provider) grantLifetime() time.Duration {
	return max(p.Lifetimes.RefreshToken, p.Lifetimes.AccessToken, p.Lifetimes.IDToken)
}

// revokeGrant revokes a grant and so every token minted from it.
func (p *Provider) revokeGrant(ctx context.Context, id, reason string) error {
	_, err := p.Store.UpdateKV(ctx, prefixGrant+id, func(b []byte) ([]byte, error) {
		var g grantRecord
		if err := json.Unmarshal(b, &g); err != nil {
			return nil, err
		}
		if g.Revoked {
			return b, nil
		}
		g.Revoked, g.Reason = true, reason
		return json.Marshal(g)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // expired: nothing left to revoke
	}
	return err
}

// grantActive reports whether a grant exists and is not revoked.
func (p *Provider) grantActive(ctx context.Context, id string) (grantRecord, bool, error) {
	var g grantRecord
	err := p.getJSON(ctx, prefixGrant+id, &g)
	if errors.Is(err, store.ErrNotFound) {
		return g, false, nil
	}
	return g, err == nil && !g.Revoked, err
}

// revokeJTI puts one access token on the deny list until it expires.
func (p *Provider) revokeJTI(ctx context.Context, jti string, exp time.Time) error {
	_, err := p.Store.CreateKV(ctx, prefixRevoked+jti, []byte("1"), exp)
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

func (p *Provider) jtiRevoked(ctx context.Context, jti string) (bool, error) {
	_, err := p.Store.GetKV(ctx, prefixRevoked+jti)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
