package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/store"
)

// callback redeems a ticket on the application's host: it sets the
// gateway cookie, then replays the kept request or goes to the target.
func (g *Gateway) callback(w http.ResponseWriter, r *http.Request, rt *route) {
	ctx := r.Context()
	q := r.URL.Query()
	target, ok := localTarget(q.Get("target"))
	if !ok {
		target = rt.prefix + "/"
	}
	t, err := g.redeem(ctx, q.Get("ticket"), target)
	if errors.Is(err, errTicketSpent) && t.Route == rt.name && boundTo(r, rt, t.Binding) {
		// The browser that completed this hand-off loads its address
		// again (a reload, a restored tab, Back): it goes on to where the
		// hand-off led, with GET. Nothing is redeemed again: a kept form
		// is not sent a second time, and a single-use rule asks anew.
		http.Redirect(w, r, t.Target, http.StatusSeeOther) //nolint:gosec // localTarget admitted it when the ticket was spent
		return
	}
	// A ticket minted for another application is refused: tickets cannot
	// be carried between apps. A spent one in another browser is refused
	// too: it proves nothing there.
	if err != nil || t.Route != rt.name {
		g.refuseWith(w, r, http.StatusBadRequest, "This sign-in link has expired or was already used.",
			httpx.Link{Label: "Open the page you asked for", URL: rt.origin() + target})
		return
	}
	if !boundTo(r, rt, t.Binding) {
		g.refuse(w, r, http.StatusForbidden, "This sign-in link was started in another browser. Open the application and sign in from here.")
		return
	}
	cookie := newSecret()
	s, err := g.Sessions.ByID(ctx, t.SessionID)
	if err != nil {
		g.refuseWith(w, r, http.StatusBadRequest, "Your sign-in ended.",
			httpx.Link{Label: "Sign in again", URL: rt.origin() + target})
		return
	}
	gs := gwSession{SessionID: t.SessionID, UserID: t.UserID, Route: rt.name}
	if err := gwSessions.At(cookie).Create(ctx, g.Store, gs, s.ExpiresAt); err != nil {
		g.fail(w, r, err)
		return
	}
	//nolint:gosec // Secure follows the route's scheme: http only for local development
	http.SetCookie(w, &http.Cookie{Name: rt.cookieName(), Value: cookie, Path: "/", HttpOnly: true,
		Secure: rt.scheme == "https", SameSite: http.SameSiteLaxMode})
	if id := q.Get("kept"); id != "" {
		setRequestCookie(r, rt.cookieName(), cookie)
		g.replay(w, r, rt, id, t.Binding)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther) //nolint:gosec // localTarget admits paths on this host only
}

// errTicketSpent is a ticket presented again after its redemption.
var errTicketSpent = errors.New("gateway: ticket already redeemed")

// redeem spends ticket tok, which leads to target, and returns it. It is
// single use: of two redemptions one gets errTicketSpent (with the
// ticket, so the caller can tell the browser that spent it from another
// one). A spent ticket is kept for spentTicketLifetime, marked spent and
// with the address it led to, so that reloading the callback leads there
// again instead of to an error.
func (g *Gateway) redeem(ctx context.Context, tok, target string) (ticket, error) {
	t, err := g.spendTicket(ctx, tok, target)
	if errors.Is(err, store.ErrConflict) {
		// Spent by a concurrent load (a double click): read it again, as
		// spent, so that this load goes on too.
		t, err = g.spendTicket(ctx, tok, target)
	}
	return t, err
}

// spendTicket marks ticket tok spent, once; see redeem.
func (g *Gateway) spendTicket(ctx context.Context, tok, target string) (ticket, error) {
	var t ticket
	err := tickets.At(tok).Renew(ctx, g.Store, func(cur ticket) (ticket, time.Time, error) {
		t = cur
		if t.Spent {
			return t, time.Time{}, errTicketSpent
		}
		spent := t
		spent.Spent, spent.Target = true, target
		return spent, g.Now().Add(spentTicketLifetime), nil
	})
	return t, err
}

// replay sends a kept request upstream, once, after the decision is
// made again for it; the browser is shown the upstream's answer at the
// original request's address (see answerOnce).
func (g *Gateway) replay(w http.ResponseWriter, r *http.Request, rt *route, id, bind string) {
	k, err := g.takeKept(r, id)
	if err != nil || k.Route != rt.name || k.Binding != bind {
		var more []httpx.Link
		if target, ok := localTarget(r.URL.Query().Get("target")); ok {
			more = append(more, httpx.Link{Label: "Open the page you asked for", URL: rt.origin() + target})
		}
		g.refuseWith(w, r, http.StatusBadRequest, "The request you sent before signing in has expired or was already sent. Send it again.", more...)
		return
	}
	who, err := g.browserIdentity(r, rt)
	if err != nil || (k.UserID != "" && k.UserID != who.user.ID) {
		// Kept for someone else: never replayed under another identity.
		g.refuse(w, r, http.StatusForbidden, "The request you sent before signing in belongs to another account.")
		return
	}
	orig := r.Clone(r.Context())
	orig.Method, orig.URL.Path, orig.URL.RawPath, orig.URL.RawQuery = k.Method, k.Path, "", k.RawQuery
	orig.Body, orig.ContentLength = io.NopCloser(strings.NewReader(string(k.Body))), int64(len(k.Body))
	orig.Header.Del("Content-Type")
	if k.ContentType != "" {
		orig.Header.Set("Content-Type", k.ContentType)
	}
	// The replay arrives on the callback's navigation, which came from
	// Stepgate's host; what is replayed is the request that was kept. A
	// form was kept only when same-origin (see crossSite), and it says
	// so, so an application's own cross-origin checks accept it. A GET
	// or HEAD may have come from anywhere: it claims no origin.
	for _, h := range []string{"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User", "Referer", "Origin"} {
		orig.Header.Del(h)
	}
	if k.Method != http.MethodGet && k.Method != http.MethodHead {
		orig.Header.Set("Origin", rt.origin())
		orig.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	ru := rt.ruleFor(k.Method, k.Path)
	asked := k.CreatedAt
	if !k.AskedAt.IsZero() {
		asked = k.AskedAt
	}
	orig = orig.WithContext(context.WithValue(orig.Context(), askedKey{}, asked))
	v, ok := g.decide(w, orig, rt, ru, who, asked)
	if !ok {
		return
	}
	switch {
	case v.blocked():
		g.refuse(w, r, http.StatusForbidden, v.refusal())
	case v.challenged():
		// Still not enough (the step-up was abandoned or too weak): keep
		// it again and ask again.
		g.challengeBrowser(w, orig, rt, ru, who, k.Path, v)
	default:
		who.acrs = v.ACRs
		g.answerOnce(w, orig, rt, who, k)
	}
}

// setRequestCookie makes r carry cookie name=value instead of any it
// had, so the replay is judged by the session just handed over.
func setRequestCookie(r *http.Request, name, value string) {
	var keep []string
	for _, c := range r.Cookies() {
		if c.Name != name {
			keep = append(keep, c.String())
		}
	}
	// Only the request's Cookie header is built here; nothing is sent.
	keep = append(keep, (&http.Cookie{Name: name, Value: value}).String()) //nolint:gosec // G124: not a response cookie
	r.Header.Set("Cookie", strings.Join(keep, "; "))
}
