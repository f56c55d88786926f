package gateway

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
	"github.com/stepgate/stepgate/pkg/stepup"
)

// handleBearer serves an API client: the token must be Stepgate's, for
// this route's app, and carry what the rule asks for; otherwise the
// client gets a challenge it can follow at Stepgate's authorize endpoint.
func (g *Gateway) handleBearer(w http.ResponseWriter, r *http.Request, rt *route, ru *rule, p, raw string, allow pass) {
	now := g.Now()
	tok, err := g.verifyBearer(r, raw, now)
	if err != nil {
		var oe *oauth.Error
		if !errors.As(err, &oe) {
			g.fail(w, r, err)
			return
		}
		var rev *oauth.RevokedError
		if errors.As(err, &rev) {
			g.revokedChallenge(w, r, rt, raw, rev)
			return
		}
		var ended *oauth.RoleEndedError
		if errors.As(err, &ended) {
			// The token was issued while the user held the role; it
			// ended since (an elevation's end, a role taken away), and
			// a token is never worth more than its user is now.
			g.invalidToken(w, r, "the access token carries the role "+ended.Role+", which the user no longer holds; get a new token")
			return
		}
		g.invalidToken(w, r, "the access token is invalid, expired or revoked")
		return
	}
	claims := tok.claims
	// A token for another app is not a token for this one, however valid:
	// otherwise any client could spend its users' tokens here.
	// A token issued for a database (RFC 8707) names the database as its
	// audience, which may share its name with an app here: it is a key to
	// that database only.
	if !slices.Contains(claims.Audience, rt.app) || claims.IssuedForResource() {
		g.invalidToken(w, r, "the access token was not issued for this application")
		return
	}
	if tok.found && tok.user.Disabled {
		g.invalidToken(w, r, "the account is disabled")
		return
	}
	id := &identity{token: claims, acrs: claims.ACRs, memo: tok.memo, now: now}
	if tok.found {
		id.user = tok.user
	}
	if !g.decideBearer(w, r, rt, ru, &tok, id) {
		return
	}
	allow(w, r, id, p)
}

// decideBearer decides a request an API client makes with a token, on
// every rule, counts and logs the decision, and answers a refusal or a
// challenge itself. It returns whether the request may go ahead.
func (g *Gateway) decideBearer(w http.ResponseWriter, r *http.Request, rt *route, ru *rule, tok *bearerEntry, id *identity) bool {
	start := time.Now()
	v, why := g.checkToken(r, rt, ru, tok, id)
	took := time.Since(start)
	g.Metrics.Decision("gateway", v.Outcome.String(), rt.app, took)
	if g.SignIns != nil && v.logged(ru) {
		if err := g.SignIns(r.Context(), g.tokenEntry(r, rt, tok, id, &v, took)); err != nil {
			g.unlogged(w, r, err)
			return false
		}
	}
	switch {
	case v.blocked():
		g.refuse(w, r, http.StatusForbidden, v.refusal())
		return false
	case v.challenged():
		g.challengeAPI(w, r, rt, ru, tok.claims, why)
		return false
	}
	return true
}

// checkToken asks the decision core about a request a token makes: the
// facts of this request (where it comes from, its client, the risk now)
// and the proofs the token was issued on, for the rule's app and
// context, exactly as a browser's session is judged. Checking the token
// only when it was issued is the attack this stops: a token issued in
// an allowed place, or refreshed there, would keep working from a
// blocked country or for a user now at high risk. A met decision is
// then held to what the rule asks of the token itself (bearerMissing).
// why is, for a challenge, what the client is told.
//
// A routine allow is reused for the token's next request on the same
// rule from the same client, as a browser's is (allowMemo): the token's
// claims, proofs and user are its cached lookup's own, and a detection
// reported about it, a revocation or an elevation's end drop the lookup
// (Forget), so the next request is decided anew.
func (g *Gateway) checkToken(r *http.Request, rt *route, ru *rule, tok *bearerEntry, id *identity) (verdict, string) {
	snap := g.snapshot(rt)
	now := g.instant(id)
	reusable := memoable(ru, false)
	if reusable {
		if m, ok := remembered(id, snap, ru, r, now); ok {
			return verdict{Verdict: access.Verdict{Outcome: policy.OutcomeAllow, ACRs: m.acrs}, snap: snap}, ""
		}
	}
	req := g.Access(r, id.user, tok.proofs, rt.app, now)
	if tok.found && g.ReportedRisk != nil && tok.claims.ID != "" && tok.proofs != nil {
		// A detection reported about this very token (a SIEM saw it
		// replayed from elsewhere) raises the risk of its requests.
		req.SignInRisk = access.WithReported(req.SignInRisk, tok.proofs.Events, g.ReportedRisk(r.Context(), id.user.ID, "", tok.claims.ID))
	}
	if !tok.found { // a service client's token: the client is the subject
		req.Subject = policy.Subject{Client: true, ID: tok.claims.Subject}
		req.ClientApp = policy.ClientService
	}
	if ru.context != "" {
		req.AuthContexts = []string{ru.context}
	}
	// No method source: an API client cannot step up here; it follows
	// the challenge to the authorization endpoint, which offers methods.
	av, _ := access.Decide(access.Ask{Snapshot: snap, Request: req}, nil)
	v := verdict{Verdict: av, req: req, snap: snap}
	if v.blocked() {
		return v, ""
	}
	if why := lacksContext(ru, tok.claims); why != "" {
		// The precise answer first: the client asks for this context.
		v.Outcome, v.Reason = policy.OutcomeChallenge, reason.TokenLacksContext
		return v, why
	}
	if v.challenged() {
		return v, "conditional access requires a new sign-in or step-up for this request"
	}
	// Last, as it spends a single-use proof: only a request that passes
	// everything else may spend it.
	if why, code := g.bearerMissing(r, rt, ru, tok.claims); why != "" {
		v.Outcome, v.Reason = policy.OutcomeChallenge, code
		return v, why
	}
	if reusable {
		rememberAllow(id, snap, ru, r, &v.Verdict, rt.app, now)
	}
	return v, ""
}

// verifyBearer checks the token and finds its user (found is false for a
// service client's token). A verified token is reused until it expires,
// and verified again, revocation included, at most every identityTTL:
// a revoked token or a disabled user is refused within that bound.
func (g *Gateway) verifyBearer(r *http.Request, raw string, now time.Time) (bearerEntry, error) {
	sum := sha256.Sum256([]byte(raw))
	if e, ok := g.bearers.get(sum, now); ok && now.Before(e.claims.Expiry.Time()) {
		return e, nil
	}
	claims, err := g.Tokens.VerifyAccessToken(r.Context(), raw)
	if err != nil {
		return bearerEntry{}, err
	}
	u, err := g.Store.GetUser(r.Context(), claims.Subject)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return bearerEntry{}, err
	}
	e := bearerEntry{claims: claims, user: u, found: found, proofs: &store.Session{Events: access.TokenEvents(claims.Proofs)},
		memo: &identityMemo{}}
	g.bearers.put(sum, e, now)
	return e, nil
}

// bearerMissing says what the token lacks for the rule, and the reason
// code the sign-in log records; both are "" when it lacks nothing.
func (g *Gateway) bearerMissing(r *http.Request, rt *route, ru *rule, c *oauth.AccessClaims) (string, reason.Code) {
	if why := lacksContext(ru, c); why != "" {
		return why, reason.TokenLacksContext
	}
	proven := provenAt(c)
	if ru.maxAge > 0 && (proven == 0 || g.Now().Sub(time.Unix(proven, 0)) > ru.maxAge) {
		return "a more recent sign-in is required", reason.TokenAuthTooOld
	}
	if ru.singleUse && !g.spendToken(r, rt, ru, c) {
		return "this action needs a new proof for every request", reason.SingleUseProofRequired
	}
	return "", ""
}

// lacksContext says, when the rule asks for an authentication context
// the token was not issued for, what the client is told; "" otherwise.
func lacksContext(ru *rule, c *oauth.AccessClaims) string {
	if ru.context == "" || slices.Contains(c.ACRs, ru.context) {
		return ""
	}
	return "the authentication context " + ru.context + " is required"
}

// spendToken spends, for a single-use rule, the proof behind a token:
// its user and when its proofs began (proof_time), in the same record a
// browser's single-use request spends (spendProof), so one proof is
// one request whether a browser or an API client carries it. Spending
// the token instead (its jti) is the attack this stops: a refreshed
// token has a new jti but the same proof, so refreshing would pass the
// rule again without anyone proving anything. What the token claims
// about the proof (acr, acrs) is left out for the same reason: a client
// gets tokens with other acr values from the same session without a new
// proof (acr_values "c3", then "phishing-resistant c3", then "c3 c2"),
// and each would pass again. A token issued after a new proof has a new
// proof_time and passes once. A service client's token has no user proof
// behind it; its own issuance is the proof, so its jti is spent.
func (g *Gateway) spendToken(r *http.Request, rt *route, ru *rule, c *oauth.AccessClaims) bool {
	proven := provenAt(c)
	if proven == 0 {
		err := kvspace.GatewayOnce.At("jti|"+c.ID+"|"+ru.path).Create(r.Context(), g.Store, kvspace.Mark{}, c.Expiry.Time().Add(time.Minute))
		return err == nil
	}
	// Not auth_time: a password retyped beside an old passkey moves
	// auth_time, but the passkey proof behind a c3 token stays spent.
	return g.spendProof(r, c.Subject, rt, ru, time.Unix(proven, 0))
}

// spendProof records, once, that the proof a user began at proven has
// authorized a request under rule ru of rt's app; false when it already
// had. Browsers and tokens share the record: a passkey that carried a
// kept request must not also carry a token's request, nor the other way
// round. The app, not the route: an application reachable on two hosts
// (two routes of one app) runs the same handler behind the same rule on
// both. proven counts whole seconds, as a token's proof_time does. The
// record lasts as long as tokens carrying the proof can be refreshed
// (oidc.refresh_token_lifetime).
func (g *Gateway) spendProof(r *http.Request, userID string, rt *route, ru *rule, proven time.Time) bool {
	spent := kvspace.GatewayOnce.At(strings.Join([]string{"proof", userID, rt.app, strconv.FormatInt(proven.Unix(), 10), ru.path}, "|"))
	until := proven.Add(g.tokenFamilyLifetime())
	if floor := g.Now().Add(keptLifetime + ticketLifetime); until.Before(floor) {
		until = floor
	}
	err := spent.Create(r.Context(), g.Store, kvspace.Mark{}, until)
	return err == nil
}

// provenAt is when the proofs behind a token began: its proof_time,
// or auth_time for a token without one; zero for a service client's.
func provenAt(c *oauth.AccessClaims) int64 {
	if c.ProofTime != 0 && (c.AuthTime == 0 || c.ProofTime < c.AuthTime) {
		return c.ProofTime
	}
	return c.AuthTime
}

// defaultTokenFamilyLifetime is oidc.refresh_token_lifetime's default.
const defaultTokenFamilyLifetime = 30 * 24 * time.Hour

func (g *Gateway) tokenFamilyLifetime() time.Duration {
	if g.TokenFamilyLifetime > 0 {
		return g.TokenFamilyLifetime
	}
	return defaultTokenFamilyLifetime
}

// challengeAPI answers 401 with the challenge of RFC 9470, or Entra's
// claims challenge for routes configured so and clients that declared
// the cp1 capability.
func (g *Gateway) challengeAPI(w http.ResponseWriter, r *http.Request, rt *route, ru *rule, c *oauth.AccessClaims, why string) {
	var contexts []string
	if ru.context != "" {
		contexts = []string{ru.context}
	}
	var ch stepup.Challenge
	if len(contexts) > 0 && (rt.entra || (c != nil && slices.Contains(c.Capabilities, "cp1"))) {
		ch = stepup.ClaimsChallenge(why, g.Issuer+"/oauth2/authorize", contexts)
	} else {
		ch = stepup.Insufficient(why, contexts, ru.maxAge)
		if ru.singleUse {
			// max_age=0: a proof made for this request.
			ch.MaxAge, ch.HasMaxAge = 0, true
		}
	}
	ch.Realm = "stepgate"
	w.Header().Set("WWW-Authenticate", ch.String())
	g.refuse(w, r, http.StatusUnauthorized, strings.ToUpper(why[:1])+why[1:]+".")
}

// revokedChallenge answers a token revoked by a security event
// (continuous access evaluation): Entra's CAE form, a claims challenge
// asking for a token issued after the event, for clients that handle
// claims challenges; otherwise RFC 9470 with max_age=0, a new sign-in.
func (g *Gateway) revokedChallenge(w http.ResponseWriter, r *http.Request, rt *route, raw string, rev *oauth.RevokedError) {
	const why = "access was revoked by a security event; sign in again"
	var ch stepup.Challenge
	if rt.entra || declaresCP1(raw) {
		b, _ := json.Marshal(map[string]any{"access_token": map[string]any{"nbf": map[string]any{
			"essential": true, "value": strconv.FormatInt(rev.NotBefore.Unix(), 10)}}})
		ch = stepup.Challenge{Error: stepup.ErrInsufficientClaims, Description: why, Claims: string(b), AuthorizationURI: g.Issuer + "/oauth2/authorize"}
	} else {
		ch = stepup.Challenge{Error: stepup.ErrInsufficientUserAuthentication, Description: why, HasMaxAge: true}
	}
	ch.Realm = "stepgate"
	w.Header().Set("WWW-Authenticate", ch.String())
	g.refuse(w, r, http.StatusUnauthorized, "Access was revoked by a security event. Sign in again.")
}

// declaresCP1 reads, without trusting it, whether a token's client
// declared the cp1 capability: it only picks the form of the challenge,
// and the token is refused either way.
func declaresCP1(raw string) bool {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return false
	}
	var c struct {
		Capabilities []string `json:"xms_cc"`
	}
	return tok.UnsafeClaimsWithoutVerification(&c) == nil && slices.Contains(c.Capabilities, "cp1")
}

func (g *Gateway) invalidToken(w http.ResponseWriter, r *http.Request, why string) {
	ch := stepup.Challenge{Realm: "stepgate", Error: stepup.ErrInvalidToken, Description: why}
	w.Header().Set("WWW-Authenticate", ch.String())
	g.refuse(w, r, http.StatusUnauthorized, strings.ToUpper(why[:1])+why[1:]+".")
}
