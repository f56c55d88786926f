package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/revoke"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

// Clients besides the web app that the introspection tests use.
const (
	reportsID     = "reports"
	reportsSecret = "reports-secret-reports-secret-012345678"
	spaID         = "spa"
)

// withIntrospectionClients registers a second confidential client and
// a public one beside the web app.
func (tp *testProvider) withIntrospectionClients(t *testing.T) {
	t.Helper()
	cs, err := NewClients(tp.db, ClientsOptions{Declared: []ClientOptions{
		{ID: testClientID, Name: "Web app", Secret: testSecret, AuthMethod: AuthSecretBasic, RedirectURIs: []string{testRedirect},
			GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken}},
		{ID: reportsID, Name: "Reports", Secret: reportsSecret, AuthMethod: AuthSecretBasic, GrantTypes: []string{GrantClientCredentials}},
		{ID: spaID, Name: "SPA", Public: true, AuthMethod: AuthNone, RedirectURIs: []string{testRedirect}, GrantTypes: []string{GrantAuthorizationCode}},
	}, Now: tp.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tp.Clients = cs
}

// postForm posts form to path on the provider's endpoints with the
// given Authorization header (none when empty).
func (tp *testProvider) postForm(t *testing.T, path, auth string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	tp.Mount(mux)
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

// active introspects raw as the web app and reports the answer; an
// inactive answer must say nothing else (RFC 7662 2.2).
func (tp *testProvider) active(t *testing.T, raw string) bool {
	t.Helper()
	rec := tp.postForm(t, pathIntrospect, "Basic "+basicCredentials(testClientID, testSecret), url.Values{"token": {raw}})
	if rec.Code != http.StatusOK {
		t.Fatalf("introspection: status %d: %s", rec.Code, rec.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out["active"] != true && len(out) != 1 {
		t.Errorf("inactive answer carries more than active: %v", out)
	}
	return out["active"] == true
}

// cached is how many verified tokens the provider holds.
func (tp *testProvider) cached() int {
	tp.verified.mu.RLock()
	defer tp.verified.mu.RUnlock()
	return len(tp.verified.m)
}

// requireCachedActive introspects raw twice, and fails unless both say
// active and the token is then held as verified: the control without
// which a test of what ends a cached answer proves nothing.
func (tp *testProvider) requireCachedActive(t *testing.T, raw string) {
	t.Helper()
	for range 2 {
		if !tp.active(t, raw) {
			t.Fatal("ok/live-token: introspection says inactive")
		}
	}
	if tp.verified.get(sha256Of(raw), tp.mark(t)) == nil {
		t.Fatal("the live token is not held as verified after two introspections")
	}
}

func (tp *testProvider) mark(t *testing.T) uint64 {
	t.Helper()
	m, ok := tp.verified.mark(context.Background())
	if !ok {
		t.Fatal("the store does not vouch for its access mark")
	}
	return m
}

// kvCounter counts the key/value reads of a store.
type kvCounter struct {
	*sqlstore.DB
	reads atomic.Int64
}

func (c *kvCounter) GetKV(ctx context.Context, key string) (store.KVEntry, error) {
	c.reads.Add(1)
	return c.DB.GetKV(ctx, key)
}

// TestIntrospectLiveTokenFromCache: a token introspected again is
// answered without a store read of its revocation state, and with the
// same answer. The attack tests below rely on this: they show what
// ends an answer that really was cached.
func TestIntrospectLiveTokenFromCache(t *testing.T) {
	t.Parallel()
	clk := newClock()
	counter := &kvCounter{DB: openSQLite(t, filepath.Join(t.TempDir(), "test.db"), clk)}
	tp := newProviderOn(t, counter, clk, true)
	raw := tp.accessToken(t)
	first := tp.postForm(t, pathIntrospect, "Basic "+basicCredentials(testClientID, testSecret), url.Values{"token": {raw}})
	before := counter.reads.Load()
	again := tp.postForm(t, pathIntrospect, "Basic "+basicCredentials(testClientID, testSecret), url.Values{"token": {raw}})
	if n := counter.reads.Load() - before; n != 0 {
		t.Errorf("a repeated introspection read the store %d times, want 0 (answered from the cache)", n)
	}
	if first.Body.String() != again.Body.String() || !strings.Contains(first.Body.String(), `"active":true`) {
		t.Errorf("answers differ or inactive:\n%s\n%s", first.Body, again.Body)
	}
}

// TestAttackCachedAnswerOutlivesRevocation: a token a resource server
// introspected (and so is cached as active) answers active:false at
// once after each way access ends: the token revoked by its client (RFC
// 7009), its grant revoked (a replayed refresh token), the user's
// access revoked by a security event (disabled, password changed, risk),
// the revocation written by another process on the same database (the
// command line), a role in the token taken away, the token expired.
func TestAttackCachedAnswerOutlivesRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// groups mints the token with the groups scope (and so roles).
		groups bool
		end    func(t *testing.T, tp fileProvider, raw string, c *AccessClaims)
	}{
		{name: "fail/revoked-by-client-rfc7009", end: func(t *testing.T, tp fileProvider, raw string, _ *AccessClaims) {
			rec := tp.postForm(t, pathRevoke, "Basic "+basicCredentials(testClientID, testSecret), url.Values{"token": {raw}})
			if rec.Code != http.StatusOK {
				t.Fatalf("revocation: %d %s", rec.Code, rec.Body)
			}
		}},
		{name: "fail/grant-revoked", end: func(t *testing.T, tp fileProvider, _ string, c *AccessClaims) {
			if err := tp.revokeGrant(ctx, grantOf(c.ID), "refresh-reuse"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "fail/user-revoked-security-event", end: func(t *testing.T, tp fileProvider, _ string, c *AccessClaims) {
			tp.clock.Add(time.Second) // the event comes after the token
			if err := tp.Revocations.(*revoke.Revoker).RevokeUser(ctx, c.Subject, "disabled"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "fail/revoked-by-another-process", end: func(t *testing.T, tp fileProvider, _ string, c *AccessClaims) {
			tp.inOtherProcess(t, func(other *sqlstore.DB) error {
				return kvspace.OIDCRevokedToken.At(c.ID).Create(ctx, other, kvspace.Mark{}, c.Expiry.Time().Add(clockSkew))
			})
		}},
		{name: "fail/user-disabled-by-another-process", end: func(t *testing.T, tp fileProvider, _ string, c *AccessClaims) {
			tp.inOtherProcess(t, func(other *sqlstore.DB) error {
				tp.clock.Add(time.Second)
				return revoke.New(other, nil, tp.clock.Now).RevokeUser(ctx, c.Subject, "disabled")
			})
		}},
		{name: "fail/role-taken-away", groups: true, end: func(t *testing.T, tp fileProvider, _ string, c *AccessClaims) {
			if len(c.Roles) == 0 {
				t.Fatal("the token carries no role to take away")
			}
			if _, err := tp.db.UpdateUser(ctx, c.Subject, func(u store.User) (store.User, error) {
				u.Roles = nil
				return u, nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "fail/expired", end: func(t *testing.T, tp fileProvider, _ string, c *AccessClaims) {
			tp.clock.Set(c.Expiry.Time().Add(clockSkew + time.Second))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp := newFileProvider(t)
			if tc.groups {
				if _, err := tp.db.UpdateUser(ctx, tp.user.ID, func(u store.User) (store.User, error) {
					u.Roles = []string{"auditor"}
					return u, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			raw := tp.mintAccess(t, tc.groups)
			tp.requireCachedActive(t, raw)
			c, err := tp.VerifyAccessToken(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			tc.end(t, tp, raw, c)
			if tp.active(t, raw) {
				t.Fatal("introspection still says active")
			}
		})
	}
}

// fileProvider is a test provider whose SQLite file another process
// (here a second handle) can open.
type fileProvider struct {
	*testProvider
	path string
}

func newFileProvider(t *testing.T) fileProvider {
	t.Helper()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "test.db")
	db := openSQLite(t, path, clk)
	tp := newProviderOn(t, db, clk, true)
	tp.Revocations = revoke.New(db, nil, clk.Now)
	return fileProvider{testProvider: tp, path: path}
}

// openSQLite opens the SQLite file at path on clk's time, closed when
// the test ends.
func openSQLite(t *testing.T, path string, clk *clock) *sqlstore.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// inOtherProcess runs change on a handle of the provider's SQLite file
// of its own, as another process (the command line) would, and closes
// the handle before it returns.
func (tp fileProvider) inOtherProcess(t *testing.T, change func(other *sqlstore.DB) error) {
	t.Helper()
	other, err := sqlite.Open(context.Background(), tp.path, sqlite.Options{Now: tp.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := change(other); err != nil {
		t.Fatal(err)
	}
}

// unverifiedClaims reads the claims of the access token raw without
// checking its signature, to learn its expiry and id.
func unverifiedClaims(t *testing.T, raw string) AccessClaims {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, verifyAlgs)
	if err != nil {
		t.Fatal(err)
	}
	var c AccessClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// mintAccess mints an access token of a new grant for the user as the
// store holds them now, with the groups scope (roles) when asked.
func (tp *testProvider) mintAccess(t *testing.T, groups bool) string {
	t.Helper()
	ctx := context.Background()
	u, err := tp.db.GetUser(ctx, tp.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	grant, err := tp.newGrant(ctx, testClientID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	scope := []string{"openid"}
	if groups {
		scope = append(scope, "groups")
	}
	out, err := tp.mint(tp.client(t), u, tp.authState(scope...), grant, false)
	if err != nil {
		t.Fatal(err)
	}
	return out.AccessToken
}

// TestAttackForgedTokenNeverHitsCache: a token altered from a cached
// one — its claims rewritten, its signature changed, bytes added, its
// header switched to alg none — is a different string, so it is
// verified in full and refused, and never stored.
func TestAttackForgedTokenNeverHitsCache(t *testing.T) {
	t.Parallel()
	tp := newFileProvider(t)
	raw := tp.accessToken(t)
	tp.requireCachedActive(t, raw)
	parts := strings.Split(raw, ".")
	claims := jwtClaimsOf(t, parts[1])
	claims["sub"] = "u-mallory"
	forgedClaims, _ := json.Marshal(claims)
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)-2] == 'A' {
			b[len(b)-2] = 'B'
		} else {
			b[len(b)-2] = 'A'
		}
		return string(b)
	}
	// respell writes the same signature bytes another way: the last
	// character of an 86-character segment carries 4 bits no byte uses,
	// which a lenient decoder ignores.
	respell := func(s string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		i := strings.IndexByte(alphabet, s[len(s)-1])
		return s[:len(s)-1] + string(alphabet[i^1])
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
	tests := []struct{ name, token string }{
		{"fail/claims-rewritten", parts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedClaims) + "." + parts[2]},
		{"fail/signature-altered", parts[0] + "." + parts[1] + "." + flip(parts[2])},
		// The same signature spelt another way: were it accepted, each
		// token would have sixteen spellings, each cached apart.
		{"fail/signature-respelt", parts[0] + "." + parts[1] + "." + respell(parts[2])},
		{"fail/bytes-appended", raw + "A"},
		{"fail/alg-none", none + "." + parts[1] + "."},
		{"fail/signature-dropped", parts[0] + "." + parts[1] + "."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tp.active(t, tc.token) {
				t.Fatal("introspection says active for an altered token")
			}
			if n := tp.cached(); n != 1 {
				t.Errorf("the cache holds %d tokens, want only the genuine one", n)
			}
		})
	}
	if !tp.active(t, raw) {
		t.Error("ok/genuine: the genuine token is no longer active")
	}
}

func jwtClaimsOf(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAttackCachedAnswerNeedsClientAuth: the cache sits below client
// authentication. A caller without credentials, with a wrong secret,
// with another client's id, or as a public client gets invalid_client
// for a token the web app's introspection cached, never its answer.
func TestAttackCachedAnswerNeedsClientAuth(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	tp.withIntrospectionClients(t)
	raw := tp.accessToken(t)
	tp.requireCachedActive(t, raw)
	tests := []struct{ name, auth string }{
		{"fail/no-credentials", ""},
		{"fail/wrong-secret", "Basic " + basicCredentials(testClientID, "not-the-secret-not-the-secret-not-the")},
		{"fail/other-clients-id-with-this-secret", "Basic " + basicCredentials(reportsID, testSecret)},
		{"fail/public-client", "Basic " + basicCredentials(spaID, "")},
		{"fail/unknown-client", "Basic " + basicCredentials("mallory", testSecret)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := tp.postForm(t, pathIntrospect, tc.auth, url.Values{"token": {raw}})
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `"invalid_client"`) || strings.Contains(rec.Body.String(), "active") {
				t.Errorf("status %d %s, want 401 invalid_client and no answer", rec.Code, rec.Body)
			}
		})
	}
	t.Run("fail/public-client-by-client-id", func(t *testing.T) {
		rec := tp.postForm(t, pathIntrospect, "", url.Values{"token": {raw}, "client_id": {spaID}})
		if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "active") {
			t.Errorf("status %d %s, want 401 and no answer", rec.Code, rec.Body)
		}
	})
	t.Run("ok/other-confidential-client", func(t *testing.T) {
		// Any confidential client may introspect (the rule without the
		// cache); it gets the same answer by its own authentication.
		rec := tp.postForm(t, pathIntrospect, "Basic "+basicCredentials(reportsID, reportsSecret), url.Values{"token": {raw}})
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"active":true`) {
			t.Errorf("status %d %s, want 200 active", rec.Code, rec.Body)
		}
	})
}

// fakeWatch is an access mark the test sets.
type fakeWatch struct {
	mark atomic.Uint64
	ok   atomic.Bool
}

func (w *fakeWatch) AccessMark(context.Context) (uint64, bool) { return w.mark.Load(), w.ok.Load() }

// TestAttackUntrustedMarkServesNothingCached: while the store cannot
// vouch for its access mark (a node whose notification connection
// dropped, so revocations elsewhere go unheard), a cached answer is
// not used: a token revoked behind the cache's back answers
// active:false, and nothing verified meanwhile is stored.
func TestAttackUntrustedMarkServesNothingCached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tp := newTestProvider(t)
	w := &fakeWatch{}
	w.ok.Store(true)
	tp.verified = &verifiedTokens{watch: w, m: tp.verified.m}
	raw := tp.accessToken(t)
	if !tp.active(t, raw) || tp.cached() != 1 {
		t.Fatal("ok/live-token: not active and cached")
	}
	w.ok.Store(false) // the notifications stop
	c, err := tp.VerifyAccessToken(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	// The revocation a lost notification carried: the mark stays as it was.
	if err := tp.revokeJTI(ctx, c.ID, c.Subject, c.Expiry.Time().Add(clockSkew)); err != nil {
		t.Fatal(err)
	}
	if tp.active(t, raw) {
		t.Fatal("introspection says active from the cache while the mark is not vouched for")
	}
	other := tp.accessToken(t)
	if !tp.active(t, other) {
		t.Fatal("ok/other-token: inactive")
	}
	if n := tp.cached(); n != 1 {
		t.Errorf("the cache holds %d tokens after verifications under an untrusted mark, want 1", n)
	}
}

// TestIntrospectExpiryOnCachedToken: with the clock injected, a cached
// token is active up to its exp plus the allowed clock skew and
// inactive from then on, the same bound as without the cache.
func TestIntrospectExpiryOnCachedToken(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	raw := tp.accessToken(t)
	tp.requireCachedActive(t, raw)
	c := unverifiedClaims(t, raw)
	tp.clock.Set(c.Expiry.Time().Add(clockSkew - time.Second))
	if !tp.active(t, raw) {
		t.Fatal("ok/within-skew: inactive before exp plus the skew")
	}
	tp.clock.Set(c.Expiry.Time().Add(clockSkew + time.Second))
	if tp.active(t, raw) {
		t.Fatal("fail/expired: active after exp plus the skew")
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// TestIntrospectExpiryAcrossNodes: two providers share one PostgreSQL
// store and one injected clock. A token minted on node 1 and cached as
// verified on node 2 answers active:false on node 2 as soon as the clock
// passes its exp plus the skew: expiry needs no notification.
func TestIntrospectExpiryAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	clk := newClock()
	open := func() *sqlstore.DB {
		db, err := postgres.Open(context.Background(), dsn, postgres.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	n1 := newProviderOn(t, open(), clk, true)
	n2 := newProviderOn(t, open(), clk, false)
	deadline := time.Now().Add(10 * time.Second)
	for _, ok := n2.verified.mark(context.Background()); !ok; _, ok = n2.verified.mark(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatal("node 2 is not listening for changes")
		}
		time.Sleep(10 * time.Millisecond) // between polls, not an assertion
	}
	raw := n1.accessToken(t)
	n2.requireCachedActive(t, raw)
	c := unverifiedClaims(t, raw)
	clk.Set(c.Expiry.Time().Add(clockSkew - time.Second))
	if !n2.active(t, raw) {
		t.Fatal("ok/within-skew: node 2 says inactive before exp plus the skew")
	}
	clk.Set(c.Expiry.Time().Add(clockSkew + time.Second))
	if n2.active(t, raw) {
		t.Fatal("fail/expired: node 2 says active after exp plus the skew")
	}
}

// TestAttackRevocationRacesCachedVerifications: resource servers verify
// a token from many goroutines while its client revokes it. Every
// verification that starts after the revocation returned refuses the
// token: no verification in flight can store an answer that outlives it.
func TestAttackRevocationRacesCachedVerifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tp := newFileProvider(t)
	raw := tp.accessToken(t)
	tp.requireCachedActive(t, raw)
	c, err := tp.VerifyAccessToken(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var revoked atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			after := 0
			for after < 200 { // bounded: 200 verifications after the revocation
				done := revoked.Load()
				_, err := tp.VerifyAccessToken(ctx, raw)
				if done {
					after++
					if err == nil {
						t.Error("a verification that started after the revocation accepted the token")
						return
					}
				}
			}
		})
	}
	time.Sleep(time.Millisecond) // let the verifiers run; not an assertion
	if err := tp.revokeJTI(ctx, c.ID, c.Subject, c.Expiry.Time().Add(clockSkew)); err != nil {
		t.Fatal(err)
	}
	revoked.Store(true)
	wg.Wait()
}

// revokingStore revokes a token while its verification reads the deny
// list, after the read: the verification goes on with what it read.
type revokingStore struct {
	*sqlstore.DB
	// during runs once, inside the first read of a deny-list entry.
	during func()
}

func (s *revokingStore) GetKV(ctx context.Context, key string) (store.KVEntry, error) {
	e, err := s.DB.GetKV(ctx, key)
	if strings.HasPrefix(key, "oidc/revoked/") && s.during != nil {
		during := s.during
		s.during = nil
		during()
	}
	return e, err
}

// TestAttackRevocationDuringVerification: the token is revoked while a
// verification is between its read of the deny list and storing what
// it found. That verification may still answer active (it began
// before), but what it stores must not be trusted afterwards: the mark
// is read before the state, so the next verification refuses the token.
func TestAttackRevocationDuringVerification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	st := &revokingStore{DB: openSQLite(t, filepath.Join(t.TempDir(), "test.db"), clk)}
	tp := newProviderOn(t, st, clk, true)
	raw := tp.accessToken(t)
	c := unverifiedClaims(t, raw)
	st.during = func() {
		if err := tp.revokeJTI(ctx, c.ID, c.Subject, c.Expiry.Time().Add(clockSkew)); err != nil {
			t.Error(err)
		}
	}
	if _, err := tp.VerifyAccessToken(ctx, raw); err != nil {
		t.Fatalf("the verification in flight: %v", err)
	}
	if st.during != nil {
		t.Fatal("the revocation did not run during the verification")
	}
	if tp.active(t, raw) {
		t.Fatal("introspection says active after the revocation: the verification in flight stored an answer that outlived it")
	}
}
