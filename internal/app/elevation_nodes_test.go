package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/users"
)

// startElevationNode starts one Stepgate node on the PostgreSQL store
// at dsn, its bank route admitting bank-admins only. The first node
// (seed) adds alice, the role and her eligibility to the shared store.
func startElevationNode(t *testing.T, dsn string, seed bool) *elevationRig {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "upstream") }))
	t.Cleanup(up.Close)
	var bank string
	s := startOver(t, dsn, nil, func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Server.Listen)
		bank = "http://bank.localhost:" + port
		cfg.Gateway.Routes = []config.GatewayRoute{{Name: "bank", From: bank, To: up.URL}}
		cfg.Elevation.Roles = []config.ElevationRole{{Role: "bank-admin", MaxDuration: config.Duration(2 * time.Hour)}}
	})
	ctx := context.Background()
	var u store.User
	var err error
	if seed {
		u, err = s.app.Users.Add(ctx, users.NewUser{Username: testUser, Password: testPassword})
		if err == nil {
			_, err = s.app.Users.AddRole(ctx, store.Role{Name: "bank-admin"})
		}
		if err == nil {
			_, err = s.app.Store.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra-bank", Role: "bank-admin",
				Kind: store.AssignEligible, Principal: store.UserPrincipal(u.ID)})
		}
	} else {
		u, err = s.app.Store.GetUserByName(ctx, testUser)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &elevationRig{gatewayRig: &gatewayRig{oidcServer: &oidcServer{server: s, user: u}, app: bank, upstream: &upstreamLog{}, upURL: up.URL},
		sg: s.app, bank: bank, clock: &testClock{}}
	r.usePolicies(t, elevationPolicies)
	return r
}

// TestElevationEndReachesSecondNode: two nodes share one PostgreSQL
// store; alice's browser is signed in to the bank through node 2, whose
// gateway caches her identity. Her elevation, activated and then
// deactivated on node 1, is honoured by node 2 once active and refused
// by it within a second of its end.
func TestElevationEndReachesSecondNode(t *testing.T) {
	dsn := pgtest.DSN(t)
	n1 := startElevationNode(t, dsn, true)
	n2 := startElevationNode(t, dsn, false)
	b := gatewayBrowser(t, n2.server)
	if st := n2.open(t, b, n2.bank+"/accounts"); st != http.StatusForbidden {
		t.Fatalf("fail/not-yet-elevated: node 2 answered %d, want 403", st)
	}
	// within polls node 2 until it answers want, for at most d after
	// from, and returns how long that took.
	within := func(want int, from time.Time, d time.Duration) time.Duration {
		t.Helper()
		for {
			st := n2.open(t, b, n2.bank+"/accounts")
			took := time.Since(from)
			if st == want {
				return took
			}
			if took > d {
				t.Fatalf("node 2 still answers %d %s after the change on node 1, want %d", st, took, want)
			}
			time.Sleep(10 * time.Millisecond) // between polls, not an assertion
		}
	}
	e := n1.activate(t, "bank-admin", time.Hour)
	t.Logf("activation reached node 2 after %s", within(http.StatusOK, time.Now(), 2*time.Second))

	from := time.Now()
	n1.deactivate(t, e)
	t.Logf("deactivation reached node 2 after %s", within(http.StatusForbidden, from, time.Second))
}
