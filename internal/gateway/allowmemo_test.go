package gateway

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policytest"
	"github.com/stepgate/stepgate/internal/store"
)

// memoPolicies block Android and ask for MFA from outside the office,
// so that the platform and the address each change the decision.
const memoPolicies = reaskPolicies + `  - name: block-android
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    conditions: {platforms: {include: [android]}}
    grant: block
`

const androidUA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"

// TestAllowMemo: a routine allow is reused only for a request the
// decision would be made on the same way. The attack: get an allow from
// a desktop, then send the next request from an Android device (a
// blocked platform) with the same cookie, and be let through on the
// first request's decision; or use the memo across a policy reload.
func TestAllowMemo(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	rig.g.Policies = fixedPolicies{policytest.Snapshot(t, memoPolicies)}
	rig.prove("password", 0)
	built := 0
	access := rig.g.Access
	rig.g.Access = func(r *http.Request, u store.User, s *store.Session, app string, now time.Time) *policy.Request {
		built++
		return access(r, u, s, app, now)
	}
	memo := &identityMemo{}
	plain := &rule{path: "/accounts", wildcard: true}
	decide := func(ru *rule, edit func(*http.Request)) verdict {
		r := httptest.NewRequest(http.MethodGet, "http://bank.example/accounts", nil)
		r.RemoteAddr = "203.0.113.7:40000"
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
		if edit != nil {
			edit(r)
		}
		s := rig.sess
		return rig.g.check(r, rig.route, ru, &identity{user: rig.user, sess: &s, memo: memo}, time.Time{})
	}

	if v := decide(plain, nil); !passed(v) || built != 1 {
		t.Fatalf("first request: %s, %d decisions", v.Outcome, built)
	}
	// Another connection of the same browser: the same decision.
	if v := decide(plain, func(r *http.Request) { r.RemoteAddr = "203.0.113.7:40001" }); !passed(v) || built != 1 {
		t.Fatalf("ok/same-client-another-connection: %s, %d decisions, want the memo", v.Outcome, built)
	}
	for _, tc := range []struct {
		name    string
		edit    func(*http.Request)
		blocked bool
	}{
		{"fail/another-platform", func(r *http.Request) { r.Header.Set("User-Agent", androidUA) }, true},
		{"ok/another-address", func(r *http.Request) { r.RemoteAddr = "198.51.100.7:40000" }, false},
		{"ok/another-forwarded-address", func(r *http.Request) { r.Header.Set("X-Forwarded-For", "198.51.100.7") }, false},
	} {
		before := built
		v := decide(plain, tc.edit)
		if built != before+1 || (v.Outcome == policy.OutcomeBlock) != tc.blocked {
			t.Errorf("%s: %s after %d new decisions, want a decision of its own (blocked %v)", tc.name, v.Outcome, built-before, tc.blocked)
		}
	}
	// A blocked request is never remembered: the Android request again
	// is decided again, and blocked again.
	before := built
	if v := decide(plain, func(r *http.Request) { r.Header.Set("User-Agent", androidUA) }); v.Outcome != policy.OutcomeBlock || built != before+1 {
		t.Errorf("fail/block-remembered: %s, %d decisions", v.Outcome, built-before)
	}
	// A policy reload is a new snapshot: decided again.
	decide(plain, nil)
	before = built
	rig.g.Policies = fixedPolicies{policytest.Snapshot(t, memoPolicies)}
	if decide(plain, nil); built != before+1 {
		t.Errorf("fail/memo-across-a-policy-reload: %d decisions, want 1", built-before)
	}
	// Another rule, or a sensitive one, is decided every time.
	other := &rule{path: "/cards", wildcard: true}
	transfer := &rule{path: "/transfers", context: "c2"}
	for _, ru := range []*rule{other, transfer, transfer} {
		before = built
		if decide(ru, nil); built != before+1 {
			t.Errorf("rule %s: %d decisions, want 1", ru.path, built-before)
		}
	}
}

// TestAllowMemoRace: requests from a desktop and an Android device race
// on one cached identity; none of the Android ones, which the policies
// block, is let through on a desktop's remembered allow. A write rule
// that asks for a context is never met by a read rule's allow.
func TestAllowMemoRace(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	rig.g.Policies = fixedPolicies{policytest.Snapshot(t, memoPolicies)}
	rig.prove("password", 0)
	s := rig.sess
	id := &identity{user: rig.user, sess: &s, memo: &identityMemo{}}
	request := func(method, ua string) *http.Request {
		r := httptest.NewRequest(method, "http://bank.example/accounts", nil)
		r.RemoteAddr = "203.0.113.7:40000"
		r.Header.Set("User-Agent", ua)
		return r
	}
	const desktop = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
	plain := &rule{path: "/accounts", wildcard: true}
	var wg sync.WaitGroup
	var allowed atomic.Int64
	for i := range 400 {
		wg.Go(func() {
			ua := desktop
			if i%2 == 1 {
				ua = androidUA
			}
			if v := rig.g.check(request(http.MethodGet, ua), rig.route, plain, id, time.Time{}); ua == androidUA && passed(v) {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n > 0 {
		t.Fatalf("fail/android-on-a-desktop-allow: %d Android requests let through", n)
	}
	get := &rule{path: "/accounts", wildcard: true, methods: []string{"GET", "HEAD"}}
	post := &rule{path: "/accounts", wildcard: true, methods: []string{"POST"}, context: "c2"}
	if v := rig.g.check(request(http.MethodGet, desktop), rig.route, get, id, time.Time{}); !passed(v) {
		t.Fatalf("ok/read: %s", v.Outcome)
	}
	if v := rig.g.check(request(http.MethodPost, desktop), rig.route, post, id, time.Time{}); passed(v) {
		t.Fatal("fail/write-on-a-read-allow: the c2 write rule passed on the read rule's allow")
	}
}

// TestBearerAllowMemo: an API client's routine allow is reused only for
// a request its token would be decided on the same way. The attack: get
// an allow with a token from a desktop client, then send the same token
// from an Android device (a blocked platform) and be let through on the
// first request's decision; or keep the allow past a dropped lookup (a
// reported detection, a revocation: Forget), a policy reload, or on a
// rule that asks for a context, whose every request is decided.
func TestBearerAllowMemo(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	rig.g.Policies = fixedPolicies{policytest.Snapshot(t, memoPolicies)}
	rig.g.Store = userKV{memKV: rig.kv, user: rig.user}
	at := rig.t0.Unix()
	rig.g.Tokens = claimsVerifier{&oauth.AccessClaims{Claims: jwt.Claims{ID: "t-memo", Subject: rig.user.ID, Audience: jwt.Audience{"bank"},
		Expiry: jwt.NewNumericDate(rig.t0.Add(5 * time.Minute))}, ClientID: "bank", AuthTime: at, ProofTime: at, ACR: "mfa", ACRs: []string{"c2"},
		Proofs: []oauth.Proof{{Method: "password", Time: at, AMR: []string{"pwd"}}, {Method: "totp", Time: at, AMR: []string{"otp"}}}}}
	built := 0
	build := rig.g.Access
	rig.g.Access = func(r *http.Request, u store.User, s *store.Session, app string, now time.Time) *policy.Request {
		built++
		return build(r, u, s, app, now)
	}
	const desktop = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
	plain := &rule{path: "/accounts", wildcard: true}
	transfer := &rule{path: "/transfers", context: "c2"}
	send := func(ru *rule, ua string) int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://bank.example"+ru.path, nil)
		r.RemoteAddr = "203.0.113.7:40000"
		r.Header.Set("User-Agent", ua)
		r.Header.Set("Authorization", "Bearer tok-memo")
		rig.g.handleBearer(w, r, rig.route, ru, ru.path, "tok-memo", func(w http.ResponseWriter, _ *http.Request, _ *identity, _ string) {
			w.WriteHeader(http.StatusOK)
		})
		return w.Code
	}
	for _, step := range []struct {
		name    string
		before  func()
		ru      *rule
		ua      string
		status  int
		decided bool
	}{
		{name: "ok/first-request", ru: plain, ua: desktop, status: http.StatusOK, decided: true},
		{name: "ok/same-client-again", ru: plain, ua: desktop, status: http.StatusOK},
		{name: "fail/another-platform", ru: plain, ua: androidUA, status: http.StatusForbidden, decided: true},
		{name: "fail/another-platform-again", ru: plain, ua: androidUA, status: http.StatusForbidden, decided: true},
		{name: "ok/first-client-still-remembered", ru: plain, ua: desktop, status: http.StatusOK},
		{name: "ok/after-forget", before: func() { rig.g.Forget("") }, ru: plain, ua: desktop, status: http.StatusOK, decided: true},
		{name: "ok/after-a-policy-reload", before: func() { rig.g.Policies = fixedPolicies{policytest.Snapshot(t, memoPolicies)} },
			ru: plain, ua: desktop, status: http.StatusOK, decided: true},
		{name: "ok/context-rule", ru: transfer, ua: desktop, status: http.StatusOK, decided: true},
		{name: "ok/context-rule-again", ru: transfer, ua: desktop, status: http.StatusOK, decided: true},
	} {
		if step.before != nil {
			step.before()
		}
		before := built
		if got := send(step.ru, step.ua); got != step.status {
			t.Errorf("%s: status %d, want %d", step.name, got, step.status)
		}
		if decided := built > before; decided != step.decided {
			t.Errorf("%s: decided anew %v, want %v", step.name, decided, step.decided)
		}
	}
}
