package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/revoke"
)

// OIDC configures the OpenID Provider: token lifetimes, signing keys and
// the clients declared in the file. Clients added with "stepgate client
// add" live in the store beside them.
type OIDC struct {
	// CodeLifetime is how long an authorization code may wait for its
	// exchange. Codes are single use; a short life limits what a leaked
	// one is worth.
	CodeLifetime Duration `yaml:"code_lifetime"`
	// AccessTokenLifetime and IDTokenLifetime bound the signed tokens.
	AccessTokenLifetime Duration `yaml:"access_token_lifetime"`
	IDTokenLifetime     Duration `yaml:"id_token_lifetime"`
	// RefreshTokenLifetime is the absolute life of a refresh token family.
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime"`
	// SigningAlg is ES256 or EdDSA. Only asymmetric algorithms exist here.
	SigningAlg string `yaml:"signing_alg"`
	// KeyRotation is how long a signing key signs before a new one takes
	// over; KeyPublishAhead is how long the new key is published before it
	// signs, so every client's JWKS cache has it in time.
	KeyRotation     Duration `yaml:"key_rotation"`
	KeyPublishAhead Duration `yaml:"key_publish_ahead"`
	// Device configures the device authorization grant (RFC 8628).
	Device OIDCDevice `yaml:"device"`
	// Clients are relying parties declared in the file.
	Clients []OIDCClient `yaml:"clients,omitempty"`
}

// OIDCDevice configures the device authorization grant: how long a
// device code and its user code live, how often a device may poll, and
// how many device authorizations may wait at once. Any client with the
// grant can start one without a user, so they are bounded: when the
// bound is reached, new ones are refused until old ones end.
type OIDCDevice struct {
	Lifetime   Duration `yaml:"lifetime"`
	Interval   Duration `yaml:"interval"`
	MaxPending int      `yaml:"max_pending"`
	MaxBytes   int      `yaml:"max_bytes"`
	// PerAddress bounds the device authorizations one client address
	// (an IPv6 /64) may start per lifetime, so one source cannot take
	// all of max_pending.
	PerAddress int `yaml:"per_address"`
}

// DeviceCodeGrant is the grant type of the device authorization grant.
const DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

func (d OIDCDevice) validate(ps *problems) {
	ps.positive("oidc.device.lifetime", d.Lifetime, "10m")
	ps.positive("oidc.device.interval", d.Interval, "5s")
	if d.Lifetime.D() > 30*time.Minute {
		ps.add("oidc.device.lifetime", "%s is too long for a code a user types; use at most 30m (the default is 10m)", d.Lifetime)
	}
	if d.Interval > 0 && d.Interval.D() < time.Second {
		ps.add("oidc.device.interval", "%s is shorter than a second; devices would poll the token endpoint too often. Use 5s", d.Interval)
	}
	if d.Interval > 0 && d.Lifetime > 0 && d.Interval >= d.Lifetime {
		ps.add("oidc.device.interval", "%s must be shorter than oidc.device.lifetime (%s)", d.Interval, d.Lifetime)
	}
	if d.MaxPending < 1 {
		ps.add("oidc.device.max_pending", "must be at least 1 (got %d); the default is 1000", d.MaxPending)
	}
	if d.PerAddress < 1 {
		ps.add("oidc.device.per_address", "must be at least 1 (got %d); the default is 30", d.PerAddress)
	} else if d.MaxPending >= 1 && d.PerAddress > d.MaxPending {
		ps.add("oidc.device.per_address", "%d is more than oidc.device.max_pending (%d); one address could take them all", d.PerAddress, d.MaxPending)
	}
	if d.MaxBytes < 4096 {
		ps.add("oidc.device.max_bytes", "must be at least 4096 (got %d); the default is 4194304 (4 MiB)", d.MaxBytes)
	}
}

// OIDCClient is a relying party declared in the configuration file.
type OIDCClient struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Environment is the policy environment the client's sign-ins are
	// evaluated against (default production).
	Environment string `yaml:"environment,omitempty"`
	// Secret is the client secret of a confidential client using
	// client_secret_basic or client_secret_post (at least 32 characters).
	Secret string `yaml:"secret"`
	// AuthMethod is client_secret_basic (default for confidential
	// clients), client_secret_post, private_key_jwt or none (public).
	AuthMethod string `yaml:"auth_method"`
	// Public marks a client that cannot keep a secret (a single-page or
	// native app): it must use PKCE and gets auth method none.
	Public bool `yaml:"public"`
	// JWKSFile holds the public keys of a private_key_jwt client.
	JWKSFile               string   `yaml:"jwks_file"`
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// GrantTypes defaults to authorization_code and refresh_token;
	// client_credentials makes it a service client, and
	// urn:ietf:params:oauth:grant-type:device_code lets it use the device
	// authorization grant (a command line, a device without a browser).
	GrantTypes []string `yaml:"grant_types"`
	// Capabilities are client capabilities (xms_cc), like cp1 for a
	// client that handles claims challenges.
	Capabilities []string `yaml:"capabilities"`
	// Scopes are privileged scopes the client may be granted:
	// stepgate:admin admits its client_credentials tokens to the admin
	// API.
	Scopes []string `yaml:"scopes"`
}

// defaultOIDC holds the provider's defaults; Default() uses it.
func defaultOIDC() OIDC {
	return OIDC{
		CodeLifetime:         Duration(time.Minute),
		AccessTokenLifetime:  Duration(10 * time.Minute),
		IDTokenLifetime:      Duration(10 * time.Minute),
		RefreshTokenLifetime: Duration(30 * 24 * time.Hour),
		SigningAlg:           "ES256",
		KeyRotation:          Duration(30 * 24 * time.Hour),
		KeyPublishAhead:      Duration(time.Hour),
		Device:               OIDCDevice{Lifetime: Duration(10 * time.Minute), Interval: Duration(5 * time.Second), MaxPending: 1000, MaxBytes: 4 << 20, PerAddress: 30},
	}
}

var (
	clientIDPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	oidcAuthMethods  = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	oidcGrantTypes   = []string{"authorization_code", "refresh_token", "client_credentials", DeviceCodeGrant}
	minClientSecret  = 32
	maxTokenLifetime = 24 * time.Hour
)

func (o OIDC) validate(ps *problems) {
	ps.positive("oidc.code_lifetime", o.CodeLifetime, "1m")
	ps.positive("oidc.access_token_lifetime", o.AccessTokenLifetime, "10m")
	ps.positive("oidc.id_token_lifetime", o.IDTokenLifetime, "10m")
	ps.positive("oidc.refresh_token_lifetime", o.RefreshTokenLifetime, "720h")
	ps.positive("oidc.key_rotation", o.KeyRotation, "720h")
	// A revoked refresh token family stays refused only while its user's
	// revocation record lives; a family that outlived the record would
	// work again.
	if o.RefreshTokenLifetime.D() > revoke.Keep {
		most := fmt.Sprintf("%dh", int(revoke.Keep.Hours()))
		ps.add("oidc.refresh_token_lifetime", "%s is longer than %s (%d days), how long a user's revocation (sign-out everywhere, disabling, a password change) is remembered; a revoked refresh token would work again after that. Use at most %s",
			o.RefreshTokenLifetime, most, int(revoke.Keep.Hours()/24), most)
	}
	if o.CodeLifetime.D() > 10*time.Minute {
		ps.add("oidc.code_lifetime", "%s is too long for a single-use code; use at most 10m (RFC 6749 section 4.1.2)", o.CodeLifetime)
	}
	for _, k := range []struct {
		path string
		d    Duration
	}{{"oidc.access_token_lifetime", o.AccessTokenLifetime}, {"oidc.id_token_lifetime", o.IDTokenLifetime}} {
		if k.d.D() > maxTokenLifetime {
			ps.add(k.path, "%s is longer than 24h; signed tokens cannot be recalled, so keep them short and use refresh tokens", k.d)
		}
	}
	if o.KeyPublishAhead < 0 {
		ps.add("oidc.key_publish_ahead", "must not be negative (got %s); write it like 1h", o.KeyPublishAhead)
	}
	if o.KeyRotation > 0 && o.KeyPublishAhead >= o.KeyRotation {
		ps.add("oidc.key_publish_ahead", "%s must be shorter than oidc.key_rotation (%s)", o.KeyPublishAhead, o.KeyRotation)
	}
	o.Device.validate(ps)
	if o.SigningAlg != "ES256" && o.SigningAlg != "EdDSA" {
		ps.add("oidc.signing_alg", "%q is not supported; use ES256 or EdDSA", o.SigningAlg)
	}
	seen := map[string]int{}
	for i, c := range o.Clients {
		path := fmt.Sprintf("oidc.clients[%d]", i)
		if first, dup := seen[c.ID]; dup && c.ID != "" {
			ps.add(path+".id", "client %q is declared twice (also oidc.clients[%d]); ids must be unique", c.ID, first)
		}
		seen[c.ID] = i
		c.validate(ps, path)
	}
}

// AdminScope admits a client_credentials token to the admin API.
const AdminScope = "stepgate:admin"

func (c OIDCClient) validate(ps *problems, path string) {
	if !clientIDPattern.MatchString(c.ID) {
		ps.add(path+".id", "%q is not a valid client id; use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", c.ID)
	}
	method := c.EffectiveAuthMethod()
	if !slices.Contains(oidcAuthMethods, method) {
		ps.add(path+".auth_method", "%q is not an authentication method; use one of %s", c.AuthMethod, strings.Join(oidcAuthMethods, ", "))
	}
	switch {
	case c.Public && method != "none":
		ps.add(path+".auth_method", "a public client cannot authenticate with %s; remove auth_method or set public: false", method)
	case !c.Public && method == "none":
		ps.add(path+".auth_method", "none is for public clients; set public: true or choose a secret or key")
	case (method == "client_secret_basic" || method == "client_secret_post") && len(c.Secret) < minClientSecret:
		ps.add(path+".secret", "must be at least %d characters for %s; generate one with: openssl rand -base64 32", minClientSecret, method)
	case method == "private_key_jwt" && c.JWKSFile == "":
		ps.add(path+".jwks_file", "private_key_jwt needs the client's public keys; set jwks_file to a JWKS file")
	}
	if c.Public && c.Secret != "" {
		ps.add(path+".secret", "a public client has no secret; remove it or set public: false")
	}
	grants := c.EffectiveGrantTypes()
	for j, g := range grants {
		if !slices.Contains(oidcGrantTypes, g) {
			ps.add(fmt.Sprintf("%s.grant_types[%d]", path, j), "%q is not a grant type; use %s", g, strings.Join(oidcGrantTypes, ", "))
		}
	}
	for j, sc := range c.Scopes {
		switch {
		case sc != AdminScope:
			ps.add(fmt.Sprintf("%s.scopes[%d]", path, j), "%q is not a privileged scope; the one there is, is %s", sc, AdminScope)
		case c.Public || !slices.Contains(grants, "client_credentials"):
			ps.add(fmt.Sprintf("%s.scopes[%d]", path, j), "%s is for confidential clients with the client_credentials grant (a service calling the admin API)", AdminScope)
		}
	}
	if slices.Contains(grants, "client_credentials") && c.Public {
		ps.add(path+".grant_types", "a public client cannot use client_credentials: it has no secret to prove who it is")
	}
	if slices.Contains(grants, "authorization_code") && len(c.RedirectURIs) == 0 {
		ps.add(path+".redirect_uris", "needs at least one redirect URI for the authorization_code grant")
	}
	for j, u := range c.RedirectURIs {
		if err := CheckRedirectURI(u); err != nil {
			ps.add(fmt.Sprintf("%s.redirect_uris[%d]", path, j), "%s", err)
		}
	}
	for j, u := range c.PostLogoutRedirectURIs {
		if err := CheckRedirectURI(u); err != nil {
			ps.add(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", path, j), "%s", err)
		}
	}
}

// EffectiveAuthMethod is the client's token endpoint authentication
// method after defaults: none for public clients, client_secret_basic
// otherwise.
func (c OIDCClient) EffectiveAuthMethod() string {
	switch {
	case c.AuthMethod != "":
		return c.AuthMethod
	case c.Public:
		return "none"
	}
	return "client_secret_basic"
}

// EffectiveGrantTypes is the client's grant types after defaults.
func (c OIDCClient) EffectiveGrantTypes() []string {
	if len(c.GrantTypes) == 0 {
		return []string{"authorization_code", "refresh_token"}
	}
	return c.GrantTypes
}

// CheckRedirectURI reports why u cannot be registered as a redirect URI:
// it must be absolute, without a fragment, and https unless it points
// at the loopback interface or uses a private-use scheme of a native
// app (RFC 8252). Matching is exact, so what is registered is what
// a client must send.
func CheckRedirectURI(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil || p.Scheme == "" || !p.IsAbs():
		return fmt.Errorf("%q is not an absolute URI; write it like https://app.example.com/callback", u)
	case p.Fragment != "" || strings.Contains(u, "#"):
		return fmt.Errorf("%q has a fragment; redirect URIs must not (RFC 6749 section 3.1.2)", u)
	case p.User != nil:
		return fmt.Errorf("%q carries a user name; remove it", u)
	case p.Scheme == "https":
		if p.Host == "" {
			return fmt.Errorf("%q has no host", u)
		}
	case p.Scheme == "http":
		if h := p.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return fmt.Errorf("%q uses plain http; use https (http is allowed only for localhost, 127.0.0.1 and [::1])", u)
		}
	case strings.Contains(p.Scheme, "."):
		// Native apps: a reverse-domain private-use scheme (RFC 8252 7.1).
	default:
		return fmt.Errorf("%q uses scheme %q; use https, http on loopback, or a reverse-domain scheme like com.example.app", u, p.Scheme)
	}
	return nil
}

// CheckClient validates one client as the file's clients are validated,
// for clients added from the command line. Its errors name the field.
func CheckClient(c OIDCClient) error {
	var ps problems
	c.validate(&ps, "client")
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = fmt.Errorf("%s: %s", strings.TrimPrefix(p.Path, "client."), p.Message)
	}
	return errors.Join(errs...)
}
