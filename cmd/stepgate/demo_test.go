//go:build unix

package main

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/demo"
)

var (
	demoSecretRe = regexp.MustCompile(`secret \(TOTP, base32\): ([A-Z2-7]+)`)
	demoBankRe   = regexp.MustCompile(`the bank app itself is on (127\.0\.0\.1:[0-9]+)`)
	demoCSRFRe   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	demoCerRe    = regexp.MustCompile(`name="ceremony" value="([^"]+)"`)
	bankFormRe   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// demoBrowser is a cookie-keeping client that reaches every host name on
// the demo's listener, as a browser resolving *.localhost does, and
// does not follow redirects.
func demoBrowser(addr string) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}},
	}
}

func demoDo(t *testing.T, c *http.Client, method, u string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func demoCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestDemoWalkThrough runs "stepgate demo" as the command does and
// follows the README's walk-through: alice signs in through the bank,
// moves money with a step-up, reads the customer list; a stranger sees
// only the public rates; the bank refuses whoever bypasses the gateway;
// an API client gets the gateway's challenge; and "user totp-code alice
// --demo" prints the code alice's app shows. Not parallel: it changes
// the working directory, as --demo depends on it.
func TestDemoWalkThrough(t *testing.T) {
	ln, out := startTestDemo(t)
	welcome := out.String()
	port := ln.Addr().(*net.TCPAddr).Port
	base, bank := "http://localhost:"+itoa(port), "http://bank.localhost:"+itoa(port)
	for _, want := range []string{base, bank + "/", "alice-demo-password", "bob-demo-password", "admin-demo-password",
		"get alice's current code with: stepgate user totp-code alice --demo", demo.BankClientSecret} {
		if !strings.Contains(welcome, want) {
			t.Errorf("the welcome text does not mention %q:\n%s", want, welcome)
		}
	}
	m, bm := demoSecretRe.FindStringSubmatch(welcome), demoBankRe.FindStringSubmatch(welcome)
	if m == nil || bm == nil {
		t.Fatalf("the welcome text shows no TOTP secret or bank address:\n%s", welcome)
	}
	secret, bankAddr := m[1], bm[1]
	demoRegistration(t, ln.Addr().String(), base, welcome)

	b := demoBrowser(ln.Addr().String())
	steps, offers := 0, 0
	user := "alice"
	// walk follows redirects as a browser b does, signing in as user and
	// stepping up with alice's authenticator app when Stepgate asks.
	walk := func(resp *http.Response, body string) (*http.Response, string) {
		t.Helper()
		for range 12 {
			if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
				return resp, body
			}
			loc, err := resp.Location()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasPrefix(loc.String(), base+"/login"):
				_, page := demoDo(t, b, "GET", loc.String(), nil)
				csrf := demoCSRFRe.FindStringSubmatch(page)
				if csrf == nil {
					t.Fatalf("the sign-in page has no form:\n%s", page)
				}
				resp, body = demoDo(t, b, "POST", base+"/login", url.Values{"csrf_token": {csrf[1]},
					"username": {user}, "password": {user + "-demo-password"}, "return_to": {loc.Query().Get("return_to")}})
			case strings.HasPrefix(loc.String(), base+"/stepup"):
				steps++
				if loc.Query().Get("methods") != "totp" {
					t.Errorf("the step-up offers %q, want alice's authenticator app (totp)", loc.Query().Get("methods"))
				}
				_, page := demoDo(t, b, "GET", loc.String(), nil)
				csrf, cer := demoCSRFRe.FindStringSubmatch(page), demoCerRe.FindStringSubmatch(page)
				if csrf == nil || cer == nil {
					t.Fatalf("the step-up page has no code form:\n%s", page)
				}
				resp, body = demoDo(t, b, "POST", base+"/stepup", url.Values{"csrf_token": {csrf[1]}, "ceremony": {cer[1]},
					"code": {demoCode(t, secret, time.Now())}, "return_to": {loc.Query().Get("return_to")}})
			case strings.HasPrefix(loc.String(), base+"/account/register-offer"):
				// The registration campaign offers alice the passkey the
				// admin pages ask for: "Not now" goes on to the bank.
				offers++
				resp, body = demoNotNow(t, b, base, loc)
			default:
				resp, body = demoDo(t, b, "GET", loc.String(), nil)
			}
		}
		t.Fatal("no page after 12 redirects")
		return nil, ""
	}

	// 1. Open the bank and sign in as alice: the accounts page.
	resp, body := walk(demoDo(t, b, "GET", bank+"/", nil))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<dd id="user">alice (alice@bank.example)</dd>`) || !strings.Contains(body, "Current account") {
		t.Fatalf("accounts after signing in: %d\n%s", resp.StatusCode, body)
	}
	if steps != 0 || !strings.Contains(body, "<dd>pwd</dd>") {
		t.Fatalf("the accounts page asked for %d step-ups, want none, and should show amr pwd:\n%s", steps, body)
	}
	if offers != 1 {
		t.Errorf("alice's sign-in showed the registration offer %d times, want once", offers)
	}

	// 2. Make a transfer: the form needs only the sign-in, sending it
	// needs a second factor; the posted form survives the step-up.
	_, form := demoDo(t, b, "GET", bank+"/transfers/new", nil)
	token := bankFormRe.FindStringSubmatch(form)
	if token == nil {
		t.Fatalf("the transfer form has no token:\n%s", form)
	}
	resp, body = walk(demoDo(t, b, "POST", bank+"/transfers", url.Values{"amount": {"250.00"}, "to": {"DE75 5121 0800 1245 1261 99"}, "csrf": {token[1]}}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Transfer of 250.00 to DE75512108001245126199 done") || steps != 1 {
		t.Fatalf("transfer after %d step-ups: %d\n%s", steps, resp.StatusCode, body)
	}
	if !strings.Contains(body, "<dd>pwd, otp</dd>") || !strings.Contains(body, "<dd>c2</dd>") {
		t.Errorf("the transfer page does not show the TOTP proof and context c2:\n%s", body)
	}

	// 3. Customers (c1, MFA at any time): the proof just given counts.
	resp, body = walk(demoDo(t, b, "GET", bank+"/customers/", nil))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Carol Chen") || steps != 1 {
		t.Fatalf("customers: %d after %d step-ups\n%s", resp.StatusCode, steps, body)
	}

	// 4. Admin (c3) needs a passkey alice does not have: refused, and the
	// bank never sees the request.
	resp, body = walk(demoDo(t, b, "GET", bank+"/admin/", nil))
	if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "Welcome to the administration") {
		t.Fatalf("alice on the admin pages: %d\n%s", resp.StatusCode, body)
	}

	// The bank's sign-out link is Stepgate's: it asks to confirm, signs
	// alice out and leads to the sign-in page; the bank then asks for a
	// sign-in again.
	demoSignOut(t, b, base, bank)

	// bob has a password only: the contexts are out of his reach.
	b, user = demoBrowser(ln.Addr().String()), "bob"
	walk(demoDo(t, b, "GET", bank+"/", nil))
	_, form = demoDo(t, b, "GET", bank+"/transfers/new", nil)
	token = bankFormRe.FindStringSubmatch(form)
	if token == nil {
		t.Fatalf("bob's transfer form has no token:\n%s", form)
	}
	for _, req := range []struct{ method, path string }{{"POST", "/transfers"}, {"GET", "/customers/"}, {"GET", "/admin/"}} {
		var form url.Values
		if req.method == "POST" {
			form = url.Values{"amount": {"1"}, "to": {"DE75512108001245126199"}, "csrf": {token[1]}}
		}
		resp, body = walk(demoDo(t, b, req.method, bank+req.path, form))
		if resp.StatusCode != http.StatusForbidden || steps != 1 {
			t.Errorf("bob %s %s: %d after %d step-ups, want 403 and no step-up\n%s", req.method, req.path, resp.StatusCode, steps, body)
		}
	}

	// 5. The public rates need nothing at all.
	anon := demoBrowser(ln.Addr().String())
	resp, body = demoDo(t, anon, "GET", bank+"/public/rates", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "EUR / USD") {
		t.Fatalf("public rates: %d\n%s", resp.StatusCode, body)
	}

	// 6. The bank's own port refuses whoever bypasses the gateway, with
	// or without made-up identity headers.
	direct := &http.Client{Timeout: 10 * time.Second}
	for _, h := range [][]string{nil, {"X-Stepgate-User", "alice"}, {"X-Stepgate-Assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."}} {
		resp, body := demoDo(t, direct, "GET", "http://"+bankAddr+"/", nil, h...)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "Current account") {
			t.Errorf("fail/direct %v: %d\n%s", h, resp.StatusCode, body)
		}
	}

	// 7. The README's curl lines: without a token, an API client is told
	// to sign in; a service token for the bank's API reads the accounts
	// and is challenged for c2 on a transfer.
	resp, _ = demoDo(t, anon, "GET", bank+"/", nil, "Accept", "application/json")
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) {
		t.Fatalf("API request without a token: %d %q", resp.StatusCode, ch)
	}
	resp, body = demoDo(t, anon, "POST", base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth(demo.BankApp, demo.BankClientSecret))
	tok := regexp.MustCompile(`"access_token":"([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || tok == nil {
		t.Fatalf("client_credentials token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := demoDo(t, anon, "GET", bank+"/", nil, "Authorization", "Bearer "+tok[1]); resp.StatusCode != http.StatusOK {
		t.Fatalf("API read with a service token: %d", resp.StatusCode)
	}
	// The same token, signed with the gateway's keys and naming the bank
	// client as audience, is no assertion: the bank's own port refuses it.
	resp, body = demoDo(t, direct, "POST", "http://"+bankAddr+"/transfers", url.Values{"amount": {"4242.00"}, "to": {"DE75512108001245126199"}}, "X-Stepgate-Assertion", tok[1])
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "Transfer done") {
		t.Fatalf("fail/access-token-as-assertion on the bank's own port: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = demoDo(t, anon, "POST", bank+"/transfers", url.Values{"amount": {"250"}, "to": {"DE75512108001245126199"}}, "Authorization", "Bearer "+tok[1])
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(ch, `error="insufficient_user_authentication"`) || !strings.Contains(ch, `acr_values="c2"`) {
		t.Fatalf("API transfer without c2: %d %q", resp.StatusCode, ch)
	}

	// 8. "stepgate user totp-code alice --demo" prints the code alice's
	// app shows now (or, across a step boundary, a moment ago).
	before := demoCode(t, secret, time.Now())
	r := stepgate(t, "", "user", "totp-code", "alice", "--demo").mustSucceed(t)
	code := strings.TrimSpace(r.stdout)
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) || (code != before && code != demoCode(t, secret, time.Now())) {
		t.Fatalf("user totp-code alice --demo printed %q, want alice's current code", r.stdout)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

var demoPassRe = regexp.MustCompile(`admin's temporary access pass: ([a-z0-9]{4}(?:-[a-z0-9]{4}){4})`)

// demoRegistration performs, on the fresh demo, the attacks of a thief
// who has a demo password and nothing else: alice's authenticator app
// must come first, admin cannot script a passkey in, bob cannot make
// recovery codes. Then admin does what the README says: the printed
// temporary access pass opens the passkey registration.
func demoRegistration(t *testing.T, addr, base, welcome string) {
	t.Helper()
	signIn := func(user string) *http.Client {
		t.Helper()
		c := demoBrowser(addr)
		_, page := demoDo(t, c, "GET", base+"/login", nil)
		csrf := demoCSRFRe.FindStringSubmatch(page)
		if csrf == nil {
			t.Fatalf("the sign-in page has no form:\n%s", page)
		}
		resp, _ := demoDo(t, c, "POST", base+"/login", url.Values{"csrf_token": {csrf[1]}, "username": {user}, "password": {user + "-demo-password"}, "return_to": {"/account"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s signs in: %d", user, resp.StatusCode)
		}
		return c
	}
	starts := func(c *http.Client, method string) (bool, *http.Response) {
		t.Helper()
		resp, body := demoDo(t, c, "GET", base+"/account/security/add?method="+method, nil)
		return resp.StatusCode == http.StatusOK && (demoCerRe.MatchString(body) || strings.Contains(body, `id="webauthn-start"`)), resp
	}
	alice := signIn("alice")
	if ok, resp := starts(alice, "totp"); ok || resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/stepup") {
		t.Errorf("attack/alice-adds-totp: started=%v %d %s, want a step-up with her app", ok, resp.StatusCode, resp.Header.Get("Location"))
	}
	admin, bob := signIn("admin"), signIn("bob")
	for _, tc := range []struct {
		c            *http.Client
		user, method string
	}{{admin, "admin", "webauthn"}, {admin, "admin", "totp"}, {bob, "bob", "recovery-code"}, {bob, "bob", "totp"}} {
		if ok, resp := starts(tc.c, tc.method); ok || resp.StatusCode != http.StatusForbidden {
			t.Errorf("attack/%s-adds-%s: started=%v %d, want 403", tc.user, tc.method, ok, resp.StatusCode)
		}
	}
	pass := demoPassRe.FindStringSubmatch(welcome)
	if pass == nil {
		t.Fatalf("the welcome text shows no pass for admin:\n%s", welcome)
	}
	_, page := demoDo(t, admin, "GET", base+"/account/security", nil)
	csrf := demoCSRFRe.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("the security page has no form:\n%s", page)
	}
	resp, _ := demoDo(t, admin, "POST", base+"/account/security/tap", url.Values{"csrf_token": {csrf[1]}, "pass": {pass[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin enters the printed pass: %d", resp.StatusCode)
	}
	if ok, resp := starts(admin, "webauthn"); !ok {
		t.Fatalf("ok/admin-pass: the passkey registration did not start: %d", resp.StatusCode)
	}
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user)+":"+url.QueryEscape(password)))
}

// TestDemoRefusesWhatItCannotHonour: a configuration file and a
// non-loopback address are usage errors; --demo without a demo says how
// to start one.
func TestDemoRefusesWhatItCannotHonour(t *testing.T) {
	stepgate(t, "", "demo", "--config", "stepgate.yaml").mustFail(t, 2, "builds its own configuration")
	stepgate(t, "", "demo", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir()).mustFail(t, 2, "not a loopback address")
	t.Chdir(t.TempDir())
	stepgate(t, "", "user", "totp-code", "alice", "--demo").mustFail(t, 1, "start one here with: "+currentInvocation().command()+" demo")
	stepgate(t, "", "user", "totp-code", "alice", "--demo", "--data-dir", "x").mustFail(t, 2, "give one or the other")
}

var bankSignOutRe = regexp.MustCompile(`<a id="sign-out" href="([^"]+)">Sign out</a>`)

// demoSignOut follows the bank's sign-out link as browser b and checks
// that it ends the session: within the gateway's identity cache (2s) the
// bank's pages ask for a sign-in again.
func demoSignOut(t *testing.T, b *http.Client, base, bank string) {
	t.Helper()
	_, page := demoDo(t, b, "GET", bank+"/", nil)
	link := bankSignOutRe.FindStringSubmatch(page)
	if link == nil || link[1] != base+"/logout" {
		t.Fatalf("the bank page has no sign-out link to %s/logout:\n%s", base, page)
	}
	resp, confirm := demoDo(t, b, "GET", link[1], nil)
	csrf := demoCSRFRe.FindStringSubmatch(confirm)
	if resp.StatusCode != http.StatusOK || csrf == nil || !strings.Contains(confirm, "Sign out") {
		t.Fatalf("the sign-out link: %d\n%s", resp.StatusCode, confirm)
	}
	resp, _ = demoDo(t, b, "POST", base+"/logout", url.Values{"csrf_token": {csrf[1]}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("signing out: %d to %q, want the sign-in page", resp.StatusCode, loc)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, _ := demoDo(t, b, "GET", bank+"/", nil)
		if resp.StatusCode == http.StatusSeeOther {
			return
		}
		if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("the bank after signing out: %d, want a redirect to sign in", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startTestDemo runs "stepgate demo" as the command does, in a temporary
// working directory (--demo commands read it) on a random loopback port,
// until the test ends; it returns the listener and the demo's output
// once the welcome text is written.
func startTestDemo(t *testing.T, opts ...func(*demoRun)) (net.Listener, *lockedBuffer) {
	t.Helper()
	t.Chdir(t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out, logs := &lockedBuffer{}, &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	run := demoRun{ln: ln, dataDir: demo.DefaultDataDir, defaultDir: true, out: out, logOut: logs}
	for _, o := range opts {
		o(&run)
	}
	go func() { done <- runDemo(ctx, run) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the demo did not shut down cleanly: %v\n%s", err, logs.String())
		}
	})
	// Starting and filling a PostgreSQL takes longer than the rest on a
	// loaded machine.
	patience := 20 * time.Second
	if run.postgres != "" {
		patience = 2 * time.Minute
	}
	deadline := time.Now().Add(patience)
	for !strings.Contains(out.String(), "Data:") {
		select {
		case err := <-done:
			done <- err // for the clean-up
			t.Fatalf("the demo stopped before its welcome text: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the demo's welcome text:\n%s", out.String())
		}
	}
	return ln, out
}
