package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// csrf protects state-changing forms with a signed double-submit token: a
// random value in an HttpOnly cookie, and in each form its HMAC under a
// server key. A cross-site page can make the browser send the cookie but
// can neither read it nor compute the HMAC, and because the form value is
// a MAC rather than a copy, a cookie planted by a sibling subdomain is
// useless without the server key.
type csrf struct {
	key        []byte
	cookieName string
	secure     bool
}

const csrfField = "csrf_token"

func newCSRF(key []byte, secure bool) *csrf {
	name := "stepgate_csrf"
	if secure {
		name = "__Host-" + name
	}
	return &csrf{key: key, cookieName: name, secure: secure}
}

// token returns the form token for r, setting the cookie when r has none.
func (c *csrf) token(w http.ResponseWriter, r *http.Request) string {
	seed := c.seed(r)
	if seed == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		seed = base64.RawURLEncoding.EncodeToString(b)
		//nolint:gosec // Secure follows the issuer scheme, as for the session cookie
		http.SetCookie(w, &http.Cookie{
			Name: c.cookieName, Value: seed, Path: "/",
			HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
		})
		r.AddCookie(&http.Cookie{Name: c.cookieName, Value: seed}) //nolint:gosec // added to the request being served, never sent to a browser
	}
	return c.mac(seed)
}

// valid reports whether r carries a form token matching its cookie.
func (c *csrf) valid(r *http.Request) bool {
	seed := c.seed(r)
	got := r.PostFormValue(csrfField)
	return seed != "" && got != "" && hmac.Equal([]byte(got), []byte(c.mac(seed)))
}

// seed is the request's CSRF cookie: the last well-formed one, so that a
// seed ensureSeed added is the one every later token uses.
func (c *csrf) seed(r *http.Request) string {
	seed := ""
	for _, ck := range r.CookiesNamed(c.cookieName) {
		if len(ck.Value) == 43 {
			seed = ck.Value
		}
	}
	return seed
}

// ensureSeed returns the request's CSRF seed, setting a new cookie when it
// has none. The new seed is added to r, so the form token rendered later
// in the same response matches it, and so does what is bound to it.
func (c *csrf) ensureSeed(w http.ResponseWriter, r *http.Request) string {
	if seed := c.seed(r); seed != "" {
		return seed
	}
	c.token(w, r)
	return c.seed(r)
}

func (c *csrf) mac(seed string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("stepgate-csrf\x00"))
	m.Write([]byte(seed))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CSRFToken returns the form token for r, setting the CSRF cookie when r
// has none. Other features that render their own forms (the admin
// console) put it in a csrf_token field, so one token protects every form
// the browser holds. Call it once per response: each call without a
// cookie would set a new one.
func (p *Pages) CSRFToken(w http.ResponseWriter, r *http.Request) string {
	return p.csrf.token(w, r)
}

// CheckCSRF reports whether the posted form of r (already parsed, and
// bounded by the caller) carries a token matching its CSRF cookie.
func (p *Pages) CheckCSRF(r *http.Request) bool { return p.csrf.valid(r) }
