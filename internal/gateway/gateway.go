// Package gateway is Stepgate's identity-aware reverse proxy. It puts
// Stepgate in front of any application and demands stronger proof exactly
// on the routes that matter.
//
// Every request is handled the same way: the path is normalized once,
// the route and rule are found, the caller is identified (a browser by
// its gateway cookie, an API client by its bearer token), the policy
// engine decides, and the request is proxied with signed identity
// headers, refused, or challenged. A browser is sent to the step-up page
// and back, with a POST kept and replayed exactly once; an API client
// gets an RFC 9470 or Entra-style challenge. The forward-auth endpoints
// run the same decision for proxies that stay in front (Traefik, Caddy,
// nginx).
//
// The files follow that loop. route.go and path.go find the route and
// rule; identity.go finds a browser's identity, bearer.go an API
// client's; verdict.go makes the decision and reask.go the re-asks of
// max_age and single-use rules; signinlog.go builds the sign-in log
// entries; proxy.go passes the request on, over upstream.go's
// connections, with assertion.go's identity headers and without the
// cookies of cookies.go; forward.go is forward-auth. The hand-off runs
// on two hosts: on the application's, redirect.go sends the browser to
// Stepgate and keep.go keeps the request it made; on Stepgate's,
// handoff_start.go mints the ticket; back on the application's,
// callback.go redeems it and replays the kept request. handoff.go holds
// what both sides share.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// callbackPath is where, on an application's host, the gateway receives
// the one-time ticket that binds the browser to its Stepgate session.
const callbackPath = "/.stepgate/callback"

// Store is what the gateway keeps: tickets, gateway sessions and kept
// requests in the key/value space; users for identity headers.
type Store interface {
	store.KV
	GetUser(ctx context.Context, id string) (store.User, error)
}

// TokenVerifier checks bearer tokens issued by Stepgate's provider.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, raw string) (*oauth.AccessClaims, error)
}

// Signer signs identity assertions with their own typ.
type Signer interface {
	SignAssertion(claims any) (string, error)
}

// Deps are the gateway's collaborators.
type Deps struct {
	// Issuer is Stepgate's own base URL, where browsers sign in.
	Issuer   string
	Store    Store
	Sessions *session.Manager
	Policies interface{ Load() *policy.Snapshot }
	// Environments returns the policy set of a named environment, for
	// the routes that name one (Route.Environment).
	Environments func(name string) (interface{ Load() *policy.Snapshot }, bool)
	Access       access.RequestFunc
	Tokens       TokenVerifier
	Signer       Signer
	// Box encrypts requests kept across a step-up (they hold form data).
	Box *secrets.Box
	// Methods lists the methods a user can prove, in prompt order, for
	// the step-up page's hint.
	Methods func(r *http.Request, u store.User) ([]string, error)
	// ErrorPage shows an error on Stepgate's own host (its hand-off
	// endpoint); AppErrorPage on an application's host, where every
	// address in the page must lead back to the issuer or the
	// application. Without AppErrorPage, ErrorPage serves both.
	ErrorPage    func(w http.ResponseWriter, r *http.Request, status int, msg string)
	AppErrorPage func(w http.ResponseWriter, r *http.Request, status int, msg string, links []httpx.Link)
	// ReportedRisk, when set, is the live risk detections other systems
	// reported about a session or an access token (by its jti), which
	// raise the sign-in risk of the requests the token makes.
	ReportedRisk func(ctx context.Context, userID, sessionID, tokenID string) []risk.SessionRisk
	// Metrics counts decisions; nil counts nothing.
	Metrics *metrics.Metrics
	// SignIns writes the decisions that matter to the sign-in log (see
	// signinlog.go for which); nil writes none. When it fails (a full
	// log that fails closed) the request is refused, never let through
	// unlogged.
	SignIns func(ctx context.Context, e audit.SignIn) error
	Options Options
	// TokenFamilyLifetime is how long tokens can be refreshed from one
	// sign-in (oidc.refresh_token_lifetime): a single-use rule remembers
	// a token's spent proof that long. Zero means the default, 30 days.
	TokenFamilyLifetime time.Duration
	// ClientIP is the client's address behind the trusted proxies; nil
	// means the peer's address.
	ClientIP func(*http.Request) netip.Addr
	Log      *slog.Logger
	Now      func() time.Time
}

// Gateway serves the routes.
type Gateway struct {
	Deps
	routes    []*route
	upstreams map[*route]*upstream
	// strip holds the canonical names of the configured strip_headers.
	strip map[string]bool
	// trusted are the peers the forward-auth endpoints answer.
	trusted []netip.Prefix
	// mu guards assertions, the cache of signed identity assertions.
	mu         sync.Mutex
	assertions map[string]cachedAssertion
	// browsers and bearers reuse identity lookups briefly (identityTTL).
	browsers ttlCache[*browserEntry]
	bearers  ttlCache[bearerEntry]
	buffers  bufferPool
	// quotaWarned is when (Unix seconds) a full kept-request quota was
	// last logged: once a minute, so a flood does not flood the log.
	quotaWarned atomic.Int64
}

// New compiles the routes.
func New(d Deps) (*Gateway, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	routes, err := compileRoutes(d.Options.Routes)
	if err != nil {
		return nil, err
	}
	if err := d.bindEnvironments(routes); err != nil {
		return nil, err
	}
	g := &Gateway{Deps: d, routes: routes, upstreams: map[*route]*upstream{}, strip: map[string]bool{},
		assertions: map[string]cachedAssertion{}, buffers: make(bufferPool, 128), trusted: d.Options.TrustedProxies}
	if d.Log != nil {
		for _, w := range Lint(d.Options) {
			d.Log.Warn("a gateway rule leaves a way around it; stepgate gateway lint explains", "key", w.Key, "warning", w.Message)
		}
	}
	for _, k := range d.Options.StripHeaders {
		g.strip[http.CanonicalHeaderKey(k)] = true
	}
	for _, rt := range routes {
		if rt.upstream != nil {
			g.upstreams[rt] = g.newUpstream(rt)
		}
	}
	return g, nil
}

// Close closes the kept-alive connections to the upstreams.
func (g *Gateway) Close() {
	for _, up := range g.upstreams {
		up.pool.Close()
	}
}

// Handles reports whether r is for one of the gateway's routes rather
// than for Stepgate itself: its host, and its path prefix when the route
// shares a host with other things.
func (g *Gateway) Handles(r *http.Request) bool {
	return find(g.routes, r.Host, r.URL.Path) != nil
}

// Forget drops every cached identity lookup, so a security event on this
// node (a user disabled, sessions revoked) is seen by the next request.
func (g *Gateway) Forget(string) {
	g.browsers.forget()
	g.bearers.forget()
}

// Apps lists the app ids of the routes, which policies may target.
func (g *Gateway) Apps() []string {
	out := make([]string, 0, len(g.routes))
	for _, rt := range g.routes {
		out = append(out, rt.app)
	}
	return out
}

// rawPath is the request's path exactly as sent, before Go's decoding,
// so that encoded tricks are seen rather than silently decoded.
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if p == "" || p[0] != '/' { // absolute-form: use the parsed URL
		return r.URL.EscapedPath()
	}
	return p
}

// ServeHTTP handles a request for a route's host.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := normalize(rawPath(r))
	if err != nil {
		g.refuse(w, r, http.StatusBadRequest, "The address of this request is not in a form the gateway accepts.")
		return
	}
	rt := find(g.routes, r.Host, p)
	if rt == nil {
		g.refuse(w, r, http.StatusNotFound, "No application is configured at this address.")
		return
	}
	if p == rt.prefix+callbackPath {
		g.callback(w, r, rt)
		return
	}
	if mayHoldAnswer(r) && g.serveHeld(w, r, rt, p) {
		return
	}
	g.handle(w, r, rt, p, g.proxyTo(rt))
}

// outcome is what a request gets after the decision: pass it on (with
// identity), or an answer the gateway writes itself.
type pass func(w http.ResponseWriter, r *http.Request, id *identity, p string)

// handle runs the decision for one request on route rt with canonical
// path p, and calls allow when it may go ahead.
func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, rt *route, p string, allow pass) {
	if no := rt.admit(r, p); no != nil {
		g.refuse(w, r, http.StatusBadRequest, no.msg)
		return
	}
	ru := rt.ruleFor(r.Method, p)
	if ru.anonymous {
		allow(w, r, nil, p)
		return
	}
	if raw := bearer(r); raw != "" {
		g.handleBearer(w, r, rt, ru, p, raw, allow)
		return
	}
	id, err := g.browserIdentity(r, rt)
	if errors.Is(err, session.ErrNoSession) {
		g.signIn(w, r, rt, p)
		return
	}
	if err != nil {
		g.fail(w, r, err)
		return
	}
	v, ok := g.decide(w, r, rt, ru, id, time.Time{})
	if !ok {
		return
	}
	switch {
	case v.blocked():
		g.refuse(w, r, http.StatusForbidden, v.refusal())
	case v.challenged():
		g.challengeBrowser(w, r, rt, ru, id, p, v)
	default:
		id.acrs = v.ACRs
		allow(w, r, id, p)
	}
}

// fail answers a request the gateway itself could not serve, with the
// status httpx.StatusOf gives the error: the gateway's own failure is
// not the application's, so it is no 502 (that is upstreamFailed's).
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	f := httpx.Fail(r.Context(), g.Log, "gateway request failed", err, "host", r.Host, "path", r.URL.Path)
	g.refuse(w, r, f.Status, f.Message)
}

// refuse answers with an error page, or JSON to an API client.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	g.refuseWith(w, r, status, msg)
}

// refuseWith is refuse with first, links that lead on from this page
// in particular, above the ones every page has.
func (g *Gateway) refuseWith(w http.ResponseWriter, r *http.Request, status int, msg string, first ...httpx.Link) {
	if wantsJSON(r) {
		// Encoded as JSON and served as JSON (with nosniff): a message
		// that quotes the request cannot become markup.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(apiError{Error: http.StatusText(status), Description: msg})
		return
	}
	if g.AppErrorPage == nil {
		g.ErrorPage(w, r, status, msg)
		return
	}
	g.AppErrorPage(w, r, status, msg, append(first, g.waysOn(r, status)...))
}

// waysOn are the links of every page the gateway shows on an
// application's host (or, through forward-auth, that the proxy shows
// there): back to the application's home, and to the user's security
// page on Stepgate, where a missing sign-in method is added. A refused
// user may be signed in as the wrong person: they can sign out.
func (g *Gateway) waysOn(r *http.Request, status int) []httpx.Link {
	issuer := strings.TrimSuffix(g.Issuer, "/")
	var links []httpx.Link
	if rt := g.routeOf(r); rt != nil {
		links = append(links, httpx.Link{Label: "Back to " + rt.host + rt.prefix, URL: rt.origin() + rt.prefix + "/"})
	}
	links = append(links, httpx.Link{Label: "Your security page", URL: issuer + "/account/security"})
	if status == http.StatusForbidden {
		links = append(links, httpx.Link{Label: "Sign out, to sign in as someone else", URL: issuer + "/logout"})
	}
	return links
}

// routeOf is the route r was sent to, if any: its path may be one the
// gateway refuses, so the host alone decides when the path is unusable.
func (g *Gateway) routeOf(r *http.Request) *route {
	p, err := normalize(rawPath(r))
	if err != nil {
		p = "/"
	}
	return find(g.routes, r.Host, p)
}

// apiError is the body of a refusal to an API client.
type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// wantsJSON tells API clients from browsers: they ask for JSON or send
// bearer tokens, and get status codes and challenges, never redirects.
func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return bearer(r) != "" || (strings.Contains(a, "application/json") && !strings.Contains(a, "text/html"))
}

func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// bindEnvironments gives each route that names a policy environment that
// environment's set. An environment with no set is an error: the route
// would otherwise be decided by another environment's policies.
func (d Deps) bindEnvironments(routes []*route) error {
	for i, c := range d.Options.Routes {
		if c.Environment == "" {
			continue
		}
		var p interface{ Load() *policy.Snapshot }
		ok := false
		if d.Environments != nil {
			p, ok = d.Environments(c.Environment)
		}
		if !ok {
			return fmt.Errorf("gateway route %s: policy environment %q is not configured; define it under policy.environments", c.Name, c.Environment)
		}
		routes[i].policies = p
	}
	return nil
}
