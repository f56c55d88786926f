package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// identity is who a request comes from.
type identity struct {
	user store.User
	// sess is the browser's Stepgate session; nil for a bearer token.
	sess *store.Session
	// token is the verified bearer token; nil for a browser.
	token *oidc.AccessClaims
	acrs  []string
}

// verdict is the decision for one request.
type verdict struct {
	block     string // refused, with the reason to show
	challenge bool
	methods   []string // for a challenge: methods that can meet it
	// passwordChange: the challenge is met by changing the password.
	passwordChange bool
	acrs           []string // contexts the request is allowed under
	// reason is the stable code the sign-in log records for a block or
	// challenge: the policy engine's, or one of the gateway's own.
	reason string
	// What the decision was made on, for its sign-in log entry: the
	// request, the policy snapshot, and how many report-only policies
	// would have blocked or challenged.
	req             *policy.Request
	snap            *policy.Snapshot
	reportOnlyUnmet int
}

// check asks the policies about a browser request. elevatedAfter, when
// set, is when a single-use challenge was made: the request passes only
// with a proof made after it.
func (g *Gateway) check(r *http.Request, rt *route, ru *rule, id *identity, elevatedAfter time.Time) verdict {
	now := g.Now()
	req := g.Access(r, id.user, id.sess, now)
	req.App = rt.app
	if ru.context != "" {
		req.AuthContexts = []string{ru.context}
	}
	snap := g.Policies.Load()
	// Counting report-only policies costs no allocation; it tells which
	// routine allows are worth a log entry.
	d := snap.Evaluate(req, policy.EvaluateOptions{ReportOnly: true})
	v := g.judge(r, rt, ru, id, &d, now, elevatedAfter)
	v.req, v.snap, v.reportOnlyUnmet = req, snap, d.ReportOnlyUnmet
	return v
}

// judge turns the policy decision d into the gateway's verdict, adding
// what the rule asks for beyond the policies: freshness and single use.
func (g *Gateway) judge(r *http.Request, rt *route, ru *rule, id *identity, d *policy.Decision, now, elevatedAfter time.Time) verdict {
	switch {
	case d.Outcome == policy.OutcomeBlock:
		return verdict{block: "Access to this page is blocked by your organisation's policy.", reason: string(d.Reason)}
	case ru.context != "" && slices.Contains(d.UnknownContexts, ru.context):
		// A typo in the route must not pass for a completed step-up.
		g.Log.ErrorContext(r.Context(), "gateway rule asks for an undeclared authentication context", "route", rt.name, "context", ru.context)
		return verdict{block: "This page is misconfigured: it asks for an authentication context that does not exist.", reason: reasonUnknownContext}
	case d.Outcome == policy.OutcomeChallenge:
		// A password change is done on its own page, after the other
		// proofs (a policy asks a risky user for MFA first).
		rest := slices.DeleteFunc(slices.Clone(d.Missing), policy.Requirement.IsPasswordChange)
		if len(rest) == 0 {
			return verdict{challenge: true, passwordChange: true, reason: string(d.Reason)}
		}
		methods, ok := g.stepUpMethods(r, id.user, rest)
		if !ok {
			return verdict{block: "Your organisation's policy requires a proof your account cannot give yet. Add a sign-in method on your security page, or ask your administrator.", reason: reasonNoUsableMethod}
		}
		return verdict{challenge: true, methods: methods, reason: string(d.Reason)}
	}
	last := lastProof(id.sess)
	if ru.maxAge > 0 && now.Sub(last) > ru.maxAge {
		return verdict{challenge: true, reason: reasonMaxAge}
	}
	if ru.singleUse && !g.elevated(r, ru, id, last, elevatedAfter, now) {
		return verdict{challenge: true, reason: reasonSingleUse}
	}
	return verdict{acrs: d.ACRs}
}

// forwardElevationWindow is how fresh a proof must be to pass a
// single-use rule through forward-auth, where the request cannot be kept
// and replayed.
const forwardElevationWindow = 2 * time.Minute

// elevated decides a single-use rule: the fresh proof authorizes exactly
// one request. Through the built-in proxy that request is the one kept
// at the challenge and replayed after it (elevatedAfter is when it was
// kept; a plain request never passes). Through forward-auth it is the
// first request after a proof at most two minutes old. Either way the
// proof is then spent: a record per user, proof and rule is created
// once, so a second request, or a second kept request, needs a new proof.
func (g *Gateway) elevated(r *http.Request, ru *rule, id *identity, last, elevatedAfter, now time.Time) bool {
	switch {
	case forwarded(r):
		if now.Sub(last) > forwardElevationWindow {
			return false
		}
	case elevatedAfter.IsZero() || !last.After(elevatedAfter):
		return false
	}
	key := hashKey(prefixOnce, id.user.ID+"|"+last.UTC().Format(time.RFC3339Nano)+"|"+ru.path)
	_, err := g.Store.CreateKV(r.Context(), key, []byte("1"), now.Add(keptLifetime+forwardElevationWindow))
	return err == nil
}

func (g *Gateway) stepUpMethods(r *http.Request, u store.User, missing []policy.Requirement) ([]string, bool) {
	available, err := g.Methods(r, u)
	if err != nil {
		g.Log.ErrorContext(r.Context(), "list the user's methods", "err", err)
		return nil, false
	}
	return policy.StepUpMethods(missing, available)
}

func lastProof(s *store.Session) time.Time {
	var t time.Time
	if s == nil {
		return t
	}
	for _, e := range s.Events {
		if e.Time.After(t) {
			t = e.Time
		}
	}
	return t
}

// gwSession binds a gateway cookie on an application's host to the
// browser's Stepgate session.
type gwSession struct {
	SessionID string `json:"sid"` // the Stepgate session's storage id
	UserID    string `json:"uid"`
	Route     string `json:"route"`
}

// cookieName is the gateway cookie of a route's host. Under https it
// takes the __Host- prefix: bound to this host, so a sibling subdomain
// cannot plant or overwrite it.
func (rt *route) cookieName() string {
	if rt.scheme == "https" {
		return "__Host-stepgate_gw"
	}
	return "stepgate_gw"
}

// browserIdentity follows the gateway cookie to the Stepgate session and
// its user. The lookups are reused for identityTTL, so sign-out or
// disabling the user take effect within that bound; the session's expiry
// is checked on every request, and a step-up elsewhere gives the browser
// a new session and cookie through the hand-off.
func (g *Gateway) browserIdentity(r *http.Request, rt *route) (*identity, error) {
	c, err := r.Cookie(rt.cookieName())
	if err != nil || len(c.Value) != 43 {
		return nil, session.ErrNoSession
	}
	sum := sha256.Sum256([]byte(c.Value))
	if e, ok := g.browsers.get(sum, g.Now()); ok {
		// A cookie minted for one application is worthless on another.
		if e.route != rt.name || !g.Sessions.Live(e.sess) {
			return nil, session.ErrNoSession
		}
		s := e.sess
		return &identity{user: e.user, sess: &s}, nil
	}
	var gs gwSession
	if err := getJSON(r.Context(), g.Store, prefixGWSession+hex.EncodeToString(sum[:]), &gs); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, session.ErrNoSession
		}
		return nil, err
	}
	if gs.Route != rt.name {
		return nil, session.ErrNoSession
	}
	s, err := g.Sessions.ByID(r.Context(), gs.SessionID)
	if err != nil {
		return nil, err // ErrNoSession after sign-out or a rotation: sign in again (silently when still signed in)
	}
	u, err := g.Store.GetUser(r.Context(), s.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) || s.UserID != gs.UserID {
		return nil, session.ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	g.browsers.put(sum, browserEntry{route: gs.Route, sess: s, user: u}, g.Now())
	return &identity{user: u, sess: &s}, nil
}

func getJSON(ctx context.Context, kv store.KV, key string, v any) error {
	e, err := kv.GetKV(ctx, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(e.Value, v)
}
