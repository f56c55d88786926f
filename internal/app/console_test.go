package app_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/admin/console"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// Accounts of the console tests: an administrator and a plain user.
const (
	adminName     = "root"
	adminPassword = "root-password-for-the-tests"
	bobName       = "bob"
	bobPassword   = "bob-password-for-the-tests"
)

// consoleRig is an OIDC test server whose policies come from a file (so
// they show in the console as read-only file policies, and survive the
// reloads that saving a document causes), with passkeys on, the
// administrator root and the user bob.
type consoleRig struct {
	*oidcServer
	admin, bob store.User
}

func startConsole(t *testing.T, mutate ...func(*config.Config)) *consoleRig {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policies.yaml")
	writePolicy(t, file, testPolicies)
	s := startOIDC(t, func(cfg *config.Config) {
		withElevation(cfg)
		for _, m := range mutate {
			m(cfg)
		}
		cfg.Policy.Files = []string{file}
		cfg.Policy.Environments = map[string]config.PolicyEnvironment{"staging": {}}
		// Passkeys need a host name; the tests still dial 127.0.0.1.
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		cfg.Server.Issuer = "http://localhost:" + port
		cfg.WebAuthn.RPID = "localhost"
		cfg.WebAuthn.Origins = []string{cfg.Server.Issuer}
	})
	// The server made the admin role at start: users can be given it.
	return &consoleRig{oidcServer: s,
		admin: addUser(t, s.app.Users, adminName, adminPassword, admin.Role),
		bob:   addUser(t, s.app.Users, bobName, bobPassword)}
}

func addUser(t *testing.T, svc *users.Service, name, password string, roles ...string) store.User {
	t.Helper()
	u, err := svc.Add(context.Background(), users.NewUser{Username: name, Password: password, Roles: roles, Email: name + "@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// login signs name in on a new browser.
func (s *consoleRig) login(t *testing.T, name, password string) *http.Client {
	t.Helper()
	c := browser(t)
	resp, _ := post(t, c, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, c, s.base)}, "username": {name},
		"password": {password}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: status %d", name, resp.StatusCode)
	}
	return c
}

// registerPasskey gives u a passkey credential in the store, so the
// console offers a passkey step-up (the browser test registers a real
// one).
func (s *consoleRig) registerPasskey(t *testing.T, u store.User) {
	t.Helper()
	if _, err := s.app.Store.CreateCredential(context.Background(), store.Credential{
		ID: rand.Text(), UserID: u.ID, Type: "webauthn", Name: "Passkey", Data: []byte("{}"),
	}); err != nil {
		t.Fatal(err)
	}
}

// passkeyProof adds to c's session what the step-up page adds after a
// verified, user-verified passkey assertion made age ago, and takes the
// rotated session cookie, as the browser would.
func (s *consoleRig) passkeyProof(t *testing.T, c *http.Client, age time.Duration) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/stepup", nil)
	r.AddCookie(&http.Cookie{Name: s.app.Sessions.CookieName(), Value: sessionCookie(c, s.base, s.app.Sessions.CookieName())})
	tok, _, err := s.app.Sessions.StepUp(context.Background(), r, store.AuthEvent{
		Method: "webauthn", Time: time.Now().Add(-age).UTC(), AMR: []string{"hwk", "user"}, PhishingResistant: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: s.app.Sessions.CookieName(), Value: tok, Path: "/"}})
}

// postForm posts form to path with c's CSRF token.
func (s *consoleRig) postForm(t *testing.T, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	form = cloneValues(form)
	form.Set("csrf_token", csrfToken(t, c, s.base))
	return post(t, c, s.base+path, form)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// concrete fills a route pattern's wildcards.
func concrete(pattern string, values map[string]string) string {
	return regexp.MustCompile(`\{([a-z]+)(\.\.\.)?\}`).ReplaceAllStringFunc(pattern, func(w string) string {
		name := strings.Trim(w, "{}.")
		if v, ok := values[name]; ok {
			return url.PathEscape(v)
		}
		return "x"
	})
}

// TestConsoleDoor walks every route the console registers, taken from
// the table the router is built from, with GET and with POST: anonymous
// browsers are sent to sign in, and a signed-in user who is not an
// administrator, or an administrator whose account is disabled, gets the
// same 403 everywhere, whatever the route, method or form (a valid CSRF
// token included): no route answers anything else, and none tells
// whether it exists.
func TestConsoleDoor(t *testing.T) {
	s := startConsole(t)
	ctx := context.Background()
	bob := s.login(t, bobName, bobPassword)
	disabled := s.login(t, adminName, adminPassword)
	// Disabled in the store directly: the session stays, the flag must
	// still close the door (the users service would also end sessions).
	if _, err := s.app.Store.UpdateUser(ctx, s.admin.ID, func(u store.User) (store.User, error) {
		u.Disabled = true
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	anonymous := browser(t)
	routes := console.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d console routes: %v", len(routes), routes)
	}
	var denial string
	for _, rt := range routes {
		path := concrete(rt.Path, map[string]string{"seq": "1", "name": bobName, "file": "console.css"})
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(method+" "+path, func(t *testing.T) {
				for who, c := range map[string]*http.Client{"non-admin": bob, "disabled-admin": disabled} {
					resp, body := s.consoleRequest(t, c, method, path)
					if resp.StatusCode != http.StatusForbidden {
						t.Fatalf("%s: status %d, want 403", who, resp.StatusCode)
					}
					if denial == "" {
						denial = body
					}
					if body != denial {
						t.Fatalf("%s: the 403 differs from route to route:\n%s\nwant\n%s", who, body, denial)
					}
				}
				resp, _ := s.consoleRequest(t, anonymous, method, path)
				loc, _ := resp.Location()
				want := "/admin"
				if method == http.MethodGet {
					want = path
				}
				if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/login" || loc.Query().Get("return_to") != want {
					t.Fatalf("anonymous: status %d to %v, want 303 to /login?return_to=%s", resp.StatusCode, loc, want)
				}
			})
		}
	}
	if !strings.Contains(denial, "for administrators") || strings.Contains(denial, "csrf_token") {
		t.Errorf("the denial page:\n%s", denial)
	}
}

// consoleRequest sends method to path; a POST carries c's valid CSRF
// token and a plausible form, so only the door can refuse it.
func (s *consoleRig) consoleRequest(t *testing.T, c *http.Client, method, path string) (*http.Response, string) {
	t.Helper()
	if method == http.MethodGet {
		return get(t, c, s.base+path)
	}
	return s.postForm(t, c, path, url.Values{"confirm": {"yes"}, "reason": {"door test"}, "state": {"disabled"},
		"action": {"save"}, "name": {"door-test"}, "yaml": {"policies: []\n"}})
}

// changeCase is a change a console form makes, for the CSRF and passkey
// tests: the form to post, and how to tell whether the change happened.
type changeCase struct {
	path string
	form func() url.Values
	done func() bool
	// status is the answer to a change that went through: 303 back to
	// the page unless set (a new pass is shown on the answer itself).
	status int
}

// reportOnlyDoc is a stored document with one report-only policy that
// asks for MFA on the web app.
const reportOnlyDoc = `policies:
  - name: webapp-mfa
    description: MFA for the web app, tried out first
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [webapp]}}
    grant: {controls: [mfa]}
`

// saveDoc stores a document directly through the service.
func (s *consoleRig) saveDoc(t *testing.T, name, yaml string) admin.Document {
	t.Helper()
	d, err := s.app.Admin.Save(context.Background(), "user:setup", "", admin.Document{Name: name, YAML: yaml}, "")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// changeCases stores the document "walk" (with the policy webapp-mfa)
// and returns one case per POST route of the console, in table order; a
// POST route without a case fails the test, so no new form escapes it.
func (s *consoleRig) changeCases(t *testing.T) []changeCase {
	t.Helper()
	ctx := context.Background()
	s.saveDoc(t, "walk", reportOnlyDoc)
	fixed := func(v url.Values) func() url.Values { return func() url.Values { return v } }
	audited := func(action string) func() bool {
		return func() bool {
			entries, _ := s.app.Audit.List(ctx)
			return slices.ContainsFunc(entries, func(e audit.Entry) bool { return e.Action == action && e.Actor == "user:"+adminName })
		}
	}
	byRoute := map[string]changeCase{
		"/admin/policies/{name}/state": {path: "/admin/policies/webapp-mfa/state", form: fixed(url.Values{"state": {"disabled"}}),
			done: func() bool {
				info, err := s.app.Admin.Policy(ctx, "webapp-mfa")
				return err == nil && info.State == "disabled"
			}},
		"/admin/documents": {path: "/admin/documents",
			form: fixed(url.Values{"action": {"save"}, "name": {"fresh"}, "version": {"0"}, "yaml": {"policies: []\n"}}),
			done: func() bool { _, err := s.app.Documents.Get(ctx, "fresh"); return err == nil }},
		"/admin/documents/{name}/delete": {path: "/admin/documents/walk/delete",
			form: func() url.Values {
				d, _ := s.app.Documents.Get(ctx, "walk")
				return url.Values{"confirm": {"yes"}, "version": {strconv.FormatInt(d.Version, 10)}}
			},
			done: func() bool { _, err := s.app.Documents.Get(ctx, "walk"); return err != nil }},
		"/admin/users/{name}/revoke":    {path: "/admin/users/bob/revoke", form: fixed(url.Values{"confirm": {"yes"}}), done: audited("user.revoke")},
		"/admin/users/{name}/reset-mfa": {path: "/admin/users/bob/reset-mfa", form: fixed(url.Values{"confirm": {"yes"}}), done: audited("user.mfa-reset")},
		"/admin/users/{name}/risk": {path: "/admin/users/bob/risk", form: fixed(url.Values{"confirm": {"yes"}, "action": {"confirm-compromised"}}),
			done: audited("user.risk-confirm-compromised")},
		"/admin/users/{name}/disabled": {path: "/admin/users/bob/disabled", form: fixed(url.Values{"confirm": {"yes"}, "disabled": {"true"}}),
			done: func() bool { u, err := s.app.Store.GetUser(ctx, s.bob.ID); return err == nil && u.Disabled }},
		"/admin/users/{name}/tap": {path: "/admin/users/root/tap", form: fixed(url.Values{"confirm": {"yes"}, "lifetime": {"1h"}}),
			done: audited("user.tap-issue"), status: http.StatusOK},
		"/admin/users/{name}/tap-revoke": {path: "/admin/users/bob/tap-revoke",
			form: func() url.Values {
				_, _, _ = s.app.Methods.Passes.Issue(ctx, s.bob.ID, "test", time.Hour, false)
				return url.Values{"confirm": {"yes"}}
			},
			done: audited("user.tap-revoke")},
	}
	maps.Copy(byRoute, s.environmentChangeCases(t, audited))
	maps.Copy(byRoute, s.elevationChangeCases(t))
	var out []changeCase
	for _, rt := range console.Routes() {
		if rt.Method != http.MethodPost {
			continue
		}
		cc, ok := byRoute[rt.Path]
		if !ok {
			t.Fatalf("POST %s has no case in changeCases: add one", rt.Path)
		}
		out = append(out, cc)
	}
	return out
}

// environmentChangeCases are the promotion's and the rollback's: the
// promotion makes staging's one document production's, the rollback
// restores production's first version.
func (s *consoleRig) environmentChangeCases(t *testing.T, audited func(string) func() bool) map[string]changeCase {
	t.Helper()
	ctx := context.Background()
	staging, err := s.app.Admin.In("staging")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := staging.Save(ctx, "user:setup", "", admin.Document{Name: "staged", YAML: strings.ReplaceAll(reportOnlyDoc, "webapp-mfa", "staged-mfa")}, ""); err != nil {
		t.Fatal(err)
	}
	head := func(env string) string {
		in, _ := s.app.Admin.In(env)
		rel, _ := in.Documents.Head(ctx)
		return strconv.FormatInt(rel.Version, 10)
	}
	return map[string]changeCase{
		"/admin/environments/{env}/promote": {path: "/admin/environments/production/promote",
			form: func() url.Values {
				return url.Values{"from": {"staging"}, "from_version": {head("staging")}, "to_version": {head("production")}, "reason": {"CHG-1"}}
			},
			done: audited("policy.promote")},
		"/admin/environments/{env}/rollback": {path: "/admin/environments/production/rollback",
			form: func() url.Values {
				return url.Values{"version": {"1"}, "head_version": {head("production")}, "reason": {"INC-1"}}
			},
			done: audited("policy.rollback")},
	}
}

// TestConsoleCSRF: every console form posted without its CSRF token, or
// with a wrong one, is refused with 403 and changes nothing, though the
// administrator has a fresh passkey proof; the same forms with the token
// go through (so the token, not the form, was what was missing).
func TestConsoleCSRF(t *testing.T) {
	s := startConsole(t)
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	for _, cc := range s.changeCases(t) {
		t.Run(cc.path, func(t *testing.T) {
			for name, token := range map[string]string{"no-token": "", "wrong-token": strings.Repeat("A", 43), "cookie-value": sessionCookie(c, s.base, "stepgate_csrf")} {
				form := cc.form()
				form.Set("back", "/admin")
				if token != "" {
					form.Set("csrf_token", token)
				}
				resp, body := post(t, c, s.base+cc.path, form)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "nothing was changed") {
					t.Fatalf("%s: status %d, want 403 saying nothing was changed:\n%s", name, resp.StatusCode, body)
				}
				if cc.done() {
					t.Fatalf("%s: the change was made", name)
				}
			}
			resp, body := s.postForm(t, c, cc.path, cc.form())
			want := cmp.Or(cc.status, http.StatusSeeOther)
			if resp.StatusCode != want || !cc.done() {
				t.Fatalf("with the token: status %d, done %v, want %d and the change made:\n%s", resp.StatusCode, cc.done(), want, body)
			}
		})
	}
}

// TestConsoleChangesNeedAPasskey: an administrator signed in with a
// password sees every page, with a banner offering a passkey step-up and
// the forms disabled, and cannot change anything by posting anyway, nor
// with a passkey proof older than an hour; the policy editor keeps what
// was typed. After a passkey step-up the same change goes through.
func TestConsoleChangesNeedAPasskey(t *testing.T) {
	s := startConsole(t)
	s.registerPasskey(t, s.admin)
	c := s.login(t, adminName, adminPassword)
	cases := s.changeCases(t)

	_, body := get(t, c, s.base+"/admin/policies")
	if !strings.Contains(body, `id="changes-banner"`) || !strings.Contains(body, `<fieldset class="plain" disabled>`) {
		t.Fatalf("the policies page shows no passkey banner or enabled forms:\n%s", body)
	}
	m := regexp.MustCompile(`id="passkey-step-up" href="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no passkey step-up button:\n%s", body)
	}
	step, _ := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
	if step.Path != "/stepup" || step.Query().Get("methods") != "webauthn" || step.Query().Get("return_to") != "/admin/policies" {
		t.Errorf("the step-up button goes to %s, want /stepup?methods=webauthn&return_to=/admin/policies", step)
	}

	for _, age := range []time.Duration{-1, 61 * time.Minute} {
		if age > 0 {
			s.passkeyProof(t, c, age)
		}
		for _, cc := range cases {
			form := cc.form()
			form.Set("back", "/admin/policies")
			resp, body := s.postForm(t, c, cc.path, form)
			if resp.StatusCode != http.StatusForbidden || cc.done() {
				t.Fatalf("POST %s with a passkey proof %v old: status %d, done %v; want 403 and nothing done:\n%s", cc.path, age, resp.StatusCode, cc.done(), body)
			}
			if !strings.Contains(body, console.ChangeRuleName) {
				t.Errorf("POST %s: the refusal does not name the built-in policy:\n%s", cc.path, body)
			}
		}
	}
	typed := "policies:\n  - name: typed-by-hand # keep me\n"
	resp, body := s.postForm(t, c, "/admin/documents", url.Values{"action": {"save"}, "name": {"kept"}, "yaml": {typed}, "back": {"/admin/documents/new"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "typed-by-hand # keep me") || !strings.Contains(body, `value="kept"`) {
		t.Errorf("the editor lost the text on refusal: status %d\n%s", resp.StatusCode, body)
	}

	s.passkeyProof(t, c, 5*time.Minute)
	_, body = get(t, c, s.base+"/admin/policies")
	if strings.Contains(body, `id="changes-banner"`) || strings.Contains(body, `<fieldset class="plain" disabled>`) {
		t.Errorf("after the passkey the banner or disabled forms remain:\n%s", body)
	}
	cc := cases[0]
	if resp, body := s.postForm(t, c, cc.path, cc.form()); resp.StatusCode != http.StatusSeeOther || !cc.done() {
		t.Fatalf("after the passkey: status %d, done %v\n%s", resp.StatusCode, cc.done(), body)
	}
}

// authorizeAs starts an authorization of the web app in c and returns
// where Stepgate sends the browser first: the client's callback with a
// code (allowed) or the step-up page (challenged).
func (s *consoleRig) authorizeAs(t *testing.T, c *http.Client) *url.URL {
	t.Helper()
	_, challenge := pkce()
	resp, body := get(t, c, s.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorization: status %d, no redirect:\n%s", resp.StatusCode, body)
	}
	return loc
}

// lastEntry is the newest sign-in log entry matching q, once written.
func (s *consoleRig) lastEntry(t *testing.T, q store.SignInQuery) store.SignIn {
	t.Helper()
	if err := s.app.SignIns.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	q.Limit = 1
	rows, err := s.app.Store.ListSignIns(context.Background(), q)
	if err != nil || len(rows) == 0 {
		t.Fatalf("no sign-in log entry for %+v (%v)", q, err)
	}
	return rows[0]
}

// cellOf reads the text of the cell with class class in the row of
// policy name.
func cellOf(t *testing.T, body, name, class string) string {
	t.Helper()
	row := regexp.MustCompile(`(?s)<tr data-policy="` + regexp.QuoteMeta(name) + `".*?</tr>`).FindString(body)
	m := regexp.MustCompile(`class="[^"]*\b` + class + `">([^<]*)<`).FindStringSubmatch(row)
	if m == nil {
		t.Fatalf("no %s cell for policy %s in:\n%s", class, name, row)
	}
	return m[1]
}

const brokenDoc = `policies:
  - name: broken
    state: enabeld
    users: {include: {users: [all]}}
    target: {apps: {include: [webap]}}
    grant: {controls: [mfa]}
`

// TestConsolePolicyFlow drives the policy pages over HTTP as an
// administrator would: problems are shown with their lines, a
// report-only document is created and counts what it would challenge,
// its impact is replayed, it is enabled and then challenges for real,
// the sign-in log explains that decision, a stale save is explained as a
// conflict, and the document is deleted.
func TestConsolePolicyFlow(t *testing.T) {
	s := startConsole(t)
	ctx := context.Background()
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	if _, _, err := s.app.Methods.TOTP.EnrollNow(ctx, s.bob, "phone"); err != nil {
		t.Fatal(err)
	}
	bob := s.login(t, bobName, bobPassword)

	_, body := get(t, c, s.base+"/admin/documents/new")
	if !strings.Contains(body, "require-mfa-example") || !strings.Contains(body, "# Start a new policy in report-only") {
		t.Fatalf("the new document is not prefilled with the example:\n%s", body)
	}

	// Problems come back inline, with their lines, and the text is kept.
	resp, body := s.postForm(t, c, "/admin/documents", url.Values{"action": {"validate"}, "name": {"broken"}, "yaml": {brokenDoc}})
	for _, want := range []string{"line 3", "line 5", "policies[0].state", "is not a state", `unknown app &#34;webap&#34;`, `<li id="L3" class="has-problem">`, "state: enabeld"} {
		if !strings.Contains(body, want) {
			t.Errorf("validation page lacks %q", want)
		}
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("validation with problems: status %d, want 400", resp.StatusCode)
	}

	// Create the report-only document.
	resp, _ = s.postForm(t, c, "/admin/documents", url.Values{"action": {"save"}, "name": {"webapp"}, "version": {"0"}, "yaml": {reportOnlyDoc}, "reason": {"try MFA for the web app"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/admin/documents/webapp?notice=saved" {
		t.Fatalf("save: %d to %q", resp.StatusCode, loc)
	}
	if !slices.Contains(s.app.Policies.Load().Policies(), policy.PolicySummary{Name: "webapp-mfa", State: policy.StateReportOnly}) {
		t.Fatalf("the live set lacks the report-only policy: %v", s.app.Policies.Load().Policies())
	}

	// bob's authorizations go through, and are counted as would-challenge.
	for range 2 {
		if loc := s.authorizeAs(t, bob); loc.Query().Get("code") == "" {
			t.Fatalf("a report-only policy changed the decision: redirect to %s", loc)
		}
	}
	s.lastEntry(t, store.SignInQuery{App: rpClientID})
	_, body = get(t, c, s.base+"/admin/policies")
	if got := cellOf(t, body, "webapp-mfa", "would-challenge"); got != "2" {
		t.Errorf("would challenge %s, want 2", got)
	}
	if got := cellOf(t, body, "webapp-mfa", "challenged"); got != "0" {
		t.Errorf("challenged %s, want 0", got)
	}
	if !regexp.MustCompile(`<code title="/[^"]*/policies\.yaml:\d+">policies\.yaml:\d+</code> <span class="badge">read-only</span>`).MatchString(body) {
		t.Errorf("file policies are not shown read-only with their file and line:\n%s", body)
	}

	// A file policy cannot be switched here; the page says where to change it.
	resp, body = s.postForm(t, c, "/admin/policies/c2-mfa/state", url.Values{"state": {"disabled"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "change it there") {
		t.Errorf("switching a file policy: status %d\n%s", resp.StatusCode, body)
	}

	// The impact of enabling it: allow → challenge for bob's decisions.
	doc, _ := s.app.Documents.Get(ctx, "webapp")
	enabled := strings.Replace(reportOnlyDoc, "state: report-only", "state: enabled", 1)
	_, body = s.postForm(t, c, "/admin/documents", url.Values{"action": {"impact"}, "name": {"webapp"}, "days": {"1"},
		"version": {strconv.FormatInt(doc.Version, 10)}, "yaml": {enabled}})
	m := regexp.MustCompile(`(?s)data-transition="allow-challenge">.*?class="num count">(\d+)<`).FindStringSubmatch(body)
	if m == nil || m[1] == "0" {
		t.Fatalf("the impact shows no allow → challenge:\n%s", body)
	}

	// Enable it on the policies page: bob is now challenged.
	resp, _ = s.postForm(t, c, "/admin/policies/webapp-mfa/state", url.Values{"state": {"enabled"}, "reason": {"rollout"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("enable: status %d", resp.StatusCode)
	}
	if loc := s.authorizeAs(t, bob); loc.Path != "/stepup" || loc.Query().Get("methods") != "totp" {
		t.Fatalf("after enabling, bob goes to %s, want the step-up page for totp", loc)
	}
	row := s.lastEntry(t, store.SignInQuery{App: rpClientID, Decision: "challenge"})
	_, body = get(t, c, s.base+"/admin/signins/"+strconv.FormatInt(row.Seq, 10))
	for _, want := range []string{"Policy webapp-mfa applied and was not satisfied", "The session lacks proofs the policy requires", "mfa", "controls-not-satisfied", bobName} {
		if !strings.Contains(body, want) {
			t.Errorf("the sign-in detail does not say %q:\n%s", want, body)
		}
	}
	_, body = get(t, c, s.base+"/admin/signins?user=bob&decision=challenge")
	if !strings.Contains(body, `data-seq="`+strconv.FormatInt(row.Seq, 10)+`"`) {
		t.Errorf("the filtered sign-in log lacks entry %d:\n%s", row.Seq, body)
	}

	// A save based on the version read before the state switch conflicts.
	resp, body = s.postForm(t, c, "/admin/documents", url.Values{"action": {"save"}, "name": {"webapp"},
		"version": {strconv.FormatInt(doc.Version, 10)}, "yaml": {reportOnlyDoc + "# mine\n"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "Someone else saved this document") || !strings.Contains(body, "# mine") {
		t.Errorf("stale save: status %d\n%s", resp.StatusCode, body)
	}

	// Delete it.
	doc, _ = s.app.Documents.Get(ctx, "webapp")
	resp, _ = s.postForm(t, c, "/admin/documents/webapp/delete", url.Values{"version": {strconv.FormatInt(doc.Version, 10)}, "confirm": {"yes"}, "reason": {"done"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: status %d", resp.StatusCode)
	}
	if loc := s.authorizeAs(t, bob); loc.Query().Get("code") == "" {
		t.Errorf("after deleting, bob goes to %s, want a code", loc)
	}

	entries, err := s.app.Audit.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, e := range entries {
		if e.Actor == "user:"+adminName {
			trail = append(trail, e.Action+" "+e.Target+" "+e.Reason)
		}
	}
	want := []string{"policy.create store:webapp try MFA for the web app", "policy.state policy:webapp-mfa rollout", "policy.delete store:webapp done"}
	if !slices.Equal(trail, want) {
		t.Errorf("audit trail %q, want %q", trail, want)
	}
}

// TestConsoleUserActions: each user action needs its confirmation box,
// is recorded in the audit trail with the administrator and the reason,
// and does what it says; an administrator cannot disable themselves.
func TestConsoleUserActions(t *testing.T) {
	s := startConsole(t)
	ctx := context.Background()
	c := s.login(t, adminName, adminPassword)
	s.passkeyProof(t, c, time.Minute)
	s.login(t, bobName, bobPassword)

	_, body := get(t, c, s.base+"/admin/users?q=bo")
	if !strings.Contains(body, `data-user="bob"`) || strings.Contains(body, `data-user="root"`) {
		t.Errorf("search for bo:\n%s", body)
	}
	resp, _ := s.postForm(t, c, "/admin/users/bob/revoke", url.Values{"reason": {"no box"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("without the confirmation box: status %d, want 400", resp.StatusCode)
	}
	steps := []struct {
		path string
		form url.Values
		want string
	}{
		{"revoke", url.Values{}, "user.revoke"},
		{"reset-mfa", url.Values{}, "user.mfa-reset"},
		{"risk", url.Values{"action": {"confirm-compromised"}}, "user.risk-confirm-compromised"},
		{"risk", url.Values{"action": {"dismiss"}}, "user.risk-dismiss"},
		{"disabled", url.Values{"disabled": {"true"}}, "user.disable"},
		{"disabled", url.Values{"disabled": {"false"}}, "user.enable"},
	}
	for i, st := range steps {
		form := cloneValues(st.form)
		form.Set("confirm", "yes")
		form.Set("reason", "ticket "+strconv.Itoa(i))
		resp, body := s.postForm(t, c, "/admin/users/bob/"+st.path, form)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: status %d\n%s", st.want, resp.StatusCode, body)
		}
		if i == 2 {
			_, page := get(t, c, s.base+resp.Header.Get("Location"))
			if !strings.Contains(page, `id="user-risk">high<`) || !strings.Contains(page, "confirmed compromised") {
				t.Errorf("after confirming compromised the page does not show high risk:\n%s", page)
			}
		}
	}
	entries, _ := s.app.Audit.List(ctx)
	var got []string
	for _, e := range entries {
		if e.Actor == "user:"+adminName {
			got = append(got, e.Action+" "+e.Target+" "+e.Reason)
		}
	}
	var want []string
	for i, st := range steps {
		want = append(want, st.want+" user:bob ticket "+strconv.Itoa(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail:\n%q\nwant\n%q", got, want)
	}
	sessions, _ := s.app.Store.ListUserSessions(ctx, s.bob.ID)
	if len(sessions) != 0 {
		t.Errorf("bob still has %d sessions", len(sessions))
	}

	resp, body = s.postForm(t, c, "/admin/users/root/disabled", url.Values{"disabled": {"true"}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "cannot disable your own account") {
		t.Errorf("self-disable: status %d\n%s", resp.StatusCode, body)
	}
}

// TestConsoleReadPages renders the read-only pages an administrator
// uses: the overview's charts, What-If, the catalog, and the filters'
// mistakes explained.
func TestConsoleReadPages(t *testing.T) {
	s := startConsole(t)
	c := s.login(t, adminName, adminPassword)
	bob := s.login(t, bobName, bobPassword)
	s.authorizeAs(t, bob)
	s.lastEntry(t, store.SignInQuery{App: rpClientID})

	for _, period := range []string{"", "7d", "30d"} {
		resp, body := get(t, c, s.base+"/admin?period="+period)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<svg class="chart"`) || !strings.Contains(body, `aria-labelledby="time-title time-desc"`) ||
			!strings.Contains(body, `id="total-allow">`) {
			t.Fatalf("overview %q: status %d\n%s", period, resp.StatusCode, body)
		}
	}
	_, body := get(t, c, s.base+"/admin")
	if !strings.Contains(body, `<span class="num" id="total-allow">1</span>`) {
		t.Errorf("the overview does not count bob's authorization:\n%s", body)
	}

	_, body = get(t, c, s.base+"/admin/whatif?ask=1&user=bob&contexts=c2&auth=pwd@-1m")
	if !strings.Contains(body, `id="whatif-outcome">challenge<`) || !strings.Contains(body, `data-policy="c2-mfa"`) ||
		!strings.Contains(body, "The request asks for none of the authentication contexts the policy targets.") ||
		!strings.Contains(body, `id="whatif-roles-elevated">none<`) || !strings.Contains(body, `id="whatif-roles-eligible">none<`) {
		t.Errorf("What-If for c2:\n%s", body)
	}
	resp, body := get(t, c, s.base+"/admin/whatif?ask=1&user=nobody")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `unknown user &#34;nobody&#34;`) {
		t.Errorf("What-If for an unknown user: status %d\n%s", resp.StatusCode, body)
	}
	resp, body = get(t, c, s.base+"/admin/whatif?ask=1&user=bob&auth=pwd@-1m&statement_class=dml&statement_tables=customers,+public.accounts")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `statement.class &#34;dml&#34; is not one of`) ||
		!strings.Contains(body, `name="statement_tables" value="customers, public.accounts"`) {
		t.Errorf("What-If for a statement of an unknown class: status %d\n%s", resp.StatusCode, body)
	}
	_, body = get(t, c, s.base+"/admin/whatif?ask=1&user=bob&contexts=c2&auth=pwd@-1m&statement_class=ddl&statement_command=DROP+TABLE")
	if !strings.Contains(body, `id="whatif-outcome">challenge<`) || !strings.Contains(body, `<option selected>ddl</option>`) {
		t.Errorf("What-If for a statement:\n%s", body)
	}

	_, body = get(t, c, s.base+"/admin/catalog")
	body = html.UnescapeString(body)
	for _, want := range []string{"Read PII", "c3-phishing-resistant", "phishing-resistant", "password+webauthn", "policies.yaml:"} {
		if !strings.Contains(body, want) {
			t.Errorf("the catalog lacks %q", want)
		}
	}

	resp, body = get(t, c, s.base+"/admin/signins?user=nobody")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "There is no user named") {
		t.Errorf("sign-in log for an unknown user: status %d\n%s", resp.StatusCode, body)
	}
	// bob's authorization is an entry of the app, not a statement on a
	// database of the same name.
	_, body = get(t, c, s.base+"/admin/signins?app="+rpClientID)
	if !strings.Contains(body, `<tr data-seq="`) {
		t.Errorf("the app filter lacks bob's authorization:\n%s", body)
	}
	_, body = get(t, c, s.base+"/admin/signins?database="+rpClientID+"&statement_class=ddl")
	if strings.Contains(body, `<tr data-seq="`) || !strings.Contains(body, "No entries match.") ||
		!strings.Contains(body, `<option selected>ddl</option>`) || !strings.Contains(body, `name="database" value="`+rpClientID+`"`) {
		t.Errorf("the database filter shows an entry that is not a statement:\n%s", body)
	}
	// A statement the database gateway refused: found by the database
	// and class filters, its detail page shows the statement.
	if err := s.app.SignIns.Write(context.Background(), audit.SignIn{Source: "database", Username: bobName, App: rpClientID,
		Decision: "block", Reason: "statement-guardrail", Statement: &audit.Statement{Command: "DROP TABLE", Class: "ddl",
			Tables: []string{"customers"}, Fingerprint: "fp-1", Guardrail: "DROP and TRUNCATE need the role dba"}}); err != nil {
		t.Fatal(err)
	}
	stmt := s.lastEntry(t, store.SignInQuery{Database: rpClientID})
	_, body = get(t, c, s.base+"/admin/signins?database="+rpClientID+"&statement_class=ddl")
	if !strings.Contains(body, `<tr data-seq="`+strconv.FormatInt(stmt.Seq, 10)+`"`) || strings.Count(body, `<tr data-seq="`) != 1 ||
		!strings.Contains(body, `data-statement-class="ddl">ddl: DROP TABLE<`) {
		t.Errorf("the database filter should list the statement alone:\n%s", body)
	}
	_, body = get(t, c, s.base+"/admin/signins/"+strconv.FormatInt(stmt.Seq, 10))
	for _, want := range []string{`id="statement-class">ddl<`, "DROP TABLE", "customers", "DROP and TRUNCATE need the role dba", "fp-1"} {
		if !strings.Contains(body, want) {
			t.Errorf("the statement's detail lacks %q:\n%s", want, body)
		}
	}
	resp, body = get(t, c, s.base+"/admin/signins?statement_class=dml")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The statement class must be one of session, read, utility, write, ddl, privilege, unknown.") {
		t.Errorf("an unknown statement class: status %d\n%s", resp.StatusCode, body)
	}
	resp, _ = get(t, c, s.base+"/admin/signins/999999")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a missing entry: status %d, want 404", resp.StatusCode)
	}
	resp, _ = get(t, c, s.base+"/admin/no-such-page")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown console page: status %d, want 404", resp.StatusCode)
	}
	// The users page lists a page at a time and links to the next.
	for i := range admin.DefaultUserPage {
		if _, err := s.app.Store.CreateUser(context.Background(), store.User{ID: fmt.Sprintf("u%03d", i), Username: fmt.Sprintf("zz%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, body = get(t, c, s.base+"/admin/users")
	if n := strings.Count(body, "<tr data-user="); n != admin.DefaultUserPage || !strings.Contains(body, `id="next-page"`) {
		t.Fatalf("users page: %d rows (want %d) and a link to the next page: %v", n, admin.DefaultUserPage, strings.Contains(body, `id="next-page"`))
	}
	next := html.UnescapeString(regexp.MustCompile(`href="([^"]+)" id="next-page"`).FindStringSubmatch(body)[1])
	_, body = get(t, c, s.base+next)
	if !strings.Contains(body, `data-user="zz099"`) || strings.Contains(body, `data-user="`+bobName+`"`) || strings.Contains(body, `id="next-page"`) {
		t.Errorf("the second users page (%s) should end the list with zz099:\n%s", next, body)
	}

	resp, css := get(t, c, s.base+"/admin/static/console.css")
	if resp.StatusCode != http.StatusOK || !strings.Contains(css, ".s-allow") {
		t.Errorf("console.css: status %d", resp.StatusCode)
	}
}

// TestConsoleLivePolicies: the console is the app stepgate-console for
// the live policies. A policy asking administrators for MFA sends every
// console request, page or form, to the step-up page and back; once
// proven, the console opens; a blocking policy closes it with a 403 that
// names the policy.
func TestConsoleLivePolicies(t *testing.T) {
	s := startConsole(t)
	ctx := context.Background()
	secret, _, err := s.app.Methods.TOTP.EnrollNow(ctx, s.admin, "phone")
	if err != nil {
		t.Fatal(err)
	}
	doc := s.saveDoc(t, "console", `policies:
  - name: console-needs-totp
    state: enabled
    users: {include: {roles: [stepgate-admin]}}
    target: {apps: {include: [stepgate-console]}}
    grant: {controls: [mfa]}
    session: {sign_in_frequency: 8h}
`)
	c := s.login(t, adminName, adminPassword)
	resp, _ := get(t, c, s.base+"/admin/users?q=b")
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc.Path != "/stepup" || loc.Query().Get("return_to") != "/admin/users?q=b" || loc.Query().Get("methods") != "totp" {
		t.Fatalf("a page under an MFA policy: status %d to %v, want the step-up page for totp and back", resp.StatusCode, loc)
	}
	resp, _ = s.postForm(t, c, "/admin/users/bob/revoke", url.Values{"confirm": {"yes"}, "back": {"/admin/users/bob"}})
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc.Path != "/stepup" || loc.Query().Get("return_to") != "/admin/users/bob" {
		t.Fatalf("a form under an MFA policy: status %d to %v, want the step-up page and back to the form's page", resp.StatusCode, loc)
	}
	s.stepUpTOTP(t, c, secret, "/admin/users?q=b")
	if resp, body := get(t, c, s.base+"/admin/users?q=b"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the step-up: status %d\n%s", resp.StatusCode, body)
	}

	if _, err := s.app.Admin.Save(ctx, "user:setup", "", admin.Document{Name: "console", Version: doc.Version, YAML: `policies:
  - name: console-closed
    state: enabled
    users: {include: {users: [root]}}
    target: {apps: {include: [stepgate-console]}}
    grant: block
`}, ""); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, c, s.base+"/admin")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "console-closed") {
		t.Fatalf("under a block policy: status %d\n%s", resp.StatusCode, body)
	}
}

// stepUpTOTP answers the step-up page with the next code of secret.
func (s *oidcServer) stepUpTOTP(t *testing.T, c *http.Client, secret, returnTo string) {
	t.Helper()
	_, body := get(t, c, s.base+"/stepup?method=totp&return_to="+url.QueryEscape(returnTo))
	csrf, cer := formOf(t, body)
	resp, _ := post(t, c, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
		"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {returnTo}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != returnTo {
		t.Fatalf("TOTP step-up: status %d to %q", resp.StatusCode, loc)
	}
}
