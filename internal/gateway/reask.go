package gateway

import (
	"errors"
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// reask is what a rule asks beyond the policies: that they be met
// again by proofs made after a point.
type reask struct {
	// after is the point: only proofs made after it count; zero when
	// the rule asks for no re-ask.
	after time.Time
	// kind says why, for the sign-in log and the step-up page.
	kind access.Reask
	// marker, for a forward-auth single-use check, names the challenge
	// it answers (recorded by challengeBrowser), spent when the request
	// passes.
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
		ra = reask{after: now.Add(-ru.maxAge), kind: access.ReaskMaxAge}
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
	if challenged.After(ra.after) {
		ra.after = challenged
	}
	ra.kind = access.ReaskSingleUse
	return ra
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
		if ra.marker == "" || kvspace.GatewayAsked.At(ra.marker).Delete(r.Context(), g.Store) != nil {
			return false
		}
	}
	return g.spendProof(r, id.user.ID, rt, ru, proven)
}

// challengeID names the record of a forward-auth single-use challenge
// for a user and rule.
func challengeID(rt *route, ru *rule, u store.User) string {
	return u.ID + "|" + rt.name + "|" + ru.path
}

// recordChallenge notes, for forward-auth, that a single-use rule just
// challenged this user: only proofs made after now answer it. An earlier
// challenge still open keeps its time, so a step-up already under way
// still answers it.
func (g *Gateway) recordChallenge(r *http.Request, rt *route, ru *rule, id *identity) error {
	err := kvspace.GatewayAsked.At(challengeID(rt, ru, id.user)).Create(r.Context(), g.Store, g.Now().UTC(), g.Now().Add(keptLifetime))
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

// challengedAt returns when the open forward-auth challenge of a
// single-use rule was made, and the name to spend it by; zero when none.
func (g *Gateway) challengedAt(r *http.Request, rt *route, ru *rule, id *identity) (time.Time, string) {
	name := challengeID(rt, ru, id.user)
	at, err := kvspace.GatewayAsked.At(name).Get(r.Context(), g.Store)
	if err != nil {
		return time.Time{}, ""
	}
	return at, name
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
