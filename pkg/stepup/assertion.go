package stepup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertionHeader is the header in which Stepgate's gateway sends the
// signed identity assertion upstream.
const AssertionHeader = "X-Stepgate-Assertion"

// AssertionType is the typ header of the gateway's assertions. Stepgate
// signs ID tokens (typ JWT), access tokens (at+jwt) and assertions with
// the same keys; the typ is what keeps one from passing for another.
const AssertionType = "stepgate-assertion+jwt"

// DefaultAssertionLeeway is the clock skew an AssertionVerifier allows on
// exp, nbf and iat. Assertions live 30 seconds by default, so a leeway
// like an access token's would double their life.
const DefaultAssertionLeeway = 5 * time.Second

// maxAssertionLife bounds exp - iat: the gateway's lifetime may be set
// to at most 5 minutes, so anything longer is not one of its assertions.
const maxAssertionLife = 5 * time.Minute

// Assertion is a verified identity assertion: who is asking, how they
// proved it, and the one request the gateway let through.
type Assertion struct {
	Issuer   string
	Subject  string
	Audience []string
	Username string
	Email    string
	Groups   []string
	Roles    []string
	// ACR is the strongest authentication class the session reached.
	ACR string
	// AMR are the methods the session used, such as pwd, otp, hwk.
	AMR []string
	// AuthTime is the user's last proof (zero when unknown).
	AuthTime time.Time
	// ACRs are the authentication contexts the request was allowed under.
	ACRs []string
	// Method and URL are the request the assertion authorizes (its htm
	// and htu): the method, and scheme://host/path without the query.
	Method   string
	URL      string
	IssuedAt time.Time
	Expiry   time.Time
}

// HasContext reports whether the request was allowed under
// authentication context id.
func (a *Assertion) HasContext(id string) bool { return slices.Contains(a.ACRs, id) }

// assertionWire is the JSON of an assertion.
type assertionWire struct {
	jwt.Claims
	Method   string           `json:"htm"`
	URL      string           `json:"htu"`
	Username string           `json:"preferred_username"`
	Email    string           `json:"email"`
	Groups   []string         `json:"groups"`
	Roles    []string         `json:"roles"`
	ACR      string           `json:"acr"`
	AMR      []string         `json:"amr"`
	AuthTime *jwt.NumericDate `json:"auth_time"`
	ACRs     []string         `json:"acrs"`
}

// WithOrigin sets the scheme://host the application's requests arrive
// under, which the assertion's htu must name (AssertionVerifier only).
// Without it the origin comes from the request itself (its Host header,
// and https when it arrived over TLS); a client that reaches the
// application directly chooses its Host header, so set it when you can:
// the origin of the route's to: URL for the built-in proxy, the public
// origin for forward-auth.
func WithOrigin(origin string) Option { return func(s *settings) { s.origin = origin } }

// WithJWKSURL sets where the issuer's keys are read (AssertionVerifier
// only). Without it the discovery document names them, read on first use.
func WithJWKSURL(u string) Option { return func(s *settings) { s.jwksURL = u } }

// AssertionVerifier checks the X-Stepgate-Assertion that Stepgate's
// gateway signs for each request it lets through, so an application
// behind the gateway need not trust the network in front of it: a
// request that reaches it some other way — straight to its port, with an
// assertion seen earlier or a token of another kind — is refused.
type AssertionVerifier struct {
	keys   *Verifier // the issuer's keys, fetched on first use
	origin *url.URL  // nil: from the request
	spent  *spentIDs
}

// maxSpent bounds the jti of unsafe requests remembered at once. Only
// assertions that passed every other check are remembered, each until it
// expires (at most 5 minutes and the leeway), so only the gateway's own
// traffic can fill it.
const maxSpent = 200_000

// spentIDs are the jti of accepted assertions for methods other than
// GET, HEAD and OPTIONS, until they expire: the gateway signs a fresh
// one for each such request, so a second use is a replay.
type spentIDs struct {
	mu  sync.Mutex // guards ids
	ids map[string]time.Time
}

// spend records id until exp, or reports that it was already spent (or
// that too many are in flight to tell: refused rather than risk a
// replay).
func (s *spentIDs) spend(id string, exp, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.ids[id]; ok && now.Before(until) {
		return fmt.Errorf("%w: assertion %s was already used; the gateway signs one for each request that changes something", ErrRejected, id)
	}
	if len(s.ids) >= maxSpent {
		for k, until := range s.ids {
			if !now.Before(until) {
				delete(s.ids, k)
			}
		}
		if len(s.ids) >= maxSpent {
			return fmt.Errorf("%w: more than %d assertions in flight; cannot tell a replay", ErrRejected, maxSpent)
		}
	}
	s.ids[id] = exp
	return nil
}

// NewAssertionVerifier returns a verifier of the gateway's assertions for
// one upstream. WithAudience is required: the route's assertion audience,
// which is by default the origin of its to: URL (http://127.0.0.1:9001).
// It makes no request: the issuer's keys are fetched when the first
// assertion arrives, so the application may start before Stepgate.
func NewAssertionVerifier(issuer string, opts ...Option) (*AssertionVerifier, error) {
	s := settings{
		client:  &http.Client{Timeout: 10 * time.Second},
		now:     time.Now,
		leeway:  DefaultAssertionLeeway,
		refetch: 10 * time.Second,
		log:     slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&s)
	}
	if len(s.audience) == 0 || slices.Contains(s.audience, "") {
		return nil, errors.New("stepup: no audience: pass WithAudience with the route's assertion audience (by default the origin of its to: URL, like http://127.0.0.1:9001)")
	}
	if issuer == "" {
		return nil, errors.New("stepup: no issuer: pass Stepgate's issuer URL (server.issuer in its configuration)")
	}
	if s.leeway < 0 || s.leeway > time.Minute {
		return nil, fmt.Errorf("stepup: assertion leeway %s is outside 0 to 1m", s.leeway)
	}
	a := &AssertionVerifier{keys: &Verifier{settings: s, issuer: issuer, jwksURL: s.jwksURL}, spent: &spentIDs{ids: map[string]time.Time{}}}
	a.keys.keys.Store(&keySet{})
	if s.origin != "" {
		u, err := url.Parse(s.origin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("stepup: WithOrigin(%q) is not an origin; write it like https://bank.example.com", s.origin)
		}
		a.origin = &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}
	}
	return a, nil
}

// VerifyRequest checks the assertion r carries: exactly one
// X-Stepgate-Assertion header, valid (see Verify) for r's method and URL.
func (a *AssertionVerifier) VerifyRequest(r *http.Request) (*Assertion, error) {
	vals := r.Header.Values(AssertionHeader)
	if len(vals) != 1 {
		return nil, fmt.Errorf("%w: %d %s headers, want exactly one (did the request come through Stepgate's gateway?)", ErrRejected, len(vals), AssertionHeader)
	}
	u := &url.URL{Scheme: "http", Host: strings.ToLower(r.Host), Path: r.URL.Path, RawPath: r.URL.RawPath}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if a.origin != nil {
		u.Scheme, u.Host = a.origin.Scheme, a.origin.Host
	}
	return a.Verify(r.Context(), vals[0], r.Method, u)
}

// Verify checks raw, an assertion, for the request method target: a
// signature by one of the issuer's keys with the algorithm that key
// declares (ES256 or EdDSA), typ stepgate-assertion+jwt (no ID or access
// token), the issuer, one of the audiences, iat and exp within the
// leeway and at most 5 minutes apart, and htm and htu naming exactly
// this method and this scheme, host and path. For a method other than
// GET, HEAD and OPTIONS it must also carry a jti not seen before: such
// an assertion is accepted once (in this process; each instance of an
// application behind a load balancer remembers its own). Every refusal
// wraps ErrRejected.
func (a *AssertionVerifier) Verify(ctx context.Context, raw, method string, target *url.URL) (*Assertion, error) {
	if raw == "" || len(raw) > maxToken {
		return nil, fmt.Errorf("%w: empty or longer than %d bytes", ErrRejected, maxToken)
	}
	v := a.keys
	now := v.now()
	tok, err := jwt.ParseSigned(raw, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: not exactly one signature", ErrRejected)
	}
	h := tok.Headers[0]
	// The keys also sign ID tokens and access tokens, which clients and
	// APIs hold: without this check either would pass for an assertion.
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, AssertionType) && !strings.EqualFold(typ, "application/"+AssertionType) {
		return nil, fmt.Errorf("%w: typ %q is not %s (an ID or access token is not an assertion)", ErrRejected, typ, AssertionType)
	}
	key, err := v.key(ctx, h.KeyID, now)
	if err != nil {
		return nil, err
	}
	if jose.SignatureAlgorithm(h.Algorithm) != key.alg {
		return nil, fmt.Errorf("%w: alg %s does not match key %q (%s)", ErrRejected, h.Algorithm, h.KeyID, key.alg)
	}
	var w assertionWire
	if err := tok.Claims(key.key, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if err := checkAssertionClaims(&w, v, now); err != nil {
		return nil, err
	}
	if err := checkRequest(&w, method, target); err != nil {
		return nil, err
	}
	if !safeMethod(method) {
		// Spent last, once everything else holds: a refused request
		// must not use up the assertion of the real one.
		if w.ID == "" {
			return nil, fmt.Errorf("%w: an assertion for %s has no jti", ErrRejected, method)
		}
		if err := a.spent.spend(w.ID, w.Expiry.Time().Add(v.leeway), now); err != nil {
			return nil, err
		}
	}
	return &Assertion{
		Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience, Username: w.Username, Email: w.Email,
		Groups: w.Groups, Roles: w.Roles, ACR: w.ACR, AMR: w.AMR, AuthTime: timeOf(w.AuthTime), ACRs: w.ACRs,
		Method: w.Method, URL: w.URL, IssuedAt: timeOf(w.IssuedAt), Expiry: timeOf(w.Expiry),
	}, nil
}

// safeMethod reports whether method only reads (RFC 9110 section 9.2.1).
// The gateway reuses a read's assertion for the same request; any other
// request gets its own, which Verify accepts once.
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// checkAssertionClaims checks issuer, audience and a short, current life.
func checkAssertionClaims(w *assertionWire, v *Verifier, now time.Time) error {
	if w.Expiry == nil || w.IssuedAt == nil {
		return fmt.Errorf("%w: no exp or iat", ErrRejected)
	}
	if life := w.Expiry.Time().Sub(w.IssuedAt.Time()); life <= 0 || life > maxAssertionLife {
		return fmt.Errorf("%w: lives %s, not up to %s as the gateway's assertions do", ErrRejected, life, maxAssertionLife)
	}
	if err := w.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: v.audience, Time: now}, v.leeway); err != nil {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if w.Subject == "" || w.Username == "" {
		return fmt.Errorf("%w: the assertion names nobody", ErrRejected)
	}
	return nil
}

// checkRequest compares htm and htu with the request being served, as
// RFC 9449 (DPoP) section 4.3 does: the method exactly, the scheme and
// host without case, the path as sent (escaped), no query or fragment.
// An assertion for GET / replayed on POST /transfers fails here.
func checkRequest(w *assertionWire, method string, target *url.URL) error {
	if w.Method == "" || w.Method != method {
		return fmt.Errorf("%w: the assertion authorizes %q, not %s", ErrRejected, w.Method, method)
	}
	htu, err := url.Parse(w.URL)
	if err != nil || htu.Host == "" || htu.RawQuery != "" || htu.Fragment != "" || htu.User != nil {
		return fmt.Errorf("%w: htu %q is not scheme://host/path", ErrRejected, w.URL)
	}
	want := target.EscapedPath()
	if want == "" {
		want = "/"
	}
	got := htu.EscapedPath()
	if got == "" {
		got = "/"
	}
	if !strings.EqualFold(htu.Scheme, target.Scheme) || !strings.EqualFold(htu.Host, target.Host) || got != want {
		return fmt.Errorf("%w: the assertion authorizes %s, not %s://%s%s", ErrRejected, w.URL, target.Scheme, target.Host, want)
	}
	return nil
}

type assertionKey struct{}

// AssertionFrom returns the assertion RequireAssertion verified.
func AssertionFrom(ctx context.Context) (*Assertion, bool) {
	a, ok := ctx.Value(assertionKey{}).(*Assertion)
	return a, ok
}

// RequireAssertion serves next only requests with a valid assertion
// (see AssertionFrom), and answers every other one 401.
func (a *AssertionVerifier) RequireAssertion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as, err := a.VerifyRequest(r)
		if err != nil {
			a.keys.log.DebugContext(r.Context(), "stepup: assertion refused", "path", r.URL.Path, "err", err)
			http.Error(w, "this application is served only through Stepgate's gateway", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), assertionKey{}, as)))
	})
}
