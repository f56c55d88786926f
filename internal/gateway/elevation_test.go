package gateway

import (
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/oauth"
	"github.com/stepgate/stepgate/internal/store"
)

// TestMemoNeverOutlivesElevatedRole: the headers and assertions kept for
// a cached identity carry an elevated role only until it ends. The
// assertion signed just before the end expires at it (not a full
// lifetime later), and the first request at the end, from the same
// memo, gets an assertion without the role; the role never counts on
// another app, nor on a clock set back before it began.
func TestMemoNeverOutlivesElevatedRole(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	until := start.Add(time.Hour)
	var now atomic.Pointer[time.Time]
	set := func(t time.Time) { now.Store(&t) }
	set(until.Add(-10 * time.Second))
	signer := &recordingSigner{}
	g, err := New(Deps{
		Issuer: "https://id.example", Signer: signer, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return *now.Load() },
		Options: Options{AssertionLifetime: 30 * time.Second, Routes: []Route{
			{Name: "bank", From: "https://bank.example", To: "http://bank.internal:9001"},
			{Name: "wiki", From: "https://wiki.example", To: "http://wiki.internal:9002"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	bank, wiki := g.routes[0], g.routes[1]
	if bank.name != "bank" {
		bank, wiki = wiki, bank
	}
	alice := &identity{memo: &identityMemo{},
		user: store.User{ID: "u1", Username: "alice", Roles: []string{"staff"}, Grants: []store.Grant{
			{Role: "bank-admin", Scope: []string{"bank"}, Since: start, Until: until, Elevation: "elv_1"},
		}},
		token: &oauth.AccessClaims{Claims: jwt.Claims{ID: "jti-1", Subject: "u1"}, ACR: "mfa"}}
	roles := func(rt *route) ([]string, time.Time) {
		t.Helper()
		g.identityHeaders(rt, alice, upstreamKey("GET", "/"), func(string, string) {})
		c := signer.last()
		return c.Roles, c.Expiry.Time()
	}

	if got, _ := roles(wiki); slices.Contains(got, "bank-admin") {
		t.Fatalf("fail/other-app: roles %q", got)
	}
	if got, exp := roles(bank); !slices.Equal(got, []string{"staff", "bank-admin"}) || exp.After(until) {
		t.Fatalf("ok/before-end: roles %q expiring %v; want bank-admin, expiring by %v", got, exp, until)
	}
	set(until)
	if got, _ := roles(bank); slices.Contains(got, "bank-admin") {
		t.Fatalf("fail/at-end-from-memo: roles %q", got)
	}
	set(start.Add(-time.Second))
	alice.memo = &identityMemo{}
	if got, _ := roles(bank); slices.Contains(got, "bank-admin") {
		t.Fatalf("fail/clock-set-back: roles %q", got)
	}
}
