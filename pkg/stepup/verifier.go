package stepup

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrRejected wraps every reason Verify refuses a token (and
// AssertionVerifier an assertion), so callers can tell a bad token
// (answer 401) from their own mistakes.
var ErrRejected = errors.New("stepup: token rejected")

// Defaults of a Verifier.
const (
	// DefaultLeeway is how far the clocks of the issuer and the resource
	// server may disagree when exp and nbf are checked.
	DefaultLeeway = 30 * time.Second
	// DefaultRefetchInterval is the least time between two fetches of the
	// issuer's keys caused by tokens naming a key the Verifier does not
	// know.
	DefaultRefetchInterval = time.Minute
	// DefaultCacheSize is how many verified tokens are remembered.
	DefaultCacheSize = 10_000
)

// maxToken bounds the tokens Verify looks at; Stepgate's are about 1 KiB.
// Parsing and hashing cost grows with the input, so a far larger one is
// refused before any work is done on it.
const maxToken = 16 << 10

// maxDocument bounds what is read of the discovery document and the JWKS.
const maxDocument = 1 << 20

// allowedAlgs are the only signature algorithms Stepgate uses. Listing
// them for the parser means "none" and HMAC never verify: that stops the
// unsigned-token attack and the one where the public key, known to
// everybody, is used as an HMAC secret.
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// Claims are the verified claims of a Stepgate access token (RFC 9068
// with the step-up claims of RFC 9470 and Entra).
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	// ClientID is the client the token was issued to.
	ClientID string
	// Scope is the space-separated scope granted; see HasScope.
	Scope string
	// AuthTime is when the user last proved who they are (zero if the
	// token has no auth_time, as for client credentials).
	AuthTime time.Time
	// ProofTime is when the proofs behind ACR and ACRs began (Stepgate's
	// proof_time claim): earlier than AuthTime when the last proof alone
	// does not meet them, as when a password is retyped beside an older
	// passkey. MaxAge judges it; zero when the token has none.
	ProofTime time.Time
	// ACR is the authentication class reached: a strength such as
	// single-factor or mfa, or an authentication context id.
	ACR string
	// AMR are the methods used, such as pwd, otp, hwk.
	AMR []string
	// ACRs are the authentication contexts the sign-in satisfied.
	ACRs []string
	// SID identifies the user's session at Stepgate.
	SID string
	// Capabilities are the client's declared capabilities (xms_cc); cp1
	// means it understands claims challenges.
	Capabilities []string
	Username     string
	Groups       []string
	Roles        []string
	// ID is the token's jti.
	ID        string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
}

// HasScope reports whether scope s was granted.
func (c *Claims) HasScope(s string) bool { return slices.Contains(strings.Fields(c.Scope), s) }

// HasContext reports whether the sign-in satisfied authentication
// context id.
func (c *Claims) HasContext(id string) bool { return slices.Contains(c.ACRs, id) }

func (c *Claims) clone() *Claims {
	d := *c
	d.Audience = slices.Clone(c.Audience)
	d.AMR = slices.Clone(c.AMR)
	d.ACRs = slices.Clone(c.ACRs)
	d.Capabilities = slices.Clone(c.Capabilities)
	d.Groups = slices.Clone(c.Groups)
	d.Roles = slices.Clone(c.Roles)
	return &d
}

// wireClaims is the JSON of an access token.
type wireClaims struct {
	jwt.Claims
	ClientID     string           `json:"client_id"`
	Scope        string           `json:"scope"`
	AuthTime     *jwt.NumericDate `json:"auth_time"`
	ProofTime    *jwt.NumericDate `json:"proof_time"`
	ACR          string           `json:"acr"`
	AMR          []string         `json:"amr"`
	ACRs         []string         `json:"acrs"`
	SID          string           `json:"sid"`
	Capabilities []string         `json:"xms_cc"`
	Username     string           `json:"preferred_username"`
	Groups       []string         `json:"groups"`
	Roles        []string         `json:"roles"`
}

func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time()
}

// Option configures a Verifier.
type Option func(*settings)

type settings struct {
	audience []string
	client   *http.Client
	now      func() time.Time
	leeway   time.Duration
	refetch  time.Duration
	cache    int
	realm    string
	log      *slog.Logger
	// introspection, when set, asks Stepgate whether a token is still
	// active (continuous access evaluation).
	introID, introSecret string
	introEvery           time.Duration
	// origin and jwksURL are for an AssertionVerifier (WithOrigin,
	// WithJWKSURL).
	origin, jwksURL string
}

// WithAudience sets the audiences this API accepts: a token must name at
// least one of them. Stepgate puts the client id in aud, so these are the
// ids of the clients allowed to call. Required: without it, a token any
// other client of the same issuer obtained would be accepted here.
func WithAudience(aud ...string) Option {
	return func(s *settings) { s.audience = append(s.audience, aud...) }
}

// WithHTTPClient sets the client used for discovery and the JWKS. The
// default has a 10-second timeout.
func WithHTTPClient(c *http.Client) Option { return func(s *settings) { s.client = c } }

// WithClock sets the clock for token lifetimes, the cache and the
// refetch limit (tests use it to move time).
func WithClock(now func() time.Time) Option { return func(s *settings) { s.now = now } }

// WithLeeway sets the clock skew allowed on exp and nbf (DefaultLeeway).
func WithLeeway(d time.Duration) Option { return func(s *settings) { s.leeway = d } }

// WithRefetchInterval sets the least time between two JWKS fetches caused
// by an unknown key id (DefaultRefetchInterval).
func WithRefetchInterval(d time.Duration) Option { return func(s *settings) { s.refetch = d } }

// WithoutCache turns off the cache of verified tokens: every Verify checks
// the signature again. The cache is on by default; see Verifier.
func WithoutCache() Option { return func(s *settings) { s.cache = 0 } }

// WithIntrospection makes the verifier ask Stepgate's introspection
// endpoint, as the confidential client clientID, whether a token is still
// active: on its first use and again once every interval (0: on every
// use). Security events at Stepgate — a user disabled, a password
// changed, sessions revoked — then reach this API within interval,
// instead of at the token's expiry, at the price of one round trip per
// token per interval.
func WithIntrospection(clientID, secret string, interval time.Duration) Option {
	return func(s *settings) { s.introID, s.introSecret, s.introEvery = clientID, secret, interval }
}

// WithRealm sets the realm of the challenges Require sends (default: the
// issuer).
func WithRealm(realm string) Option { return func(s *settings) { s.realm = realm } }

// WithLogger sets where Require logs why it refused a token (at debug
// level; the client is only told that the token is invalid). The default
// discards.
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// Verifier checks Stepgate access tokens for one API.
//
// Verified tokens are cached by their SHA-256 until they expire, so the
// hot path skips the signature check. A consequence: a token revoked at
// Stepgate is still accepted here until its exp (access tokens live
// minutes). WithIntrospection asks Stepgate as well, so revocations and
// security events (continuous access evaluation) reach the API within an
// interval of your choosing.
type Verifier struct {
	settings
	issuer       string
	authorizeURL string
	jwksURL      string

	keys atomic.Pointer[keySet] // replaced whole on every fetch

	fetchMu   sync.Mutex // serialises fetches and guards lastFetch
	lastFetch time.Time

	cache *tokenCache // nil when disabled

	introspectURL string
	// introMu guards introspected: when each token was last found active.
	introMu      sync.Mutex
	introspected map[[32]byte]time.Time
}

// keySet is one fetched JWKS: verification keys by kid.
type keySet map[string]verificationKey

type verificationKey struct {
	alg jose.SignatureAlgorithm
	key any // *ecdsa.PublicKey or ed25519.PublicKey
}

// discovery is the part of the provider metadata a Verifier needs.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// NewVerifier reads the issuer's discovery document and keys. The issuer
// in the document must equal issuer exactly: a document claiming another
// issuer is refused, so a misconfigured or hostile URL cannot make this
// API trust someone else's tokens. WithAudience is required.
func NewVerifier(ctx context.Context, issuer string, opts ...Option) (*Verifier, error) {
	s := settings{
		client:  &http.Client{Timeout: 10 * time.Second},
		now:     time.Now,
		leeway:  DefaultLeeway,
		refetch: DefaultRefetchInterval,
		cache:   DefaultCacheSize,
		realm:   issuer,
		log:     slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&s)
	}
	if len(s.audience) == 0 || slices.Contains(s.audience, "") {
		return nil, errors.New("stepup: no audience: pass WithAudience with the client ids whose tokens this API accepts")
	}
	if issuer == "" {
		return nil, errors.New("stepup: no issuer: pass Stepgate's issuer URL (server.issuer in its configuration)")
	}
	var d discovery
	docURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	if err := getJSON(ctx, s.client, docURL, &d); err != nil {
		return nil, fmt.Errorf("stepup: discovery: %w", err)
	}
	if d.Issuer != issuer {
		return nil, fmt.Errorf("stepup: discovery at %s names issuer %q, not %q: use the issuer exactly as Stepgate publishes it", docURL, d.Issuer, issuer)
	}
	if d.JWKSURI == "" {
		return nil, fmt.Errorf("stepup: discovery at %s has no jwks_uri", docURL)
	}
	v := &Verifier{settings: s, issuer: issuer, authorizeURL: d.AuthorizationEndpoint, jwksURL: d.JWKSURI,
		introspectURL: d.IntrospectionEndpoint, introspected: map[[32]byte]time.Time{}}
	if s.introID != "" && d.IntrospectionEndpoint == "" {
		return nil, fmt.Errorf("stepup: discovery at %s has no introspection_endpoint, which WithIntrospection needs", docURL)
	}
	if s.cache > 0 {
		v.cache = newTokenCache(s.cache)
	}
	v.lastFetch = s.now()
	if err := v.fetchKeys(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Issuer returns the issuer tokens must come from.
func (v *Verifier) Issuer() string { return v.issuer }

// Verify checks raw, a JWT access token, and returns its claims: a
// signature by one of the issuer's keys with the algorithm that key
// declares (ES256 or EdDSA; never none or HMAC), typ at+jwt, the issuer,
// one of the audiences, and exp and nbf within the leeway. Every refusal
// wraps ErrRejected.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" || len(raw) > maxToken {
		return nil, fmt.Errorf("%w: empty or longer than %d bytes", ErrRejected, maxToken)
	}
	now := v.now()
	sum := sha256.Sum256([]byte(raw))
	if v.cache != nil {
		if c, ok := v.cache.get(sum, now, v.leeway); ok {
			return c, v.stillActive(ctx, sum, raw, now)
		}
	}
	c, err := v.verify(ctx, raw, now)
	if err != nil {
		return nil, err
	}
	if err := v.stillActive(ctx, sum, raw, now); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(sum, c, now, v.leeway)
	}
	return c.clone(), nil
}

// stillActive asks introspection, when configured and due, whether
// Stepgate still considers the token active.
func (v *Verifier) stillActive(ctx context.Context, sum [32]byte, raw string, now time.Time) error {
	if v.introID == "" {
		return nil
	}
	v.introMu.Lock()
	last, seen := v.introspected[sum]
	v.introMu.Unlock()
	if seen && v.introEvery > 0 && now.Sub(last) < v.introEvery {
		return nil
	}
	form := url.Values{"token": {raw}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.introspectURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(v.introID), url.QueryEscape(v.introSecret))
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("stepup: introspection: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Active bool `json:"active"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out) != nil {
		return fmt.Errorf("stepup: introspection answered %s; check the client id and secret given to WithIntrospection", resp.Status)
	}
	if !out.Active {
		return fmt.Errorf("%w: Stepgate no longer considers the token active (revoked, or a security event since it was issued)", ErrRejected)
	}
	v.introMu.Lock()
	if len(v.introspected) >= maxIntrospected {
		clear(v.introspected)
	}
	v.introspected[sum] = now
	v.introMu.Unlock()
	return nil
}

// maxIntrospected bounds the introspection bookkeeping.
const maxIntrospected = 10000

func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	tok, err := jwt.ParseSigned(raw, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: not exactly one signature", ErrRejected)
	}
	h := tok.Headers[0]
	// An ID token is signed by the same keys and names the same user;
	// without this check, a client could present one (meant for itself)
	// as an access token (RFC 9068 section 4).
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, fmt.Errorf("%w: typ %q is not at+jwt (an ID token is not an access token)", ErrRejected, typ)
	}
	key, err := v.key(ctx, h.KeyID, now)
	if err != nil {
		return nil, err
	}
	// The algorithm comes from the key, never from the token, so a token
	// cannot pick how it is checked.
	if jose.SignatureAlgorithm(h.Algorithm) != key.alg {
		return nil, fmt.Errorf("%w: alg %s does not match key %q (%s)", ErrRejected, h.Algorithm, h.KeyID, key.alg)
	}
	var w wireClaims
	if err := tok.Claims(key.key, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if w.Expiry == nil {
		return nil, fmt.Errorf("%w: no exp", ErrRejected)
	}
	exp := jwt.Expected{Issuer: v.issuer, AnyAudience: v.audience, Time: now}
	if err := w.ValidateWithLeeway(exp, v.leeway); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	// Stepgate issues a client's tokens to the client itself (aud holds
	// client_id); one whose audience leaves its client out was issued for
	// a resource of Stepgate's (a database, which keeps it as a password)
	// and is good only there, even when that resource shares a name with
	// an audience this API accepts.
	if !slices.Contains(w.Audience, w.ClientID) {
		return nil, fmt.Errorf("%w: issued to client %q for the resource %v, not for a client", ErrRejected, w.ClientID, []string(w.Audience))
	}
	return &Claims{
		Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience, ClientID: w.ClientID, Scope: w.Scope,
		AuthTime: timeOf(w.AuthTime), ProofTime: timeOf(w.ProofTime), ACR: w.ACR, AMR: w.AMR, ACRs: w.ACRs, SID: w.SID,
		Capabilities: w.Capabilities, Username: w.Username, Groups: w.Groups, Roles: w.Roles,
		ID: w.ID, IssuedAt: timeOf(w.IssuedAt), NotBefore: timeOf(w.NotBefore), Expiry: timeOf(w.Expiry),
	}, nil
}

// key returns the key kid names. An unknown kid refetches the JWKS, so a
// key Stepgate rotated in is picked up without a restart — but at most
// once per refetch interval, so tokens with made-up kids cannot turn this
// API into a tool for flooding the issuer.
func (v *Verifier) key(ctx context.Context, kid string, now time.Time) (verificationKey, error) {
	if k, ok := (*v.keys.Load())[kid]; ok {
		return k, nil
	}
	if kid == "" {
		return verificationKey{}, fmt.Errorf("%w: no kid", ErrRejected)
	}
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	// Another request may have fetched while this one waited.
	if k, ok := (*v.keys.Load())[kid]; ok {
		return k, nil
	}
	if now.Sub(v.lastFetch) < v.refetch {
		return verificationKey{}, fmt.Errorf("%w: unknown key id %q (keys fetched %s ago)", ErrRejected, kid, now.Sub(v.lastFetch).Round(time.Second))
	}
	// Counted before the fetch: a failing JWKS endpoint is not retried
	// on every request either.
	v.lastFetch = now
	if err := v.fetchKeys(ctx); err != nil {
		return verificationKey{}, fmt.Errorf("%w: unknown key id %q: %w", ErrRejected, kid, err)
	}
	if k, ok := (*v.keys.Load())[kid]; ok {
		return k, nil
	}
	return verificationKey{}, fmt.Errorf("%w: unknown key id %q", ErrRejected, kid)
}

// fetchKeys reads the JWKS and replaces the key set. Without a JWKS URL
// yet (an AssertionVerifier not told one), discovery names it first.
func (v *Verifier) fetchKeys(ctx context.Context) error {
	if v.jwksURL == "" {
		var d discovery
		docURL := strings.TrimSuffix(v.issuer, "/") + "/.well-known/openid-configuration"
		if err := getJSON(ctx, v.client, docURL, &d); err != nil {
			return fmt.Errorf("stepup: discovery: %w", err)
		}
		if d.Issuer != v.issuer || d.JWKSURI == "" {
			return fmt.Errorf("stepup: discovery at %s names issuer %q and jwks_uri %q; want issuer %q and a jwks_uri", docURL, d.Issuer, d.JWKSURI, v.issuer)
		}
		v.jwksURL = d.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, v.client, v.jwksURL, &set); err != nil {
		return fmt.Errorf("stepup: fetch keys: %w", err)
	}
	ks := keySet{}
	for _, k := range set.Keys {
		if k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if _, dup := ks[k.KeyID]; dup {
			continue
		}
		if vk, ok := usableKey(k); ok {
			ks[k.KeyID] = vk
		}
	}
	v.keys.Store(&ks)
	return nil
}

// usableKey pins a JWK to the one algorithm it can verify. Only public
// P-256 and Ed25519 keys are kept: a symmetric key in a JWKS would be an
// HMAC secret published to the world. A declared alg must match the key
// type; a missing one is implied by it.
func usableKey(k jose.JSONWebKey) (verificationKey, bool) {
	pub := k.Public()
	var alg jose.SignatureAlgorithm
	switch key := pub.Key.(type) {
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return verificationKey{}, false
		}
		alg = jose.ES256
	case ed25519.PublicKey:
		alg = jose.EdDSA
	default:
		return verificationKey{}, false
	}
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return verificationKey{}, false
	}
	return verificationKey{alg: alg, key: pub.Key}, true
}

func getJSON(ctx context.Context, c *http.Client, u string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocument)).Decode(dst); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// tokenCache remembers verified tokens by their SHA-256. Only tokens that
// passed every check are stored, and the key is the hash of the whole
// token, so a forged token can never hit an entry.
type tokenCache struct {
	max int

	mu      sync.Mutex // guards entries
	entries map[[32]byte]*Claims
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{max: size, entries: make(map[[32]byte]*Claims)}
}

func (tc *tokenCache) get(sum [32]byte, now time.Time, leeway time.Duration) (*Claims, bool) {
	tc.mu.Lock()
	c, ok := tc.entries[sum]
	tc.mu.Unlock()
	if !ok {
		return nil, false
	}
	// Lifetimes are checked again: the entry outlives nothing the token
	// itself would not.
	if !validAt(c, now, leeway) {
		return nil, false
	}
	return c.clone(), true
}

func validAt(c *Claims, now time.Time, leeway time.Duration) bool {
	return !now.After(c.Expiry.Add(leeway)) && (c.NotBefore.IsZero() || !now.Before(c.NotBefore.Add(-leeway)))
}

// put stores c. When full, expired entries go first, then arbitrary ones
// (map order) until an eighth is free, which keeps eviction cheap when
// many tokens arrive at once.
func (tc *tokenCache) put(sum [32]byte, c *Claims, now time.Time, leeway time.Duration) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.entries) >= tc.max {
		for k, e := range tc.entries {
			if !validAt(e, now, leeway) {
				delete(tc.entries, k)
			}
		}
		for k := range tc.entries {
			if len(tc.entries) < tc.max-tc.max/8 {
				break
			}
			delete(tc.entries, k)
		}
	}
	tc.entries[sum] = c
}
