package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/authn"
	"github.com/stepgate/stepgate/internal/authn/password"
	"github.com/stepgate/stepgate/internal/authn/recovery"
	"github.com/stepgate/stepgate/internal/authn/tap"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/users"
)

const rigPassword = "correct horse battery"

var (
	rigCeremonyRe = regexp.MustCompile(`name="ceremony" value="([^"]+)"`)
	rigLinkRe     = regexp.MustCompile(`http://[^\s]+/account/security/report\?t=[^\s]+`)
	rigCodesRe    = regexp.MustCompile(`<li><code>([a-z0-9-]{19})</code></li>`)
)

// testClock is the one clock of a rig: the pages, the store, the
// sessions, the methods and the passes all read it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// notice is a captured notification.
type notice struct{ to, subject, body string }

type captured struct {
	mu      sync.Mutex
	notices []notice
}

func (c *captured) Notify(_ context.Context, to, subject, body string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notices = append(c.notices, notice{to, subject, body})
	return nil
}

func (c *captured) last(t *testing.T) notice {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.notices) == 0 {
		t.Fatal("no notice was sent")
	}
	return c.notices[len(c.notices)-1]
}

// rig is the pages over a real SQLite store with an injected clock.
type rig struct {
	t        *testing.T
	clock    *testClock
	st       store.Store
	p        *Pages
	base     string
	users    *users.Service
	totp     *totp.Method
	passes   *tap.Store
	notices  *captured
	raised   []string
	userRisk map[string]string
}

func newRig(t *testing.T, mutate ...func(*Deps)) *rig {
	t.Helper()
	ctx := context.Background()
	c := &testClock{now: time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db", sqlite.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	rg := &rig{t: t, clock: c, st: st, notices: &captured{}, userRisk: map[string]string{}}
	rg.users = users.New(st, password.NewHasher(password.Params{Time: 1, MemoryKiB: 1024, Threads: 1}), 8)
	rg.totp = totp.New(st, box, "Stepgate", c.Now)
	rg.passes = tap.New(st, c.Now)
	sessions := session.NewManager(st, session.Config{CookieName: "sg", IdleTimeout: 24 * time.Hour, Lifetime: 30 * 24 * time.Hour}, c.Now)
	d := Deps{
		Users: rg.users, Store: st, Methods: authn.NewRegistry(rg.totp, recovery.New(st, c.Now)), Credentials: st,
		Ceremonies: authn.NewCeremonies(st, c.Now), Throttle: authn.NewThrottle(st, c.Now), IPThrottle: authn.NewThrottle(st, c.Now),
		Sessions: sessions, CSRFKey: []byte("0123456789abcdef0123456789abcdef"), Log: slog.New(slog.DiscardHandler), Now: c.Now,
		Registration: DefaultRegistration(), KV: st, Passes: rg.passes, Notifier: rg.notices,
		ReportKey: []byte("report-key-0123456789abcdef01234"), Issuer: "http://stepgate.test", ReportLinkLifetime: 7 * 24 * time.Hour,
		UserRisk:  func(_ context.Context, id string) string { return rg.userRisk[id] },
		RaiseRisk: func(_ context.Context, id string) { rg.raised = append(rg.raised, id) },
		Revoke: func(ctx context.Context, id, _ string) error {
			_, err := st.DeleteUserSessions(ctx, id)
			return err
		},
	}
	for _, f := range mutate {
		f(&d)
	}
	rg.p, err = New(d)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rg.p.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	rg.base = srv.URL
	return rg
}

// addUser creates a user with a password, created at the rig's now.
func (rg *rig) addUser(name string) store.User {
	rg.t.Helper()
	u, err := rg.users.Add(context.Background(), users.NewUser{Username: name, Email: name + "@example.com", Password: rigPassword})
	if err != nil {
		rg.t.Fatal(err)
	}
	return u
}

// enrollTOTP gives u an authenticator app directly in the store, as an
// administrator's command does, and returns its secret.
func (rg *rig) enrollTOTP(u store.User) string {
	rg.t.Helper()
	secret, _, err := rg.totp.EnrollNow(context.Background(), u, "phone")
	if err != nil {
		rg.t.Fatal(err)
	}
	return secret
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	rg *rig
	c  *http.Client
}

func (rg *rig) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{rg: rg, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.rg.t.Helper()
	var body io.Reader
	if form != nil {
		// The CSRF token is the MAC of the browser's cookie.
		if _, err := b.c.Get(b.rg.base + "/login"); err != nil {
			b.rg.t.Fatal(err)
		}
		u, _ := url.Parse(b.rg.base)
		for _, ck := range b.c.Jar.Cookies(u) {
			if ck.Name == "stepgate_csrf" {
				form.Set(csrfField, b.rg.p.csrf.mac(ck.Value))
			}
		}
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.rg.base+path, body)
	if err != nil {
		b.rg.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "TestBrowser/1.0")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.rg.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func (b *browser) signIn(name string) {
	b.rg.t.Helper()
	resp, body := b.do("POST", "/login", url.Values{"username": {name}, "password": {rigPassword}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		b.rg.t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
	}
}

// stepUpTOTP steps up with the authenticator app, then moves the clock
// to the next time step so the next code is a new one.
func (b *browser) stepUpTOTP(secret string) {
	b.rg.t.Helper()
	_, body := b.do("GET", "/stepup?method=totp&return_to=/account", nil)
	cer := rigCeremonyRe.FindStringSubmatch(body)
	if cer == nil {
		b.rg.t.Fatalf("the step-up page has no ceremony:\n%s", body)
	}
	code, err := pqtotp.GenerateCodeCustom(secret, b.rg.clock.Now(), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		b.rg.t.Fatal(err)
	}
	resp, body := b.do("POST", "/stepup", url.Values{"ceremony": {cer[1]}, "code": {code}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		b.rg.t.Fatalf("TOTP step-up: %d\n%s", resp.StatusCode, body)
	}
	b.rg.clock.Add(30 * time.Second)
}

// startAdd opens the registration of method and reports whether it
// started (an enrollment page with a ceremony), with the response.
func (b *browser) startAdd(method string) (bool, *http.Response, string) {
	b.rg.t.Helper()
	resp, body := b.do("GET", "/account/security/add?method="+method, nil)
	return resp.StatusCode == http.StatusOK && rigCeremonyRe.MatchString(body), resp, body
}

// addRecoveryCodes registers recovery codes through the pages and
// returns them.
func (b *browser) addRecoveryCodes() []string {
	b.rg.t.Helper()
	ok, resp, body := b.startAdd("recovery-code")
	if !ok {
		b.rg.t.Fatalf("recovery codes: %d\n%s", resp.StatusCode, body)
	}
	var codes []string
	for _, m := range rigCodesRe.FindAllStringSubmatch(body, -1) {
		codes = append(codes, m[1])
	}
	cer := rigCeremonyRe.FindStringSubmatch(body)[1]
	if resp, _ := b.do("POST", "/account/security/add", url.Values{"ceremony": {cer}}); resp.StatusCode != http.StatusSeeOther {
		b.rg.t.Fatalf("confirming the codes: %d", resp.StatusCode)
	}
	return codes
}

func (rg *rig) creds(u store.User) []store.Credential {
	rg.t.Helper()
	cs, err := rg.st.ListCredentials(context.Background(), u.ID)
	if err != nil {
		rg.t.Fatal(err)
	}
	return cs
}

// TestAddNeedsFreshProof: a user who has a method adds another only
// after a fresh proof with one, never with the password alone (alice's
// stolen password registering the attacker's authenticator app).
func TestAddNeedsFreshProof(t *testing.T) {
	t.Parallel()
	// A two-minute window (registration.freshness) lets a proof go stale
	// while a registration ceremony is still alive.
	rg := newRig(t, func(d *Deps) { d.Registration.Freshness = 2 * time.Minute })
	alice := rg.addUser("alice")
	secret := rg.enrollTOTP(alice)
	b := rg.browser()
	b.signIn("alice")

	// attack/password-only: the page sends the browser to a step-up
	// with alice's own app, and no registration starts.
	ok, resp, _ := b.startAdd("totp")
	loc, _ := resp.Location()
	if ok || resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/stepup" || loc.Query().Get("methods") != "totp" {
		t.Fatalf("attack/password-only: started=%v %d %v, want a step-up with totp", ok, resp.StatusCode, loc)
	}
	// attack/password-step-up: retyping the password is no proof.
	resp, _ = b.do("POST", "/stepup", url.Values{"password": {rigPassword}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password step-up: %d", resp.StatusCode)
	}
	if ok, _, _ := b.startAdd("totp"); ok {
		t.Fatal("attack/password-step-up: a fresh password opened the registration")
	}

	// ok/fresh-totp: a proof with the app opens it.
	b.stepUpTOTP(secret)
	ok, _, body := b.startAdd("totp")
	if !ok {
		t.Fatalf("ok/fresh-totp: the registration did not start:\n%s", body)
	}

	// fail/stale-at-finish: a registration started while the proof was
	// fresh is refused at the finish once it has gone stale.
	cer := rigCeremonyRe.FindStringSubmatch(body)[1]
	rg.clock.Add(3 * time.Minute)
	resp, _ = b.do("POST", "/account/security/add", url.Values{"ceremony": {cer}, "code": {"000000"}})
	if resp.StatusCode != http.StatusForbidden || len(rg.creds(alice)) != 1 {
		t.Fatalf("fail/stale-at-finish: %d, %d credentials", resp.StatusCode, len(rg.creds(alice)))
	}
	// fail/stale-proof: and no new registration starts.
	if ok, _, _ := b.startAdd("totp"); ok {
		t.Fatal("fail/stale-proof: a 3-minute-old proof opened a registration with a 2-minute window")
	}
}

// TestPhishingResistantChanges: a deployment that demands a passkey for
// changes does not take an authenticator app's proof.
func TestPhishingResistantChanges(t *testing.T) {
	t.Parallel()
	rg := newRig(t, func(d *Deps) { d.Registration.PhishingResistant = true })
	alice := rg.addUser("alice")
	secret := rg.enrollTOTP(alice)
	b := rg.browser()
	b.signIn("alice")
	b.stepUpTOTP(secret)
	ok, resp, body := b.startAdd("totp")
	if ok || resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "passkey") {
		t.Fatalf("fail/totp-where-passkey-required: started=%v %d\n%s", ok, resp.StatusCode, body)
	}
}

// TestFirstMethod: with a password only, a first method is registered in
// the window after the account was created from a sign-in without risk,
// or with a temporary access pass, and otherwise not at all.
func TestFirstMethod(t *testing.T) {
	t.Parallel()
	t.Run("ok/in-window", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		rg.addUser("bob")
		rg.clock.Add(13 * 24 * time.Hour)
		b := rg.browser()
		b.signIn("bob")
		if ok, resp, body := b.startAdd("totp"); !ok {
			t.Fatalf("in the window: %d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("attack/outside-window", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		rg.addUser("admin")
		rg.clock.Add(15 * 24 * time.Hour)
		b := rg.browser()
		b.signIn("admin")
		ok, resp, body := b.startAdd("totp")
		if ok || resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "temporary access pass") {
			t.Fatalf("outside the window: started=%v %d\n%s", ok, resp.StatusCode, body)
		}
	})
	t.Run("attack/window-off", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t, func(d *Deps) { d.Registration.Window = 0 })
		rg.addUser("admin")
		b := rg.browser()
		b.signIn("admin")
		if ok, _, _ := b.startAdd("totp"); ok {
			t.Fatal("the window is off, yet a password opened the registration")
		}
	})
	t.Run("attack/user-risk", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		bob := rg.addUser("bob")
		rg.userRisk[bob.ID] = "high"
		b := rg.browser()
		b.signIn("bob")
		if ok, _, _ := b.startAdd("totp"); ok {
			t.Fatal("a user at high risk registered in the window")
		}
	})
	t.Run("attack/sign-in-risk", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		rg.addUser("bob")
		b := rg.browser()
		b.signIn("bob")
		ctx := context.Background()
		ss, _ := rg.st.ListUserSessions(ctx, rg.mustUser("bob").ID)
		for _, s := range ss {
			_, _ = rg.st.UpdateSession(ctx, s.ID, func(cur store.Session) (store.Session, error) {
				cur.Events[0].Risk = "low"
				return cur, nil
			})
		}
		if ok, _, _ := b.startAdd("totp"); ok {
			t.Fatal("a risky sign-in registered in the window")
		}
	})
	t.Run("attack/recovery-codes-first", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		bob := rg.addUser("bob")
		b := rg.browser()
		b.signIn("bob")
		ok, resp, _ := b.startAdd("recovery-code")
		if ok || resp.StatusCode != http.StatusForbidden || len(rg.creds(bob)) != 0 {
			t.Fatalf("recovery codes with a password only: started=%v %d", ok, resp.StatusCode)
		}
	})
}

func (rg *rig) mustUser(name string) store.User {
	rg.t.Helper()
	u, err := rg.st.GetUserByName(context.Background(), name)
	if err != nil {
		rg.t.Fatal(err)
	}
	return u
}

// TestTemporaryAccessPass: an administrator's pass opens the first
// registration, for its lifetime only, once when single use, and not
// after it is revoked; it never becomes a proof of the session.
func TestTemporaryAccessPass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rg := newRig(t, func(d *Deps) { d.Registration.Window = 0 })
	admin := rg.addUser("admin")
	code, _, err := rg.passes.Issue(ctx, admin.ID, "root", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	b := rg.browser()
	b.signIn("admin")
	if ok, _, _ := b.startAdd("totp"); ok {
		t.Fatal("attack/no-pass: the registration opened")
	}
	if resp, _ := b.do("POST", "/account/security/tap", url.Values{"pass": {"aaaa-bbbb-cccc-dddd-eeee"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("attack/wrong-pass: %d, want 401", resp.StatusCode)
	}
	resp, _ := b.do("POST", "/account/security/tap", url.Values{"pass": {code}, "return_to": {"/account/security/add?method=totp"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/account/security/add?method=totp" {
		t.Fatalf("redeem: %d %s", resp.StatusCode, loc)
	}
	if ok, resp, body := b.startAdd("totp"); !ok {
		t.Fatalf("ok/pass: %d\n%s", resp.StatusCode, body)
	}
	// The pass is no proof of the session: no event was added.
	ss, _ := rg.st.ListUserSessions(ctx, admin.ID)
	if len(ss) != 1 || len(ss[0].Events) != 1 || ss[0].Events[0].Method != "password" {
		t.Fatalf("attack/pass-as-proof: session events %+v", ss[0].Events)
	}
	// fail/once: a single-use pass does not open a second session.
	other := rg.browser()
	other.signIn("admin")
	if resp, _ := other.do("POST", "/account/security/tap", url.Values{"pass": {code}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("fail/once: a spent single-use pass was taken again: %d", resp.StatusCode)
	}
	// fail/revoked: revoking the pass closes the registration at once.
	if err := rg.passes.Revoke(ctx, admin.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := b.startAdd("totp"); ok {
		t.Fatal("fail/revoked: a revoked pass still opened the registration")
	}
}

// TestTemporaryAccessPassExpires: a pass opens nothing once expired,
// and the registration it opened ends with it.
func TestTemporaryAccessPassExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rg := newRig(t, func(d *Deps) { d.Registration.Window = 0 })
	admin := rg.addUser("admin")
	code, _, err := rg.passes.Issue(ctx, admin.ID, "root", tap.MinLifetime, false)
	if err != nil {
		t.Fatal(err)
	}
	b := rg.browser()
	b.signIn("admin")
	if resp, _ := b.do("POST", "/account/security/tap", url.Values{"pass": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeem: %d", resp.StatusCode)
	}
	rg.clock.Add(tap.MinLifetime)
	if ok, _, _ := b.startAdd("totp"); ok {
		t.Fatal("fail/expired-registration: the pass's registration outlived it")
	}
	if resp, _ := b.do("POST", "/account/security/tap", url.Values{"pass": {code}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("fail/expired-pass: %d, want 401", resp.StatusCode)
	}
}

// TestRecoveryCodesOnlyRecover: a recovery code opens the registration
// of a new method and does nothing else: it is no step-up, it cannot
// make more codes, and it cannot remove a method.
func TestRecoveryCodesOnlyRecover(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	bob := rg.addUser("bob")
	secret := rg.enrollTOTP(bob)
	b := rg.browser()
	b.signIn("bob")
	b.stepUpTOTP(secret)
	codes := b.addRecoveryCodes()
	if len(codes) != recovery.Count {
		t.Fatalf("%d codes", len(codes))
	}
	rg.clock.Add(time.Hour)

	// attack/step-up-with-code: the step-up page takes no recovery code.
	resp, body := b.do("GET", "/stepup?method=recovery-code&return_to=/account", nil)
	if strings.Contains(body, `name="ceremony"`) {
		t.Fatalf("attack/step-up-with-code: the step-up page started a recovery-code ceremony: %d", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/account/security/recover", url.Values{"code": {codes[0]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("recover: %d", resp.StatusCode)
	}
	ss, _ := rg.st.ListUserSessions(context.Background(), bob.ID)
	if slices.ContainsFunc(ss[0].Events, func(e store.AuthEvent) bool { return e.Method == "recovery-code" }) {
		t.Fatal("attack/code-as-proof: the recovery code became a proof of the session")
	}
	if ok, _, _ := b.startAdd("recovery-code"); ok {
		t.Fatal("attack/codes-from-code: a recovery code made new recovery codes")
	}
	totpID := rg.creds(bob)[0].ID
	resp, _ = b.do("POST", "/account/security/remove", url.Values{"id": {totpID}})
	if resp.StatusCode != http.StatusForbidden || len(rg.creds(bob)) != 2 {
		t.Fatalf("attack/remove-with-code: %d, %d credentials", resp.StatusCode, len(rg.creds(bob)))
	}
	// ok/recover-new-method: the code registers one new method...
	ok, _, body := b.startAdd("totp")
	if !ok {
		t.Fatalf("ok/recover-new-method: \n%s", body)
	}
	newSecret := regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(body)[1]
	code, _ := pqtotp.GenerateCodeCustom(newSecret, rg.clock.Now(), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if resp, _ := b.do("POST", "/account/security/add", url.Values{"ceremony": {rigCeremonyRe.FindStringSubmatch(body)[1]}, "code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("finish the new app: %d", resp.StatusCode)
	}
	// ...and one only.
	if ok, _, _ := b.startAdd("totp"); ok {
		t.Fatal("attack/second-method-from-code: one recovery code registered two methods")
	}
	// attack/reused-code: a used code opens nothing again.
	if resp, _ := b.do("POST", "/account/security/recover", url.Values{"code": {codes[0]}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("attack/reused-code: %d", resp.StatusCode)
	}
}

// TestRemovalNeedsFreshProof: a password cannot strip a method; a fresh
// proof with another method can, and with the only one, that one.
func TestRemovalNeedsFreshProof(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	alice := rg.addUser("alice")
	secret := rg.enrollTOTP(alice)
	b := rg.browser()
	b.signIn("alice")
	id := rg.creds(alice)[0].ID
	resp, body := b.do("POST", "/account/security/remove", url.Values{"id": {id}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "change-step-up") || len(rg.creds(alice)) != 1 {
		t.Fatalf("attack/password-removal: %d\n%s", resp.StatusCode, body)
	}
	b.stepUpTOTP(secret)
	rg.clock.Add(11 * time.Minute)
	if resp, _ := b.do("POST", "/account/security/remove", url.Values{"id": {id}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("fail/stale-removal: %d", resp.StatusCode)
	}
	b.stepUpTOTP(secret)
	if resp, _ := b.do("POST", "/account/security/remove", url.Values{"id": {id}}); resp.StatusCode != http.StatusSeeOther || len(rg.creds(alice)) != 0 {
		t.Fatalf("ok/fresh-removal: %d", resp.StatusCode)
	}
	n := rg.notices.last(t)
	if !strings.Contains(n.subject, "removed") || !strings.Contains(n.body, "Authenticator") {
		t.Errorf("the removal notice: %+v", n)
	}
}

// TestWasntMeLink: every change is mailed with what, when, where and
// which device; the link's GET only asks, its POST removes the method,
// ends the sessions and raises the user's risk, once; used, expired and
// forged links land on finished pages.
func TestWasntMeLink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rg := newRig(t)
	bob := rg.addUser("bob")
	attacker := rg.browser()
	attacker.signIn("bob")
	ok, _, body := attacker.startAdd("totp")
	if !ok {
		t.Fatal("in the window, the registration did not start")
	}
	secret := regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(body)[1]
	code, _ := pqtotp.GenerateCodeCustom(secret, rg.clock.Now(), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	cer := rigCeremonyRe.FindStringSubmatch(body)[1]
	if resp, _ := attacker.do("POST", "/account/security/add", url.Values{"ceremony": {cer}, "code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d", resp.StatusCode)
	}
	n := rg.notices.last(t)
	for _, want := range []string{"Authenticator", "2031-03-04 09:00:00 UTC", "127.0.0.1", "TestBrowser/1.0", "wasn't you"} {
		if !strings.Contains(n.body, want) {
			t.Errorf("the notice lacks %q:\n%s", want, n.body)
		}
	}
	if n.to != "bob@example.com" {
		t.Errorf("the notice went to %q", n.to)
	}
	link := rigLinkRe.FindString(n.body)
	if link == "" {
		t.Fatalf("no link in the notice:\n%s", n.body)
	}
	token, _ := url.Parse(link)
	path := "/account/security/report?" + token.RawQuery

	// attack/prefetch: a mail scanner's GET changes nothing.
	victim := rg.browser()
	for range 3 {
		resp, body := victim.do("GET", path, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "report-confirm") {
			t.Fatalf("GET the link: %d\n%s", resp.StatusCode, body)
		}
	}
	if len(rg.creds(bob)) != 1 || len(rg.raised) != 0 {
		t.Fatal("attack/prefetch: a GET acted")
	}
	if ss, _ := rg.st.ListUserSessions(ctx, bob.ID); len(ss) != 1 {
		t.Fatal("attack/prefetch: a GET ended sessions")
	}
	// attack/forged: a changed signature or expiry is refused.
	t0 := token.Query().Get("t")
	parts := strings.Split(t0, ".")
	for name, forged := range map[string]string{
		"signature": parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"expiry":    parts[0] + ".99999999999." + parts[2],
		"garbage":   "x",
	} {
		resp, body := victim.do("POST", "/account/security/report", url.Values{"t": {forged}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "/account/security") {
			t.Errorf("attack/forged-%s: %d\n%s", name, resp.StatusCode, body)
		}
	}
	// ok/confirmed: the method goes, the sessions end, the risk rises.
	resp, body := victim.do("POST", "/account/security/report", url.Values{"t": {t0}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "report-done") {
		t.Fatalf("POST the link: %d\n%s", resp.StatusCode, body)
	}
	if len(rg.creds(bob)) != 0 {
		t.Error("the reported method is still registered")
	}
	if ss, _ := rg.st.ListUserSessions(ctx, bob.ID); len(ss) != 0 {
		t.Error("the attacker's session survived the report")
	}
	if !slices.Equal(rg.raised, []string{bob.ID}) {
		t.Errorf("risk raised for %v, want bob", rg.raised)
	}
	// fail/used: the link acts once, and says so.
	resp, body = victim.do("POST", "/account/security/report", url.Values{"t": {t0}})
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "already used") || len(rg.raised) != 1 {
		t.Fatalf("fail/used: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := victim.do("GET", path, nil); resp.StatusCode != http.StatusGone || !strings.Contains(body, "already used") {
		t.Fatalf("fail/used-get: %d\n%s", resp.StatusCode, body)
	}
}

// TestWasntMeLinkExpires: an expired link acts no more.
func TestWasntMeLinkExpires(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	alice := rg.addUser("alice")
	secret := rg.enrollTOTP(alice)
	b := rg.browser()
	b.signIn("alice")
	b.stepUpTOTP(secret)
	b.addRecoveryCodes()
	link := rigLinkRe.FindString(rg.notices.last(t).body)
	u, _ := url.Parse(link)
	rg.clock.Add(7*24*time.Hour + time.Second)
	resp, body := b.do("POST", "/account/security/report", url.Values{"t": {u.Query().Get("t")}})
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "expired") || len(rg.creds(alice)) != 2 {
		t.Fatalf("fail/expired: %d\n%s", resp.StatusCode, body)
	}
}

// TestRecoveryCodeRace: two registrations opened by one recovery code
// and finished at once add one method, not two.
func TestRecoveryCodeRace(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	bob := rg.addUser("bob")
	secret := rg.enrollTOTP(bob)
	b := rg.browser()
	b.signIn("bob")
	b.stepUpTOTP(secret)
	codes := b.addRecoveryCodes()
	rg.clock.Add(time.Hour)
	if resp, _ := b.do("POST", "/account/security/recover", url.Values{"code": {codes[0]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("recover: %d", resp.StatusCode)
	}
	secretRe := regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
	var forms []url.Values
	for range 2 {
		ok, _, body := b.startAdd("totp")
		if !ok {
			t.Fatalf("the registration did not start:\n%s", body)
		}
		code, _ := pqtotp.GenerateCodeCustom(secretRe.FindStringSubmatch(body)[1], rg.clock.Now(), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		forms = append(forms, url.Values{"ceremony": {rigCeremonyRe.FindStringSubmatch(body)[1]}, "code": {code}})
	}
	var wg sync.WaitGroup
	for _, f := range forms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.do("POST", "/account/security/add", f)
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range rg.creds(bob) {
		if c.Type == "totp" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("attack/race: bob has %d authenticator apps, want his first and one new", n)
	}
}
