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

// TestAttackDisabledUsersTokenWithoutRevocation: disabling an account
// writes the user's disabled flag, then a revocation of their tokens: two
// writes. Were the second to fail (the database went away between them,
// the process was killed), or were the flag set by anything that writes
// users alone, the account would read as disabled while its tokens,
// cached as verified or not, still answered active. A token is refused
// for its user's disabled flag itself.
func TestAttackDisabledUsersTokenWithoutRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		roles, deleted bool
	}{
		{name: "fail/token-without-roles"},
		{name: "fail/token-with-roles", roles: true},
		// A user removed from the database (a clean-up beside the
		// product) leaves a token whose subject is no user: it must not
		// pass for a service client's token, whose subject is no user
		// either, and be judged as one.
		{name: "fail/user-deleted", deleted: true},
	} {
		roles := tc.roles
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp := newFileProvider(t)
			if roles {
				if _, err := tp.db.UpdateUser(ctx, tp.user.ID, func(u store.User) (store.User, error) {
					u.Roles = []string{"auditor"}
					return u, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			raw := tp.mintAccess(t, roles)
			tp.requireCachedActive(t, raw)
			other, err := sqlite.Open(ctx, tp.path, sqlite.Options{Now: tp.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if tc.deleted {
				err = other.DeleteUser(ctx, tp.user.ID)
			} else {
				_, err = other.UpdateUser(ctx, tp.user.ID, func(u store.User) (store.User, error) {
					u.Disabled = true
					return u, nil
				})
			}
			if err != nil {
				t.Fatal(err)
			}
			if tp.active(t, raw) {
				t.Fatal("introspection says active for the token of a user disabled or gone")
			}
			if _, err := tp.VerifyAccessToken(ctx, raw); err == nil {
				t.Fatal("the token verifies (the gateway would judge it; with no user found, as a service client's)")
			}
		})
	}
}
