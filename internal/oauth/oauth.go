// Package oauth holds the OAuth 2.0 shapes that the OpenID Provider
// issues and the resource side checks: the claims of an access token,
// the protocol error with its public description and private debug
// detail, and the refusal of a token revoked by a security event. The
// gateway and the admin API read tokens through these types without
// importing the provider.
package oauth

import (
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// AccessClaims are the claims of a JWT access token (RFC 9068) with the
// step-up claims of RFC 9470 and Entra (acrs, xms_cc).
type AccessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	// ProofTime is when the proofs behind acr and acrs began: a
	// resource server's max_age and single use judge it, since
	// auth_time is only the last proof (a password retyped today beside
	// yesterday's passkey).
	ProofTime    int64    `json:"proof_time,omitempty"`
	ACR          string   `json:"acr,omitempty"`
	AMR          []string `json:"amr,omitempty"`
	ACRs         []string `json:"acrs,omitempty"`
	SID          string   `json:"sid,omitempty"`
	Capabilities []string `json:"xms_cc,omitempty"`
	Username     string   `json:"preferred_username,omitempty"`
	Groups       []string `json:"groups,omitempty"`
	Roles        []string `json:"roles,omitempty"`
	// Proofs are the authentication events the token was issued on, so a
	// resource judges the policies on the proofs that were given, as a
	// browser's session is judged: the gateway asks the decision core
	// about every request a token makes, with the facts of that request
	// (where it comes from, the risk now) and these proofs.
	Proofs []Proof `json:"prf,omitempty"`
}

// IssuedForResource reports whether the token was issued for a resource
// other than its client (RFC 8707: a database), whose audience then
// leaves the client out. Such a token is good only at that resource,
// never where the client's own token is expected (userinfo, a gateway
// route): otherwise a token handed to a database, which keeps it as a
// password, would work as the client's own.
func (c *AccessClaims) IssuedForResource() bool {
	for _, a := range c.Audience {
		if a == c.ClientID {
			return false
		}
	}
	return true
}

// RolesApp is the app whose roles the token's roles claim holds: the
// resource it was issued for (a database), or its client.
func (c *AccessClaims) RolesApp() string {
	if c.IssuedForResource() && len(c.Audience) == 1 {
		return c.Audience[0]
	}
	return c.ClientID
}

// Proof is one authentication event behind a token, in a token's
// compact form.
type Proof struct {
	Method string   `json:"m"`
	Time   int64    `json:"t"` // Unix seconds
	AMR    []string `json:"amr,omitempty"`
	// PhishingResistant and AAGUID are a passkey proof's.
	PhishingResistant bool   `json:"phr,omitempty"`
	AAGUID            string `json:"aaguid,omitempty"`
	// Risk is, on the sign-in that began the session, the sign-in risk
	// assessed then.
	Risk string `json:"risk,omitempty"`
}

// Error is an OAuth 2.0 error: a code and a description for the client,
// and a debug detail for the log only (never sent, so the response cannot
// leak internals).
type Error struct {
	Code        string
	Description string
	Status      int
	Debug       error
}

func (e *Error) Error() string {
	if e.Debug != nil {
		return e.Code + ": " + e.Description + ": " + e.Debug.Error()
	}
	return e.Code + ": " + e.Description
}

// Unwrap exposes the debug cause to errors.Is and errors.As (never to
// the client).
func (e *Error) Unwrap() error { return e.Debug }

// RevokedError is why a token was refused when a security event (the
// user disabled, the password changed, an administrator's revoke)
// happened after it was issued. NotBefore is that event's time: a client
// must get a token issued after it, which the gateway says in its
// challenge.
type RevokedError struct {
	NotBefore time.Time
}

func (e *RevokedError) Error() string {
	return "revoked by a security event at " + e.NotBefore.Format(time.RFC3339)
}

// RoleEndedError is why a token was refused when its roles claim names
// a role its user no longer holds for the token's client: an elevation
// that ended (expired, deactivated, revoked) or a standing role taken
// away. Role is the first such role.
type RoleEndedError struct {
	Role string
}

func (e *RoleEndedError) Error() string {
	return "the token carries the role " + e.Role + ", which its user no longer holds"
}
