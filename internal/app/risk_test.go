package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/geoip/geoiptest"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
)

// Two places 50 km apart across a border: travel between them is never
// impossible, but the second is a new country for someone from the first.
const (
	basel    = "203.0.113.7"  // CH
	freiburg = "198.51.100.7" // DE
)

// TestRiskNewCountryIsRemediatedByMFA: after the learning period, a
// sign-in from a new country is medium risk, which the "MFA on medium
// sign-in risk" policy answers with a step-up; completing TOTP remediates
// it, and the next sign-in from the same place is not challenged.
func TestRiskNewCountryIsRemediatedByMFA(t *testing.T) {
	db := geoiptest.CityDB(t, map[string]geoiptest.City{
		"203.0.113.0/24":  {Country: "CH", Latitude: 47.56, Longitude: 7.59},
		"198.51.100.0/24": {Country: "DE", Latitude: 47.99, Longitude: 7.85},
	})
	s := startOIDC(t, func(cfg *config.Config) {
		cfg.Server.TrustedProxies = []string{"127.0.0.1/32"} // tests speak for the client's address
		cfg.GeoIP.Database = db
		cfg.Risk.LearningSignIns = 2
	})
	s.usePolicies(t, `
policies:
  - name: mfa-on-medium-sign-in-risk
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {sign_in_risk: [medium, high]}
    grant: {controls: [mfa]}
`)
	secret, _, err := s.app.Methods.TOTP.EnrollNow(context.Background(), s.user, "phone")
	if err != nil {
		t.Fatal(err)
	}

	// signInFrom starts a new browser session from ip and runs an
	// authorization; it reports whether a step-up was asked for.
	step := 0
	signInFrom := func(ip string) (stepped bool) {
		t.Helper()
		b := browser(t)
		resp, _ := post(t, b, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "username": {testUser},
			"password": {testPassword}, "return_to": {"/account"}}, "X-Forwarded-For", ip)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in from %s: %d", ip, resp.StatusCode)
		}
		_, challenge := pkce()
		u := s.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
		for range 6 {
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("X-Forwarded-For", ip)
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := resp.Location()
			switch {
			case loc == nil:
				t.Fatalf("authorize from %s stopped with %d", ip, resp.StatusCode)
			case loc.Query().Get("code") != "":
				return stepped
			case loc.Query().Get("error") != "":
				t.Fatalf("authorize from %s: %s", ip, loc.Query().Get("error_description"))
			case loc.Path == "/stepup":
				stepped = true
				step++
				_, page := get(t, b, s.base+loc.RequestURI())
				csrf, cer := formOf(t, page)
				r, _ := post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
					"code": {totpCode(t, secret, time.Now().Add(time.Duration(step)*30*time.Second))}, "return_to": {loc.Query().Get("return_to")}},
					"X-Forwarded-For", ip)
				l, _ := r.Location()
				if l == nil {
					t.Fatalf("the step-up from %s was refused: %d", ip, r.StatusCode)
				}
				u = s.base + l.RequestURI()
			default:
				u = s.base + loc.RequestURI()
			}
		}
		t.Fatalf("authorize from %s did not finish", ip)
		return false
	}

	for i := range 3 {
		if signInFrom(basel) {
			t.Fatalf("home sign-in %d was challenged", i+1)
		}
	}
	if !signInFrom(freiburg) {
		t.Fatal("a sign-in from a new country after the learning period was not challenged")
	}
	assertNewCountryLogged(t, s.app, s.user.ID)
	if signInFrom(freiburg) {
		t.Fatal("after remediation, the next sign-in from the same place was challenged again")
	}
}

// TestPasswordSprayIsThrottledAndDetected: one address tries 200
// accounts with 2 wrong passwords each. The address is throttled long
// before it finishes, and a sign-in from its network afterwards carries
// high sign-in risk (password spray); ordinary users elsewhere are not
// affected.
func TestPasswordSprayIsThrottledAndDetected(t *testing.T) {
	s := startOIDC(t, func(cfg *config.Config) {
		cfg.Server.TrustedProxies = []string{"127.0.0.1/32"}
	})
	b := browser(t)
	attempt := func(user, pw, ip string) int {
		resp, _ := post(t, b, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "username": {user},
			"password": {pw}, "return_to": {"/account"}}, "X-Forwarded-For", ip)
		return resp.StatusCode
	}
	throttled, firstThrottled := 0, 0
	for i := range 200 {
		for j := range 2 {
			if attempt(fmt.Sprintf("user%03d", i), fmt.Sprintf("Winter2026!%d", j), "192.0.2.50") == http.StatusTooManyRequests {
				throttled++
				if firstThrottled == 0 {
					firstThrottled = 2*i + j + 1
				}
			}
		}
	}
	t.Logf("password spray: %d of 400 attempts throttled, the first at attempt %d", throttled, firstThrottled)
	// 100 failures are free for an address (many people share one behind
	// a NAT); the 101st locks it, so the 102nd attempt is refused.
	if throttled < 250 || firstThrottled > 102 {
		t.Fatalf("the spraying address was throttled %d times from attempt %d; want it stopped by attempt 102", throttled, firstThrottled)
	}
	// Another address of the same network signs in with a right
	// password: the sign-in is flagged as spray.
	if st := attempt(testUser, testPassword, "192.0.2.51"); st != http.StatusSeeOther {
		t.Fatalf("sign-in from the spraying network: %d", st)
	}
	sessions, _ := s.app.Store.ListUserSessions(context.Background(), s.user.ID)
	if len(sessions) == 0 || sessions[len(sessions)-1].Events[0].Risk != "high" {
		t.Fatalf("the sign-in from the spraying network carries risk %+v, want high", sessions)
	}
	assertSprayLogged(t, s.app, 400)
	// Ordinary sign-ins from other networks: no throttling, no risk.
	for i := range 5 {
		if st := attempt(testUser, testPassword, fmt.Sprintf("198.18.%d.10", i)); st != http.StatusSeeOther {
			t.Fatalf("a benign sign-in was refused: %d", st)
		}
	}
}

// TestGatewayReevaluatesLocation: the gateway decides on every request
// from where it comes now, so a session that moves into a blocked
// location is refused on its next request.
func TestGatewayReevaluatesLocation(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) { cfg.Server.TrustedProxies = []string{"127.0.0.1/32"} })
	g.usePolicies(t, `
named_locations:
  - name: blocked-net
    ip_ranges: [203.0.113.0/24]
policies:
  - name: block-blocked-net
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {locations: {include: [blocked-net]}}
    grant: block
`)
	b := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("from loopback: %d", resp.StatusCode)
	}
	// The same session, now from the blocked network.
	resp := mustDo(t, b, "GET", g.app+"/accounts", "", "X-Forwarded-For", "203.0.113.9")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the same session from a blocked location: %d, want 403", resp.StatusCode)
	}
	// And back: allowed again.
	resp = mustDo(t, b, "GET", g.app+"/accounts", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("back from loopback: %d", resp.StatusCode)
	}
}

// TestIPListsFlagAndReload: a sign-in from a listed network is high
// risk; when the list file changes, the new list applies without a
// restart.
func TestIPListsFlagAndReload(t *testing.T) {
	list := filepath.Join(t.TempDir(), "tor.txt")
	if err := os.WriteFile(list, []byte("# exits\n192.0.2.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startOIDC(t, func(cfg *config.Config) {
		cfg.Server.TrustedProxies = []string{"127.0.0.1/32"}
		cfg.Risk.IPLists = []config.RiskIPList{{Name: "tor", File: list, Level: "high"}}
	})
	signInRisk := func(ip string) string {
		t.Helper()
		b := browser(t)
		resp, _ := post(t, b, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "username": {testUser},
			"password": {testPassword}, "return_to": {"/account"}}, "X-Forwarded-For", ip)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in from %s: %d", ip, resp.StatusCode)
		}
		sessions, _ := s.app.Store.ListUserSessions(context.Background(), s.user.ID)
		return sessions[len(sessions)-1].Events[0].Risk
	}
	if got := signInRisk("192.0.2.9"); got != "high" {
		t.Fatalf("a sign-in from a listed network has risk %q, want high", got)
	}
	// The feed is refreshed in place: 192.0.2.0/24 leaves, 198.51.100.0/24 joins.
	if err := os.WriteFile(list, []byte("198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.app.Risk.ReloadChangedLists(ctx); err != nil {
		t.Fatal(err)
	}
	if got := signInRisk("198.51.100.9"); got != "high" {
		t.Fatalf("after the list changed, a sign-in from the new network has risk %q, want high", got)
	}
}

// TestSecurePasswordChangeRemediatesUserRisk: a password change right
// after a second factor clears the user's risk; one after a password
// alone does not; either way every session ends.
func TestSecurePasswordChangeRemediatesUserRisk(t *testing.T) {
	s := startOIDC(t, nil)
	ctx := context.Background()
	raise := func() {
		s.app.Risk.Raise(ctx, s.user.ID, risk.Detection{Type: "test", Level: risk.Medium, Reason: "test"})
		if got := s.app.Risk.UserRisk(ctx, s.user.ID); got != "medium" {
			t.Fatalf("user risk = %q, want medium", got)
		}
	}
	change := func(b *http.Client, pw string) {
		t.Helper()
		_, page := get(t, b, s.base+"/account/password")
		m := csrfRe.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no password form:\n%s", page)
		}
		resp, body := post(t, b, s.base+"/account/password", url.Values{"csrf_token": {m[1]}, "new_password": {pw}, "confirm_password": {pw}})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?password_changed") {
			t.Fatalf("password change: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if resp, _ := get(t, b, s.base+"/account"); resp.StatusCode != http.StatusSeeOther {
			t.Fatal("the session survived the password change")
		}
	}

	// After a password sign-in only: the password changes, the risk stays.
	raise()
	b := browser(t)
	s.signIn(t, b, "/account")
	change(b, "second good passphrase")
	if got := s.app.Risk.UserRisk(ctx, s.user.ID); got != "medium" {
		t.Fatalf("after a change without a second factor the risk is %q, want it kept", got)
	}

	// After a TOTP step-up: the risk is remediated.
	secret, _, err := s.app.Methods.TOTP.EnrollNow(ctx, s.user, "phone")
	if err != nil {
		t.Fatal(err)
	}
	b = browser(t)
	s.signInAs(t, b, "second good passphrase")
	_, page := get(t, b, s.base+"/stepup?method=totp&return_to=/account/password")
	csrf, cer := formOf(t, page)
	if resp, _ := post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
		"code": {totpCode(t, secret, time.Now())}, "return_to": {"/account/password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("TOTP step-up: %d", resp.StatusCode)
	}
	change(b, "third good passphrase")
	if got := s.app.Risk.UserRisk(ctx, s.user.ID); got != "" {
		t.Fatalf("after a secure change the risk is %q, want none", got)
	}
}

// TestRiskyUserChangesPasswordThroughOIDC: a policy asks a high-risk user
// for MFA and a password change. The sign-in flow steps up with TOTP,
// sends the user to change the password, has them sign in again with
// the new one, and then completes: the secure change remediated the risk.
func TestRiskyUserChangesPasswordThroughOIDC(t *testing.T) {
	s := startOIDC(t, nil)
	ctx := context.Background()
	s.usePolicies(t, `
policies:
  - name: risky-users-change-password
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    conditions: {user_risk: [high]}
    grant: {operator: all-of, controls: [mfa, password-change]}
`)
	secret, _, err := s.app.Methods.TOTP.EnrollNow(ctx, s.user, "phone")
	if err != nil {
		t.Fatal(err)
	}
	s.app.Risk.Raise(ctx, s.user.ID, risk.Detection{Type: "leaked-credentials", Level: risk.High, Reason: "leaked-password"})

	b := browser(t)
	_, challenge := pkce()
	u := s.authorizeURL(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	password, changed := testPassword, false
	for range 12 {
		resp, _ := get(t, b, u)
		loc, _ := resp.Location()
		if loc == nil {
			t.Fatalf("the flow stopped at %s with %d", u, resp.StatusCode)
		}
		switch {
		case loc.Query().Get("code") != "":
			if !changed {
				t.Fatal("a code was issued to a high-risk user without a password change")
			}
			if got := s.app.Risk.UserRisk(ctx, s.user.ID); got != "" {
				t.Fatalf("user risk after the flow = %q, want remediated", got)
			}
			return
		case loc.Query().Get("error") != "":
			t.Fatalf("the flow ended with %s: %s", loc.Query().Get("error"), loc.Query().Get("error_description"))
		case loc.Path == "/login":
			resp, _ := post(t, b, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "username": {testUser},
				"password": {password}, "return_to": {loc.Query().Get("return_to")}})
			l, _ := resp.Location()
			u = s.base + l.RequestURI()
		case loc.Path == "/stepup":
			_, page := get(t, b, s.base+loc.RequestURI()+"&method=totp")
			csrf, cer := formOf(t, page)
			resp, _ := post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
				"code": {totpCode(t, secret, time.Now())}, "return_to": {loc.Query().Get("return_to")}})
			l, _ := resp.Location()
			u = s.base + l.RequestURI()
		case loc.Path == "/account/password":
			_, page := get(t, b, s.base+loc.RequestURI())
			m := csrfRe.FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no password form:\n%s", page)
			}
			password, changed = "a fresh start passphrase", true
			resp, _ := post(t, b, s.base+"/account/password", url.Values{"csrf_token": {m[1]}, "new_password": {password},
				"confirm_password": {password}, "return_to": {loc.Query().Get("return_to")}})
			l, _ := resp.Location()
			if l == nil || l.Path != "/login" {
				t.Fatalf("after the password change: %d %v, want the sign-in page", resp.StatusCode, l)
			}
			// Every session ended: sign in again, with the new password.
			resp, _ = post(t, b, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "username": {testUser},
				"password": {password}, "return_to": {l.Query().Get("return_to")}})
			l, _ = resp.Location()
			u = s.base + l.RequestURI()
		default:
			u = s.base + loc.RequestURI()
		}
	}
	t.Fatal("the flow did not finish")
}

// TestRiskyUserChangesPasswordThroughGateway: the same policy at the
// gateway — MFA, then a password change, then the page.
func TestRiskyUserChangesPasswordThroughGateway(t *testing.T) {
	g := startGateway(t)
	ctx := context.Background()
	g.usePolicies(t, `
policies:
  - name: risky-users-change-password
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {user_risk: [high]}
    grant: {operator: all-of, controls: [mfa, password-change]}
`)
	secret, _, err := g.server.app.Methods.TOTP.EnrollNow(ctx, g.user, "phone")
	if err != nil {
		t.Fatal(err)
	}
	g.server.app.Risk.Raise(ctx, g.user.ID, risk.Detection{Type: "leaked-credentials", Level: risk.High, Reason: "leaked-password"})

	b := gatewayBrowser(t, g.server)
	password, changed := testPassword, false
	next := g.app + "/accounts"
	for range 16 {
		if strings.HasPrefix(next, g.base+"/login") {
			u, _ := url.Parse(next)
			r, _ := post(t, b, g.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, g.base)}, "username": {testUser},
				"password": {password}, "return_to": {u.Query().Get("return_to")}})
			l, _ := r.Location()
			next = g.base + l.RequestURI()
			continue
		}
		resp := mustDo(t, b, "GET", next, "")
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(next, g.app) {
			if !changed || g.upstream.count("GET", "/accounts") != 1 {
				t.Fatalf("reached the page: changed %v, upstream saw %d", changed, g.upstream.count("GET", "/accounts"))
			}
			return
		}
		loc, _ := resp.Location()
		if loc == nil {
			t.Fatalf("%s: %d", next, resp.StatusCode)
		}
		switch {
		case strings.HasPrefix(loc.String(), g.base+"/login"):
			r, _ := post(t, b, g.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, g.base)}, "username": {testUser},
				"password": {password}, "return_to": {loc.Query().Get("return_to")}})
			l, _ := r.Location()
			next = g.base + l.RequestURI()
		case strings.HasPrefix(loc.String(), g.base+"/stepup"):
			_, page := get(t, b, loc.String()+"&method=totp")
			csrf, cer := formOf(t, page)
			r, _ := post(t, b, g.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
				"code": {totpCode(t, secret, time.Now())}, "return_to": {loc.Query().Get("return_to")}})
			l, _ := r.Location()
			next = g.base + l.RequestURI()
		case strings.HasPrefix(loc.String(), g.base+"/account/password"):
			_, page := get(t, b, loc.String())
			m := csrfRe.FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no password form:\n%s", page)
			}
			password, changed = "a fresh start passphrase", true
			r, _ := post(t, b, g.base+"/account/password", url.Values{"csrf_token": {m[1]}, "new_password": {password},
				"confirm_password": {password}, "return_to": {loc.Query().Get("return_to")}})
			l, _ := r.Location()
			next = g.base + l.RequestURI()
		default:
			next = loc.String()
			if !strings.HasPrefix(next, "http") {
				next = g.base + next
			}
		}
	}
	t.Fatal("the gateway flow did not finish")
}

// assertSprayLogged checks the sign-in log after the spray: every one of
// the attempts is there as a failure or a throttled attempt, and the
// sign-in from the spraying network shows the spray detection with its
// evidence.
func assertSprayLogged(t *testing.T, a *app.App, attempts int) {
	t.Helper()
	ctx := context.Background()
	if err := a.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, decision := range []string{"failure", "throttled"} {
		rows, err := a.Store.ListSignIns(ctx, store.SignInQuery{Decision: decision})
		if err != nil {
			t.Fatal(err)
		}
		refused += len(rows)
	}
	if refused != attempts {
		t.Fatalf("the sign-in log holds %d refused attempts, want all %d", refused, attempts)
	}
	rows, err := a.Store.ListSignIns(ctx, store.SignInQuery{Decision: "success", Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatalf("no successful sign-in logged: %v", err)
	}
	e, err := audit.Decode(rows[0])
	if err != nil {
		t.Fatal(err)
	}
	if e.IP != "192.0.2.51" || e.RiskLevel != "high" || len(e.Risk) == 0 {
		t.Fatalf("the sign-in from the spraying network is logged as %+v", e)
	}
	d := e.Risk[0]
	if d.Type != risk.TypeSpray || d.Reason != risk.ReasonPasswordSpray || len(d.Evidence) == 0 {
		t.Fatalf("the spray detection is logged without its evidence: %+v", d)
	}
	t.Logf("logged spray detection: %s %s %v", d.Type, d.Level, d.Evidence)
}

// assertNewCountryLogged checks the sign-in log after the sign-in from a
// new country: the sign-in shows the detection with its evidence, and
// the authorization shows the challenge and the policy that asked for
// it, then the step-up, then the authorization it allowed.
func assertNewCountryLogged(t *testing.T, a *app.App, userID string) {
	t.Helper()
	ctx := context.Background()
	if err := a.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := a.Store.ListSignIns(ctx, store.SignInQuery{UserID: userID, Limit: 4})
	if err != nil || len(rows) != 4 {
		t.Fatalf("the last sign-in and its authorization: %d rows, %v", len(rows), err)
	}
	var got []audit.SignIn
	for i := len(rows) - 1; i >= 0; i-- { // oldest first
		e, err := audit.Decode(rows[i])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	signIn, challenge, stepUp, allow := got[0], got[1], got[2], got[3]
	if signIn.Source != "sign-in" || signIn.RiskLevel != "medium" || len(signIn.Risk) != 1 ||
		signIn.Risk[0].Reason != risk.ReasonUnfamiliarProperties || signIn.Risk[0].Evidence["properties"] == "" {
		t.Fatalf("the sign-in from a new country is logged as %+v", signIn)
	}
	if challenge.Source != "oidc" || challenge.Decision != "challenge" || challenge.Country != "DE" ||
		!slices.Contains(challenge.MethodsPrompted, "totp") || !appliedPolicy(challenge, "mfa-on-medium-sign-in-risk") {
		t.Fatalf("the challenge is logged as %+v", challenge)
	}
	if stepUp.Source != "step-up" || stepUp.Decision != "success" || !slices.Equal(stepUp.MethodsCompleted, []string{"totp"}) {
		t.Fatalf("the step-up is logged as %+v", stepUp)
	}
	if allow.Decision != "allow" || !slices.Contains(allow.MethodsCompleted, "otp") {
		t.Fatalf("the authorization after the step-up is logged as %+v", allow)
	}
	t.Logf("logged: %s %s %v; %s %s by %v; %s with %v", signIn.Decision, signIn.RiskLevel, signIn.Risk[0].Evidence,
		challenge.Decision, challenge.Reason, challenge.MethodsPrompted, allow.Decision, allow.MethodsCompleted)
}

func appliedPolicy(e audit.SignIn, name string) bool {
	for _, p := range e.Policies {
		if p.Policy == name && p.Result == policy.ResultApplied {
			return true
		}
	}
	return false
}
