package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/httpx"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
)

// Endpoint paths, relative to the issuer.
const (
	pathDiscovery  = "/.well-known/openid-configuration"
	pathJWKS       = "/oauth2/jwks"
	pathAuthorize  = "/oauth2/authorize"
	pathResume     = "/oauth2/authorize/resume"
	pathToken      = "/oauth2/token" //nolint:gosec // G101: a path, not a credential
	pathUserinfo   = "/oauth2/userinfo"
	pathIntrospect = "/oauth2/introspect"
	pathRevoke     = "/oauth2/revoke"
	pathEndSession = "/oauth2/logout"
)

// Lifetimes of what the provider issues.
type Lifetimes struct {
	Code, AccessToken, IDToken, RefreshToken time.Duration
}

// Store is what the provider keeps: grants, codes and flow state in the
// key/value space, and reads of users and their credentials.
type Store interface {
	store.KV
	GetUser(ctx context.Context, id string) (store.User, error)
	ListCredentials(ctx context.Context, userID string) ([]store.Credential, error)
}

// AccessBuilder builds the conditional access request for a browser
// request by a signed-in user; the gateway is handed the same one, so
// both ask the policy engine the same question.
type AccessBuilder = access.RequestFunc

// Deps are the provider's collaborators.
type Deps struct {
	Issuer   string
	Store    Store
	Sessions *session.Manager
	Clients  *Clients
	Keys     *KeyRing
	Policies interface{ Load() *policy.Snapshot }
	// AppPolicies are the policy sets of apps (clients, databases) in a
	// policy environment other than production, by app id; an app not
	// listed is decided by Policies.
	AppPolicies map[string]interface{ Load() *policy.Snapshot }
	Access      AccessBuilder
	// Revocations says whether a user's tokens issued at a time were
	// revoked since by a security event (continuous access evaluation).
	// Nil means nothing is ever revoked that way. Its answers must
	// come from the store's records (package revoke's not-before
	// times), whose changes raise the store's access mark: verified
	// tokens are cached under that mark.
	Revocations Revocations
	// Methods are the registered authentication methods beyond the
	// password, in prompt order.
	Methods   *authn.Registry
	Lifetimes Lifetimes
	// Device configures the device authorization grant; zero fields take
	// DefaultDeviceOptions.
	Device DeviceOptions
	// Databases are the names of the databases the database gateway
	// serves: the only audiences besides clients that tokens are issued
	// for (resource urn:stepgate:database:NAME).
	Databases []string
	// SIDKey derives the sid claim from a session, so the claim is stable
	// across step-ups (which rotate the session's id) and reveals nothing
	// about the cookie.
	SIDKey []byte
	// Box seals authorization requests in progress, which browsers carry
	// instead of the store keeping them. Every node must share its key.
	Box *secrets.Box
	// ErrorPage shows a browser an error that must not be sent to a
	// client's redirect URI (an unknown client or redirect URI).
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, msg string)
	// Metrics counts decisions; nil counts nothing.
	Metrics *metrics.Metrics
	// SignIns writes each authorization decision to the sign-in log;
	// nil skips.
	SignIns func(ctx context.Context, e audit.SignIn) error
	// OnRevoke is called with the token's subject (its user, or a
	// client for its own token) after a token or grant is revoked here (RFC 7009, a reused
	// code or refresh token), so caches on this node that trust earlier
	// lookups (the gateway's) drop them at once; nil calls nothing.
	OnRevoke func(userID string)
	Log      *slog.Logger
	Now      func() time.Time
}

// Revocations answers continuous access evaluation (package revoke).
type Revocations interface {
	Revoked(ctx context.Context, userID string, issued time.Time) (bool, time.Time, error)
}

// RevokedError is why a token was refused after a security event (see
// package oauth, which the gateway reads it from).
type RevokedError = oauth.RevokedError

// Provider is the OpenID Provider.
type Provider struct {
	Deps
	// verified caches verified access tokens; nil when the store cannot
	// tell when to stop trusting them (store.AccessWatch).
	verified *verifiedTokens
}

// New returns a provider.
func New(d Deps) *Provider {
	if d.Box == nil {
		panic("oidc: Deps.Box is required: authorization requests are sealed with it")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	d.Device = deviceDefaults(d.Device, d.Store, d.Now)
	return &Provider{Deps: d, verified: newVerifiedTokens(d.Store)}
}

// Mount registers the protocol endpoints on mux. They are not browser
// form routes: relying parties post to them cross-origin by design, and
// each one authenticates what it must itself.
func (p *Provider) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+pathDiscovery, p.discovery)
	mux.HandleFunc("GET "+pathJWKS, p.jwks)
	mux.HandleFunc("GET "+pathAuthorize, p.authorize)
	mux.HandleFunc("POST "+pathAuthorize, p.authorize)
	mux.HandleFunc("GET "+pathResume, p.resume)
	mux.HandleFunc("POST "+pathToken, p.token)
	mux.HandleFunc("POST "+pathDeviceAuthorization, p.deviceAuthorization)
	mux.HandleFunc("GET "+pathUserinfo, p.userinfo)
	mux.HandleFunc("POST "+pathUserinfo, p.userinfo)
	mux.HandleFunc("POST "+pathIntrospect, p.introspect)
	mux.HandleFunc("POST "+pathRevoke, p.revoke)
	mux.HandleFunc("GET "+pathEndSession, p.endSession)
	mux.HandleFunc("POST "+pathEndSession, p.endSession)
}

// Discovery is the provider metadata (OIDC Discovery 1.0, RFC 8414).
type Discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionAuthMethods          []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationAuthMethods             []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	ACRValuesSupported                []string `json:"acr_values_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	ClaimsParameterSupported          bool     `json:"claims_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	AuthorizationResponseISSSupported bool     `json:"authorization_response_iss_parameter_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
}

// claimsSupported are the claims Stepgate can put in tokens.
var claimsSupported = []string{
	"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "acrs", "sid", "azp",
	"name", "preferred_username", "email", "email_verified", "groups", "roles", "xms_cc",
}

// Metadata returns the discovery document.
func (p *Provider) Metadata() Discovery {
	clientAuth := []string{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthNone}
	return Discovery{
		Issuer:                            p.Issuer,
		AuthorizationEndpoint:             p.Issuer + pathAuthorize,
		TokenEndpoint:                     p.Issuer + pathToken,
		DeviceAuthorizationEndpoint:       p.Issuer + pathDeviceAuthorization,
		UserinfoEndpoint:                  p.Issuer + pathUserinfo,
		JWKSURI:                           p.Issuer + pathJWKS,
		IntrospectionEndpoint:             p.Issuer + pathIntrospect,
		RevocationEndpoint:                p.Issuer + pathRevoke,
		EndSessionEndpoint:                p.Issuer + pathEndSession,
		ScopesSupported:                   []string{"openid", "profile", "email", "groups", "offline_access"},
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{p.signingAlg()},
		TokenEndpointAuthMethodsSupported: clientAuth,
		TokenEndpointAuthSigningAlgs:      clientAssertionAlgNames(),
		IntrospectionAuthMethods:          clientAuth[:3],
		RevocationAuthMethods:             clientAuth,
		CodeChallengeMethodsSupported:     []string{"S256"},
		ACRValuesSupported:                p.acrValues(),
		ClaimsSupported:                   claimsSupported,
		ClaimsParameterSupported:          true,
		PromptValuesSupported:             []string{"none", "login", "consent"},
		AuthorizationResponseISSSupported: true,
	}
}

func (p *Provider) signingAlg() string {
	if k, err := p.Keys.signing(); err == nil {
		return k.Alg
	}
	return "ES256"
}

// acrValues are the strengths and the declared authentication contexts.
func (p *Provider) acrValues() []string {
	snap := p.Policies.Load()
	out := snap.Strengths().Names()
	for _, c := range snap.AuthContexts() {
		out = append(out, c.ID)
	}
	return out
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, p.Metadata())
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	// Short enough that a key published ahead (hours) is always seen in
	// time, long enough to spare the server.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_ = json.NewEncoder(w).Encode(p.Keys.JWKS())
}

// writeJSON writes v with status; responses carrying tokens are never
// cached (RFC 6749 5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error is an OAuth 2.0 error with a public description and a private
// debug detail (see package oauth).
type Error = oauth.Error

// oauthFailure is the OAuth error for an error that is not one: the
// codes RFC 6749 has for a server that failed or cannot answer now, and
// invalid_request for a refusal of the request.
func oauthFailure(f httpx.Failure) *Error {
	switch {
	case f.Status == http.StatusInternalServerError:
		return &Error{Code: "server_error", Status: f.Status, Description: "the server could not complete the request; try again (incident " + f.Incident + ")"}
	case f.Status >= 500 || f.Status == http.StatusTooManyRequests:
		return &Error{Code: "temporarily_unavailable", Status: f.Status, Description: "the server cannot take the request now; try again in a moment"}
	}
	return &Error{Code: "invalid_request", Status: f.Status, Description: f.Message}
}

func oauthErr(code string, status int, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: status}
}

// writeError answers a back-channel request with an OAuth error. Any
// other error takes its status from httpx.StatusOf: a server failure
// becomes server_error with its cause in the log, a passing one (a full
// sign-in log, a quota) temporarily_unavailable.
func (p *Provider) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *Error
	if !errors.As(err, &oe) {
		oe = oauthFailure(httpx.Fail(r.Context(), p.Log, "oidc request failed", err, "path", r.URL.Path))
	} else if oe.Debug != nil {
		p.Log.InfoContext(r.Context(), "oidc request refused", "path", r.URL.Path, "error", oe.Code, "detail", oe.Debug)
	}
	if oe.Status == http.StatusUnauthorized && oe.Code == "invalid_client" {
		w.Header().Set("WWW-Authenticate", `Basic realm="stepgate"`)
	}
	if oe.Code == "invalid_token" || oe.Code == "insufficient_scope" {
		w.Header().Set("WWW-Authenticate", `Bearer error="`+oe.Code+`", error_description="`+oe.Description+`"`)
	}
	writeJSON(w, oe.Status, map[string]string{"error": oe.Code, "error_description": oe.Description})
}

// snapshotFor returns the policy set the app's requests are decided by:
// its environment's, so a staging client's sign-ins never meet
// production's policies nor the other way round.
func (p *Provider) snapshotFor(app string) *policy.Snapshot {
	if e, ok := p.AppPolicies[app]; ok {
		return e.Load()
	}
	return p.Policies.Load()
}
