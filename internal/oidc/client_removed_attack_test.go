package oidc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// acceptAnyClient is the check the wiring gives the registry, reduced to
// accepting: these tests are about removal, not registration.
func acceptAnyClient(ClientOptions) error { return nil }

// addBank registers, through cs, the client "bank" an administrator
// adds at run time: a web app that also gets tokens for itself.
func addBank(t *testing.T, cs *Clients) *Client {
	t.Helper()
	c, _, err := cs.Add(context.Background(), NewClient{ID: "bank", Name: "Bank", RedirectURIs: []string{testRedirect},
		GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAttackRemovedClientsTokensStayActive: an administrator removes a
// client (decommissioned, or its secret leaked) with `stepgate client
// remove`, from the command line, which is another process. Every token
// the client was issued, for a user or for itself, must stop working at
// once, whether introspection had it cached as verified or not; and a
// client registered later under the same id (another application, a
// new owner) must not inherit the tokens of the one removed.
func TestAttackRemovedClientsTokensStayActive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		service bool // the client's token for itself (client_credentials)
		// readd registers "bank" again after its removal.
		readd bool
	}{
		{name: "fail/user-token"},
		{name: "fail/service-token", service: true},
		{name: "fail/user-token-client-registered-again", readd: true},
		{name: "fail/service-token-client-registered-again", service: true, readd: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp := newFileProvider(t)
			cs, err := NewClients(tp.db, ClientsOptions{Declared: []ClientOptions{{
				ID: testClientID, Name: "Web app", Secret: testSecret, AuthMethod: AuthSecretBasic, RedirectURIs: []string{testRedirect},
				GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken},
			}}, Check: acceptAnyClient, Now: tp.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			tp.Clients = cs
			bank := addBank(t, cs)
			tp.clock.Add(time.Second)
			var out issued
			if tc.service {
				out, err = tp.mint(bank, store.User{ID: bank.ID, Username: bank.ID}, authState{UserID: bank.ID}, "", false)
			} else {
				grant, gerr := tp.newGrant(ctx, bank.ID, tp.user.ID)
				if gerr != nil {
					t.Fatal(gerr)
				}
				out, err = tp.mint(bank, tp.user, tp.authState("openid"), grant, false)
			}
			if err != nil {
				t.Fatal(err)
			}
			raw := out.AccessToken
			tp.requireCachedActive(t, raw)

			// The command line removes the client, from its own handle
			// on the database.
			tp.clock.Add(time.Second)
			other, err := sqlite.Open(ctx, tp.path, sqlite.Options{Now: tp.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			cli, err := NewClients(other, ClientsOptions{Check: acceptAnyClient, Now: tp.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if err := cli.Remove(ctx, bank.ID); err != nil {
				t.Fatal(err)
			}
			if tc.readd {
				tp.clock.Add(time.Second)
				addBank(t, cli)
			}
			if tp.active(t, raw) {
				t.Fatal("introspection says active for a token of a removed client")
			}
			if _, err := tp.VerifyAccessToken(ctx, raw); err == nil {
				t.Fatal("the token of a removed client verifies (the gateway, userinfo and the admin API would accept it)")
			} else if oe := (*Error)(nil); !errors.As(err, &oe) {
				t.Fatalf("verification failed with %v; want an invalid_token refusal, not a server error", err)
			}
		})
	}
}
