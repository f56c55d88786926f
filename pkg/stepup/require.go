package stepup

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Requirement is something a token must show for a request to proceed.
type Requirement struct {
	kind   requirementKind
	values []string
	maxAge time.Duration
}

type requirementKind int

const (
	reqContext requirementKind = iota + 1
	reqACR
	reqMaxAge
	reqScope
)

// Context requires that the sign-in satisfied authentication context id
// (the token's acrs contains it). Stepgate's policies decide what the
// context takes; the API only names it.
func Context(id string) Requirement { return Requirement{kind: reqContext, values: []string{id}} }

// ACR requires the token's acr to be one of values (a strength such as
// mfa, or a context id).
func ACR(values ...string) Requirement { return Requirement{kind: reqACR, values: values} }

// MaxAge requires that the user proved who they are within d: every
// proof behind the token's acr and acrs (proof_time when the token has
// it, else auth_time), so a password retyped beside an old passkey does
// not make the passkey fresh.
func MaxAge(d time.Duration) Requirement { return Requirement{kind: reqMaxAge, maxAge: d} }

// Scope requires scope s. A token without it gets 403 insufficient_scope:
// signing in again would not add it.
func Scope(s string) Requirement { return Requirement{kind: reqScope, values: []string{s}} }

// Check returns the challenge that tells the client what c lacks, or nil
// when c meets every requirement. It is what Require uses, for callers
// that do not speak HTTP (gRPC, queues).
//
// A missing scope wins over the rest (a step-up cannot fix it). Missing
// contexts, acr and freshness become RFC 9470's challenge with acr_values
// and max_age. A client that declared the cp1 capability, lacking only
// contexts, gets Entra's claims challenge instead, naming the issuer's
// authorization endpoint.
func (v *Verifier) Check(c *Claims, reqs ...Requirement) *Challenge {
	if c == nil {
		return &Challenge{Realm: v.realm, Error: ErrInvalidToken, Description: "no valid access token"}
	}
	var scopes, contexts, acrs []string
	var maxAge time.Duration
	hasMaxAge := false
	now := v.now()
	for _, r := range reqs {
		switch r.kind {
		case reqScope:
			if !c.HasScope(r.values[0]) {
				scopes = appendNew(scopes, r.values[0])
			}
		case reqContext:
			if !c.HasContext(r.values[0]) {
				contexts = appendNew(contexts, r.values[0])
			}
		case reqACR:
			if !slices.Contains(r.values, c.ACR) {
				acrs = appendNew(acrs, r.values...)
			}
		case reqMaxAge:
			// auth_time has one-second resolution; the leeway keeps a
			// sign-in made just now from looking too old.
			if proven := c.provenAt(); proven.IsZero() || now.Sub(proven) > r.maxAge+v.leeway {
				if !hasMaxAge || r.maxAge < maxAge {
					maxAge = r.maxAge
				}
				hasMaxAge = true
			}
		}
	}
	switch {
	case len(scopes) > 0:
		return &Challenge{Realm: v.realm, Error: ErrInsufficientScope, Scope: scopes,
			Description: "the access token lacks scope " + strings.Join(scopes, " ")}
	case len(contexts) > 0 && len(acrs) == 0 && !hasMaxAge && slices.Contains(c.Capabilities, "cp1"):
		ch := ClaimsChallenge(describe(contexts, nil, false), v.authorizeURL, contexts)
		ch.Realm = v.realm
		return &ch
	case len(contexts) > 0 || len(acrs) > 0 || hasMaxAge:
		ch := Challenge{Realm: v.realm, Error: ErrInsufficientUserAuthentication,
			Description: describe(contexts, acrs, hasMaxAge),
			ACRValues:   appendNew(contexts, acrs...), MaxAge: maxAge, HasMaxAge: hasMaxAge}
		return &ch
	}
	return nil
}

func describe(contexts, acrs []string, stale bool) string {
	var parts []string
	if len(contexts) > 0 {
		parts = append(parts, "authentication context "+strings.Join(contexts, ", "))
	}
	if len(acrs) > 0 {
		parts = append(parts, "acr "+strings.Join(acrs, " or "))
	}
	if stale {
		parts = append(parts, "a more recent sign-in")
	}
	return "this request needs " + strings.Join(parts, " and ")
}

func appendNew(dst []string, vals ...string) []string {
	out := slices.Clip(dst)
	for _, v := range vals {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

type claimsKey struct{}

// ClaimsFrom returns the claims Require verified for this request.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Require returns middleware that lets a request through only with a
// valid access token meeting reqs, and puts its claims in the request's
// context (ClaimsFrom). Otherwise it answers:
//
//   - no token: 401 with a Bearer challenge naming the realm only
//     (RFC 6750 section 3.1);
//   - an invalid token: 401 with error="invalid_token";
//   - a token that lacks step-up: 401 with the challenge Check returns;
//   - a token that lacks scope: 403 with error="insufficient_scope".
//
// The token is read from the Authorization header only, never from the
// query string or a form body: URLs end up in logs, proxies and Referer
// headers, and a token there leaks with them.
func (v *Verifier) Require(reqs ...Requirement) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := bearerToken(r)
			if !ok {
				v.refuse(w, Challenge{Realm: v.realm})
				return
			}
			c, err := v.Verify(r.Context(), raw)
			if err != nil {
				v.log.DebugContext(r.Context(), "access token refused", "error", err.Error())
				// Which check failed stays in the log: telling the caller
				// would help someone probing with forged tokens.
				v.refuse(w, Challenge{Realm: v.realm, Error: ErrInvalidToken, Description: "the access token is invalid or expired"})
				return
			}
			if ch := v.Check(c, reqs...); ch != nil {
				v.refuse(w, *ch)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
		})
	}
}

// refuse writes ch with its status: the one place a challenge maps to one.
func (v *Verifier) refuse(w http.ResponseWriter, ch Challenge) {
	status := http.StatusUnauthorized
	if ch.Error == ErrInsufficientScope {
		status = http.StatusForbidden
	}
	w.Header().Set("WWW-Authenticate", ch.String())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := ch.Error
	if body == "" {
		body = "unauthorized"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"error": body})
}

// bearerToken reads the token of the one Authorization header. Two headers
// are refused rather than guessed between: a proxy and a client could
// disagree on which one counts.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// ChallengeFrom returns the Bearer challenge of a 401 or 403 response: what
// the client must get before trying again. Its AuthorizeParams go into
// the next authorization request.
func ChallengeFrom(resp *http.Response) (Challenge, bool) {
	if resp == nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		return Challenge{}, false
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if c, err := ParseChallenge(h); err == nil {
			return c, true
		}
	}
	return Challenge{}, false
}

// provenAt is when the proofs behind the token began: ProofTime when it
// is set and not later than AuthTime, else AuthTime.
func (c *Claims) provenAt() time.Time {
	if !c.ProofTime.IsZero() && (c.AuthTime.IsZero() || c.ProofTime.Before(c.AuthTime)) {
		return c.ProofTime
	}
	return c.AuthTime
}
