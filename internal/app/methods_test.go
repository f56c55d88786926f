package app_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

var (
	ceremonyRe = regexp.MustCompile(`name="ceremony" value="([^"]+)"`)
	secretRe   = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
	codesRe    = regexp.MustCompile(`<li><code>([a-z0-9-]{19})</code></li>`)
)

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// formOf reads the CSRF token and ceremony id of a page.
func formOf(t *testing.T, body string) (csrf, ceremony string) {
	t.Helper()
	m, c := csrfRe.FindStringSubmatch(body), ceremonyRe.FindStringSubmatch(body)
	if m == nil || c == nil {
		t.Fatalf("the page has no CSRF token or ceremony:\n%s", body)
	}
	return m[1], c[1]
}

// enrollTOTP registers an authenticator app through the security pages
// and returns its secret.
func (s *oidcServer) enrollTOTP(t *testing.T, b *http.Client) string {
	t.Helper()
	resp, body := get(t, b, s.base+"/account/security/add?method=totp")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("add totp: %d\n%s", resp.StatusCode, body)
	}
	sec := secretRe.FindStringSubmatch(body)
	if sec == nil || !strings.Contains(body, "data:image/png;base64,") {
		t.Fatalf("the enrollment page shows no secret or QR code:\n%s", body)
	}
	csrf, cer := formOf(t, body)
	resp, _ = post(t, b, s.base+"/account/security/add", url.Values{
		"csrf_token": {csrf}, "ceremony": {cer}, "name": {"My phone"}, "code": {totpCode(t, sec[1], time.Now())},
	})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/account/security?added" {
		t.Fatalf("finishing enrollment: %d %s", resp.StatusCode, loc)
	}
	return sec[1]
}

// TestTOTPStepUpThroughOIDC enrolls an authenticator app on the security
// page and uses it to step up to the MFA context c2, which a password
// alone cannot reach.
func TestTOTPStepUpThroughOIDC(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	s.signIn(t, b, "/account")
	secret := s.enrollTOTP(t, b)

	// The seed is not in the database in plaintext.
	raw, err := os.ReadFile(filepath.Join(s.app.Config.Server.DataDir, "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(filepath.Join(s.app.Config.Server.DataDir, "stepgate.db-wal"))
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(wal, []byte(secret)) {
		t.Fatal("the TOTP seed is stored in plaintext")
	}

	_, challenge := pkce()
	start := s.authorizeURL(url.Values{"acr_values": {"c2"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	resp, _ := get(t, b, start)
	loc, _ := resp.Location()
	if loc == nil || loc.Path != "/stepup" || loc.Query().Get("methods") != "totp" {
		t.Fatalf("c2 for a user with an authenticator app: redirect %v, want /stepup?methods=totp", loc)
	}
	resp, body := get(t, b, s.base+loc.RequestURI())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="code"`) {
		t.Fatalf("step-up page: %d\n%s", resp.StatusCode, body)
	}
	csrf, cer := formOf(t, body)

	// A wrong code is refused and the page asks again.
	resp, _ = post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "code": {"000000"}, "return_to": {loc.Query().Get("return_to")}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong code: status %d, want 401", resp.StatusCode)
	}
	// The enrollment code's time step is spent; the next step's code works.
	code := totpCode(t, secret, time.Now().Add(30*time.Second))
	resp, _ = post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "code": {code}, "return_to": {loc.Query().Get("return_to")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right code: status %d", resp.StatusCode)
	}
	cb := s.follow(t, b, s.base+resp.Header.Get("Location"))
	if cb.Query().Get("code") == "" {
		t.Fatalf("no code after the step-up: %s", cb)
	}

	// Replaying the same code in a new step-up is refused.
	_, body = get(t, b, s.base+"/stepup?method=totp&return_to=/account")
	csrf, cer = formOf(t, body)
	resp, _ = post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer}, "code": {code}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed code: status %d, want 401", resp.StatusCode)
	}

	// The sign-in log tells the three step-up attempts apart.
	if err := s.app.SignIns.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.app.Store.ListSignIns(context.Background(), store.SignInQuery{UserID: s.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	var stepUps []string
	for i := len(rows) - 1; i >= 0; i-- {
		if e, _ := audit.Decode(rows[i]); e.Source == "step-up" {
			stepUps = append(stepUps, e.Decision+":"+string(e.Reason)+":"+strings.Join(e.MethodsPrompted, ","))
		}
	}
	if want := []string{"failure:invalid-proof:totp", "success::totp", "failure:replayed:totp"}; !slices.Equal(stepUps, want) {
		t.Fatalf("step-ups in the sign-in log: %v, want %v", stepUps, want)
	}
}

// TestRecoveryCodesAndRemoval makes recovery codes after a fresh proof
// with an authenticator app, uses one to open a registration (never as
// a step-up), refuses its reuse, and refuses removing a method without a
// fresh proof by another method.
func TestRecoveryCodesAndRemoval(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	s.signIn(t, b, "/account")
	secret := s.enrollTOTP(t, b)
	stepUp := func(offset time.Duration) {
		t.Helper()
		_, body := get(t, b, s.base+"/stepup?method=totp&return_to=/account/security")
		csrf, cer := formOf(t, body)
		resp, _ := post(t, b, s.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
			"code": {totpCode(t, secret, time.Now().Add(offset))}, "return_to": {"/account/security"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("TOTP step-up: %d", resp.StatusCode)
		}
	}
	stepUp(30 * time.Second)
	_, body := get(t, b, s.base+"/account/security/add?method=recovery-code")
	codes := codesRe.FindAllStringSubmatch(body, -1)
	if len(codes) != 10 {
		t.Fatalf("the page shows %d recovery codes, want 10:\n%s", len(codes), body)
	}
	csrf, cer := formOf(t, body)
	resp, _ := post(t, b, s.base+"/account/security/add", url.Values{"csrf_token": {csrf}, "ceremony": {cer}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirming the codes: %d", resp.StatusCode)
	}
	// No code is in the database file in any form a user would type.
	raw, _ := os.ReadFile(filepath.Join(s.app.Config.Server.DataDir, "stepgate.db"))
	wal, _ := os.ReadFile(filepath.Join(s.app.Config.Server.DataDir, "stepgate.db-wal"))
	for _, c := range codes {
		for _, form := range []string{c[1], strings.ReplaceAll(c[1], "-", "")} {
			if bytes.Contains(raw, []byte(form)) || bytes.Contains(wal, []byte(form)) {
				t.Fatalf("recovery code %s is stored in plaintext", c[1])
			}
		}
	}
	// The step-up page takes no recovery code: codes prove nothing.
	if _, body := get(t, b, s.base+"/stepup?method=recovery-code&return_to=/account"); strings.Contains(body, `name="ceremony"`) {
		t.Fatal("attack/recovery-step-up: the step-up page started a recovery-code ceremony")
	}
	use := func(code string) int {
		resp, _ := post(t, b, s.base+"/account/security/recover", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "code": {code}})
		return resp.StatusCode
	}
	if st := use(codes[0][1]); st != http.StatusSeeOther {
		t.Fatalf("a fresh recovery code: status %d", st)
	}
	if st := use(codes[0][1]); st != http.StatusUnauthorized {
		t.Fatalf("a used recovery code: status %d, want 401", st)
	}
	_, body = get(t, b, s.base+"/account/security")
	if !strings.Contains(body, "9 of 10 codes left") {
		t.Errorf("the security page does not show the remaining codes:\n%s", body)
	}

	// Age every proof of the session past the freshness window: removal
	// must now ask for a new proof first.
	ctx := context.Background()
	shift := func(d time.Duration) {
		t.Helper()
		sessions, _ := s.app.Store.ListUserSessions(ctx, s.user.ID)
		for _, sess := range sessions {
			_, err := s.app.Store.UpdateSession(ctx, sess.ID, func(cur store.Session) (store.Session, error) {
				for i := range cur.Events {
					if cur.Events[i].Method == "totp" {
						cur.Events[i].Time = cur.Events[i].Time.Add(d)
					}
				}
				return cur, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	shift(-time.Hour)
	creds, _ := s.app.Store.ListCredentials(ctx, s.user.ID)
	i := slices.IndexFunc(creds, func(c store.Credential) bool { return c.Type == "recovery-code" })
	codesID := creds[i].ID
	csrf = csrfToken(t, b, s.base)
	resp, body = post(t, b, s.base+"/account/security/remove", url.Values{"csrf_token": {csrf}, "id": {codesID}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "fresh proof") {
		t.Fatalf("removal with a stale session: %d, want 403 asking for a fresh proof", resp.StatusCode)
	}
	if after, _ := s.app.Store.ListCredentials(ctx, s.user.ID); len(after) != 2 {
		t.Fatal("the method was removed without a fresh proof")
	}
	// A fresh password is no proof for it either.
	s.stepUp(t, b, "/account/security", testPassword)
	if resp, _ := post(t, b, s.base+"/account/security/remove", url.Values{"csrf_token": {csrf}, "id": {codesID}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("attack/password-removal: %d, want 403", resp.StatusCode)
	}
	// Someone else's credential id is not removable either.
	resp, _ = post(t, b, s.base+"/account/security/remove", url.Values{"csrf_token": {csrf}, "id": {"not-mine"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("removing an unknown credential: %d, want 404", resp.StatusCode)
	}
	// With the app's proof fresh again, the removal goes through.
	shift(time.Hour)
	resp, _ = post(t, b, s.base+"/account/security/remove", url.Values{"csrf_token": {csrf}, "id": {codesID}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("removal after a fresh step-up: %d", resp.StatusCode)
	}
	if after, _ := s.app.Store.ListCredentials(ctx, s.user.ID); slices.ContainsFunc(after, func(c store.Credential) bool { return c.ID == codesID }) {
		t.Fatal("the method was not removed")
	}
	// Both changes are in the audit trail, whose chain verifies.
	entries, err := s.app.Audit.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+" by "+e.Actor)
	}
	for _, want := range []string{"user.method-add.recovery-code by user:alice", "user.method-remove.recovery-code by user:alice", "user.registration-unlock.recovery-code by user:alice"} {
		if !slices.Contains(actions, want) {
			t.Errorf("the audit trail %v lacks %q", actions, want)
		}
	}
	if _, err := s.app.Audit.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSignInBruteForceIsThrottled: after five wrong passwords for one
// account, even the right password is refused for a while, so guessing
// gets no further; other accounts are unaffected.
func TestSignInBruteForceIsThrottled(t *testing.T) {
	s := startOIDC(t, nil)
	b := browser(t)
	try := func(user, pw string) int {
		resp, _ := post(t, b, s.base+"/login", url.Values{"csrf_token": {csrfToken(t, b, s.base)}, "username": {user}, "password": {pw}, "return_to": {"/account"}})
		return resp.StatusCode
	}
	for i := range 5 {
		if st := try(testUser, "wrong guess"); st != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i+1, st)
		}
	}
	if st := try(testUser, "wrong guess"); st != http.StatusUnauthorized {
		t.Fatalf("sixth guess: status %d, want 401", st)
	}
	if st := try(testUser, testPassword); st != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: status %d, want 429", st)
	}
	if _, err := s.app.Users.Add(context.Background(), users.NewUser{Username: "bob", Email: "bob@example.com", Password: "another good passphrase"}); err != nil {
		t.Fatal(err)
	}
	if st := try("bob", "another good passphrase"); st != http.StatusSeeOther {
		t.Fatalf("another account from the same address: status %d, want 303", st)
	}
}
