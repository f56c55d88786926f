package oidc

import (
	"context"
	"testing"
)

// TestAddWithoutCheckRefuses is an attack on the wiring: a registry built
// without the configuration's check of a client must not register one
// unchecked (a redirect URI over plain http would hand codes to anyone
// on the network).
func TestAddWithoutCheckRefuses(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	clients, err := NewClients(tp.db, ClientsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := clients.Add(context.Background(), NewClient{ID: "evil", RedirectURIs: []string{"http://evil.example/cb"}}); err == nil {
		t.Fatal("a client was added with no check of it")
	}
	if _, err := clients.Get(context.Background(), "evil"); err == nil {
		t.Fatal("the unchecked client was stored")
	}
}

// TestDeclaredClientsAsGiven: a declared client is registered with the
// options the wiring translated, defaults included, and marked as the
// file's.
func TestDeclaredClientsAsGiven(t *testing.T) {
	t.Parallel()
	tp := newTestProvider(t)
	c := tp.client(t)
	if !c.FromConfig || c.AuthMethod != AuthSecretBasic || !c.Allows(GrantRefreshToken) || !c.checkSecret(testSecret) || !c.HasRedirectURI(testRedirect) {
		t.Fatalf("declared client %+v", c)
	}
}
