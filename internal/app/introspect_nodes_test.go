package app_test

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/oidc"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
	"github.com/stepgate/stepgate/internal/users"
)

// introspectBound is how long node 2 may take to hear of a revocation
// on node 1 (a PostgreSQL notification's round trip); the test polls
// within it and asserts no speed.
const introspectBound = 10 * time.Second

// startOIDCNode starts one node of the OIDC tests' server on the
// PostgreSQL store at dsn. issuer, when set, is the issuer the nodes
// share (the first node's address); seed adds the test user.
func startOIDCNode(t *testing.T, dsn, issuer string, seed bool, wrap storeWrap) *oidcServer {
	t.Helper()
	s := startOver(t, dsn, wrap, func(cfg *config.Config) {
		if issuer != "" {
			cfg.Server.Issuer = issuer
		}
		cfg.OIDC.Clients = []config.OIDCClient{
			{ID: rpClientID, Name: "Web app", Secret: rpSecret, RedirectURIs: []string{rpRedirect}, PostLogoutRedirectURIs: []string{rpPostLogout}},
		}
	})
	doc, probs := policy.Parse("test-policies.yaml", []byte(testPolicies))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if probs := s.app.Policies.Reload(nil, doc); len(probs) > 0 {
		t.Fatal(probs)
	}
	ctx := context.Background()
	if seed {
		u, err := s.app.Users.Add(ctx, users.NewUser{Username: testUser, Email: "alice@example.com", DisplayName: "Alice", Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		return &oidcServer{server: s, user: u}
	}
	u, err := s.app.Store.GetUserByName(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	return &oidcServer{server: s, user: u}
}

// TestAttackIntrospectionAcrossNodesAfterRevocation: two nodes share
// one PostgreSQL store. A resource server introspects alice's token on
// node 2, which then holds it as verified; the token's access ends on
// node 1 — revoked by its client (RFC 7009), its refresh token (and so
// its grant) revoked, alice's access revoked by a security event. Node
// 2 answers active:false within a bound each time, not when its cached
// answer would have expired.
func TestAttackIntrospectionAcrossNodesAfterRevocation(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	n1 := startOIDCNode(t, dsn, "", true, nil)
	reads := &kvReads{}
	n2 := startOIDCNode(t, dsn, n1.base, false, reads.wrap)
	// Node 2 listens for changes before it trusts anything it caches.
	deadline := time.Now().Add(introspectBound)
	for _, ok := n2.app.Store.(store.AccessWatch).AccessMark(ctx); !ok; _, ok = n2.app.Store.(store.AccessWatch).AccessMark(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("node 2 is not listening for changes")
		}
		time.Sleep(10 * time.Millisecond) // between polls, not an assertion
	}
	b := browser(t)
	tests := []struct {
		name string
		end  func(t *testing.T, tok tokenResponse)
	}{
		{"fail/access-token-revoked-on-node-1", func(t *testing.T, tok tokenResponse) {
			n1.revoke(t, tok.AccessToken)
		}},
		{"fail/refresh-token-revoked-on-node-1", func(t *testing.T, tok tokenResponse) {
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token to revoke")
			}
			n1.revoke(t, tok.RefreshToken)
		}},
		{"fail/user-revoked-on-node-1", func(t *testing.T, _ tokenResponse) {
			if err := n1.app.Revoker.RevokeUser(ctx, n1.user.ID, "admin-revoke"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := n1.mustExchange(t, n1.code(t, b, nil), "")
			if !n2.active(t, tok.AccessToken) {
				t.Fatal("ok/live-on-node-2: node 2 says inactive before the revocation")
			}
			before := reads.n.Load()
			if !n2.active(t, tok.AccessToken) {
				t.Fatal("ok/live-on-node-2: node 2 says inactive before the revocation")
			}
			if n := reads.n.Load() - before; n != 0 {
				t.Fatalf("node 2 read the store %d times for a token it verified before: it is not answering from its cache, and the test proves nothing", n)
			}
			from := time.Now()
			tc.end(t, tok)
			for n2.active(t, tok.AccessToken) {
				if time.Since(from) > introspectBound {
					t.Fatalf("node 2 still says active %s after the revocation on node 1", introspectBound)
				}
				time.Sleep(10 * time.Millisecond) // between polls, not an assertion
			}
			t.Logf("node 2 answered inactive %s after the revocation", time.Since(from))
			if n1.active(t, tok.AccessToken) {
				t.Error("node 1 says active after its own revocation")
			}
		})
	}
}

// revoke revokes tok at the revocation endpoint as the web app.
func (s *oidcServer) revoke(t *testing.T, tok string) {
	t.Helper()
	resp, body := post(t, http.DefaultClient, s.base+"/oauth2/revoke", url.Values{"token": {tok}}, "Authorization", basicAuth(rpClientID, rpSecret))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: status %d: %s", resp.StatusCode, body)
	}
}

// kvReads counts a node's key/value reads; the store it wraps keeps
// its access mark (store.AccessWatch), so the node caches as in
// production.
type kvReads struct {
	*sqlstore.DB
	n atomic.Int64
}

func (k *kvReads) wrap(st store.Store) store.Store {
	k.DB = st.(*sqlstore.DB)
	return k
}

func (k *kvReads) GetKV(ctx context.Context, key string) (store.KVEntry, error) {
	k.n.Add(1)
	return k.DB.GetKV(ctx, key)
}

// TestAttackIntrospectionAcrossNodesAfterClientRemoval: two nodes share
// one PostgreSQL store. A service client added at run time gets a token
// for itself on node 1, which a resource server introspects on node 2
// until node 2 holds it as verified. An administrator removes the client
// on node 1 (its secret leaked, say): node 2 answers active:false within
// a bound, not when the token would have expired.
func TestAttackIntrospectionAcrossNodesAfterClientRemoval(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	n1 := startOIDCNode(t, dsn, "", true, nil)
	reads := &kvReads{}
	n2 := startOIDCNode(t, dsn, n1.base, false, reads.wrap)
	deadline := time.Now().Add(introspectBound)
	for _, ok := n2.app.Store.(store.AccessWatch).AccessMark(ctx); !ok; _, ok = n2.app.Store.(store.AccessWatch).AccessMark(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("node 2 is not listening for changes")
		}
		time.Sleep(10 * time.Millisecond) // between polls, not an assertion
	}
	_, secret, err := n1.app.Clients.Add(ctx, oidc.NewClient{ID: "batch", Name: "Batch jobs", GrantTypes: []string{"client_credentials"}})
	if err != nil {
		t.Fatal(err)
	}
	status, tok := n1.serviceToken(t, "batch", secret, "")
	if status != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", status, tok.Error)
	}
	for range 2 {
		if !n2.active(t, tok.AccessToken) {
			t.Fatal("ok/live-on-node-2: node 2 says inactive before the removal")
		}
	}
	before := reads.n.Load()
	if !n2.active(t, tok.AccessToken) {
		t.Fatal("ok/live-on-node-2: node 2 says inactive before the removal")
	}
	if n := reads.n.Load() - before; n != 0 {
		t.Fatalf("node 2 read the store %d times for a token it verified before: it is not answering from its cache, and the test proves nothing", n)
	}
	from := time.Now()
	if err := n1.app.Clients.Remove(ctx, "batch"); err != nil {
		t.Fatal(err)
	}
	for n2.active(t, tok.AccessToken) {
		if time.Since(from) > introspectBound {
			t.Fatalf("node 2 still says active %s after the client's removal on node 1", introspectBound)
		}
		time.Sleep(10 * time.Millisecond) // between polls, not an assertion
	}
	t.Logf("node 2 answered inactive %s after the removal", time.Since(from))
	if n1.active(t, tok.AccessToken) {
		t.Error("node 1 says active after its own removal of the client")
	}
}
