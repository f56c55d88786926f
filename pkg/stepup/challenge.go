package stepup

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Error codes of bearer challenges.
const (
	// ErrInsufficientUserAuthentication is RFC 9470's: the token is valid
	// but its authentication is too weak or too old.
	ErrInsufficientUserAuthentication = "insufficient_user_authentication"
	// ErrInsufficientClaims is Entra's claims challenge: the client must
	// ask again with the claims parameter it is given.
	ErrInsufficientClaims = "insufficient_claims"
	// ErrInvalidToken is RFC 6750's: no usable token.
	ErrInvalidToken = "invalid_token"
	// ErrInsufficientScope is RFC 6750's: the token lacks a scope; a new
	// sign-in does not help, the client must ask for the scope.
	ErrInsufficientScope = "insufficient_scope"
)

// Challenge is a bearer challenge as sent in WWW-Authenticate: what a
// resource server tells a client it must get before trying again.
type Challenge struct {
	Realm       string
	Error       string
	Description string
	// ACRValues and MaxAge are RFC 9470's parameters: the client asks the
	// authorization server again with acr_values and max_age.
	ACRValues []string
	MaxAge    time.Duration
	HasMaxAge bool
	// Claims is Entra's claims challenge: the JSON of a claims request
	// parameter, base64-encoded on the wire, to send back as claims.
	Claims string
	// AuthorizationURI is where to ask (Entra's authorization_uri).
	AuthorizationURI string
	// Scope is, with insufficient_scope, the scope the request needs
	// (RFC 6750). AuthorizeParams leaves it out: the client adds it to
	// the scope it already asks for.
	Scope []string
}

// Insufficient returns RFC 9470's challenge for acrValues (and, when
// maxAge > 0, a freshness limit).
func Insufficient(description string, acrValues []string, maxAge time.Duration) Challenge {
	return Challenge{Error: ErrInsufficientUserAuthentication, Description: description,
		ACRValues: acrValues, MaxAge: maxAge, HasMaxAge: maxAge > 0}
}

// ClaimsChallenge returns Entra's form of the same demand, for clients
// that declared the cp1 capability: the authentication contexts go into
// a claims request {"access_token":{"acrs":{"essential":true,"value":"c2"}}}.
func ClaimsChallenge(description, authorizationURI string, contexts []string) Challenge {
	spec := map[string]any{"essential": true}
	if len(contexts) == 1 {
		spec["value"] = contexts[0]
	} else {
		spec["values"] = contexts
	}
	b, _ := json.Marshal(map[string]any{"access_token": map[string]any{"acrs": spec}})
	return Challenge{Error: ErrInsufficientClaims, Description: description, Claims: string(b), AuthorizationURI: authorizationURI}
}

// String writes the WWW-Authenticate header value.
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(k, v string) {
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v))
		b.WriteByte('"')
		sep = ", "
	}
	if c.Realm != "" {
		param("realm", c.Realm)
	}
	if c.AuthorizationURI != "" {
		param("authorization_uri", c.AuthorizationURI)
	}
	if c.Error != "" {
		param("error", c.Error)
	}
	if c.Description != "" {
		param("error_description", c.Description)
	}
	if len(c.ACRValues) > 0 {
		param("acr_values", strings.Join(c.ACRValues, " "))
	}
	if c.HasMaxAge {
		param("max_age", strconv.FormatInt(int64(c.MaxAge/time.Second), 10))
	}
	if len(c.Scope) > 0 {
		param("scope", strings.Join(c.Scope, " "))
	}
	if c.Claims != "" {
		param("claims", base64.StdEncoding.EncodeToString([]byte(c.Claims)))
	}
	return b.String()
}

// AuthorizeParams are the parameters a client adds to its next
// authorization request to meet the challenge: acr_values and max_age,
// or claims.
func (c Challenge) AuthorizeParams() url.Values {
	v := url.Values{}
	if len(c.ACRValues) > 0 {
		v.Set("acr_values", strings.Join(c.ACRValues, " "))
	}
	if c.HasMaxAge {
		v.Set("max_age", strconv.FormatInt(int64(c.MaxAge/time.Second), 10))
	}
	if c.Claims != "" {
		v.Set("claims", c.Claims)
	}
	return v
}

// maxHeader bounds what ParseChallenge reads.
const maxHeader = 8 << 10

// ParseChallenge reads the Bearer challenge of a WWW-Authenticate header
// value (RFC 9110 auth-param syntax: token or quoted-string values). Other
// schemes in the same header are skipped.
func ParseChallenge(header string) (Challenge, error) {
	if len(header) > maxHeader {
		return Challenge{}, errors.New("stepup: WWW-Authenticate header is too long")
	}
	params, err := bearerParams(header)
	if err != nil {
		return Challenge{}, err
	}
	c := Challenge{
		Realm: params["realm"], Error: params["error"], Description: params["error_description"],
		AuthorizationURI: params["authorization_uri"], ACRValues: strings.Fields(params["acr_values"]),
		Scope: strings.Fields(params["scope"]),
	}
	if s, ok := params["max_age"]; ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > int64(100*365*24*time.Hour/time.Second) {
			return Challenge{}, fmt.Errorf("stepup: max_age %q is not a number of seconds", s)
		}
		c.MaxAge, c.HasMaxAge = time.Duration(n)*time.Second, true
	}
	if s, ok := params["claims"]; ok {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if b, err = base64.RawURLEncoding.DecodeString(s); err != nil {
				return Challenge{}, errors.New("stepup: the claims parameter is not base64")
			}
		}
		if !json.Valid(b) {
			return Challenge{}, errors.New("stepup: the claims parameter is not JSON")
		}
		c.Claims = string(b)
	}
	return c, nil
}

// bearerParams returns the auth-params of the Bearer challenge in h.
func bearerParams(h string) (map[string]string, error) {
	p := &headerParser{s: h}
	for {
		p.skipSpaceAndCommas()
		if p.done() {
			return nil, errors.New("stepup: no Bearer challenge in WWW-Authenticate")
		}
		scheme := p.token()
		if scheme == "" {
			return nil, fmt.Errorf("stepup: malformed WWW-Authenticate at %q", p.rest())
		}
		if p.token68() {
			// Negotiate and others carry one opaque value, not params.
			if strings.EqualFold(scheme, "Bearer") {
				return map[string]string{}, nil
			}
			continue
		}
		params, err := p.params()
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(scheme, "Bearer") {
			return params, nil
		}
	}
}

// headerParser reads RFC 9110 challenges.
type headerParser struct {
	s string
	i int
}

func (p *headerParser) done() bool   { return p.i >= len(p.s) }
func (p *headerParser) rest() string { return p.s[p.i:] }

func (p *headerParser) skipSpace() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *headerParser) skipSpaceAndCommas() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func isTokenChar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
}

func (p *headerParser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// token68 consumes an RFC 9110 token68 ("abc+/==") when one follows the
// scheme and ends the challenge (end of header or a comma); "realm=x" is
// an auth-param, not a token68.
func (p *headerParser) token68() bool {
	save := p.i
	p.skipSpace()
	start := p.i
	for !p.done() && (isAlnum(p.s[p.i]) || strings.IndexByte("-._~+/", p.s[p.i]) >= 0) {
		p.i++
	}
	if p.i == start {
		p.i = save
		return false
	}
	for !p.done() && p.s[p.i] == '=' {
		p.i++
	}
	p.skipSpace()
	if p.done() || p.s[p.i] == ',' {
		return true
	}
	p.i = save
	return false
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// params reads "k=v, k2="v2"" up to the next challenge's scheme.
func (p *headerParser) params() (map[string]string, error) {
	out := map[string]string{}
	for {
		p.skipSpaceAndCommas()
		if p.done() {
			return out, nil
		}
		save := p.i
		key := p.token()
		p.skipSpace()
		if key == "" || p.done() || p.s[p.i] != '=' {
			// The next challenge's scheme (or token68): stop here.
			p.i = save
			if key == "" {
				return nil, fmt.Errorf("stepup: malformed WWW-Authenticate at %q", p.rest())
			}
			return out, nil
		}
		p.i++ // '='
		p.skipSpace()
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		key = strings.ToLower(key)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("stepup: WWW-Authenticate repeats %s", key)
		}
		out[key] = val
	}
}

func (p *headerParser) value() (string, error) {
	if p.done() {
		return "", errors.New("stepup: WWW-Authenticate ends after '='")
	}
	if p.s[p.i] != '"' {
		v := p.token()
		if v == "" {
			return "", fmt.Errorf("stepup: malformed value at %q", p.rest())
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("stepup: unterminated quoted string in WWW-Authenticate")
}
