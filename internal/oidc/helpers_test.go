package oidc

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// clock is a settable clock shared by a provider, its key ring and its
// store, so tests move time for all of them at once.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Test client of the unit tests and benchmarks.
const (
	testClientID = "webapp"
	testSecret   = "webapp-secret-webapp-secret-0123456789"
	testRedirect = "https://app.example/callback"
	testIssuer   = "https://id.example"
)

// testProvider is a provider over a fresh SQLite store, with one
// confidential client and one user.
type testProvider struct {
	*Provider
	db    store.Store
	clock *clock
	user  store.User
}

func newTestProvider(tb testing.TB) *testProvider {
	tb.Helper()
	clk := newClock()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "test.db"), sqlite.Options{Now: clk.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return newProviderOn(tb, db, clk, true)
}

// newProviderOn is a provider over db, one node of several when they
// share it; seed adds the user, which later nodes then find.
func newProviderOn(tb testing.TB, db store.Store, clk *clock, seed bool) *testProvider {
	tb.Helper()
	ctx := context.Background()
	var u store.User
	var err error
	if seed {
		u, err = db.CreateUser(ctx, store.User{ID: "u-alice", Username: "alice", Email: "alice@example.com", DisplayName: "Alice"})
	} else {
		u, err = db.GetUser(ctx, "u-alice")
	}
	if err != nil {
		tb.Fatal(err)
	}
	clients, err := NewClients(db, ClientsOptions{Declared: []ClientOptions{{
		ID: testClientID, Name: "Web app", Secret: testSecret, AuthMethod: AuthSecretBasic, RedirectURIs: []string{testRedirect},
		GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken},
	}}, Now: clk.Now})
	if err != nil {
		tb.Fatal(err)
	}
	keys := NewKeyRing(db, KeyPolicy{Alg: "ES256", Rotation: 24 * time.Hour, PublishAhead: 2 * time.Hour, Retain: 3 * time.Hour}, clk.Now)
	if err := keys.Maintain(ctx); err != nil {
		tb.Fatal(err)
	}
	box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	p := New(Deps{
		Issuer: testIssuer, Store: db, Clients: clients, Keys: keys, Box: box,
		Lifetimes: Lifetimes{Code: time.Minute, AccessToken: 5 * time.Minute, IDToken: 5 * time.Minute, RefreshToken: 24 * time.Hour},
		SIDKey:    []byte("sid-key-for-tests"), Log: slog.New(slog.DiscardHandler), Now: clk.Now,
	})
	return &testProvider{Provider: p, db: db, clock: clk, user: u}
}

// client returns the test client.
func (tp *testProvider) client(tb testing.TB) *Client {
	tb.Helper()
	c, err := tp.Clients.Get(context.Background(), testClientID)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// authState is what a password sign-in just now proved.
func (tp *testProvider) authState(scope ...string) authState {
	return authState{
		UserID: tp.user.ID, SID: "sid-1", AuthTime: tp.clock.Now(), ACR: "single-factor", AMR: []string{"pwd"},
		Scope: scope, Nonce: "n-1",
	}
}

// accessToken mints an access token of a new grant at the provider's
// current time.
func (tp *testProvider) accessToken(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	grant, err := tp.newGrant(ctx, testClientID, tp.user.ID)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := tp.mint(tp.client(tb), tp.user, tp.authState("openid"), grant, false)
	if err != nil {
		tb.Fatal(err)
	}
	return out.AccessToken
}
