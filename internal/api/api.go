// Package api serves Stepgate's JSON API under /api/v1/: What-If, the
// sign-in log, and the admin API (policies, their impact, users). It is
// kept apart from the browser pages: JSON in and out only, no forms, no
// cookies, and its own access rule checked before any route is looked
// at: the API token or an access token with the stepgate:admin scope;
// a client on this machine's loopback interface may read, not change.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// maxBody bounds request bodies. A What-If description is a few hundred
// bytes; the limit keeps a client from making the server buffer more.
const maxBody = 64 << 10

// Deps is what the API needs.
type Deps struct {
	Policies *policy.Engine
	Users    access.UserFinder
	Access   *access.Builder
	// SignIns is the sign-in log GET /api/v1/signins reads; nil serves
	// none.
	SignIns store.SignIns
	// Admin is the administrators' service; nil serves only What-If and
	// the sign-in log.
	Admin *admin.Service
	// Detections stores risk detections other systems report; nil
	// serves none.
	Detections Detections
	// Tokens verifies access tokens presented to the admin API; nil
	// accepts only api.token.
	Tokens TokenVerifier
	// Databases are the databases the gateway serves, for their
	// connection information.
	Databases []Database
	// Token is api.token; empty disables bearer-token access.
	Token string
	// TrustedProxies are server.trusted_proxies: a request from one was
	// relayed for someone else and never counts as a local client.
	TrustedProxies []netip.Prefix
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// TokenVerifier checks an access token Stepgate issued (signature,
// expiry, revocation) and returns its client and scope.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, raw string) (*oidc.AccessClaims, error)
}

// adminScope admits a client's access tokens to the admin API.
const adminScope = oidc.AdminScope

// API is the /api/v1/ handler.
type API struct {
	deps Deps
	// tokenSum is the SHA-256 of the token, compared in constant time
	// with the presented token's: hashing first also hides the token's
	// length from timing.
	tokenSum [sha256.Size]byte
	mux      *http.ServeMux
}

// New builds the API.
func New(d Deps) *API {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	a := &API{deps: d, mux: http.NewServeMux()}
	if d.Token != "" {
		a.tokenSum = sha256.Sum256([]byte(d.Token))
	}
	allowed := map[string][]string{}
	for _, rt := range routes {
		a.mux.Handle(rt.Method+" "+rt.Pattern, a.endpoint(rt))
		allowed[rt.Pattern] = append(allowed[rt.Pattern], rt.Method)
	}
	// Other methods on a known path get a JSON 405 naming the right ones.
	for pattern, methods := range allowed {
		a.mux.Handle(pattern, a.handle(methodNotAllowed(strings.Join(methods, ", "))))
	}
	a.mux.Handle("/api/", a.handle(func(http.ResponseWriter, *http.Request) error {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no such API endpoint; GET /api/v1/openapi.json lists them"}
	}))
	return a
}

// Mount serves the API under /api/ on mux.
func (a *API) Mount(mux *http.ServeMux) { mux.Handle("/api/", a) }

// Protect serves h under the API's access rule (loopback, the API token
// or an admin client): the metrics endpoint uses it.
func (a *API) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.authorize(r); err != nil {
			a.writeError(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP checks access, then routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpx.NoStore(w)
	p, err := a.authorize(r)
	if err != nil {
		p, err = a.databaseCaller(r, err)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
}

// Error is an API error: the status and the public code and description
// sent to the client, and a private detail that only goes to the log.
type Error struct {
	Status      int
	Code        string
	Description string
	// Problems lists every problem of a policy document that does not
	// compile, with its line.
	Problems policy.Problems
	Debug    error
}

func (e *Error) Error() string {
	if e.Debug != nil {
		return e.Code + ": " + e.Description + ": " + e.Debug.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Debug }

// handle adapts a handler that returns an error.
func (a *API) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// writeError is the one place API errors become HTTP responses. An error
// that is not an *Error is a server fault: the client learns only that.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = apiFailure(httpx.Fail(r.Context(), a.deps.Log, "API request failed", err, "path", r.URL.Path), err)
	} else if e.Status >= 500 {
		a.deps.Log.ErrorContext(r.Context(), "API request failed", "path", r.URL.Path, "err", err)
	} else if e.Debug != nil {
		a.deps.Log.DebugContext(r.Context(), "API request refused", "path", r.URL.Path, "err", err)
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stepgate", error="invalid_token"`)
	}
	writeJSON(w, e.Status, struct {
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
		Problems    policy.Problems `json:"problems,omitempty"`
	}{e.Code, e.Description, e.Problems})
}

// apiFailure is the API error for an error that is not one, with the
// status httpx.StatusOf gave it and a code named after the status.
func apiFailure(f httpx.Failure, err error) *Error {
	e := &Error{Status: f.Status, Code: "invalid_request", Description: f.Message, Debug: err}
	switch {
	case f.Status == http.StatusInternalServerError:
		e.Code, e.Description = "server_error", "the server failed; its log has the details (incident "+f.Incident+")"
	case f.Status >= 500 || f.Status == http.StatusTooManyRequests:
		e.Code = "temporarily_unavailable"
	case f.Status == http.StatusNotFound:
		e.Code = "not_found"
	case f.Status == http.StatusConflict:
		e.Code = "conflict"
	}
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func methodNotAllowed(allow string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", allow)
		return &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: r.Method + " is not allowed here; use " + allow}
	}
}

// authorize names the caller: the API token, a client whose access
// token carries the stepgate:admin scope, or (reading only) a request
// straight from this machine. Anyone else gets 401 or 403.
func (a *API) authorize(r *http.Request) (principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return a.checkToken(r.Context(), h)
	}
	if a.localClient(r) {
		return principal{actor: "local"}, nil
	}
	return principal{}, &Error{Status: http.StatusForbidden, Code: "access_denied",
		Description: "the API answers requests with Authorization: Bearer and api.token or an access token with the " + adminScope +
			" scope (client credentials of a client allowed that scope), and reads from this machine's loopback interface"}
}

func (a *API) checkToken(ctx context.Context, header string) (principal, error) {
	scheme, tok, ok := strings.Cut(header, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return principal{}, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the Authorization header must be: Bearer <token>"}
	}
	if a.deps.Token != "" {
		sum := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1 {
			return principal{actor: "api-token", accountable: true}, nil
		}
	}
	if a.deps.Tokens == nil || strings.Count(tok, ".") != 2 {
		return principal{}, &Error{Status: http.StatusUnauthorized, Code: "invalid_token",
			Description: "the bearer token does not match api.token (set api.token, STEPGATE_API_TOKEN, on the server to use one) and is not an access token"}
	}
	claims, err := a.deps.Tokens.VerifyAccessToken(ctx, tok)
	if err != nil {
		return principal{}, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the access token is not valid: expired, revoked, or not issued by this server", Debug: err}
	}
	if !slices.Contains(strings.Fields(claims.Scope), adminScope) || claims.Subject != claims.ClientID {
		return principal{}, &Error{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "the admin API needs a client_credentials token with the " + adminScope + " scope; people use the console at /admin"}
	}
	return principal{actor: admin.Actor("client:" + claims.ClientID), accountable: true}, nil
}

// requireJSON refuses a body that is not JSON, form posts above all: a
// browser sends application/json across origins only after a CORS
// preflight, which this server never approves.
func requireJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "invalid_request",
			Description: "the body must be JSON; send Content-Type: application/json"}
	}
	return nil
}

// localClient reports whether r comes from a client on this machine.
//
// Only the TCP peer counts, never X-Forwarded-For, which any client can
// send. A reverse proxy on the same machine also connects from loopback
// on behalf of remote clients, so a request from a trusted proxy, or
// carrying any forwarding header, is not local. And the Host header must
// name the loopback interface: a web page that rebinds its own DNS name
// to 127.0.0.1 (DNS rebinding) sends its own name as Host.
func (a *API) localClient(r *http.Request) bool {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !peer.IsLoopback() {
		return false
	}
	for _, p := range a.deps.TrustedProxies {
		if p.Contains(peer) {
			return false
		}
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Forwarded-Host"} {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	return loopbackHost(r.Host)
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// now returns the injected clock's reading.
func (a *API) now() time.Time { return a.deps.Now() }

var _ http.Handler = (*API)(nil)
