package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/policy/policytest"
	"github.com/stepgate/stepgate/internal/reason"
	"github.com/stepgate/stepgate/internal/store"
)

// memKV is a key/value space that expires entries by the test's clock.
type memKV struct {
	now func() time.Time
	// mu guards m.
	mu sync.Mutex
	m  map[string]store.KVEntry
}

var _ Store = (*memKV)(nil)

func (s *memKV) live(key string) (store.KVEntry, bool) {
	e, ok := s.m[key]
	if ok && !e.ExpiresAt.IsZero() && !s.now().Before(e.ExpiresAt) {
		delete(s.m, key)
		return store.KVEntry{}, false
	}
	return e, ok
}

func (s *memKV) GetKV(_ context.Context, key string) (store.KVEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.live(key); ok {
		return e, nil
	}
	return store.KVEntry{}, store.ErrNotFound
}

func (s *memKV) CreateKV(_ context.Context, key string, value []byte, expiresAt time.Time) (store.KVEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(key); ok {
		return store.KVEntry{}, store.ErrConflict
	}
	e := store.KVEntry{Key: key, Value: value, ExpiresAt: expiresAt, UpdatedAt: s.now(), Version: 1}
	s.m[key] = e
	return e, nil
}

func (s *memKV) UpdateKV(context.Context, string, func([]byte) ([]byte, error)) (store.KVEntry, error) {
	return store.KVEntry{}, store.ErrNotFound
}

func (s *memKV) CreateKVWithin(ctx context.Context, key string, value []byte, expiresAt time.Time, quotas ...store.Quota) (store.KVEntry, error) {
	for _, q := range quotas {
		if !strings.HasPrefix(key, q.Prefix) {
			continue
		}
		n, b, _ := s.KVUsage(ctx, q.Prefix)
		if n+1 > q.MaxCount || b+int64(len(value)) > q.MaxBytes {
			return store.KVEntry{}, store.ErrQuota
		}
	}
	return s.CreateKV(ctx, key, value, expiresAt)
}

func (s *memKV) KVUsage(_ context.Context, prefix string) (count int, bytes int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if e, ok := s.live(k); ok && strings.HasPrefix(k, prefix) {
			count, bytes = count+1, bytes+int64(len(e.Value))
		}
	}
	return count, bytes, nil
}

func (s *memKV) RenewKV(context.Context, string, func([]byte) ([]byte, time.Time, error)) (store.KVEntry, error) {
	return store.KVEntry{}, store.ErrNotFound
}

func (s *memKV) DeleteKV(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(key); !ok {
		return store.ErrNotFound
	}
	delete(s.m, key)
	return nil
}

func (s *memKV) ListKV(context.Context, string) ([]store.KVEntry, error) { return nil, nil }
func (s *memKV) DeleteExpiredKV(context.Context, time.Time) (int, error) { return 0, nil }
func (s *memKV) GetUser(context.Context, string) (store.User, error) {
	return store.User{}, store.ErrNotFound
}

type fixedPolicies struct{ snap *policy.Snapshot }

func (p fixedPolicies) Load() *policy.Snapshot { return p.snap }

// reaskPolicies: the bank's c2 needs MFA, its c3 a passkey; c1 only
// a sign-in.
const reaskPolicies = `auth_contexts:
  - {id: c1, name: Read}
  - {id: c2, name: Transfer}
  - {id: c3, name: Admin}
policies:
  - name: c2-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c2]}
    grant: {controls: [mfa]}
  - name: c3-passkey
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c3]}
    grant: {controls: [{strength: phishing-resistant}]}
`

// reaskRig is a gateway with an injected clock, the policies above and
// a user who has a passkey, an authenticator app and a password.
type reaskRig struct {
	g     *Gateway
	kv    *memKV
	now   time.Time
	user  store.User
	sess  store.Session
	t0    time.Time
	route *route
}

func newReaskRig(t *testing.T) *reaskRig {
	t.Helper()
	snap := policytest.Snapshot(t, reaskPolicies)
	rig := &reaskRig{t0: time.Date(2041, 6, 1, 9, 0, 0, 0, time.UTC), user: store.User{ID: "u-admin", Username: "admin"}}
	rig.now = rig.t0
	clock := func() time.Time { return rig.now }
	rig.kv = &memKV{now: clock, m: map[string]store.KVEntry{}}
	builder := &access.Builder{}
	rig.g = &Gateway{Deps: Deps{
		Store: rig.kv, Policies: fixedPolicies{snap}, Access: builder.Request, Now: clock,
		Log: slog.New(slog.DiscardHandler),
		Methods: func(*http.Request, store.User) ([]string, error) {
			return []string{"webauthn", "totp", "password"}, nil
		},
	}}
	rig.route = &route{name: "bank", app: "bank"}
	rig.sess = store.Session{ID: "s1", UserID: rig.user.ID, CreatedAt: rig.t0}
	return rig
}

func (rig *reaskRig) at(d time.Duration) time.Time { return rig.t0.Add(d) }

// prove adds a proof to the session, made at t0+d.
func (rig *reaskRig) prove(method string, d time.Duration) {
	e := store.AuthEvent{Method: method, Time: rig.at(d)}
	switch method {
	case "webauthn":
		e.AMR, e.PhishingResistant = []string{"hwk", "user"}, true
	case "totp":
		e.AMR = []string{"otp"}
	default:
		e.AMR = []string{"pwd"}
	}
	rig.sess.Events = append(rig.sess.Events, e)
}

// check decides a request under ru at t0+d; forward marks it a
// forward-auth check, elevatedAfter is a kept request's time.
func (rig *reaskRig) check(ru *rule, d time.Duration, forward bool, elevatedAfter time.Time) verdict {
	rig.now = rig.at(d)
	r := httptest.NewRequest(http.MethodGet, "http://bank.example/admin/", nil)
	if forward {
		r = r.WithContext(context.WithValue(r.Context(), forwardKey{}, true))
	}
	s := rig.sess
	s.Events = slices.Clone(rig.sess.Events)
	return rig.g.check(r, rig.route, ru, &identity{user: rig.user, sess: &s}, elevatedAfter)
}

func passed(v verdict) bool { return v.Outcome == policy.OutcomeAllow }

// TestReaskBuiltInProxy: a kept single-use request is replayed only
// when the proofs made after it was kept alone meet the rule's policies.
func TestReaskBuiltInProxy(t *testing.T) {
	t.Parallel()
	admin := &rule{path: "/admin/", wildcard: true, context: "c3", singleUse: true}
	transfer := &rule{path: "/transfers", context: "c2", singleUse: true}

	t.Run("fail/passkey-rule-reopened-with-password", func(t *testing.T) {
		t.Parallel()
		rig := newReaskRig(t)
		rig.prove("password", 0)
		rig.prove("webauthn", time.Minute) // the passkey, used once for /admin/
		kept := rig.at(10 * time.Minute)   // later, /admin/ again: kept and challenged
		if v := rig.check(admin, 10*time.Minute, false, time.Time{}); !v.challenged() || !slices.Equal(v.Methods, []string{"webauthn"}) {
			t.Fatalf("plain request: %+v, want a challenge offering the passkey only", v)
		}
		rig.prove("password", 11*time.Minute)
		v := rig.check(admin, 11*time.Minute, false, kept)
		if passed(v) {
			t.Fatal("a password retyped after the challenge passed a single-use passkey rule")
		}
		if slices.Contains(v.Methods, "password") || v.Reason != reason.SingleUseProofRequired {
			t.Fatalf("challenge after the password: methods %v reason %q, want the passkey only and %q", v.Methods, v.Reason, reason.SingleUseProofRequired)
		}
		rig.prove("webauthn", 12*time.Minute)
		if v := rig.check(admin, 12*time.Minute, false, kept); !passed(v) {
			t.Fatalf("a passkey after the challenge: %+v, want it to pass", v)
		}
		// The same proof answers no second kept request (another tab).
		if v := rig.check(admin, 12*time.Minute+time.Second, false, rig.at(11*time.Minute+30*time.Second)); passed(v) {
			t.Fatal("one passkey proof passed two kept requests")
		}
	})
	t.Run("fail/mfa-rule-reopened-with-password", func(t *testing.T) {
		t.Parallel()
		rig := newReaskRig(t)
		rig.prove("password", 0)
		rig.prove("totp", time.Minute)
		kept := rig.at(10 * time.Minute)
		rig.prove("password", 11*time.Minute)
		if v := rig.check(transfer, 11*time.Minute, false, kept); passed(v) || !v.challenged() {
			t.Fatalf("password alone after the challenge on a single-use MFA rule: %+v, want a challenge", v)
		}
		rig.prove("totp", 12*time.Minute)
		if v := rig.check(transfer, 12*time.Minute, false, kept); !passed(v) {
			t.Fatalf("password and TOTP after the challenge: %+v, want it to pass", v)
		}
	})
	t.Run("fail/max-age-met-by-password-when-mfa-needed", func(t *testing.T) {
		t.Parallel()
		rig := newReaskRig(t)
		fresh := &rule{path: "/transfers", context: "c2", maxAge: 5 * time.Minute}
		rig.prove("password", 0)
		rig.prove("totp", time.Minute)
		if v := rig.check(fresh, 2*time.Minute, false, time.Time{}); !passed(v) {
			t.Fatalf("fresh MFA: %+v", v)
		}
		rig.prove("password", 20*time.Minute)
		v := rig.check(fresh, 21*time.Minute, false, time.Time{})
		if passed(v) || v.Reason != reason.MaxAgeExceeded || !slices.Equal(v.Methods, []string{"webauthn", "totp"}) {
			t.Fatalf("a fresh password and a stale TOTP: %+v, want a max-age challenge for a passkey or TOTP", v)
		}
		rig.prove("totp", 21*time.Minute)
		if v := rig.check(fresh, 22*time.Minute, false, time.Time{}); !passed(v) {
			t.Fatalf("fresh password and TOTP: %+v", v)
		}
	})
	t.Run("ok/no-policy-needs-a-sign-in-not-a-code", func(t *testing.T) {
		t.Parallel()
		rig := newReaskRig(t)
		plain := &rule{path: "/export", singleUse: true}
		rig.prove("password", 0)
		kept := rig.at(time.Minute)
		rig.prove("totp", 2*time.Minute)
		if v := rig.check(plain, 2*time.Minute, false, kept); passed(v) {
			t.Fatal("a second factor alone answered a re-ask no policy shapes")
		}
		rig.prove("password", 3*time.Minute)
		if v := rig.check(plain, 3*time.Minute, false, kept); !passed(v) {
			t.Fatalf("a password after the challenge: %+v", v)
		}
	})
}

// TestReaskForwardAuth: through forward-auth a single-use rule lets one
// request through per challenge and proof; the sign-in itself, or a
// proof made before the challenge, never passes.
func TestReaskForwardAuth(t *testing.T) {
	t.Parallel()
	admin := &rule{path: "/admin/", wildcard: true, context: "c1", singleUse: true}
	rig := newReaskRig(t)
	rig.prove("password", 0) // the sign-in
	r := httptest.NewRequest(http.MethodGet, "http://bank.example/admin/", nil)
	r = r.WithContext(context.WithValue(r.Context(), forwardKey{}, true))
	challenge := func(d time.Duration) {
		t.Helper()
		v := rig.check(admin, d, true, time.Time{})
		if passed(v) {
			t.Fatalf("at +%s: passed, want a challenge", d)
		}
		// What challengeBrowser does before redirecting to the step-up.
		if err := rig.g.recordChallenge(r, rig.route, admin, &identity{user: rig.user}); err != nil {
			t.Fatal(err)
		}
	}
	challenge(time.Minute) // fail/sign-in-a-minute-ago
	rig.prove("password", 2*time.Minute)
	if v := rig.check(admin, 2*time.Minute+time.Second, true, time.Time{}); !passed(v) {
		t.Fatalf("ok/first-request-after-the-step-up: %+v", v)
	}
	challenge(2*time.Minute + 2*time.Second) // fail/second-request-same-proof
	challenge(2*time.Minute + 3*time.Second) // still the same open challenge
	rig.prove("password", 3*time.Minute)
	if v := rig.check(admin, 3*time.Minute+time.Second, true, time.Time{}); !passed(v) {
		t.Fatalf("ok/new-step-up-answers-the-new-challenge: %+v", v)
	}
	if v := rig.check(admin, 3*time.Minute+2*time.Second, true, time.Time{}); passed(v) {
		t.Fatal("fail/two-requests-after-one-step-up")
	}
	// fail/proof-before-the-challenge: a step-up made for something else
	// before this rule asked does not answer it.
	rig.prove("password", 4*time.Minute)
	challenge(5 * time.Minute)
	if v := rig.check(admin, 5*time.Minute+time.Second, true, time.Time{}); passed(v) {
		t.Fatal("a proof made before the challenge answered it")
	}
	// fail/challenge-expired: a challenge left open is forgotten.
	rig.prove("password", 5*time.Minute+keptLifetime+time.Minute)
	if v := rig.check(admin, 5*time.Minute+keptLifetime+2*time.Minute, true, time.Time{}); passed(v) {
		t.Fatal("a step-up long after the challenge expired answered it")
	}
}

// TestTokenSingleUseSpendsTheProof: a refreshed token carries the same
// proof under a new jti and must not pass a single-use rule again.
func TestTokenSingleUseSpendsTheProof(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	ru := &rule{path: "/admin/", wildcard: true, singleUse: true}
	token := func(jti string, authTime time.Duration, life time.Duration) *oauth.AccessClaims {
		return &oauth.AccessClaims{Claims: jwt.Claims{ID: jti, Subject: rig.user.ID, Expiry: jwt.NewNumericDate(rig.now.Add(life))},
			AuthTime: rig.at(authTime).Unix(), SID: "sid-1", ACR: "mfa", AMR: []string{"pwd", "otp", "mfa"}}
	}
	r := httptest.NewRequest(http.MethodGet, "http://bank.example/admin/", nil)
	rig.now = rig.at(time.Minute)
	first := token("jti-1", 0, 5*time.Minute)
	if !rig.g.spendToken(r, rig.route, ru, first) {
		t.Fatal("ok/first-token: refused")
	}
	if rig.g.spendToken(r, rig.route, ru, first) {
		t.Fatal("fail/same-token-twice: passed")
	}
	// An hour later the client refreshes: new jti, new expiry, same proof.
	rig.now = rig.at(time.Hour)
	refreshed := token("jti-2", 0, 5*time.Minute)
	if rig.g.spendToken(r, rig.route, ru, refreshed) {
		t.Fatal("fail/refreshed-token: a refreshed token passed a single-use rule with no new proof")
	}
	// A token for another session of the same user carries another proof
	// (made at another moment: proofs are told apart by user and second).
	other := token("jti-3", 2*time.Second, 5*time.Minute)
	other.SID = "sid-2"
	if !rig.g.spendToken(r, rig.route, ru, other) {
		t.Fatal("ok/another-session: refused")
	}
	// After a new proof, a token issued then passes once.
	stepped := token("jti-4", time.Hour, 5*time.Minute)
	if !rig.g.spendToken(r, rig.route, ru, stepped) {
		t.Fatal("ok/token-after-new-proof: refused")
	}
	if rig.g.spendToken(r, rig.route, ru, token("jti-5", time.Hour, 5*time.Minute)) {
		t.Fatal("fail/refreshed-after-new-proof: passed twice")
	}
	// The spend outlives every token of the family: refreshed 29 days on.
	rig.now = rig.at(29 * 24 * time.Hour)
	if rig.g.spendToken(r, rig.route, ru, token("jti-6", 0, 5*time.Minute)) {
		t.Fatal("fail/refreshed-weeks-later: passed")
	}
}

// TestTokenSingleUseSpendsTheProofWhateverItsAcr: the tokens a client
// gets from one session without a new proof differ in what it asked
// for (acr_values "c3", "phishing-resistant c3", "c3 c2"): another acr
// or acrs, the same proof behind them. The first spends that proof;
// none of the others passes the rule again.
func TestTokenSingleUseSpendsTheProofWhateverItsAcr(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	ru := &rule{path: "/vault/", wildcard: true, context: "c3", singleUse: true}
	r := httptest.NewRequest(http.MethodGet, "http://bank.example/vault/keys", nil)
	rig.now = rig.at(time.Hour)
	token := func(jti, acr string, acrs ...string) *oauth.AccessClaims {
		return &oauth.AccessClaims{Claims: jwt.Claims{ID: jti, Subject: rig.user.ID, Expiry: jwt.NewNumericDate(rig.now.Add(5 * time.Minute))},
			AuthTime: rig.at(time.Minute).Unix(), ProofTime: rig.at(time.Minute).Unix(), SID: "sid-1", ACR: acr, ACRs: acrs}
	}
	if why, _ := rig.g.bearerMissing(r, rig.route, ru, token("a", "c3", "c3")); why != "" {
		t.Fatalf("ok/first-token: %s", why)
	}
	for _, tc := range []struct {
		name string
		tok  *oauth.AccessClaims
	}{
		{"fail/same-proof-another-acr", token("b", "phishing-resistant", "c3")},
		{"fail/same-proof-more-contexts", token("c", "c3", "c2", "c3")},
		{"fail/same-proof-another-acr-and-contexts", token("d", "mfa", "c3", "c1")},
	} {
		if why, _ := rig.g.bearerMissing(r, rig.route, ru, tc.tok); why == "" {
			t.Errorf("%s: acr %q acrs %v passed a single-use rule on a spent proof", tc.name, tc.tok.ACR, tc.tok.ACRs)
		}
	}
}

// TestTokenProofTime: a token whose last proof is a fresh password but
// whose context rests on an old passkey (its proof_time) neither meets a
// max_age rule nor passes a spent single-use rule again.
func TestTokenProofTime(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	r := httptest.NewRequest(http.MethodGet, "http://bank.example/vault/", nil)
	claims := func(jti string, authTime, proofTime time.Duration) *oauth.AccessClaims {
		return &oauth.AccessClaims{Claims: jwt.Claims{ID: jti, Subject: rig.user.ID, Expiry: jwt.NewNumericDate(rig.now.Add(5 * time.Minute))},
			AuthTime: rig.at(authTime).Unix(), ProofTime: rig.at(proofTime).Unix(), SID: "sid-1", ACR: "phishing-resistant", ACRs: []string{"c3"}}
	}
	fresh := &rule{path: "/vault/", wildcard: true, context: "c3", maxAge: 5 * time.Minute}
	rig.now = rig.at(time.Hour)
	if why, _ := rig.g.bearerMissing(r, rig.route, fresh, claims("a", time.Hour-time.Minute, 0)); why == "" {
		t.Fatal("fail/fresh-password-old-passkey: a token whose passkey is an hour old met a 5-minute rule")
	}
	if why, _ := rig.g.bearerMissing(r, rig.route, fresh, claims("b", time.Hour-time.Minute, time.Hour-2*time.Minute)); why != "" {
		t.Fatalf("ok/fresh-passkey: %s", why)
	}
	once := &rule{path: "/vault/", wildcard: true, context: "c3", singleUse: true}
	if why, _ := rig.g.bearerMissing(r, rig.route, once, claims("c", 0, 0)); why != "" {
		t.Fatalf("ok/first-use: %s", why)
	}
	// A password retyped later moves auth_time; the passkey behind the
	// token's c3 is the same, already spent.
	if why, _ := rig.g.bearerMissing(r, rig.route, once, claims("d", time.Hour-time.Minute, 0)); why == "" {
		t.Fatal("fail/new-password-same-passkey: passed a spent single-use rule")
	}
}

// TestReaskProofSpentNotLastEvent: one passkey proof answers one kept
// request; a password typed after it does not make it answer another.
func TestReaskProofSpentNotLastEvent(t *testing.T) {
	t.Parallel()
	admin := &rule{path: "/admin/", wildcard: true, context: "c3", singleUse: true}
	rig := newReaskRig(t)
	rig.prove("password", 0)
	tabA, tabB := rig.at(time.Minute), rig.at(2*time.Minute) // two kept requests
	rig.prove("webauthn", 3*time.Minute)
	if v := rig.check(admin, 3*time.Minute+time.Second, false, tabA); !passed(v) {
		t.Fatalf("ok/first-kept-request: %+v", v)
	}
	rig.prove("password", 4*time.Minute)
	if v := rig.check(admin, 4*time.Minute+time.Second, false, tabB); passed(v) {
		t.Fatal("fail/password-after-the-passkey: one passkey proof answered two kept requests")
	}
	rig.prove("webauthn", 5*time.Minute)
	if v := rig.check(admin, 5*time.Minute+time.Second, false, tabB); !passed(v) {
		t.Fatalf("ok/new-passkey: %+v", v)
	}
}

// TestReaskProofSpentAcrossRoutesOfOneApp: an application reachable on
// two hosts (bank.example and www.bank.example, two routes of one app)
// runs the same handler behind the same rule on both. One passkey proof
// answers one kept request, not one on each host.
func TestReaskProofSpentAcrossRoutesOfOneApp(t *testing.T) {
	t.Parallel()
	admin := &rule{path: "/admin/", wildcard: true, context: "c3", singleUse: true}
	rig := newReaskRig(t)
	www := &route{name: "bank-www", app: rig.route.app}
	rig.prove("password", 0)
	keptHere, keptThere := rig.at(time.Minute), rig.at(2*time.Minute)
	rig.prove("webauthn", 3*time.Minute)
	if v := rig.check(admin, 3*time.Minute+time.Second, false, keptHere); !passed(v) {
		t.Fatalf("ok/first-host: %+v", v)
	}
	rig.now = rig.at(3*time.Minute + 2*time.Second)
	r := httptest.NewRequest(http.MethodGet, "http://www.bank.example/admin/", nil)
	s := rig.sess
	s.Events = slices.Clone(rig.sess.Events)
	if v := rig.g.check(r, www, admin, &identity{user: rig.user, sess: &s}, keptThere); passed(v) {
		t.Fatal("fail/other-host-same-app: one passkey proof answered a kept request on each host of the application")
	}
}

// TestReaskProofSpentAcrossBrowserAndToken: the passkey proof that
// carried a kept request does not also carry a request made with a
// token issued on the same proof (the same user's SPA or API client),
// nor the other way round.
func TestReaskProofSpentAcrossBrowserAndToken(t *testing.T) {
	t.Parallel()
	admin := &rule{path: "/admin/", wildcard: true, context: "c3", singleUse: true}
	rig := newReaskRig(t)
	r := httptest.NewRequest(http.MethodGet, "http://bank.example/admin/", nil)
	token := func(jti string, proof time.Duration) *oauth.AccessClaims {
		return &oauth.AccessClaims{Claims: jwt.Claims{ID: jti, Subject: rig.user.ID, Expiry: jwt.NewNumericDate(rig.now.Add(5 * time.Minute))},
			AuthTime: rig.at(proof).Unix(), ProofTime: rig.at(proof).Unix(), SID: "sid-1", ACR: "phishing-resistant", ACRs: []string{"c3"}}
	}
	rig.prove("password", 0)
	rig.prove("webauthn", 3*time.Minute)
	if v := rig.check(admin, 3*time.Minute+time.Second, false, rig.at(time.Minute)); !passed(v) {
		t.Fatalf("ok/browser-first: %+v", v)
	}
	if why, _ := rig.g.bearerMissing(r, rig.route, admin, token("a", 3*time.Minute)); why == "" {
		t.Fatal("fail/token-after-browser: the passkey proof that carried a kept request also carried a token's request")
	}
	rig.prove("webauthn", 10*time.Minute)
	rig.now = rig.at(10*time.Minute + time.Second)
	if why, _ := rig.g.bearerMissing(r, rig.route, admin, token("b", 10*time.Minute)); why != "" {
		t.Fatalf("ok/token-first: %s", why)
	}
	if v := rig.check(admin, 10*time.Minute+2*time.Second, false, rig.at(9*time.Minute)); passed(v) {
		t.Fatal("fail/browser-after-token: the passkey proof that carried a token's request also carried a kept request")
	}
}

// TestTokenSignInFrequency: a token's acrs are copied on every refresh,
// so a context whose policy asks for a sign-in every hour is met only by
// a token whose proofs are younger than that, however fresh the token.
func TestTokenSignInFrequency(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	snap := policytest.Snapshot(t, reaskPolicies+`  - name: c1-hourly
    state: enabled
    users: {include: {users: [all]}}
    target: {auth_contexts: [c1]}
    grant: {controls: [mfa]}
    session: {sign_in_frequency: 1h}
`)
	rig.g.Policies = fixedPolicies{snap}
	r := httptest.NewRequest(http.MethodGet, "http://bank.example/customers/", nil)
	read := &rule{path: "/customers", wildcard: true, context: "c1"}
	token := func(proven time.Duration, acrs ...string) *oauth.AccessClaims {
		at := rig.at(proven).Unix()
		return &oauth.AccessClaims{Claims: jwt.Claims{ID: "t", Subject: rig.user.ID, Expiry: jwt.NewNumericDate(rig.now.Add(5 * time.Minute))},
			AuthTime: at, ProofTime: at, SID: "sid-1", ACR: "mfa", ACRs: acrs,
			Proofs: []oauth.Proof{{Method: "password", Time: at, AMR: []string{"pwd"}}, {Method: "totp", Time: at, AMR: []string{"otp"}}}}
	}
	decide := func(ru *rule, c *oauth.AccessClaims) verdict {
		tok := &bearerEntry{claims: c, user: rig.user, found: true, proofs: &store.Session{Events: access.TokenEvents(c.Proofs)}}
		v, _ := rig.g.checkToken(r, rig.route, ru, tok, &identity{user: rig.user, token: c, acrs: c.ACRs})
		return v
	}
	rig.now = rig.at(3 * time.Hour)
	if v := decide(read, token(2*time.Hour+30*time.Minute, "c1")); !passed(v) {
		t.Fatalf("ok/proof-within-the-hour: %s (%s)", v.Outcome, v.Reason)
	}
	if v := decide(read, token(time.Hour, "c1")); passed(v) {
		t.Fatal("fail/refreshed-token-proof-two-hours-old: met a context whose policy asks for a sign-in every hour")
	}
	// A context no frequency applies to is carried as long as the token.
	transfer := &rule{path: "/transfers", context: "c2"}
	if v := decide(transfer, token(0, "c2")); !passed(v) {
		t.Fatalf("ok/no-frequency: %s (%s)", v.Outcome, v.Reason)
	}
}

// userKV is memKV that knows the rig's user, as a token's subject.
type userKV struct {
	*memKV
	user store.User
}

func (s userKV) GetUser(_ context.Context, id string) (store.User, error) {
	if id == s.user.ID {
		return s.user, nil
	}
	return store.User{}, store.ErrNotFound
}

// claimsVerifier accepts any token as the claims it holds.
type claimsVerifier struct{ c *oauth.AccessClaims }

func (v claimsVerifier) VerifyAccessToken(context.Context, string) (*oauth.AccessClaims, error) {
	return v.c, nil
}

// TestTokenSignInFrequencyPlainRule carries a token refreshed for weeks
// to a rule that asks only for a signed-in user, on an app whose policy
// asks for a sign-in every hour: a browser is asked again there each
// hour, so the token must be too.
func TestTokenSignInFrequencyPlainRule(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	snap := policytest.Snapshot(t, reaskPolicies+`  - name: bank-hourly
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    grant: {controls: [mfa]}
    session: {sign_in_frequency: 1h}
`)
	rig.g.Policies = fixedPolicies{snap}
	rig.g.Store = userKV{memKV: rig.kv, user: rig.user}
	plain := &rule{path: "/customers", wildcard: true}
	rig.now = rig.at(30 * 24 * time.Hour)
	for _, tc := range []struct {
		name     string
		proven   time.Duration
		want     int
		noProofs bool
	}{
		{name: "ok/proof-within-the-hour", proven: 30*24*time.Hour - 30*time.Minute, want: http.StatusOK},
		{name: "fail/refreshed-token-proof-weeks-old", want: http.StatusUnauthorized},
		// A token that does not say what it was issued on meets no policy
		// that asks for a proof, whatever its acr claims.
		{name: "fail/token-without-proofs", proven: 30*24*time.Hour - 30*time.Minute, want: http.StatusUnauthorized, noProofs: true},
	} {
		c := &oauth.AccessClaims{Claims: jwt.Claims{ID: tc.name, Subject: rig.user.ID, Audience: jwt.Audience{"bank"},
			Expiry: jwt.NewNumericDate(rig.now.Add(5 * time.Minute))}, ClientID: "bank",
			AuthTime: rig.at(tc.proven).Unix(), ProofTime: rig.at(tc.proven).Unix(), SID: "sid-1", ACR: "mfa"}
		if !tc.noProofs {
			c.Proofs = []oauth.Proof{{Method: "password", Time: rig.at(tc.proven).Unix(), AMR: []string{"pwd"}},
				{Method: "totp", Time: rig.at(tc.proven).Unix(), AMR: []string{"otp"}}}
		}
		rig.g.Tokens = claimsVerifier{c}
		rig.g.Forget("")
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://bank.example/customers/", nil)
		r.Header.Set("Accept", "application/json")
		rig.g.handleBearer(w, r, rig.route, plain, "/customers/", "tok-"+tc.name, func(w http.ResponseWriter, _ *http.Request, _ *identity, _ string) {
			w.WriteHeader(http.StatusOK)
		})
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, w.Code, tc.want, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// TestTokenRegistrationOnlyProofs: a recovery code or a temporary access
// pass opens the registration of a method and nothing else, in a token
// as in a session. The attack: a stolen password plus a code printed on
// paper, carried in a token's proofs, to meet an app-wide MFA policy.
func TestTokenRegistrationOnlyProofs(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	rig.g.Policies = fixedPolicies{policytest.Snapshot(t, reaskPolicies+`  - name: bank-mfa
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    grant: {controls: [mfa]}
`)}
	at := rig.t0.Unix()
	r := httptest.NewRequest(http.MethodGet, "http://bank.example/x", nil)
	for _, m := range []string{"recovery-code", "temporary-access-pass"} {
		pwd := oauth.Proof{Method: "password", Time: at, AMR: []string{"pwd"}}
		code := oauth.Proof{Method: m, Time: at, AMR: []string{"otp", "mfa"}}
		if minted := access.TokenProofs(access.TokenEvents([]oauth.Proof{pwd, code})); len(minted) != 1 {
			t.Errorf("%s: minted into a token's proofs: %v", m, minted)
		}
		// Even written into the claim, it meets nothing.
		c := &oauth.AccessClaims{Claims: jwt.Claims{ID: "t-" + m, Subject: rig.user.ID, Audience: jwt.Audience{"bank"}},
			ACR: "mfa", Proofs: []oauth.Proof{pwd, code}}
		tok := &bearerEntry{claims: c, user: rig.user, found: true, proofs: &store.Session{Events: access.TokenEvents(c.Proofs)}}
		if v, _ := rig.g.checkToken(r, rig.route, &rule{path: "/x"}, tok, &identity{user: rig.user, token: c}); passed(v) {
			t.Errorf("fail/%s-as-mfa: a token with a password and a %s met MFA", m, m)
		}
	}
}

// TestDatabaseTokenAtRoute: a token Stepgate issued for the database
// bank (RFC 8707 resource, audience [bank], issued to another client)
// is refused at the route of an app of the same name; the app's own
// token passes. The attack: a token handed to the database gateway as a
// password, replayed against a web app.
func TestDatabaseTokenAtRoute(t *testing.T) {
	t.Parallel()
	rig := newReaskRig(t)
	rig.g.Policies = fixedPolicies{policytest.Snapshot(t, reaskPolicies)}
	rig.g.Store = userKV{memKV: rig.kv, user: rig.user}
	for _, tc := range []struct {
		name, client string
		want         int
	}{
		{"ok/the-apps-own-token", "bank", http.StatusOK},
		{"fail/a-database-token-for-bank", "stepgate-cli", http.StatusUnauthorized},
	} {
		c := &oauth.AccessClaims{Claims: jwt.Claims{ID: tc.name, Subject: rig.user.ID, Audience: jwt.Audience{"bank"},
			Expiry: jwt.NewNumericDate(rig.t0.Add(5 * time.Minute))}, ClientID: tc.client,
			Proofs: []oauth.Proof{{Method: "password", Time: rig.t0.Unix(), AMR: []string{"pwd"}}}}
		rig.g.Tokens = claimsVerifier{c}
		rig.g.Forget("")
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://bank.example/x", nil)
		r.Header.Set("Accept", "application/json")
		rig.g.handleBearer(w, r, rig.route, &rule{path: "/x"}, "/x", "tok-"+tc.name, func(w http.ResponseWriter, _ *http.Request, _ *identity, _ string) {
			w.WriteHeader(http.StatusOK)
		})
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, w.Code, tc.want, w.Header().Get("WWW-Authenticate"))
		}
	}
}
