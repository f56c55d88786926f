package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// StepUpFor describes the step-up that returnTo, a hand-off address
// (/gateway/start?route=…&target=…), resumes: the route's app, the
// rule's authentication context and what the policies still miss,
// decided again here for the user's session. The address only names the
// route and the request; everything the step-up page shows as fact is
// looked up in the compiled routes and policies, so an edited address
// describes another request the user could make, never a requirement
// the policies do not have. ok is false for any other address.
//
// It has no side effects: unlike a request through the gateway, it
// spends no single-use proof and records no challenge.
func (g *Gateway) StepUpFor(r *http.Request, u store.User, s store.Session, returnTo string) (access.StepUp, bool) {
	back, err := url.Parse(returnTo)
	if err != nil || back.Path != "/gateway/start" {
		return access.StepUp{}, false
	}
	q := back.Query()
	rt := g.routeNamed(q.Get("route"))
	target, ok := localTarget(q.Get("target"))
	if rt == nil || !ok {
		return access.StepUp{}, false
	}
	method, p, asked, ok := g.askedRequest(r, rt, u, q.Get("kept"), target)
	if !ok {
		return access.StepUp{}, false
	}
	ru := rt.ruleFor(method, p)
	if ru.anonymous {
		return access.StepUp{}, false
	}
	now := g.Now()
	req := g.Access(r, u, &s, rt.app, now)
	if ru.context != "" {
		req.AuthContexts = []string{ru.context}
	}
	snap := g.snapshot(rt)
	out := access.StepUp{App: rt.app, Contexts: contextsNamed(snap, req.AuthContexts)}
	a := access.Ask{Snapshot: snap, Request: req}
	if ru.maxAge > 0 || ru.singleUse {
		a.ReaskAfter, a.Reask = g.reaskPoint(r, rt, ru, &identity{user: u, sess: &s}, now, asked)
	}
	// No method source: the page judges the user's methods itself.
	v, _ := access.Decide(a, nil)
	switch v.Outcome {
	case policy.OutcomeBlock:
		out.Blocked = true
	case policy.OutcomeChallenge:
		out.Missing, out.Reask = v.Missing, v.Reask
		if v.Reask == access.ReaskMaxAge {
			out.MaxAge = ru.maxAge
		}
	}
	return out, true
}

// reaskPoint is the point a rule's re-ask counts proofs from, as
// reaskOf works it out, for a step-up still to be made: the kept
// request's challenge, the recorded forward-auth challenge, or else the
// latest proof so far (a single-use rule needs a new one).
func (g *Gateway) reaskPoint(r *http.Request, rt *route, ru *rule, id *identity, now, asked time.Time) (time.Time, access.Reask) {
	var after time.Time
	if ru.maxAge > 0 {
		after = now.Add(-ru.maxAge)
	}
	if !ru.singleUse {
		return after, access.ReaskMaxAge
	}
	if asked.IsZero() {
		asked, _ = g.challengedAt(r, rt, ru, id)
	}
	if asked.IsZero() {
		asked = lastProof(id.sess)
	}
	return latest(after, asked), access.ReaskSingleUse
}

// askedRequest is the request a hand-off resumes: the kept request when
// the address names one of this route and user (a form post or a
// single-use request, with the time it was challenged), else a GET of
// the target.
func (g *Gateway) askedRequest(r *http.Request, rt *route, u store.User, keptID, target string) (method, p string, asked time.Time, ok bool) {
	if k, err := g.peekKept(r, keptID); err == nil && k.Route == rt.name && (k.UserID == "" || k.UserID == u.ID) {
		asked = k.CreatedAt
		if !k.AskedAt.IsZero() {
			asked = k.AskedAt
		}
		return k.Method, k.Path, asked, true
	}
	t, err := url.Parse(target)
	if err != nil {
		return "", "", time.Time{}, false
	}
	p, err = normalize(t.EscapedPath())
	if err != nil || find([]*route{rt}, rt.host, p) == nil {
		return "", "", time.Time{}, false
	}
	return http.MethodGet, p, time.Time{}, true
}

// peekKept reads a kept request without taking it: describing the
// step-up must leave it for the replay.
func (g *Gateway) peekKept(r *http.Request, id string) (kept, error) {
	if id == "" {
		return kept{}, store.ErrNotFound
	}
	sealed, err := keptAt(id).Get(r.Context(), g.Store)
	if err != nil {
		return kept{}, err
	}
	plain, err := g.Box.Open(sealed, []byte("gateway-kept|"+id))
	if err != nil {
		return kept{}, err
	}
	var k kept
	return k, json.Unmarshal(plain, &k)
}

func (g *Gateway) routeNamed(name string) *route {
	for _, rt := range g.routes {
		if rt.name == name {
			return rt
		}
	}
	return nil
}

// contextsNamed returns the declared contexts among ids, with their
// display names, in the order of ids.
func contextsNamed(snap *policy.Snapshot, ids []string) []policy.AuthContext {
	var out []policy.AuthContext
	all := snap.AuthContexts()
	for _, id := range ids {
		for _, c := range all {
			if c.ID == id {
				out = append(out, c)
			}
		}
	}
	return out
}
