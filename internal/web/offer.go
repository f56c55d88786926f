package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// offerPath is the registration campaign's page: after signing in, a user
// whom a policy strands is offered to register the method that would get
// them through.
const offerPath = "/account/register-offer"

// RegistrationOffer is a method a user could register, within the
// registration rules, to meet policies they cannot meet now.
type RegistrationOffer struct {
	// Method is the method to register (an authn registry name).
	Method string
	// Policies are the policies it would get the user through, for the
	// log; For says what they protect ("context c3 (Admin action)"),
	// which the page shows: policy names are the administrators' words.
	Policies []string
	For      []string
	// Why says what is missing: "needs phishing-resistant; has password, totp".
	Why string
}

// offerState is a user's answers to the offer: how many times they said
// "Not now", and when last.
type offerState struct {
	Snoozed int       `json:"snoozed"`
	Last    time.Time `json:"last"`
}

// offerStates are the answers, by user id. One small record per account,
// written only by its signed-in user, so no one can make the store grow.
var offerStates = kvspace.JSON[offerState](kvspace.RegistrationOffer)

// snoozed reports whether u has used up their "Not now" answers.
func (p *Pages) snoozed(ctx context.Context, userID string) (bool, error) {
	st, err := offerStates.At(userID).Get(ctx, p.KV)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && st.Snoozed >= p.OfferSnoozes, err
}

// offerFor is the offer to make u now, if any: the campaign is on, the
// user has "Not now" answers left, and a policy strands them in a way a
// method they may register fixes.
func (p *Pages) offerFor(ctx context.Context, u store.User) (RegistrationOffer, bool, error) {
	if p.Offer == nil || p.KV == nil || p.OfferSnoozes < 1 {
		return RegistrationOffer{}, false, nil
	}
	if done, err := p.snoozed(ctx, u.ID); done || err != nil {
		return RegistrationOffer{}, false, err
	}
	o, ok, err := p.Offer(ctx, u)
	if err != nil || !ok {
		return RegistrationOffer{}, false, err
	}
	if _, known := p.Methods.Get(o.Method); !known {
		return RegistrationOffer{}, false, nil
	}
	return o, true, nil
}

// afterSignIn sends a browser that has just signed in on to returnTo
// (already made safe), through the offer page when there is an offer.
// The offer never holds up a sign-in: when it cannot be worked out, the
// browser goes straight on and the failure is only logged.
func (p *Pages) afterSignIn(w http.ResponseWriter, r *http.Request, userID, returnTo string) {
	next := returnTo
	if p.Offer != nil && !isOfferPath(returnTo) {
		u, err := p.Store.GetUser(r.Context(), userID)
		var ok bool
		if err == nil {
			_, ok, err = p.offerFor(r.Context(), u)
		}
		if err != nil {
			p.Log.WarnContext(r.Context(), "registration offer skipped", "user_id", userID, "err", err)
		}
		if ok {
			next = offerPath + "?return_to=" + url.QueryEscape(returnTo)
		}
	}
	http.Redirect(w, r, next, http.StatusSeeOther) //nolint:gosec // returnTo passed httpx.SafeReturnTo; offerPath is ours
}

// offerForm shows the offer. Without one (snoozed meanwhile, registered,
// the policies changed) it goes straight on to return_to, so the page can
// never be a stop.
func (p *Pages) offerForm(w http.ResponseWriter, r *http.Request) error {
	returnTo := offerReturn(r.URL.Query().Get("return_to"))
	sess, u, ok, err := p.requireSignIn(w, r, returnTo)
	if !ok || err != nil {
		return err
	}
	o, ok, err := p.offerFor(r.Context(), u)
	if err != nil {
		p.Log.WarnContext(r.Context(), "registration offer skipped", "user_id", u.ID, "err", err)
	}
	if !ok {
		http.Redirect(w, r, returnTo, http.StatusSeeOther) //nolint:gosec // httpx.SafeReturnTo admits local paths only
		return nil
	}
	p.Log.InfoContext(r.Context(), "registration offered", "user", u.Username, "method", o.Method, "policies", o.Policies)
	m, _ := p.Methods.Get(o.Method)
	// Register now goes on to where the sign-in was headed once the
	// method is added (enrollReturn).
	add := "/account/security/add?" + url.Values{"method": {m.Name()}, "return_to": {returnTo}}.Encode()
	p.render(w, r, http.StatusOK, "offer", view{Title: "Add a sign-in method", User: &u, Session: &sess, ReturnTo: returnTo,
		Method: m.Name(), MethodLabel: m.Label(), Offer: &offerView{For: o.For, Why: o.Why, AddURL: add}})
	return nil
}

// snooze records a "Not now" and goes on to return_to: where the sign-in
// was headed, an application's sign-in flow included.
func (p *Pages) snooze(w http.ResponseWriter, r *http.Request) error {
	if err := p.parseForm(w, r); err != nil {
		return err
	}
	returnTo := offerReturn(r.PostFormValue("return_to"))
	_, u, ok, err := p.requireSignIn(w, r, returnTo)
	if !ok || err != nil {
		return err
	}
	if p.KV != nil {
		if err := p.countSnooze(r.Context(), u.ID); err != nil {
			// The answer is lost, not the sign-in: the offer comes back
			// next time.
			p.Log.WarnContext(r.Context(), "registration offer snooze not recorded", "user_id", u.ID, "err", err)
		}
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther) //nolint:gosec // httpx.SafeReturnTo admits local paths only
	return nil
}

// countSnooze adds one "Not now" to the user's record, creating it on the
// first. Two answers at once both count: a lost create becomes an update.
func (p *Pages) countSnooze(ctx context.Context, userID string) error {
	ref := offerStates.At(userID)
	now := p.Now().UTC()
	bump := func(st offerState) (offerState, error) {
		st.Snoozed++
		st.Last = now
		return st, nil
	}
	err := ref.Update(ctx, p.KV, bump)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	err = ref.Create(ctx, p.KV, offerState{Snoozed: 1, Last: now}, time.Time{})
	if errors.Is(err, store.ErrConflict) {
		return ref.Update(ctx, p.KV, bump)
	}
	return err
}

// offerReturn is where the offer page sends the browser on: a local path
// (httpx.SafeReturnTo: no other site, no scheme, no "//host"), and never
// the offer page itself, so a crafted link cannot chain offers.
func offerReturn(s string) string {
	rt := httpx.SafeReturnTo(s)
	if isOfferPath(rt) {
		return "/account"
	}
	return rt
}

// isOfferPath reports whether the local path rt leads to the offer page,
// however it is spelled: "/account/./register-offer" and percent-encoded
// letters reach the same page once the router has cleaned the path.
func isOfferPath(rt string) bool {
	u, err := url.Parse(rt)
	if err != nil {
		return true
	}
	return strings.HasPrefix(path.Clean(u.Path), offerPath)
}

// offerView is what the offer page shows besides the method.
type offerView struct {
	For    []string
	Why    string
	AddURL string
}
