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

	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/oauth"
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
	token *oauth.AccessClaims
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
	// proofsAfter, for a verdict a re-ask made, is the point it counted
	// proofs from: the log explains the decision with the policies'
	// results on those proofs, the ones it was made on, so a re-ask is
	// counted against the policy that asked, as any challenge is.
	proofsAfter time.Time
}

// check asks the policies about a browser request. elevatedAfter, when
// set, is when a single-use challenge was made (the kept request's
// time): the request passes only with proofs made after it.
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
	ra := g.reaskOf(r, rt, ru, id, now, elevatedAfter)
	v := g.judge(r, rt, ru, id, snap, req, &d, ra)
	v.req, v.snap, v.reportOnlyUnmet = req, snap, d.ReportOnlyUnmet
	return v
}

// reask is what a rule asks beyond the policies: that they be met
// again by proofs made after a point.
type reask struct {
	asked bool
	// after is the point: only proofs made after it count.
	after time.Time
	// reason is the sign-in log's code when the re-ask is not met.
	reason string
	// marker, for a forward-auth single-use check, is the key of the
	// challenge it answers (recorded by challengeBrowser), spent when the
	// request passes.
	marker string
}

// reaskOf works out the point a rule counts proofs from: now minus its
// max_age, and for a single-use rule the challenge this request answers.
// Through the built-in proxy that is the kept request, replayed after
// the step-up (elevatedAfter); through forward-auth, where nothing can
// be kept, the challenge recorded for this user and rule. A request that
// answers no challenge counts from its last proof, so it is challenged:
// the sign-in itself, or a proof made for something else, never passes
// a single-use rule.
func (g *Gateway) reaskOf(r *http.Request, rt *route, ru *rule, id *identity, now, elevatedAfter time.Time) reask {
	var ra reask
	if ru.maxAge > 0 {
		ra = reask{asked: true, after: now.Add(-ru.maxAge), reason: reasonMaxAge}
	}
	if !ru.singleUse {
		return ra
	}
	challenged := elevatedAfter
	if forwarded(r) {
		challenged, ra.marker = g.challengedAt(r, rt, ru, id)
	}
	if challenged.IsZero() {
		challenged = latest(now, lastProof(id.sess))
		ra.marker = ""
	}
	if challenged.After(ra.after) || !ra.asked {
		ra.after = challenged
	}
	ra.asked, ra.reason = true, reasonSingleUse
	return ra
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// judge turns the policy decision d into the gateway's verdict, adding
// what the rule asks for beyond the policies: a re-ask for its max_age
// or single use, met only by proofs after the point it counts from that
// alone satisfy the policies (policy.Snapshot.Reask).
func (g *Gateway) judge(r *http.Request, rt *route, ru *rule, id *identity, snap *policy.Snapshot, req *policy.Request, d *policy.Decision, ra reask) verdict {
	switch {
	case d.Outcome == policy.OutcomeBlock:
		return verdict{block: "Access to this page is blocked by your organisation's policy.", reason: string(d.Reason)}
	case ru.context != "" && slices.Contains(d.UnknownContexts, ru.context):
		// A typo in the route must not pass for a completed step-up.
		g.Log.ErrorContext(r.Context(), "gateway rule asks for an undeclared authentication context", "route", rt.name, "context", ru.context)
		return verdict{block: "This page is misconfigured: it asks for an authentication context that does not exist.", reason: reasonUnknownContext}
	}
	reason := string(d.Reason)
	var reasked time.Time
	if ra.asked {
		// The step-up page must ask for what new proofs need, not for
		// what the whole session lacks: the methods come from the re-ask.
		rd := snap.Reask(req, ra.after, policy.EvaluateOptions{})
		if d.Outcome == policy.OutcomeAllow && rd.Outcome != policy.OutcomeAllow {
			reason = ra.reason
		}
		if rd.Outcome != policy.OutcomeAllow {
			d, reasked = &rd, ra.after
		}
	}
	switch d.Outcome {
	case policy.OutcomeBlock:
		return verdict{block: "Access to this page is blocked by your organisation's policy.", reason: string(d.Reason), proofsAfter: reasked}
	case policy.OutcomeChallenge:
		v := g.challengeFor(r, id, d.Missing, reason)
		v.proofsAfter = reasked
		return v
	}
	if ru.singleUse {
		// The proof spent is what the re-ask rests on, not the last
		// event: a password retyped after the passkey that answered one
		// challenge must not make that passkey answer a second.
		proven := snap.ProvenSince(req.ProofsAfter(ra.after), strength.SingleFactor)
		if !g.spend(r, rt, ru, id, ra, proven) {
			after := latest(req.Now, lastProof(id.sess))
			rd := snap.Reask(req, after, policy.EvaluateOptions{})
			v := g.challengeFor(r, id, rd.Missing, reasonSingleUse)
			v.proofsAfter = after
			return v
		}
	}
	return verdict{acrs: d.ACRs}
}

// challengeFor is the verdict asking for missing: the user's methods
// that can meet it, a password change on its own page, or a refusal when
// no method of the user's can.
func (g *Gateway) challengeFor(r *http.Request, id *identity, missing []policy.Requirement, reason string) verdict {
	// A password change is done on its own page, after the other proofs
	// (a policy asks a risky user for MFA first).
	rest := slices.DeleteFunc(slices.Clone(missing), policy.Requirement.IsPasswordChange)
	if len(rest) == 0 && len(missing) > 0 {
		return verdict{challenge: true, passwordChange: true, reason: reason}
	}
	methods, ok := g.stepUpMethods(r, id.user, rest)
	if !ok {
		return verdict{block: "Your organisation's policy requires a proof your account cannot give yet. Add a sign-in method on your security page, or ask your administrator.", reason: reasonNoUsableMethod}
	}
	return verdict{challenge: true, methods: methods, reason: reason}
}

// spend makes a met single-use rule authorize exactly one request: the
// one that answers the challenge. Through the built-in proxy the kept
// request was taken once; through forward-auth the recorded challenge is
// deleted here, so of two requests after one step-up only one passes.
// Either way the proof is spent too (spendProof): a record per user,
// proof, app and rule is created once, so a second challenge (another
// tab, another kept request, another host of the app, a token carrying
// the same proof) needs a new proof.
func (g *Gateway) spend(r *http.Request, rt *route, ru *rule, id *identity, ra reask, proven time.Time) bool {
	if forwarded(r) {
		if ra.marker == "" || g.Store.DeleteKV(r.Context(), ra.marker) != nil {
			return false
		}
	}
	return g.spendProof(r, id.user.ID, rt, ru, proven)
}

// challengeKey names the record of a forward-auth single-use challenge
// for a user and rule.
func challengeKey(rt *route, ru *rule, u store.User) string {
	return hashKey(prefixAsked, u.ID+"|"+rt.name+"|"+ru.path)
}

// recordChallenge notes, for forward-auth, that a single-use rule just
// challenged this user: only proofs made after now answer it. An earlier
// challenge still open keeps its time, so a step-up already under way
// still answers it.
func (g *Gateway) recordChallenge(r *http.Request, rt *route, ru *rule, id *identity) error {
	b, _ := json.Marshal(g.Now().UTC())
	_, err := g.Store.CreateKV(r.Context(), challengeKey(rt, ru, id.user), b, g.Now().Add(keptLifetime))
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

// challengedAt returns when the open forward-auth challenge of a
// single-use rule was made, and the key to spend it by; zero when none.
func (g *Gateway) challengedAt(r *http.Request, rt *route, ru *rule, id *identity) (time.Time, string) {
	key := challengeKey(rt, ru, id.user)
	var at time.Time
	if err := getJSON(r.Context(), g.Store, key, &at); err != nil {
		return time.Time{}, ""
	}
	return at, key
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
