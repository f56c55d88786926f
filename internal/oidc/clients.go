package oidc

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// clientPrefix is where clients added with "stepgate client add" live.
// storedClients are the clients added at run time, by id.
var storedClients = kvspace.JSON[Client](kvspace.OIDCClient)

// Token endpoint authentication methods.
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthNone          = "none"
)

// Grant types.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// ErrUnknownClient means no client has the id.
var ErrUnknownClient = errkind.New(errkind.Invalid, "unknown client")

// Client is a registered relying party.
type Client struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Public     bool   `json:"public,omitempty"`
	AuthMethod string `json:"auth_method"`
	// SecretHash is the SHA-256 of the secret. Secrets are 256-bit random
	// values Stepgate generates (or at least 32 characters in the file),
	// so a fast hash is enough: there is nothing to brute-force.
	SecretHash             string              `json:"secret_sha256,omitempty"`
	JWKS                   *jose.JSONWebKeySet `json:"jwks,omitempty"`
	RedirectURIs           []string            `json:"redirect_uris"`
	PostLogoutRedirectURIs []string            `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             []string            `json:"grant_types"`
	Capabilities           []string            `json:"capabilities,omitempty"`
	// Scopes are the privileged scopes it may be granted (stepgate:admin).
	Scopes    []string  `json:"scopes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// FromConfig marks a client declared in the configuration file; it
	// cannot be removed with the command line.
	FromConfig bool `json:"-"`
}

// Allows reports whether the client may use grant type g.
func (c *Client) Allows(g string) bool { return slices.Contains(c.GrantTypes, g) }

// checkSecret compares in constant time.
func (c *Client) checkSecret(secret string) bool {
	if c.SecretHash == "" || secret == "" {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	want, err := hex.DecodeString(c.SecretHash)
	return err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1
}

// HasRedirectURI reports whether uri is registered, by exact string
// comparison (RFC 6749 3.1.2.3, OAuth 2.0 Security BCP 4.1): no prefix,
// case, path or encoding leeway, which is what open-redirect and code
// theft attacks rely on.
func (c *Client) HasRedirectURI(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// Clients finds clients: those of the configuration file first, then the
// store's.
type Clients struct {
	kv     store.KV
	static map[string]*Client
	check  func(ClientOptions) error
	now    func() time.Time
}

// ClientOptions declare a client: ID and Name, the Secret of a
// client_secret_basic or client_secret_post client, its AuthMethod and
// GrantTypes (their defaults applied), whether it is Public, the
// JWKSFile of a private_key_jwt client's public keys, the redirect URIs
// it may use, its Capabilities (xms_cc, like cp1) and the privileged
// Scopes it may be granted (AdminScope).
type ClientOptions struct {
	ID, Name, Secret, AuthMethod string
	Public                       bool
	JWKSFile                     string
	RedirectURIs                 []string
	PostLogoutRedirectURIs       []string
	GrantTypes                   []string
	Capabilities, Scopes         []string
}

// ClientsOptions set up the client registry.
type ClientsOptions struct {
	// Declared are the clients of the configuration file, checked by
	// the wiring that read it.
	Declared []ClientOptions
	// Check validates a client added at run time (Add) as the
	// configuration's clients are validated, in errors that name the
	// field. Without it Add refuses every client: a client is never
	// registered unchecked (a redirect URI over plain http, a short
	// secret).
	Check func(ClientOptions) error
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// AdminScope admits a client_credentials token to the admin API when
// the client's Scopes list it.
const AdminScope = "stepgate:admin"

// NewClients builds the registry. A private_key_jwt client's JWKS file
// is read here.
func NewClients(kv store.KV, o ClientsOptions) (*Clients, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	cs := &Clients{kv: kv, static: map[string]*Client{}, check: o.Check, now: now}
	for i, d := range o.Declared {
		c := &Client{
			ID: d.ID, Name: d.Name, Public: d.Public, AuthMethod: d.AuthMethod,
			RedirectURIs: d.RedirectURIs, PostLogoutRedirectURIs: d.PostLogoutRedirectURIs,
			GrantTypes: d.GrantTypes, Capabilities: d.Capabilities, Scopes: d.Scopes, FromConfig: true,
		}
		if d.Secret != "" {
			c.SecretHash = hashSecret(d.Secret)
		}
		if d.JWKSFile != "" {
			set, err := readJWKS(d.JWKSFile)
			if err != nil {
				return nil, fmt.Errorf("oidc.clients[%d].jwks_file: %w", i, err)
			}
			c.JWKS = set
		}
		cs.static[c.ID] = c
	}
	return cs, nil
}

// readJWKS reads a file of public keys; private keys are refused, so a
// client's secret never ends up on the server by mistake.
func readJWKS(path string) (*jose.JSONWebKeySet, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, err
	}
	return ParseJWKS(b)
}

// ParseJWKS parses a client's JSON Web Key Set of public signing keys.
func ParseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the key set has no keys")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("key %q is a private key; give only the public keys", k.KeyID)
		}
		if !k.Valid() {
			return nil, fmt.Errorf("key %q is not valid", k.KeyID)
		}
	}
	return &set, nil
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Get returns the client with id.
func (cs *Clients) Get(ctx context.Context, id string) (*Client, error) {
	if c, ok := cs.static[id]; ok {
		return c, nil
	}
	c, err := storedClients.At(id).Get(ctx, cs.kv)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownClient
	}
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", id, err)
	}
	return &c, nil
}

// List returns every client, configured ones first.
func (cs *Clients) List(ctx context.Context) ([]*Client, error) {
	out := make([]*Client, 0, len(cs.static))
	for _, c := range cs.static {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Client) int { return cmp.Compare(a.ID, b.ID) })
	items, err := storedClients.List(ctx, cs.kv)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if it.Err != nil {
			return nil, fmt.Errorf("client %s: %w", it.ID, it.Err)
		}
		c := it.Value
		out = append(out, &c)
	}
	return out, nil
}

// IDs lists every client id; the policy compiler checks app names
// against it.
func (cs *Clients) IDs(ctx context.Context) ([]string, error) {
	all, err := cs.List(ctx)
	ids := make([]string, len(all))
	for i, c := range all {
		ids[i] = c.ID
	}
	return ids, err
}

// NewClient describes a client to add.
type NewClient struct {
	ID, Name               string
	Public                 bool
	AuthMethod             string // default client_secret_basic, or none when public
	JWKS                   []byte // for private_key_jwt
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	Capabilities           []string
	Scopes                 []string
}

// authMethod is n's AuthMethod, or its default: none for a public
// client, client_secret_basic for any other.
func (n NewClient) authMethod() string {
	switch {
	case n.AuthMethod != "":
		return n.AuthMethod
	case n.Public:
		return AuthNone
	}
	return AuthSecretBasic
}

// grantTypes is n's GrantTypes, or the default: authorization_code and
// refresh_token.
func (n NewClient) grantTypes() []string {
	if len(n.GrantTypes) == 0 {
		return []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	return n.GrantTypes
}

// Add registers a client in the store and returns it with its secret
// (empty for public and private_key_jwt clients). The secret is shown
// once; only its hash is kept.
func (cs *Clients) Add(ctx context.Context, n NewClient) (*Client, string, error) {
	if n.ID == "" {
		n.ID = randomID(9)
	}
	method := n.authMethod()
	decl := ClientOptions{
		ID: n.ID, Name: n.Name, Public: n.Public, AuthMethod: method,
		RedirectURIs: n.RedirectURIs, PostLogoutRedirectURIs: n.PostLogoutRedirectURIs,
		GrantTypes: n.grantTypes(), Capabilities: n.Capabilities, Scopes: n.Scopes,
	}
	var secret string
	if method == AuthSecretBasic || method == AuthSecretPost {
		secret = randomID(32)
		decl.Secret = secret
	}
	if method == AuthPrivateKeyJWT {
		decl.JWKSFile = "(given)" // checked below
	}
	if cs.check == nil {
		return nil, "", errors.New("clients cannot be added here: no check of a new client is set up")
	}
	if err := cs.check(decl); err != nil {
		return nil, "", err
	}
	if _, ok := cs.static[n.ID]; ok {
		return nil, "", fmt.Errorf("client %q is declared in the configuration file: %w", n.ID, store.ErrConflict)
	}
	c := &Client{
		ID: n.ID, Name: n.Name, Public: n.Public, AuthMethod: method,
		RedirectURIs: n.RedirectURIs, PostLogoutRedirectURIs: n.PostLogoutRedirectURIs,
		GrantTypes: n.grantTypes(), Capabilities: n.Capabilities, Scopes: n.Scopes, CreatedAt: cs.now().UTC(),
	}
	if secret != "" {
		c.SecretHash = hashSecret(secret)
	}
	if method == AuthPrivateKeyJWT {
		set, err := ParseJWKS(n.JWKS)
		if err != nil {
			return nil, "", fmt.Errorf("client keys: %w", err)
		}
		c.JWKS = set
	}
	if err := storedClients.At(c.ID).Create(ctx, cs.kv, *c, time.Time{}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, "", fmt.Errorf("client %q already exists: %w", c.ID, err)
		}
		return nil, "", err
	}
	return c, secret, nil
}

// Remove deletes a client added with Add.
func (cs *Clients) Remove(ctx context.Context, id string) error {
	if _, ok := cs.static[id]; ok {
		return fmt.Errorf("client %q is declared in the configuration file; remove it there", id)
	}
	err := storedClients.At(id).Delete(ctx, cs.kv)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("client %q: %w", id, ErrUnknownClient)
	}
	return err
}

// randomID returns n random bytes, base64url-encoded.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
