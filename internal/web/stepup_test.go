package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policytest"
	"github.com/stepgate/stepgate/internal/store"
)

// stepUpPolicies are the demo bank's contexts and what they cost.
const stepUpPolicies = `
auth_contexts:
  - {id: c1, name: Read PII}
  - {id: c2, name: High-value transaction}
  - {id: c3, name: Admin action}
policies:
  - name: pii-needs-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1]}
    grant: {controls: [mfa]}
  - name: transfers-need-fresh-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c2]}
    grant: {controls: [mfa]}
    session: {sign_in_frequency: 10m}
  - name: admin-actions-need-a-passkey
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c3]}
    grant: {controls: [{strength: phishing-resistant}]}
`

// askCase is what a fake sender knows about one return address.
type askCase struct {
	app      string
	contexts []string
	reask    access.Reask
	maxAge   time.Duration
	blocked  bool
}

// fakeSender stands in for the gateway and the OIDC provider: it decides
// the request again with the real policy engine, for the session's own
// proofs, as they do.
type fakeSender struct {
	snap  *policy.Snapshot
	now   func() time.Time
	cases map[string]askCase
}

func (f *fakeSender) StepUpFor(_ *http.Request, u store.User, s store.Session, returnTo string) (access.StepUp, bool) {
	c, ok := f.cases[returnTo]
	if !ok {
		return access.StepUp{}, false
	}
	now := f.now()
	req := &policy.Request{Subject: policy.Subject{ID: u.ID, Username: u.Username}, App: c.app, AuthContexts: c.contexts,
		ClientApp: policy.ClientBrowser, Events: access.Events(s.Events), Now: now}
	out := access.StepUp{App: c.app, Blocked: c.blocked}
	for _, ac := range f.snap.AuthContexts() {
		for _, id := range c.contexts {
			if ac.ID == id {
				out.Contexts = append(out.Contexts, ac)
			}
		}
	}
	d := f.snap.Evaluate(req, policy.EvaluateOptions{})
	out.Missing = d.Missing
	switch c.reask {
	case access.ReaskSingleUse:
		out.Missing, out.Reask = f.snap.Reask(req, now, policy.EvaluateOptions{}).Missing, c.reask
	case access.ReaskMaxAge:
		out.Missing, out.Reask, out.MaxAge = f.snap.Reask(req, now.Add(-c.maxAge), policy.EvaluateOptions{}).Missing, c.reask, c.maxAge
	}
	return out, true
}

func compileStepUpPolicies(t *testing.T) *policy.Snapshot {
	t.Helper()
	snap := policytest.Snapshot(t, stepUpPolicies)
	return snap
}

// addPasskey gives u a passkey directly in the store, added at the
// rig's now.
func (rg *rig) addPasskey(u store.User, name string) {
	rg.t.Helper()
	// A WebAuthn credential's stored form: enough for a sign-in
	// ceremony to start (its id goes into allowCredentials).
	if _, err := rg.st.CreateCredential(context.Background(), store.Credential{UserID: u.ID, Type: webauthn.Name, Name: name, Data: []byte(`{"id":"AQID"}`)}); err != nil {
		rg.t.Fatal(err)
	}
}

var (
	offeredRe    = regexp.MustCompile(`id="method-([a-z-]+)"`)
	ceremonyKind = regexp.MustCompile(`data-kind="(webauthn-login)"|name="(code)"|name="(password)"`)
)

// offeredOn lists the methods a step-up page offers: its choices, or the
// one whose ceremony it started.
func offeredOn(body string) []string {
	var out []string
	for _, m := range offeredRe.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	if len(out) > 0 {
		return out
	}
	if m := ceremonyKind.FindStringSubmatch(body); m != nil {
		switch {
		case m[1] != "":
			return []string{"webauthn"}
		case m[2] != "":
			return []string{"code"}
		case m[3] != "":
			return []string{"password"}
		}
	}
	return nil
}

// TestStepUpPageSaysWhoWhyAndWhere renders the step-up page for each
// kind of request that sends a user there, and checks that it names the
// application and action, gives the policy's reason in words, says
// where the code comes from, and offers only the methods that can meet
// the rule, whatever the page's address says (attack: a methods= hint
// edited to offer the password on a passkey rule's page).
func TestStepUpPageSaysWhoWhyAndWhere(t *testing.T) {
	t.Parallel()
	snap := compileStepUpPolicies(t)
	sender := &fakeSender{snap: snap, cases: map[string]askCase{
		"/gateway/start?route=bank&target=/transfers":  {app: "bank", contexts: []string{"c2"}},
		"/gateway/start?route=bank&target=/admin/":     {app: "bank", contexts: []string{"c3"}, reask: access.ReaskSingleUse},
		"/gateway/start?route=bank&target=/customers/": {app: "bank", contexts: []string{"c1"}, reask: access.ReaskMaxAge, maxAge: 10 * time.Minute},
		"/oauth2/authorize/resume?flow=f1":             {app: "Payroll", contexts: []string{"c2"}},
		"/gateway/start?route=bank&target=/accounts":   {app: "bank"},
		"/gateway/start?route=bank&target=/vault":      {app: "bank", blocked: true},
	}}
	var wa *webauthn.Method
	rg := newRig(t, func(d *Deps) {
		var err error
		wa, err = webauthn.New(webauthn.Config{RPID: "stepgate.test", RPName: "Stepgate", Origins: []string{"http://stepgate.test"}}, d.Credentials.(store.Store), d.Credentials.(store.Store), d.Now)
		if err != nil {
			t.Fatal(err)
		}
		d.Methods = authn.NewRegistry(append([]authn.Method{wa}, d.Methods.All()...)...)
		d.StepUps = []StepUpSource{sender}
	})
	sender.now = rg.clock.Now
	// bob's account is older than the registration window; the methods
	// were added on 2 Dec; the pages are read on 3 Dec.
	rg.clock.now = time.Date(2031, 11, 10, 9, 0, 0, 0, time.UTC)
	rg.addUser("bob") // a password only
	rg.clock.now = time.Date(2031, 12, 2, 15, 0, 0, 0, time.UTC)
	alice := rg.addUser("alice")
	rg.enrollTOTP(alice)
	rg.addPasskey(alice, "YubiKey")
	carol := rg.addUser("carol") // an authenticator app only
	rg.enrollTOTP(carol)
	rg.addUser("dave") // a password only, a new account: within the window
	rg.clock.Add(21 * time.Hour)

	tests := []struct {
		name, user, returnTo, hint string
		want                       []string // words the page must say
		offered                    []string // methods on it; nil for none
		links                      []string // links it must carry, each answering without a 404
		hrefs                      []string // links to other parts of the server it must carry
	}{
		{name: "ok/gateway-c2-totp", user: "carol", returnTo: "/gateway/start?route=bank&target=/transfers", hint: "password",
			want:    []string{"bank", "High-value transaction", "Your organisation asks for a second factor from the last 10 minutes for this action.", "Get the code from the authenticator app you added on 2 Dec (“phone”)."},
			offered: []string{"code"}},
		{name: "ok/gateway-c2-choice", user: "alice", returnTo: "/gateway/start?route=bank&target=/transfers",
			want:    []string{"High-value transaction", "a second factor from the last 10 minutes", "Use the passkey or security key you added on 2 Dec (“YubiKey”).", "Get the code from the authenticator app you added on 2 Dec"},
			offered: []string{"webauthn", "totp"}},
		{name: "attack/single-use-passkey-hint-password", user: "alice", returnTo: "/gateway/start?route=bank&target=/admin/", hint: "password,totp",
			want:    []string{"Admin action", "This page needs a proof made just now (single use)", "a phishing-resistant proof (a passkey or security key)", "Use the passkey or security key you added on 2 Dec (“YubiKey”)."},
			offered: []string{"webauthn"}},
		{name: "ok/max-age", user: "carol", returnTo: "/gateway/start?route=bank&target=/customers/",
			want:    []string{"Read PII", "Your last sign-in is older than 10 minutes, the most this page accepts.", "a second factor", "added on 2 Dec"},
			offered: []string{"code"}},
		{name: "ok/oidc-acr-values", user: "carol", returnTo: "/oauth2/authorize/resume?flow=f1",
			want:    []string{"Payroll", "High-value transaction", "a second factor from the last 10 minutes", "authenticator app you added on 2 Dec"},
			offered: []string{"code"}},
		{name: "ok/already-met", user: "carol", returnTo: "/gateway/start?route=bank&target=/accounts", hint: "totp",
			want:  []string{"bank", "You have already given the proof this needs."},
			hrefs: []string{"/gateway/start?route=bank&amp;target=/accounts"}},
		{name: "fail/blocked", user: "alice", returnTo: "/gateway/start?route=bank&target=/vault", hint: "totp,webauthn",
			want: []string{"bank", "Your organisation's policy does not allow this, whatever proof you give."}},
		{name: "fail/no-method-password-only", user: "bob", returnTo: "/gateway/start?route=bank&target=/admin/", hint: "password",
			want: []string{"None of your sign-in methods can give this proof", "It needs a passkey or security key.",
				"no sign-in method besides the password", "temporary access pass", "ask your administrator"},
			links: []string{"/account/security"}},
		{name: "fail/no-method-new-account", user: "dave", returnTo: "/gateway/start?route=bank&target=/admin/",
			want:  []string{"It needs a passkey or security key.", "You can add one now.", "Add a passkey or security key"},
			links: []string{"/account/security/add?method=webauthn"}},
		{name: "fail/no-method-fresh-proof-first", user: "carol", returnTo: "/gateway/start?route=bank&target=/admin/", hint: "totp",
			want:  []string{"It needs a passkey or security key.", "confirm it's you with an authenticator app"},
			links: []string{"/account/security/add?method=webauthn"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := rg.browser()
			b.signIn(tc.user)
			q := url.Values{"return_to": {tc.returnTo}}
			if tc.hint != "" {
				q.Set("methods", tc.hint)
			}
			resp, body := b.do("GET", "/stepup?"+q.Encode(), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d\n%s", resp.StatusCode, body)
			}
			text := pageText(body)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("the page does not say %q:\n%s", w, text)
				}
			}
			if got := offeredOn(body); strings.Join(got, ",") != strings.Join(tc.offered, ",") {
				t.Errorf("offered %v, want %v", got, tc.offered)
			}
			for _, h := range tc.hrefs {
				if !strings.Contains(body, `href="`+h+`"`) {
					t.Errorf("no link to %s", h)
				}
			}
			for _, l := range tc.links {
				if !strings.Contains(body, `href="`+strings.ReplaceAll(l, "&", "&amp;")+`"`) {
					t.Errorf("no link to %s", l)
				}
				if resp, _ := b.do("GET", l, nil); resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
					t.Errorf("the link %s answers %d", l, resp.StatusCode)
				}
			}
			// fail/wrong-code: the page shown again still says who asked
			// and why.
			if m := rigCeremonyRe.FindStringSubmatch(body); m != nil && contains(tc.offered, "code") {
				resp, again := b.do("POST", "/stepup", url.Values{"ceremony": {m[1]}, "code": {"000000"}, "return_to": {tc.returnTo}})
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(pageText(again), tc.want[0]) || !strings.Contains(pageText(again), tc.want[1]) {
					t.Errorf("after a wrong code: %d, the page lost %q or %q:\n%s", resp.StatusCode, tc.want[0], tc.want[1], pageText(again))
				}
			}
			// attack/method-param: asking for the password by name does
			// not start it where the rule cannot be met with it.
			if !contains(tc.offered, "password") {
				q.Set("method", "password")
				_, body := b.do("GET", "/stepup?"+q.Encode(), nil)
				if strings.Contains(body, `name="password"`) || strings.Contains(body, `id="method-password"`) {
					t.Errorf("method=password in the address put the password on the page")
				}
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var tagRe = regexp.MustCompile(`<[^>]*>|\s+`)

// pageText is the page's text with tags and runs of spaces made single
// spaces, and its entities read.
func pageText(body string) string {
	s := strings.Join(strings.Fields(tagRe.ReplaceAllString(body, " ")), " ")
	for _, e := range [][2]string{{"&#39;", "'"}, {"&amp;", "&"}, {"&quot;", `"`}, {"&#34;", `"`}} {
		s = strings.ReplaceAll(s, e[0], e[1])
	}
	return s
}

// TestStepUpPageUnknownSender: a return address no sender recognises
// (the security page's own step-up) keeps the hint, narrowed to the
// user's methods.
func TestStepUpPageUnknownSender(t *testing.T) {
	t.Parallel()
	rg := newRig(t, func(d *Deps) { d.StepUps = []StepUpSource{&fakeSender{}} })
	u := rg.addUser("carol")
	rg.enrollTOTP(u)
	b := rg.browser()
	b.signIn("carol")
	_, body := b.do("GET", "/stepup?"+url.Values{"return_to": {"/account/security"}, "methods": {"totp,webauthn"}}.Encode(), nil)
	if got := offeredOn(body); strings.Join(got, ",") != "code" || strings.Contains(body, `id="stepup-ask"`) {
		t.Fatalf("offered %v; the page must offer the app alone and state no facts it was not given", got)
	}
}

func TestShortDateAndDuration(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2031, 12, 2, 23, 0, 0, 0, time.UTC), "2 Dec"},
		{time.Date(2030, 12, 2, 0, 0, 0, 0, time.UTC), "2 Dec 2030"},
	} {
		if got := shortDate(tc.in, now); got != tc.want {
			t.Errorf("shortDate(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for d, want := range map[time.Duration]string{10 * time.Minute: "10 minutes", 90 * time.Minute: "1 hour 30 minutes", time.Hour: "1 hour", 7 * 24 * time.Hour: "7 days", 0: "0 seconds"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
