package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
)

func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg, err := Config(Params{Listen: "127.0.0.1:18080", DataDir: t.TempDir(), BankUpstream: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1} // the cheapest valid cost, for speed
	return cfg
}

// TestSeedTwice: a second run over the same data keeps everything as the
// first left it, with no error and nothing doubled, and the policies the
// seed wrote compile against the seeded store.
func TestSeedTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	log := slog.New(slog.DiscardHandler)
	first, err := Seed(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Seed(ctx, cfg, log)
	if err != nil {
		t.Fatalf("seeding again: %v", err)
	}
	if first.AliceTOTPSecret == "" || second.AliceTOTPSecret != first.AliceTOTPSecret {
		t.Fatalf("alice's TOTP secret: first %q, then %q; want the same one", first.AliceTOTPSecret, second.AliceTOTPSecret)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("the demo's policies do not load: %v", err)
	}
	defer a.Close()
	list, err := a.Users.List(ctx)
	if err != nil || len(list) != len(Users) {
		t.Fatalf("users after two seeds: %d (%v), want %d", len(list), err, len(Users))
	}
	admin, err := a.Users.Get(ctx, "admin")
	if err != nil || !slices.Contains(admin.Groups, AdminGroup) || !slices.Contains(admin.Roles, "stepgate-admin") {
		t.Fatalf("admin's groups %v and roles %v (%v), want group %s and role stepgate-admin", admin.Groups, admin.Roles, err, AdminGroup)
	}
	alice, _ := a.Users.Get(ctx, "alice")
	creds, err := a.Store.ListCredentials(ctx, alice.ID)
	if err != nil || len(creds) != 1 {
		t.Fatalf("alice has %d methods (%v), want her one authenticator app", len(creds), err)
	}
	if _, err := a.Users.Authenticate(ctx, "bob", "bob-demo-password"); err != nil {
		t.Fatalf("bob's demo password: %v", err)
	}
	if n := len(a.Policies.Load().Policies()); n != 6 {
		t.Fatalf("%d demo policies loaded, want 6", n)
	}
	if !slices.Contains(admin.Roles, BankAdminRole) {
		t.Fatalf("admin's roles %v, want the standing %s", admin.Roles, BankAdminRole)
	}
	checkAliceEligible(t, a)
	// Each run prints a fresh pass for admin; the earlier one is spent.
	if first.AdminPass == "" || second.AdminPass == first.AdminPass {
		t.Fatalf("admin's passes: first %q, then %q; want a new one each run", first.AdminPass, second.AdminPass)
	}
	if _, err := a.Methods.Passes.Redeem(ctx, admin.ID, first.AdminPass); err == nil {
		t.Fatal("the pass of the first run still works")
	}
	if _, err := a.Methods.Passes.Redeem(ctx, admin.ID, second.AdminPass); err != nil {
		t.Fatalf("the pass of the second run: %v", err)
	}
	if a.Config.Registration.Window != 0 {
		t.Fatal("the demo lets a public password register a first method")
	}
}

// checkAliceEligible: alice may activate bank-admin (one assignment, however
// often the demo was seeded), for at most an hour, with a justification
// and the approval of the admins group; she does not hold it yet.
func checkAliceEligible(t *testing.T, a *app.App) {
	t.Helper()
	ctx := context.Background()
	assignments, err := a.Store.ListRoleAssignments(ctx, BankAdminRole)
	if err != nil || len(assignments) != 1 {
		t.Fatalf("assignments of %s: %+v (%v), want alice's one", BankAdminRole, assignments, err)
	}
	alice, err := a.Store.GetUserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(alice.RolesAt(time.Now(), BankApp), BankAdminRole) {
		t.Fatalf("alice holds %s before asking for it", BankAdminRole)
	}
	eligible, err := a.Elevation.Eligible(ctx, alice)
	if err != nil || len(eligible) != 1 {
		t.Fatalf("alice's eligible roles: %+v (%v), want %s", eligible, err, BankAdminRole)
	}
	r := eligible[0].Role
	if r.Name != BankAdminRole || r.MaxDuration != time.Hour || !r.NeedJustification || r.Approvers == nil || r.Approvers.Group != AdminGroup || r.Approvers.Count != 1 {
		t.Fatalf("alice's %s: %+v, want at most 1h, a justification and one approver of %s", BankAdminRole, r, AdminGroup)
	}
}

// TestSeedGivesAdminBankAdmin: data seeded before the bank-admin role
// existed gets it for admin on the next start, so admin's passkey still
// opens the bank's admin pages.
func TestSeedGivesAdminBankAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	log := slog.New(slog.DiscardHandler)
	if _, err := Seed(ctx, cfg, log); err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := app.NewUsers(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetMemberships(ctx, "admin", nil, []string{"stepgate-admin"}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	if _, err := Seed(ctx, cfg, log); err != nil {
		t.Fatalf("seeding older data: %v", err)
	}
	st, err = app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admin, err := st.GetUserByName(ctx, "admin")
	if err != nil || !slices.Contains(admin.Roles, BankAdminRole) || !slices.Contains(admin.Roles, "stepgate-admin") {
		t.Fatalf("admin's roles after seeding older data: %v (%v), want stepgate-admin and %s", admin.Roles, err, BankAdminRole)
	}
}

// wireAssertion is an assertion as the gateway signs it.
type wireAssertion struct {
	jwt.Claims
	Method   string `json:"htm"`
	URL      string `json:"htu"`
	Username string `json:"preferred_username"`
	ACR      string `json:"acr"`
}

// TestBankVerify: the bank believes only assertions Stepgate signed for
// it and for the request it is serving, that are current, with the
// assertion's typ and a pinned asymmetric algorithm.
func TestBankVerify(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	}))
	defer jwks.Close()
	now := time.Unix(1_800_000_000, 0)
	const upstream = "http://127.0.0.1:9001"
	b, err := NewBank(BankOptions{Issuer: "http://localhost:1", JWKSURL: jwks.URL, Upstream: upstream, PublicURL: "http://bank.localhost:1",
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(priv any, alg jose.SignatureAlgorithm, kid, typ string, c wireAssertion) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	good := wireAssertion{Username: "alice", ACR: "mfa", Method: "GET", URL: upstream + "/", Claims: jwt.Claims{Subject: "u1", Issuer: "http://localhost:1",
		Audience: jwt.Audience{upstream}, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(30 * time.Second))}}
	with := func(f func(*wireAssertion)) wireAssertion { c := good; f(&c); return c }
	const typ = "stepgate-assertion+jwt"
	for _, tc := range []struct {
		name, header string
		ok           bool
	}{
		{"ok/signed-for-the-bank", sign(key, jose.ES256, "k1", typ, good), true},
		{"fail/no-assertion", "", false},
		{"fail/not-a-jwt", "alice", false},
		{"fail/unknown-key", sign(other, jose.ES256, "k2", typ, good), false},
		{"fail/known-kid-wrong-key", sign(other, jose.ES256, "k1", typ, good), false},
		{"fail/hmac", sign([]byte("0123456789abcdef0123456789abcdef"), jose.HS256, "k1", typ, good), false},
		{"fail/id-token-typ", sign(key, jose.ES256, "k1", "JWT", good), false},
		{"fail/access-token-typ", sign(key, jose.ES256, "k1", "at+jwt", good), false},
		{"fail/the-app-id-as-audience", sign(key, jose.ES256, "k1", typ, with(func(c *wireAssertion) { c.Audience = jwt.Audience{BankApp} })), false},
		{"fail/another-app", sign(key, jose.ES256, "k1", typ, with(func(c *wireAssertion) { c.Audience = jwt.Audience{"http://127.0.0.1:9002"} })), false},
		{"fail/another-issuer", sign(key, jose.ES256, "k1", typ, with(func(c *wireAssertion) { c.Issuer = "http://evil.localhost" })), false},
		{"fail/expired", sign(key, jose.ES256, "k1", typ, with(func(c *wireAssertion) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)), jwt.NewNumericDate(now.Add(-30*time.Second))
		})), false},
		{"fail/another-path", sign(key, jose.ES256, "k1", typ, with(func(c *wireAssertion) { c.URL = upstream + "/public/rates" })), false},
		{"fail/another-method", sign(key, jose.ES256, "k1", typ, with(func(c *wireAssertion) { c.Method = "HEAD" })), false},
		{"fail/nobody", sign(key, jose.ES256, "k1", typ, with(func(c *wireAssertion) { c.Username = "" })), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set(assertionHeader, tc.header)
			}
			r.Header.Set("X-Stepgate-User", "alice") // never believed on its own
			w := httptest.NewRecorder()
			b.ServeHTTP(w, r)
			if got := w.Code == http.StatusOK; got != tc.ok {
				t.Fatalf("status %d, want ok=%v\n%s", w.Code, tc.ok, w.Body)
			}
			if tc.ok && !strings.Contains(w.Body.String(), `<dd id="user">alice</dd>`) {
				t.Fatalf("the accounts page does not name alice:\n%s", w.Body)
			}
		})
	}
}

// TestBankTransferForm: a transfer needs the form's token, unless it
// comes from an API client with a bearer token, and valid values.
func TestBankTransferForm(t *testing.T) {
	t.Parallel()
	b, err := NewBank(BankOptions{Issuer: "http://localhost:1", Upstream: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	id := &Identity{Username: "alice", Subject: "u1"}
	token := b.formToken(id)
	for _, tc := range []struct {
		name, form, auth string
		want             int
	}{
		{"ok/form", "amount=250.00&to=DE89+3704+0044+0532+0130+00&csrf=" + token, "", http.StatusOK},
		{"ok/api", "amount=5&to=DE89370400440532013000", "Bearer x", http.StatusOK},
		{"fail/no-token", "amount=250&to=DE89370400440532013000", "", http.StatusBadRequest},
		{"fail/another-users-token", "amount=250&to=DE89370400440532013000&csrf=" + b.formToken(&Identity{Subject: "u2"}), "", http.StatusBadRequest},
		{"fail/zero", "amount=0.00&to=DE89370400440532013000&csrf=" + token, "", http.StatusBadRequest},
		{"fail/markup", "amount=1&to=%3Cscript%3E&csrf=" + token, "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/transfers", strings.NewReader(tc.form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			b.transfer(w, r, id)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d\n%s", w.Code, tc.want, w.Body)
			}
			if strings.Contains(w.Body.String(), "<script>") {
				t.Fatal("posted markup was echoed unescaped")
			}
		})
	}
}
