package app_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// giveCredential registers a credential of method for u straight in the
// store: the dead-end analysis reads only its type.
func (s *consoleRig) giveCredential(t *testing.T, u store.User, method string) {
	t.Helper()
	if _, err := s.app.Store.CreateCredential(context.Background(), store.Credential{
		ID: rand.Text(), UserID: u.ID, Type: method, Name: method, Data: []byte("{}"),
	}); err != nil {
		t.Fatal(err)
	}
}

// deadEndSection is the dead-end page's section of policy name.
func deadEndSection(body, name string) string {
	return regexp.MustCompile(`(?s)<section class="card flush deadend" data-policy="` + regexp.QuoteMeta(name) + `".*?</section>`).FindString(body)
}

// TestConsoleDeadEnds: the console lists, per policy, who can never meet
// it and why, linked from the policies page; registration.window 0 leaves
// a password-only user stuck, a user with an authenticator app fixable.
func TestConsoleDeadEnds(t *testing.T) {
	s := startConsole(t, func(cfg *config.Config) { cfg.Registration.Window = 0 })
	s.giveCredential(t, s.user, "totp")
	c := s.login(t, adminName, adminPassword)

	_, body := get(t, c, s.base+"/admin/policies")
	if !strings.Contains(body, `href="/admin/policies/deadends"`) {
		t.Error("the policies page does not link to the dead ends")
	}
	resp, body := get(t, c, s.base+"/admin/policies/deadends")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dead-end page: status %d\n%s", resp.StatusCode, body)
	}
	body = html.UnescapeString(body)
	mfa := deadEndSection(body, "c2-mfa")
	if !strings.Contains(mfa, `data-user="bob"`) || strings.Contains(mfa, `data-user="alice"`) {
		t.Errorf("c2-mfa must list bob (password only) and not alice (authenticator app):\n%s", mfa)
	}
	if !strings.Contains(mfa, `data-verdict="stuck"`) || !strings.Contains(mfa, "needs mfa; has password") ||
		!strings.Contains(mfa, "temporary access pass") {
		t.Errorf("bob should be stuck for want of a pass:\n%s", mfa)
	}
	pr := deadEndSection(body, "c3-phishing-resistant")
	alice := regexp.MustCompile(`(?s)<tr data-user="alice">.*?</tr>`).FindString(pr)
	if !strings.Contains(alice, `data-verdict="fixable"`) || !strings.Contains(alice, "needs phishing-resistant; has totp, password; fixable by registering webauthn") {
		t.Errorf("alice should be fixable by a passkey:\n%s", alice)
	}
	if !strings.Contains(pr, `<span class="group" data-group=""><em>no group</em> <strong>3</strong>`) || !strings.Contains(pr, `<strong class="stranded-count">3</strong> of 3`) ||
		!strings.Contains(pr, "nobody in scope can meet it") {
		t.Errorf("c3-phishing-resistant should strand all three users, none in a group:\n%s", pr)
	}

	// A temporary access pass opens bob's registration: fixable now,
	// and stuck again once it is revoked.
	if _, err := s.app.Admin.IssuePass(context.Background(), admin.Actor(adminName), "", bobName, time.Hour, true); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, c, s.base+"/admin/policies/deadends")
	bobRow := regexp.MustCompile(`(?s)<tr data-user="bob">.*?</tr>`).FindString(html.UnescapeString(deadEndSection(body, "c2-mfa")))
	if !strings.Contains(bobRow, `data-verdict="fixable"`) {
		t.Errorf("bob, holding a temporary access pass, should be fixable:\n%s", bobRow)
	}
	if err := s.app.Admin.RevokePass(context.Background(), admin.Actor(adminName), "", bobName); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, c, s.base+"/admin/policies/deadends")
	bobRow = regexp.MustCompile(`(?s)<tr data-user="bob">.*?</tr>`).FindString(html.UnescapeString(deadEndSection(body, "c2-mfa")))
	if !strings.Contains(bobRow, `data-verdict="stuck"`) {
		t.Errorf("bob, his pass revoked, should be stuck again:\n%s", bobRow)
	}

	// A user with a passkey meets every policy and is listed nowhere.
	s.giveCredential(t, s.bob, "webauthn")
	_, body = get(t, c, s.base+"/admin/policies/deadends")
	if strings.Contains(body, `data-user="bob"`) {
		t.Errorf("bob, with a passkey, is still listed")
	}

	// A policy that strands a directory lists the first 200 and counts
	// the rest.
	for i := range 200 {
		if _, err := s.app.Store.CreateUser(context.Background(), store.User{ID: fmt.Sprintf("z%03d", i), Username: fmt.Sprintf("zz%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, body = get(t, c, s.base+"/admin/policies/deadends")
	mfa = deadEndSection(body, "c2-mfa")
	if n := strings.Count(mfa, "<tr data-user="); n != 200 || !strings.Contains(mfa, "and 1 more;") || !strings.Contains(mfa, `<strong class="stranded-count">201</strong>`) {
		t.Errorf("c2-mfa over 201 stranded users: %d rows, want 200 and \"and 1 more\"", n)
	}

	// bob is no administrator: the page is behind the console's door.
	bob := s.login(t, bobName, bobPassword)
	if resp, _ := get(t, bob, s.base+"/admin/policies/deadends"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a non-administrator reads the dead ends: status %d", resp.StatusCode)
	}
}

// TestImpactCountsStrandedUsers: the impact of a change counts the users
// it would newly strand.
func TestImpactCountsStrandedUsers(t *testing.T) {
	s := startConsole(t, func(cfg *config.Config) { cfg.Registration.Window = 0 })
	s.giveCredential(t, s.user, "webauthn")
	imp, err := s.app.Admin.Impact(context.Background(), candidateDoc(t, `
policies:
  - name: everyone-needs-a-passkey
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    grant: {controls: [{strength: phishing-resistant}]}
`), 7)
	if err != nil {
		t.Fatal(err)
	}
	// Today c3-phishing-resistant strands bob and root already; the new
	// policy strands nobody else: alice has a passkey.
	if !imp.DeadEndsChecked || len(imp.Stranded) != 0 {
		t.Errorf("stranded = %v (checked %v), want none new", imp.Stranded, imp.DeadEndsChecked)
	}
	imp, err = s.app.Admin.Impact(context.Background(), candidateDoc(t, `
policies:
  - name: payroll-needs-approval
    state: enabled
    users: {include: {users: [alice]}}
    target: {apps: {include: [all]}}
    grant: {controls: [approval]}
`), 7)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(imp.Stranded, ",") != "alice" {
		t.Errorf("stranded = %v, want [alice]: no one grants an approval", imp.Stranded)
	}
}

// TestRegistrationOffer: with the campaign on, a user a policy strands is
// offered, right after signing in, the method that would get them
// through; "Not now" goes on with the sign-in flow and counts; after the
// configured number of answers the offer stops; a user who meets every
// policy never sees it; return_to never leaves the site.
func TestRegistrationOffer(t *testing.T) {
	s := startConsole(t, func(cfg *config.Config) {
		cfg.Registration.Campaign.Enabled = true
		cfg.Registration.Campaign.Snoozes = 2
	})
	signIn := func(c *http.Client, name, password, returnTo string) *http.Response {
		t.Helper()
		resp, _ := post(t, c, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, c, s.base)}, "username": {name},
			"password": {password}, "return_to": {returnTo}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in of %s: status %d", name, resp.StatusCode)
		}
		return resp
	}
	// An OIDC sign-in: authorize sends the browser to sign in, to come
	// back to the authorization request.
	authorize := func(c *http.Client) string {
		t.Helper()
		_, challenge := pkce()
		resp, _ := get(t, c, s.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		loc, err := resp.Location()
		if err != nil || loc.Path != "/login" {
			t.Fatalf("authorize: status %d, location %v", resp.StatusCode, loc)
		}
		return loc.Query().Get("return_to")
	}

	for round := 1; round <= 2; round++ {
		c := browser(t)
		back := authorize(c)
		resp := signIn(c, testUser, testPassword, back)
		want := "/account/register-offer?return_to=" + url.QueryEscape(back)
		if loc := resp.Header.Get("Location"); loc != want {
			t.Fatalf("round %d: after sign-in to %s, want %s", round, loc, want)
		}
		resp, body := get(t, c, s.base+want)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="offer-register" href="`+html.EscapeString("/account/security/add?"+url.Values{"method": {"webauthn"}, "return_to": {back}}.Encode())+`"`) ||
			!strings.Contains(html.UnescapeString(body), "needs mfa; has password; fixable by registering webauthn") {
			t.Fatalf("round %d: the offer page (%d):\n%s", round, resp.StatusCode, body)
		}
		if !strings.Contains(body, `<span id="offer-for">context c2 (High-value transaction); context c3 (Admin action)</span>`) || strings.Contains(body, "c2-mfa") {
			t.Errorf("round %d: the offer must say what it opens in the contexts' words, never the policies' names:\n%s", round, body)
		}
		if !strings.Contains(body, `name="return_to" value="`+html.EscapeString(back)+`"`) {
			t.Errorf("round %d: the offer does not carry the sign-in flow on:\n%s", round, body)
		}
		resp, _ = s.postForm(t, c, "/account/register-offer", url.Values{"return_to": {back}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != back {
			t.Fatalf("round %d: Not now: %d to %q, want the authorization request %q", round, resp.StatusCode, loc, back)
		}
		// The OIDC flow goes on: authorize answers the client.
		resp, _ = get(t, c, s.base+back)
		if loc, err := resp.Location(); err != nil || !strings.HasPrefix(loc.String(), rpRedirect) || loc.Query().Get("code") == "" {
			t.Fatalf("round %d: the authorization did not complete after Not now: %d %v", round, resp.StatusCode, loc)
		}
	}
	// Two "Not now" answers used up: the offer stops.
	c := browser(t)
	if loc := signIn(c, testUser, testPassword, "/account").Header.Get("Location"); loc != "/account" {
		t.Errorf("after the last Not now the sign-in goes to %q, want /account", loc)
	}
	if resp, _ := get(t, c, s.base+"/account/register-offer?return_to=%2Faccount%3Fx"); resp.Header.Get("Location") != "/account?x" {
		t.Errorf("the offer page without an offer: %d to %q, want straight on", resp.StatusCode, resp.Header.Get("Location"))
	}

	// bob with a passkey meets every policy: no offer, ever.
	s.giveCredential(t, s.bob, "webauthn")
	if loc := signIn(browser(t), bobName, bobPassword, "/account").Header.Get("Location"); loc != "/account" {
		t.Errorf("a user who meets every policy is sent to %q, want /account", loc)
	}
}

// TestAttackRegistrationOfferRedirect: the offer's return_to, on the way
// in after sign-in, on its page and in its "Not now" form, cannot send the
// browser to another site or back into the offer.
func TestAttackRegistrationOfferRedirect(t *testing.T) {
	s := startConsole(t, func(cfg *config.Config) {
		cfg.Registration.Campaign.Enabled = true
		cfg.Registration.Campaign.Snoozes = 100 // every attempt below answers "Not now"
	})
	c := s.login(t, bobName, bobPassword)
	for _, evil := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/evil.example",
		"/account/register-offer?return_to=%2F%2Fevil.example", "/account/./register-offer?return_to=%2F%2Fevil.example",
		"/account//register-offer", "/account/%72egister-offer", "\t//evil.example", "javascript:alert(1)"} {
		resp, body := get(t, c, s.base+"/account/register-offer?return_to="+url.QueryEscape(evil))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="return_to" value="/account"`) {
			t.Errorf("fail/page-%q: %d, the form must go on to /account:\n%s", evil, resp.StatusCode, body)
		}
		resp, _ = s.postForm(t, c, "/account/register-offer", url.Values{"return_to": {evil}})
		if loc := resp.Header.Get("Location"); loc != "/account" {
			t.Errorf("fail/not-now-%q: redirected to %q, want /account", evil, loc)
		}
	}
	// "Not now" is a form with the CSRF token: another site cannot
	// spend a user's answers.
	if resp, _ := post(t, c, s.base+"/account/register-offer", url.Values{"return_to": {"/account"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("fail/not-now-without-csrf: status %d, want 403", resp.StatusCode)
	}
	// Signed out, the page sends to sign in and nowhere else.
	resp, _ := get(t, browser(t), s.base+"/account/register-offer?return_to="+url.QueryEscape("https://evil.example/"))
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/login?return_to=%2Faccount") {
		t.Errorf("fail/signed-out: redirected to %q", loc)
	}
}

// candidateDoc is a new stored document holding yaml.
func candidateDoc(t *testing.T, yaml string) admin.Candidate {
	t.Helper()
	return admin.Candidate{Doc: admin.Document{Name: "candidate", YAML: yaml}}
}

// brokenCredentials fails every listing of a user's methods once armed,
// as a store that cannot answer would.
type brokenCredentials struct {
	store.Store
	armed *atomic.Bool
}

func (b brokenCredentials) ListCredentials(ctx context.Context, userID string) ([]store.Credential, error) {
	if b.armed.Load() {
		return nil, errors.New("credentials unavailable")
	}
	return b.Store.ListCredentials(ctx, userID)
}

// TestRegistrationOfferNeverBlocksSignIn: when the offer cannot be worked
// out, the sign-in goes straight on to where it was headed.
func TestRegistrationOfferNeverBlocksSignIn(t *testing.T) {
	armed := &atomic.Bool{}
	s := startOIDCOver(t, func(st store.Store) store.Store { return brokenCredentials{st, armed} }, func(cfg *config.Config) {
		cfg.Registration.Campaign.Enabled = true
	})
	armed.Store(true)
	c := browser(t)
	resp, _ := post(t, c, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, c, s.base)}, "username": {testUser},
		"password": {testPassword}, "return_to": {"/account?next"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/account?next" {
		t.Fatalf("sign-in with the offer failing: %d to %q, want straight on to /account?next", resp.StatusCode, loc)
	}
	if resp, _ := get(t, c, s.base+"/account/register-offer?return_to=%2Faccount%3Fnext"); resp.Header.Get("Location") != "/account?next" {
		t.Errorf("the offer page with the offer failing: %d to %q, want straight on", resp.StatusCode, resp.Header.Get("Location"))
	}
}
