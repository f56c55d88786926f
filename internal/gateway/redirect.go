package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// startURL is Stepgate's hand-off endpoint for route rt.
func (g *Gateway) startURL(rt *route, params url.Values) string {
	params.Set("route", rt.name)
	return g.Issuer + "/gateway/start?" + params.Encode()
}

// signIn sends a browser without a gateway session to Stepgate, which
// signs it in (or recognises its session) and hands it back.
func (g *Gateway) signIn(w http.ResponseWriter, r *http.Request, rt *route, p string) {
	if wantsJSON(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stepgate", error="invalid_token", error_description="sign in first"`)
		g.refuse(w, r, http.StatusUnauthorized, "Sign in first.")
		return
	}
	target := escapePath(p)
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	bind := g.binding(w, r, rt)
	params := url.Values{"target": {target}, "b": {bind}}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !forwarded(r) {
		// A POST from a browser whose gateway session lapsed: keep it,
		// so signing in does not lose the form.
		id, ok := g.keep(w, r, rt, p, nil, bind, g.startURL(rt, params))
		if !ok {
			return
		}
		params.Set("kept", id)
	}
	http.Redirect(w, r, g.startURL(rt, params), http.StatusSeeOther)
}

// challengeBrowser keeps the request when it must be replayed (a form
// post, or any single-use request) and sends the browser to step up.
func (g *Gateway) challengeBrowser(w http.ResponseWriter, r *http.Request, rt *route, ru *rule, id *identity, p string, v verdict) {
	if wantsJSON(r) {
		g.challengeAPI(w, r, rt, ru, nil, "a stronger or fresher sign-in is required")
		return
	}
	target := escapePath(p)
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	bind := g.binding(w, r, rt)
	params := url.Values{"target": {target}, "stepup": {strings.Join(v.Methods, ",")}, "b": {bind}}
	if v.PasswordChange {
		params.Del("stepup")
		params.Set("password", "1")
	}
	if forwarded(r) && ru.singleUse {
		if err := g.recordChallenge(r, rt, ru, id); err != nil {
			g.fail(w, r, err)
			return
		}
	}
	if !forwarded(r) && (ru.singleUse || (r.Method != http.MethodGet && r.Method != http.MethodHead)) {
		kid, ok := g.keep(w, r, rt, p, &id.user, bind, g.startURL(rt, params))
		if !ok {
			return
		}
		params.Set("kept", kid)
	}
	http.Redirect(w, r, g.startURL(rt, params), http.StatusSeeOther)
}

// bindingCookie names the hand-off binding cookie of a route's host.
func (rt *route) bindingCookie() string {
	if rt.scheme == "https" {
		return "__Host-stepgate_gw_bind"
	}
	return "stepgate_gw_bind"
}

// binding returns the hash of the browser's binding cookie on rt's
// host, giving the browser one when it has none.
//
// Without it, an attacker could start a hand-off in their own browser —
// minting a ticket for their own session, or keeping a forged form
// before signing in — and send the victim the link that completes it:
// the victim would be signed in to the application as the attacker, or
// their sign-in would carry out the attacker's form.
func (g *Gateway) binding(w http.ResponseWriter, r *http.Request, rt *route) string {
	v := ""
	if c, err := r.Cookie(rt.bindingCookie()); err == nil && len(c.Value) == 43 {
		v = c.Value
	} else {
		v = newSecret()
		//nolint:gosec // Secure follows the route's scheme: http only for local development
		http.SetCookie(w, &http.Cookie{Name: rt.bindingCookie(), Value: v, Path: "/", HttpOnly: true,
			Secure: rt.scheme == "https", SameSite: http.SameSiteLaxMode})
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// boundTo reports whether r's browser holds the binding cookie bind
// hashes.
func boundTo(r *http.Request, rt *route, bind string) bool {
	c, err := r.Cookie(rt.bindingCookie())
	if err != nil || len(bind) != 64 {
		return false
	}
	sum := sha256.Sum256([]byte(c.Value))
	return hex.EncodeToString(sum[:]) == bind
}
