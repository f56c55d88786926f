package app_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// The tests in this file attack the OpenID Provider end to end, through
// the real server, and check that each attack is refused: the right
// status and error code, and no code or token for the attacker.

// tokenResponse is what the token endpoint answers, success or error.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	IDToken          string `json:"id_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// basicAuth is an Authorization header value for client_secret_basic
// (RFC 6749 2.3.1 form-encodes both parts first).
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// tokenRequest posts form to the token endpoint, authenticating with
// client_secret_basic when secret is not empty.
func (s *oidcServer) tokenRequest(t *testing.T, form url.Values, clientID, secret string) (int, tokenResponse) {
	t.Helper()
	var hdr []string
	if secret != "" {
		hdr = []string{"Authorization", basicAuth(clientID, secret)}
	}
	resp, body := post(t, http.DefaultClient, s.base+"/oauth2/token", form, hdr...)
	var out tokenResponse
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("token endpoint: status %d, body is not JSON: %s", resp.StatusCode, body)
	}
	if resp.StatusCode == http.StatusOK && out.AccessToken == "" {
		t.Fatalf("token endpoint: 200 without an access token: %s", body)
	}
	if resp.StatusCode != http.StatusOK && (out.AccessToken != "" || out.RefreshToken != "" || out.IDToken != "") {
		t.Fatalf("token endpoint: status %d with tokens: %s", resp.StatusCode, body)
	}
	return resp.StatusCode, out
}

// exchange redeems a code of the web app client.
func (s *oidcServer) exchange(t *testing.T, code, verifier string) (int, tokenResponse) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	return s.tokenRequest(t, form, rpClientID, rpSecret)
}

// mustExchange redeems a code and fails the test unless tokens come back.
func (s *oidcServer) mustExchange(t *testing.T, code, verifier string) tokenResponse {
	t.Helper()
	status, tok := s.exchange(t, code, verifier)
	if status != http.StatusOK {
		t.Fatalf("code exchange: status %d: %s: %s", status, tok.Error, tok.ErrorDescription)
	}
	return tok
}

// refresh uses a refresh token of the web app client.
func (s *oidcServer) refresh(t *testing.T, rt string) (int, tokenResponse) {
	t.Helper()
	return s.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, rpClientID, rpSecret)
}

// code runs an authorization request of the web app client in browser b
// (signing in or stepping up as asked) and returns the code.
func (s *oidcServer) code(t *testing.T, b *http.Client, params url.Values) string {
	t.Helper()
	cb := s.follow(t, b, s.authorizeURL(params))
	q := cb.Query()
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("authorization: error %q (%s), want a code", q.Get("error"), q.Get("error_description"))
	}
	return q.Get("code")
}

// introspect asks whether tok is active, as the web app client.
func (s *oidcServer) introspect(t *testing.T, tok string) map[string]any {
	t.Helper()
	resp, body := post(t, http.DefaultClient, s.base+"/oauth2/introspect", url.Values{"token": {tok}},
		"Authorization", basicAuth(rpClientID, rpSecret))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspection: status %d: %s", resp.StatusCode, body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// active reports whether introspection says tok is active. An inactive
// answer must say nothing else (RFC 7662 2.2): no claims of a dead or
// forged token leak back.
func (s *oidcServer) active(t *testing.T, tok string) bool {
	t.Helper()
	out := s.introspect(t, tok)
	if out["active"] != true && len(out) != 1 {
		t.Errorf("inactive introspection answer carries more than active: %v", out)
	}
	return out["active"] == true
}

// userinfoStatus presents tok to the userinfo endpoint.
func (s *oidcServer) userinfoStatus(t *testing.T, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// requireDead checks that tok is refused everywhere a resource server
// or a client would present it.
func (s *oidcServer) requireDead(t *testing.T, what, tok string) {
	t.Helper()
	if s.active(t, tok) {
		t.Errorf("%s: introspection says active, want inactive", what)
	}
	if got := s.userinfoStatus(t, tok); got != http.StatusUnauthorized {
		t.Errorf("%s: userinfo status %d, want 401", what, got)
	}
}

// requireLive is requireDead's control: without it, a test that only
// checks for refusal would pass against a server that refuses everything.
func (s *oidcServer) requireLive(t *testing.T, what, tok string) {
	t.Helper()
	if !s.active(t, tok) {
		t.Fatalf("%s: introspection says inactive, want active", what)
	}
	if got := s.userinfoStatus(t, tok); got != http.StatusOK {
		t.Fatalf("%s: userinfo status %d, want 200", what, got)
	}
}

// jwtPart decodes part i (0 header, 1 claims) of a compact JWT.
func jwtPart(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// redirectQuery reads the query of resp's redirect to an address outside
// the server, failing unless that is what resp is.
func (s *oidcServer) redirectQuery(t *testing.T, resp *http.Response, target string) url.Values {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || (loc != target && !strings.HasPrefix(loc, target+"?")) {
		t.Fatalf("status %d to %q, want 303 to %s", resp.StatusCode, loc, target)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestAttackCodeReplay(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	code := s.code(t, b, nil)
	first := s.mustExchange(t, code, "")
	if first.RefreshToken == "" || first.IDToken == "" {
		t.Fatal("first exchange: want a refresh token and an ID token")
	}
	s.requireLive(t, "access token before the replay", first.AccessToken)

	// A code seen twice has leaked (RFC 6749 4.1.2): the second
	// redemption fails, and what the first one issued is revoked, since
	// the attacker may have been first.
	status, replay := s.exchange(t, code, "")
	if status != http.StatusBadRequest || replay.Error != "invalid_grant" {
		t.Fatalf("replayed code: status %d error %q, want 400 invalid_grant", status, replay.Error)
	}
	s.requireDead(t, "access token of a replayed code", first.AccessToken)
	if status, out := s.refresh(t, first.RefreshToken); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Errorf("refresh token of a replayed code: status %d error %q, want 400 invalid_grant", status, out.Error)
	}
}

func TestAttackCodeOfAnotherClient(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	code := s.code(t, b, nil)

	// The attacker is a registered client that got hold of the web app's
	// code and authenticates with its own, valid secret.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}
	status, out := s.tokenRequest(t, form, otherClientID, otherSecret)
	if status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Fatalf("code presented by another client: status %d error %q, want 400 invalid_grant", status, out.Error)
	}
	// The code is burnt: it leaked, so its owner must start again.
	if status, out := s.exchange(t, code, ""); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Errorf("code after another client tried it: status %d error %q, want 400 invalid_grant", status, out.Error)
	}
}

func TestAttackRedirectURI(t *testing.T) {
	s := startOIDC(t, nil)
	// A signed-in browser: had any of these been accepted, a code would
	// have gone straight to the attacker's address.
	b := browser(t)
	s.signIn(t, b, "/account")
	_, spaChallenge := pkce()

	tests := []struct {
		name     string
		clientID string
		redirect string // "-" omits the parameter
	}{
		{"fail/missing", rpClientID, "-"},
		{"fail/empty", rpClientID, ""},
		{"fail/registered-is-prefix", rpClientID, rpRedirect + "evil"},
		{"fail/prefix-of-registered", rpClientID, "http://127.0.0.1:9/"},
		{"fail/extra-path", rpClientID, rpRedirect + "/evil"},
		{"fail/dot-segments", rpClientID, rpRedirect + "/../evil"},
		{"fail/trailing-slash", rpClientID, rpRedirect + "/"},
		{"fail/path-case", rpClientID, "http://127.0.0.1:9/Callback"},
		{"fail/scheme-case", rpClientID, "HTTP://127.0.0.1:9/callback"},
		{"fail/host-case", spaClientID, "http://LOCALHOST:9/spa/callback"},
		{"fail/percent-encoded-path", rpClientID, "http://127.0.0.1:9/%63allback"},
		{"fail/percent-encoded-slash", rpClientID, "http://127.0.0.1:9%2Fcallback"},
		{"fail/encoded-traversal", rpClientID, rpRedirect + "%2F..%2F..%2Fevil"},
		{"fail/double-encoded", rpClientID, url.QueryEscape(rpRedirect)},
		{"fail/userinfo-to-evil-host", rpClientID, "http://127.0.0.1:9@evil.example/callback"},
		{"fail/evil-userinfo", rpClientID, "http://evil.example@127.0.0.1:9/callback"},
		{"fail/backslash-host", rpClientID, "http://127.0.0.1:9\\@evil.example/callback"},
		{"fail/fragment", rpClientID, rpRedirect + "#x"},
		{"fail/empty-fragment", rpClientID, rpRedirect + "#"},
		{"fail/extra-query", rpClientID, rpRedirect + "?next=https://evil.example/"},
		{"fail/other-port", rpClientID, "http://127.0.0.1:10/callback"},
		{"fail/no-port", rpClientID, "http://127.0.0.1/callback"},
		{"fail/other-loopback-name", rpClientID, "http://localhost:9/callback"},
		{"fail/https", rpClientID, "https://127.0.0.1:9/callback"},
		{"fail/trailing-space", rpClientID, rpRedirect + " "},
		{"fail/other-clients-uri", rpClientID, otherRedirect},
		{"fail/evil-site", rpClientID, "https://evil.example/callback"},
		{"fail/unknown-client", "no-such-client", "https://evil.example/callback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := url.Values{"client_id": {tc.clientID}, "redirect_uri": {tc.redirect}, "code_challenge": {spaChallenge}, "code_challenge_method": {"S256"}}
			if tc.redirect == "-" {
				params.Set("redirect_uri", "")
			}
			u := s.authorizeURL(params)
			if tc.redirect == "" {
				u += "&redirect_uri="
			}
			resp, body := get(t, b, u)
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Fatalf("redirect_uri %q: redirected to %q; an unregistered URI must never be redirected to", tc.redirect, loc)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("redirect_uri %q: status %d, want 400 and an error page", tc.redirect, resp.StatusCode)
			}
			if strings.Contains(body, "code=") {
				t.Fatalf("the error page carries a code:\n%s", body)
			}
		})
	}

	// The controls: the registered URIs, in the same browser, get a
	// code. Without them the cases above would pass against a server
	// that refused everything.
	for _, c := range []struct{ clientID, redirect string }{{rpClientID, rpRedirect}, {spaClientID, spaRedirect}} {
		t.Run("ok/registered-"+c.clientID, func(t *testing.T) {
			resp, _ := get(t, b, s.authorizeURL(url.Values{
				"client_id": {c.clientID}, "redirect_uri": {c.redirect}, "code_challenge": {spaChallenge}, "code_challenge_method": {"S256"},
			}))
			if q := s.redirectQuery(t, resp, c.redirect); q.Get("code") == "" {
				t.Fatalf("registered redirect_uri: no code (error %q)", q.Get("error"))
			}
		})
	}
}

func TestAttackPKCE(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	s.signIn(t, b, "/account")
	verifier, challenge := pkce()

	// spaAuthorize sends a request of the public client with params.
	spaAuthorize := func(t *testing.T, params url.Values) url.Values {
		t.Helper()
		q := url.Values{"client_id": {spaClientID}, "redirect_uri": {spaRedirect}, "scope": {"openid"}}
		for k, v := range params {
			q[k] = v
		}
		resp, _ := get(t, b, s.authorizeURL(q))
		return s.redirectQuery(t, resp, spaRedirect)
	}
	spaExchange := func(t *testing.T, code, verifier string) (int, tokenResponse) {
		t.Helper()
		form := url.Values{"grant_type": {"authorization_code"}, "client_id": {spaClientID}, "code": {code}, "redirect_uri": {spaRedirect}}
		if verifier != "" {
			form.Set("code_verifier", verifier)
		}
		return s.tokenRequest(t, form, spaClientID, "")
	}

	refused := []struct {
		name   string
		params url.Values
	}{
		// Without PKCE, a public client's code is worth as much to
		// whoever intercepts it (another app claiming the redirect
		// scheme) as to the client.
		{"fail/no-challenge", nil},
		// plain sends the verifier itself, so an interceptor of the
		// request has it too.
		{"fail/plain", url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}}},
		// An omitted method means plain (RFC 7636 4.3).
		{"fail/method-omitted", url.Values{"code_challenge": {challenge}}},
		{"fail/method-without-challenge", url.Values{"code_challenge_method": {"S256"}}},
		{"fail/challenge-not-a-hash", url.Values{"code_challenge": {"short"}, "code_challenge_method": {"S256"}}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			q := spaAuthorize(t, tc.params)
			if q.Get("error") != "invalid_request" || q.Get("code") != "" {
				t.Fatalf("error %q code %q, want invalid_request and no code", q.Get("error"), q.Get("code"))
			}
		})
	}

	s256 := url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	t.Run("fail/wrong-verifier", func(t *testing.T) {
		code := spaAuthorize(t, s256).Get("code")
		other, _ := pkce()
		if status, out := spaExchange(t, code, other); status != http.StatusBadRequest || out.Error != "invalid_grant" {
			t.Fatalf("wrong verifier: status %d error %q, want 400 invalid_grant", status, out.Error)
		}
		// The failed try burnt the code, so a stolen code allows one
		// guess at the verifier, not many.
		if status, out := spaExchange(t, code, verifier); status != http.StatusBadRequest || out.Error != "invalid_grant" {
			t.Fatalf("right verifier after a wrong one: status %d error %q, want 400 invalid_grant", status, out.Error)
		}
	})
	t.Run("fail/verifier-omitted", func(t *testing.T) {
		code := spaAuthorize(t, s256).Get("code")
		if status, out := spaExchange(t, code, ""); status != http.StatusBadRequest || out.Error != "invalid_grant" {
			t.Fatalf("no verifier: status %d error %q, want 400 invalid_grant", status, out.Error)
		}
	})
	t.Run("ok/right-verifier", func(t *testing.T) {
		code := spaAuthorize(t, s256).Get("code")
		if status, out := spaExchange(t, code, verifier); status != http.StatusOK {
			t.Fatalf("right verifier: status %d error %q, want 200", status, out.Error)
		}
	})
}

// sign signs claims with key by alg, with header fields extra.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, claims map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsigned builds a JWT with alg (none and its spellings) and no
// signature, which go-jose rightly refuses to produce.
func unsigned(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// serverKey reads the server's current private signing key from its
// store: the strongest forger, one who holds the real key, checks that
// the server verifies more than the signature.
func (s *oidcServer) serverKey(t *testing.T, kid string) crypto.Signer {
	t.Helper()
	e, err := s.app.Store.GetKV(context.Background(), "oidc/keyring")
	if err != nil {
		t.Fatal(err)
	}
	var ring []struct {
		ID      string `json:"kid"`
		Private []byte `json:"private"`
	}
	if err := json.Unmarshal(e.Value, &ring); err != nil {
		t.Fatal(err)
	}
	for _, k := range ring {
		if k.ID == kid {
			p, err := x509.ParsePKCS8PrivateKey(k.Private)
			if err != nil {
				t.Fatal(err)
			}
			return p.(crypto.Signer)
		}
	}
	t.Fatalf("no key %s in the stored key ring", kid)
	return nil
}

func TestAttackForgedTokens(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	tok := s.mustExchange(t, s.code(t, b, nil), "")
	claims := jwtPart(t, tok.AccessToken, 1)
	header := jwtPart(t, tok.AccessToken, 0)
	kid, _ := header["kid"].(string)
	alg, _ := header["alg"].(string)
	if kid == "" || alg != "ES256" {
		t.Fatalf("genuine access token header = %v, want kid and ES256 (the default)", header)
	}
	at := map[jose.HeaderKey]any{"typ": "at+jwt", "kid": kid}

	jwks := s.app.Keys.JWKS()
	pub := jwks.Key(kid)
	if len(pub) != 1 {
		t.Fatalf("JWKS has %d keys with kid %s", len(pub), kid)
	}
	pubJSON, err := json.Marshal(pub[0])
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	realKey := s.serverKey(t, kid)
	withClaim := func(k string, v any) map[string]any {
		c := make(map[string]any, len(claims))
		for ck, cv := range claims {
			c[ck] = cv
		}
		c[k] = v
		return c
	}

	// The control: the same claims re-signed with the real key pass.
	// Every forgery below changes one thing from this, so each is refused
	// for the reason its name gives.
	t.Run("ok/resigned-with-real-key", func(t *testing.T) {
		s.requireLive(t, "re-signed genuine claims", sign(t, jose.ES256, realKey, claims, at))
	})

	forged := []struct{ name, token string }{
		// The unsigned-token attack: a verifier that takes alg from the
		// token accepts anything.
		{"fail/alg-none", unsigned(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, claims)},
		{"fail/alg-None", unsigned(map[string]any{"alg": "None", "typ": "at+jwt", "kid": kid}, claims)},
		{"fail/alg-none-with-signature", unsigned(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, claims) + "AAAA"},
		// Key confusion: the public key, which anyone can fetch, used
		// as an HMAC secret, which a verifier that picks the algorithm
		// from the token would check it with.
		{"fail/hs256-with-public-jwk", sign(t, jose.HS256, pubJSON, claims, at)},
		{"fail/hs256-with-public-der", sign(t, jose.HS256, pubDER, claims, at)},
		// Someone else's key under the server's kid.
		{"fail/other-key-server-kid", sign(t, jose.ES256, otherKey, claims, at)},
		// Someone else's key shipped in the header (jwk), which a
		// verifier must never trust.
		{"fail/embedded-jwk", func() string {
			raw, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: otherKey},
				(&jose.SignerOptions{EmbedJWK: true}).WithType("at+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			payload, _ := json.Marshal(claims)
			jws, _ := raw.Sign(payload)
			out, _ := jws.CompactSerialize()
			return out
		}()},
		{"fail/unknown-kid", sign(t, jose.ES256, realKey, claims, map[jose.HeaderKey]any{"typ": "at+jwt", "kid": "no-such-key"})},
		// An ID token is signed by the same key, but it is meant for
		// the client, and a client that forwards it must not get API
		// access with it (RFC 9068 typ at+jwt).
		{"fail/id-token", tok.IDToken},
		{"fail/real-key-typ-jwt", sign(t, jose.ES256, realKey, claims, map[jose.HeaderKey]any{"typ": "JWT", "kid": kid})},
		{"fail/real-key-no-typ", sign(t, jose.ES256, realKey, claims, map[jose.HeaderKey]any{"kid": kid})},
		// The real key, another issuer: only the issuer differs from
		// the control above.
		{"fail/other-issuer", sign(t, jose.ES256, realKey, withClaim("iss", "https://evil.example"), at)},
		{"fail/issuer-trailing-slash", sign(t, jose.ES256, realKey, withClaim("iss", s.base+"/"), at)},
		{"fail/signature-flipped", flipB64(tok.AccessToken)},
		{"fail/payload-swapped", func() string {
			parts := strings.Split(tok.AccessToken, ".")
			c, _ := json.Marshal(withClaim("sub", "someone-else"))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
		}()},
		{"fail/garbage", "not-a-token"},
	}
	for _, tc := range forged {
		t.Run(tc.name, func(t *testing.T) {
			s.requireDead(t, tc.name, tc.token)
		})
	}

	t.Run("ok/genuine-still-active", func(t *testing.T) {
		s.requireLive(t, "the genuine access token", tok.AccessToken)
	})
}

// flipB64 changes a base64url character ten from the end, so a
// signature still decodes but no longer verifies. Not the last one: its
// low bits are padding that decoders ignore, so changing it may leave
// the signature's bytes as they were.
func flipB64(s string) string {
	i := len(s) - 10
	repl := byte('A')
	if s[i] == 'A' {
		repl = 'Q'
	}
	return s[:i] + string(repl) + s[i+1:]
}

func TestAttackRefreshReuse(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	first := s.mustExchange(t, s.code(t, b, nil), "")

	status, second := s.refresh(t, first.RefreshToken)
	if status != http.StatusOK || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh: status %d error %q; want a new refresh token", status, second.Error)
	}
	s.requireLive(t, "access token from the refresh", second.AccessToken)

	// The rotated-out token shows up again: whoever presents it copied
	// it, and there is no telling whether the copy or the original is
	// the thief's. The whole family goes.
	if status, out := s.refresh(t, first.RefreshToken); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Fatalf("reused refresh token: status %d error %q, want 400 invalid_grant", status, out.Error)
	}
	if status, out := s.refresh(t, second.RefreshToken); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Errorf("newest refresh token after reuse: status %d error %q, want 400 invalid_grant", status, out.Error)
	}
	s.requireDead(t, "newest access token after reuse", second.AccessToken)
	s.requireDead(t, "first access token after reuse", first.AccessToken)
}

func TestAttackPromptNone(t *testing.T) {
	s := startOIDC(t, nil)
	stepUp := url.Values{"acr_values": {"c1"}, "max_age": {"0"}, "prompt": {"none"}}

	t.Run("fail/step-up-needed", func(t *testing.T) {
		b := browser(t)
		s.signIn(t, b, "/account")
		resp, _ := get(t, b, s.authorizeURL(stepUp))
		q := s.redirectQuery(t, resp, rpRedirect)
		if q.Get("error") != "interaction_required" || q.Get("code") != "" || q.Get("state") != "st-123" {
			t.Fatalf("error %q code %q state %q, want interaction_required, no code, state st-123", q.Get("error"), q.Get("code"), q.Get("state"))
		}
	})
	t.Run("fail/no-session", func(t *testing.T) {
		resp, _ := get(t, browser(t), s.authorizeURL(stepUp))
		q := s.redirectQuery(t, resp, rpRedirect)
		if q.Get("error") != "login_required" || q.Get("code") != "" {
			t.Fatalf("error %q code %q, want login_required and no code", q.Get("error"), q.Get("code"))
		}
	})
	t.Run("ok/nothing-needed", func(t *testing.T) {
		b := browser(t)
		s.signIn(t, b, "/account")
		resp, _ := get(t, b, s.authorizeURL(url.Values{"prompt": {"none"}}))
		if q := s.redirectQuery(t, resp, rpRedirect); q.Get("code") == "" {
			t.Fatalf("prompt=none with a sufficient session: error %q, want a code", q.Get("error"))
		}
	})
}

func TestAttackClaimsParameter(t *testing.T) {
	s := startOIDC(t, nil)
	tests := []struct {
		name, claims, wantErr string
	}{
		// A client that says it needs c2 must never get a weaker token
		// because the user cannot reach c2 (RFC 9470).
		{"fail/oidc-essential-acr-unreachable", `{"id_token":{"acr":{"essential":true,"values":["c2"]}}}`, "unmet_authentication_requirements"},
		{"fail/entra-acrs-unreachable", `{"access_token":{"acrs":{"essential":true,"value":"c2"}}}`, "unmet_authentication_requirements"},
		{"fail/unknown-acr", `{"id_token":{"acr":{"essential":true,"values":["no-such-context"]}}}`, "unmet_authentication_requirements"},
		// A challenge half-understood is a weaker requirement: refused.
		{"fail/malformed-json", `{"id_token":{"acr":`, "invalid_request"},
		{"fail/acr-not-a-string", `{"id_token":{"acr":{"essential":true,"values":[2]}}}`, "invalid_request"},
		{"fail/unknown-member", `{"id_token":{},"acess_token":{"acrs":{"value":"c2"}}}`, "invalid_request"},
		{"fail/trailing-data", `{"id_token":{}} {"access_token":{}}`, "invalid_request"},
		{"fail/trailing-brace", `{"id_token":{"acr":{"value":"c1"}}}}`, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb := s.follow(t, browser(t), s.authorizeURL(url.Values{"claims": {tc.claims}}))
			q := cb.Query()
			if q.Get("error") != tc.wantErr || q.Get("code") != "" {
				t.Fatalf("error %q code %q, want %s and no code", q.Get("error"), q.Get("code"), tc.wantErr)
			}
			if q.Get("error_description") == "" {
				t.Error("no error_description; the client's developer needs to know what was wrong")
			}
		})
	}

	// The controls: reachable values in both forms are honoured, so the
	// parser does read them.
	for _, c := range []struct{ name, claims, claim string }{
		{"ok/oidc-essential-acr", `{"id_token":{"acr":{"essential":true,"values":["c1"]}}}`, "acr"},
		{"ok/entra-acrs", `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`, "acrs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := s.mustExchange(t, s.code(t, browser(t), url.Values{"claims": {c.claims}}), "")
			at := jwtPart(t, tok.AccessToken, 1)
			acrs, _ := at["acrs"].([]any)
			if at["acr"] != "c1" || !slices.Contains(acrs, any("c1")) {
				t.Fatalf("access token acr %v acrs %v, want c1 in both", at["acr"], at["acrs"])
			}
		})
	}
}

func TestAttackStepUpSkip(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	s.signIn(t, b, "/account")

	resp, _ := get(t, b, s.authorizeURL(url.Values{"acr_values": {"c1"}, "max_age": {"0"}}))
	loc, err := resp.Location()
	if err != nil || loc.Path != "/stepup" {
		t.Fatalf("authorize with acr_values=c1 max_age=0: status %d to %v, want the step-up page", resp.StatusCode, loc)
	}
	resume := loc.Query().Get("return_to")
	if !strings.HasPrefix(resume, "/oauth2/authorize/resume?flow=") {
		t.Fatalf("step-up return_to = %q, want the resume URL", resume)
	}
	wantStepUp := func(t *testing.T, u string) {
		t.Helper()
		resp, _ := get(t, b, u)
		loc, err := resp.Location()
		if err != nil || loc.Path != "/stepup" || loc.Query().Get("code") != "" {
			t.Fatalf("GET %s: status %d to %v, want the step-up page again", u, resp.StatusCode, loc)
		}
	}

	// The user skips the step-up page and goes straight back. The flow's
	// requirements are sealed, so the answer does not change.
	t.Run("fail/resume-without-step-up", func(t *testing.T) {
		wantStepUp(t, s.base+resume)
	})
	// Parameters added to the resume URL are not read: the browser holds
	// only the sealed flow.
	t.Run("fail/resume-with-edited-params", func(t *testing.T) {
		wantStepUp(t, s.base+resume+"&acr_values=&max_age=&prompt=none")
	})
	t.Run("fail/wrong-password", func(t *testing.T) {
		if resp := s.stepUp(t, b, resume, "wrong horse"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("step-up with a wrong password: status %d, want 401", resp.StatusCode)
		}
		wantStepUp(t, s.base+resume)
	})
	t.Run("fail/forged-flow-id", func(t *testing.T) {
		resp, _ := get(t, b, s.base+"/oauth2/authorize/resume?flow=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("unknown flow id: status %d to %q, want a 400 page", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	// A fresh request without acr_values succeeds, but its token must
	// not claim what was never proven.
	t.Run("fail/fresh-request-has-no-c1", func(t *testing.T) {
		tok := s.mustExchange(t, s.code(t, b, nil), "")
		for name, raw := range map[string]string{"access": tok.AccessToken, "ID": tok.IDToken} {
			c := jwtPart(t, raw, 1)
			acrs, _ := c["acrs"].([]any)
			if c["acr"] == "c1" || slices.Contains(acrs, any("c1")) {
				t.Errorf("%s token acr %v acrs %v: c1 was never proven", name, c["acr"], c["acrs"])
			}
		}
	})
	// Going round and round without stepping up ends the flow with an
	// error for the client, never a code. The browser goes back to the
	// flow each step-up page names, which counts the rounds.
	t.Run("fail/loop-ends", func(t *testing.T) {
		next := resume
		for range 10 {
			resp, _ := get(t, b, s.base+next)
			loc, err := resp.Location()
			if err != nil {
				t.Fatalf("resume: status %d, want a redirect", resp.StatusCode)
			}
			if loc.Path == "/stepup" {
				next = loc.Query().Get("return_to")
				continue
			}
			q := s.redirectQuery(t, resp, rpRedirect)
			if q.Get("error") != "access_denied" || q.Get("code") != "" {
				t.Fatalf("flow ended with error %q code %q, want access_denied and no code", q.Get("error"), q.Get("code"))
			}
			return
		}
		t.Fatal("the flow still sends the user to the step-up page after 10 rounds")
	})
	// The control: stepping up for real in a new flow gives c1.
	t.Run("ok/real-step-up", func(t *testing.T) {
		tok := s.mustExchange(t, s.code(t, b, url.Values{"acr_values": {"c1"}, "max_age": {"0"}}), "")
		if c := jwtPart(t, tok.AccessToken, 1); c["acr"] != "c1" {
			t.Fatalf("access token acr %v after stepping up, want c1", c["acr"])
		}
	})
}

func TestAttackClientAuthentication(t *testing.T) {
	s := startOIDC(t, nil)
	code := s.code(t, browser(t), nil)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}
	with := func(extra url.Values) url.Values {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}

	tests := []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"fail/wrong-secret", form, []string{"Authorization", basicAuth(rpClientID, "wrong-secret-wrong-secret-wrong-secret")}},
		{"fail/another-clients-secret", form, []string{"Authorization", basicAuth(rpClientID, otherSecret)}},
		{"fail/empty-secret", form, []string{"Authorization", basicAuth(rpClientID, "")}},
		// A confidential client presented as public: its id alone must
		// not be enough.
		{"fail/no-secret", with(url.Values{"client_id": {rpClientID}}), nil},
		// The right secret by a method the client did not register.
		{"fail/secret-post-for-basic-client", with(url.Values{"client_id": {rpClientID}, "client_secret": {rpSecret}}), nil},
		{"fail/basic-and-other-client-id", with(url.Values{"client_id": {otherClientID}}), []string{"Authorization", basicAuth(rpClientID, rpSecret)}},
		{"fail/unknown-client", form, []string{"Authorization", basicAuth("no-such-client", rpSecret)}},
		{"fail/forged-assertion", with(url.Values{
			"client_id": {rpClientID}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {unsigned(map[string]any{"alg": "none"}, map[string]any{"iss": rpClientID, "sub": rpClientID, "aud": s.base})},
		}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, http.DefaultClient, s.base+"/oauth2/token", tc.form, tc.header...)
			var out tokenResponse
			_ = json.Unmarshal([]byte(body), &out)
			if resp.StatusCode != http.StatusUnauthorized || out.Error != "invalid_client" || out.AccessToken != "" {
				t.Fatalf("status %d error %q, want 401 invalid_client: %s", resp.StatusCode, out.Error, body)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// None of the refused requests touched the code: failing client
	// authentication must not let an attacker burn another client's code.
	t.Run("ok/right-secret", func(t *testing.T) {
		s.mustExchange(t, code, "")
	})
}

func TestAttackRevocation(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	revoke := func(t *testing.T, tok, clientID, secret string) {
		t.Helper()
		resp, body := post(t, http.DefaultClient, s.base+"/oauth2/revoke", url.Values{"token": {tok}}, "Authorization", basicAuth(clientID, secret))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: status %d: %s", resp.StatusCode, body)
		}
	}

	t.Run("ok/access-token", func(t *testing.T) {
		tok := s.mustExchange(t, s.code(t, b, nil), "")
		s.requireLive(t, "before revocation", tok.AccessToken)
		revoke(t, tok.AccessToken, rpClientID, rpSecret)
		s.requireDead(t, "revoked access token", tok.AccessToken)
	})
	t.Run("ok/refresh-token-takes-its-access-tokens", func(t *testing.T) {
		tok := s.mustExchange(t, s.code(t, b, nil), "")
		revoke(t, tok.RefreshToken, rpClientID, rpSecret)
		s.requireDead(t, "access token of a revoked refresh token", tok.AccessToken)
		if status, out := s.refresh(t, tok.RefreshToken); status != http.StatusBadRequest || out.Error != "invalid_grant" {
			t.Errorf("revoked refresh token: status %d error %q, want 400 invalid_grant", status, out.Error)
		}
	})
	// Another client cannot revoke the web app's tokens: the answer is
	// 200 as RFC 7009 asks, but nothing happens.
	t.Run("fail/other-client-revokes", func(t *testing.T) {
		tok := s.mustExchange(t, s.code(t, b, nil), "")
		revoke(t, tok.AccessToken, otherClientID, otherSecret)
		revoke(t, tok.RefreshToken, otherClientID, otherSecret)
		s.requireLive(t, "access token after another client tried to revoke it", tok.AccessToken)
		if status, out := s.refresh(t, tok.RefreshToken); status != http.StatusOK {
			t.Errorf("refresh after another client tried to revoke it: status %d error %q, want 200", status, out.Error)
		}
	})
}

func TestAttackEndSession(t *testing.T) {
	s := startOIDC(t, nil)
	signedIn := func(t *testing.T, b *http.Client) bool {
		t.Helper()
		resp, _ := get(t, b, s.base+"/account")
		switch loc, _ := resp.Location(); {
		case resp.StatusCode == http.StatusOK:
			return true
		case loc != nil && loc.Path == "/login":
			return false
		}
		t.Fatalf("GET /account: status %d", resp.StatusCode)
		return false
	}
	logout := func(t *testing.T, b *http.Client, params url.Values) *http.Response {
		t.Helper()
		resp, _ := get(t, b, s.base+"/oauth2/logout?"+params.Encode())
		return resp
	}
	session := func(t *testing.T) (*http.Client, tokenResponse) {
		t.Helper()
		b := browser(t)
		tok := s.mustExchange(t, s.code(t, b, nil), "")
		if !signedIn(t, b) {
			t.Fatal("not signed in after the flow")
		}
		return b, tok
	}

	t.Run("ok/registered-uri", func(t *testing.T) {
		b, tok := session(t)
		resp := logout(t, b, url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {rpPostLogout}, "state": {"bye"}})
		if q := s.redirectQuery(t, resp, rpPostLogout); q.Get("state") != "bye" {
			t.Errorf("post-logout redirect state = %q, want bye", q.Get("state"))
		}
		if signedIn(t, b) {
			t.Error("still signed in after end session")
		}
	})
	t.Run("fail/unregistered-uri", func(t *testing.T) {
		b, tok := session(t)
		for _, target := range []string{"https://evil.example/", rpPostLogout + "/", rpRedirect, "http://127.0.0.1:9@evil.example/signed-out"} {
			resp := logout(t, b, url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {target}})
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("post_logout_redirect_uri %q: status %d to %q, want a 400 page", target, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if !signedIn(t, b) {
			t.Error("a refused sign-out request ended the session")
		}
	})
	t.Run("fail/forged-hint", func(t *testing.T) {
		b, tok := session(t)
		otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		claims := jwtPart(t, tok.IDToken, 1)
		kid, _ := jwtPart(t, tok.IDToken, 0)["kid"].(string)
		for name, hint := range map[string]string{
			"alg-none":  unsigned(map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims),
			"other-key": sign(t, jose.ES256, otherKey, claims, map[jose.HeaderKey]any{"typ": "JWT", "kid": kid}),
			"garbage":   "not-a-token",
			// Signed by the server, for this session, but an access
			// token: whoever holds one (any resource server) could
			// otherwise sign the user out.
			"access-token": tok.AccessToken,
		} {
			resp := logout(t, b, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {rpPostLogout}, "state": {"bye"}})
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("%s hint: status %d to %q, want a 400 page", name, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if !signedIn(t, b) {
			t.Error("a forged hint ended the session")
		}
	})
	// A hint proves which session the application means. One from
	// another session of the same user (an old ID token, or one from
	// another device) must not end this one.
	t.Run("fail/hint-of-another-session", func(t *testing.T) {
		_, old := session(t)
		b, _ := session(t)
		resp := logout(t, b, url.Values{"id_token_hint": {old.IDToken}, "post_logout_redirect_uri": {rpPostLogout}})
		s.redirectQuery(t, resp, rpPostLogout)
		if !signedIn(t, b) {
			t.Error("an ID token of another session ended this one")
		}
	})
	// Without a hint anyone could sign the user out by embedding the
	// URL in a page: the user is asked instead.
	t.Run("fail/no-hint-asks", func(t *testing.T) {
		b, _ := session(t)
		resp := logout(t, b, url.Values{"post_logout_redirect_uri": {rpPostLogout}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/logout" {
			t.Errorf("no hint: status %d to %q, want 303 to /logout", resp.StatusCode, loc)
		}
		if !signedIn(t, b) {
			t.Error("a sign-out request without a hint ended the session")
		}
	})
}

func TestAttackClientCredentials(t *testing.T) {
	s := startOIDC(t, nil)
	t.Run("ok/service-token", func(t *testing.T) {
		status, tok := s.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}}, svcClientID, svcSecret)
		if status != http.StatusOK {
			t.Fatalf("client_credentials: status %d error %q", status, tok.Error)
		}
		if tok.RefreshToken != "" || tok.IDToken != "" {
			t.Errorf("service token came with refresh token %t / ID token %t; want neither", tok.RefreshToken != "", tok.IDToken != "")
		}
		out := s.introspect(t, tok.AccessToken)
		if out["active"] != true || out["client_id"] != svcClientID || out["sub"] != svcClientID {
			t.Errorf("introspection = %v, want active, client_id and sub %s", out, svcClientID)
		}
		// A service token names no user, so it has no userinfo.
		if got := s.userinfoStatus(t, tok.AccessToken); got != http.StatusForbidden {
			t.Errorf("userinfo with a service token: status %d, want 403", got)
		}
	})
	for _, scope := range []string{"openid", "offline_access", "profile openid"} {
		t.Run("fail/scope-"+strings.ReplaceAll(scope, " ", "-"), func(t *testing.T) {
			status, out := s.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, svcClientID, svcSecret)
			if status != http.StatusBadRequest || out.Error != "invalid_scope" {
				t.Fatalf("scope %q: status %d error %q, want 400 invalid_scope", scope, status, out.Error)
			}
		})
	}
	t.Run("fail/user-client", func(t *testing.T) {
		status, out := s.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}}, rpClientID, rpSecret)
		if status != http.StatusBadRequest || out.Error != "unauthorized_client" {
			t.Fatalf("web app client_credentials: status %d error %q, want 400 unauthorized_client", status, out.Error)
		}
	})
}
