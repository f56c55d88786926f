package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/session"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/users"
)

// benchRolePolicy asks everyone but holders of r4 (which nobody holds)
// for a sign-in: both users' decisions apply it and look at their roles,
// so the two differ only in the roles worked out; both are allowed.
const benchRolePolicy = `
policies:
  - name: signed-in-unless-r4
    state: enabled
    users: {include: {users: [all]}, exclude: {roles: [r4]}}
    target: {apps: {include: [all]}}
    grant: {controls: [{strength: single-factor}]}
`

// elevationBench is a gateway bench with two users on the bank route:
// plain has no roles, elevated is eligible for r0..r4 and holds r0
// through an active elevation.
type elevationBench struct {
	*gatewayBench
	a       *app.App
	users   map[string]store.User
	cookies map[string]string
}

func newElevationBench(b *testing.B, mutate func(*config.Config)) *elevationBench {
	b.Helper()
	ctx := context.Background()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "user="+r.Header.Get("X-Stepgate-User"))
	}))
	b.Cleanup(up.Close)
	cfg := config.Default()
	cfg.Server.DataDir = b.TempDir()
	cfg.Server.Issuer = "http://localhost"
	cfg.Password.Argon2 = config.Argon2{Time: 1, MemoryKiB: 7168, Threads: 1}
	cfg.Gateway.Routes = []config.GatewayRoute{{Name: "bank", From: "http://bank.localhost", To: up.URL}}
	if mutate != nil {
		mutate(&cfg)
	}
	if probs := cfg.Validate(); len(probs) > 0 {
		b.Fatal(probs)
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	e := &elevationBench{gatewayBench: &gatewayBench{h: a.Handler(), issuer: "localhost", bank: "bank.localhost"}, a: a,
		users: map[string]store.User{}, cookies: map[string]string{}}
	for i := range 5 {
		if _, err := a.Users.AddRole(ctx, store.Role{Name: fmt.Sprintf("r%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	for _, name := range []string{"plain", "elevated"} {
		u, err := a.Users.Add(ctx, users.NewUser{Username: name, Password: testPassword})
		if err != nil {
			b.Fatal(err)
		}
		tok, _, err := a.Sessions.Start(ctx, httptest.NewRequest("GET", "/", nil), u.ID,
			store.AuthEvent{Method: "password", Time: time.Now().UTC(), AMR: []string{"pwd"}}, session.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		e.users[name] = u
		e.cookies[name] = e.handOff(b, "http://bank.localhost/", a.Sessions.CookieName()+"="+tok)
	}
	for i := range 5 {
		if _, err := a.Store.CreateRoleAssignment(ctx, store.RoleAssignment{ID: fmt.Sprintf("ra-%d", i), Role: fmt.Sprintf("r%d", i),
			Kind: store.AssignEligible, Principal: store.UserPrincipal(e.users["elevated"].ID)}); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// user is name as a fresh lookup finds it (grants included).
func (e *elevationBench) user(b *testing.B, name string) store.User {
	b.Helper()
	u, err := e.a.Store.GetUserByName(context.Background(), name)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// prove gives el's proof for u: a password and a TOTP code just now.
func (e *elevationBench) prove(b *testing.B, u store.User, id string) store.Elevation {
	b.Helper()
	now := time.Now()
	sess := store.Session{Events: []store.AuthEvent{
		{Method: "password", Time: now, AMR: []string{"pwd"}}, {Method: "totp", Time: now, AMR: []string{"otp"}},
	}}
	req := e.a.Access.Request(httptest.NewRequest("POST", "/account/roles", nil), u, &sess, elevate.App, now)
	el, v, err := e.a.Elevation.Prove(context.Background(), id, u, req, nil)
	if err != nil || v.Outcome != policy.OutcomeAllow {
		b.Fatalf("prove: %+v %v", v, err)
	}
	return el
}

// BenchmarkGatewayElevatedUser: a browser request through the gateway
// by a user with no roles, and by one eligible for 5 roles and holding
// one through an active elevation, which a policy targets (compare the
// two). The decision-core sub-benchmarks build the access request
// (roles for the app at now) and decide, without the allow memo or HTTP.
func BenchmarkGatewayElevatedUser(b *testing.B) {
	e := newElevationBench(b, nil)
	ctx := context.Background()
	doc, probs := policy.Parse("bench.yaml", []byte(benchRolePolicy))
	if len(probs) > 0 {
		b.Fatal(probs)
	}
	if probs := e.a.Policies.Reload(nil, doc); len(probs) > 0 {
		b.Fatal(probs)
	}
	u := e.user(b, "elevated")
	el, err := e.a.Elevation.Request(ctx, u, elevate.Ask{Role: "r0", Duration: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if el = e.prove(b, u, el.ID); el.State != store.ElevationActive {
		b.Fatalf("r0 is %s, want active", el.State)
	}
	for _, name := range []string{"plain", "elevated"} {
		label := map[string]string{"plain": "no-roles", "elevated": "5-eligible-1-active"}[name]
		b.Run("gateway/"+label, func(b *testing.B) {
			e.run(b, "http://bank.localhost/", http.Header{"Cookie": {e.cookies[name]}}, func(rec *httptest.ResponseRecorder) bool {
				return rec.Code == http.StatusOK && rec.Body.String() == "user="+name
			})
		})
		b.Run("decision/"+label, func(b *testing.B) {
			u := e.user(b, name)
			r := httptest.NewRequest("GET", "http://bank.localhost/", nil)
			sess := &store.Session{Events: []store.AuthEvent{{Method: "password", Time: time.Now(), AMR: []string{"pwd"}}}}
			snap := e.a.Policies.Load()
			b.ReportAllocs()
			for b.Loop() {
				req := e.a.Access.Request(r, u, sess, "bank", time.Now())
				if v, _ := access.Decide(access.Ask{Snapshot: snap, Request: req}, nil); v.Outcome != policy.OutcomeAllow {
					b.Fatalf("decision %+v", v)
				}
			}
		})
	}
}

// BenchmarkElevationActivation: activation end to end on SQLite, from
// the request through the proof and an approver's approval to the first
// request the gateway allows on the role (the bank admits bank-admins
// only). Ending the elevation between rounds is not timed.
func BenchmarkElevationActivation(b *testing.B) {
	e := newElevationBench(b, func(cfg *config.Config) {
		cfg.Elevation.Roles = []config.ElevationRole{{Role: "r0", Approvers: &config.ElevationApprovers{Group: "approvers", Count: 1}}}
	})
	ctx := context.Background()
	doc, probs := policy.Parse("bench.yaml", []byte(`
policies:
  - name: r0-only
    state: enabled
    users: {include: {users: [all]}, exclude: {roles: [r0]}}
    target: {apps: {include: [bank]}}
    grant: block
`))
	if len(probs) > 0 {
		b.Fatal(probs)
	}
	if probs := e.a.Policies.Reload(nil, doc); len(probs) > 0 {
		b.Fatal(probs)
	}
	if _, err := e.a.Users.AddGroup(ctx, store.Group{Name: "approvers"}); err != nil {
		b.Fatal(err)
	}
	boss, err := e.a.Users.Add(ctx, users.NewUser{Username: "boss", Password: testPassword, Groups: []string{"approvers"}})
	if err != nil {
		b.Fatal(err)
	}
	bank := "http://bank.localhost/"
	status := func() int { return e.do("GET", bank, e.cookies["elevated"], nil).StatusCode }
	if st := status(); st != http.StatusForbidden {
		b.Fatalf("before activation: %d, want 403", st)
	}
	b.ReportAllocs()
	for b.Loop() {
		u := e.user(b, "elevated")
		el, err := e.a.Elevation.Request(ctx, u, elevate.Ask{Role: "r0", Duration: time.Hour, Justification: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		e.prove(b, u, el.ID)
		if el, err = e.a.Elevation.Decide(ctx, el.ID, boss, true, "ok"); err != nil || el.State != store.ElevationActive {
			b.Fatalf("approve: %s %v", el.State, err)
		}
		if st := status(); st != http.StatusOK {
			b.Fatalf("first request after approval: %d, want 200", st)
		}
		b.StopTimer()
		if _, err := e.a.Elevation.Deactivate(ctx, el.ID, u, false, "bench"); err != nil {
			b.Fatal(err)
		}
		if st := status(); st != http.StatusForbidden {
			b.Fatalf("after deactivation: %d, want 403", st)
		}
		b.StartTimer()
	}
}
