package observe_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/metrics"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixture is a store with alice eligible for bank-admin, whose
// activation the members of admins approve (bob and carol; carol is
// disabled), with sec@example.com told of everything.
type fixture struct {
	st                *sqlstore.DB
	clock             *testClock
	alice, bob, carol store.User
	roles             func(string) elevate.Role
}

const role = "bank-admin"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	clock := &testClock{now: time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.CreateGroup(ctx, store.Group{Name: "admins"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRole(ctx, store.Role{Name: role}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, clock: clock}
	for _, u := range []struct {
		into     *store.User
		name     string
		groups   []string
		disabled bool
	}{{&f.alice, "alice", nil, false}, {&f.bob, "bob", []string{"admins"}, false}, {&f.carol, "carol", []string{"admins"}, true}} {
		created, err := st.CreateUser(ctx, store.User{ID: "u-" + u.name, Username: u.name, Email: u.name + "@example.com", Groups: u.groups, Disabled: u.disabled})
		if err != nil {
			t.Fatal(err)
		}
		*u.into = created
	}
	if _, err := st.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra-1", Role: role, Kind: store.AssignEligible, Principal: store.UserPrincipal(f.alice.ID)}); err != nil {
		t.Fatal(err)
	}
	f.roles = func(name string) elevate.Role {
		return elevate.Role{Name: name, MaxDuration: time.Hour,
			Approvers: &elevate.Approvers{Group: "admins", Count: 1, Expire: time.Hour}, Notify: []string{"sec@example.com"}}
	}
	return f
}

// service is the elevation service over the fixture, with observers.
func (f *fixture) service(t *testing.T, observers ...elevate.Observer) *elevate.Service {
	t.Helper()
	empty, probs := policy.Compile(nil)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	checker, err := elevate.NewChecker(func() *policy.Snapshot { return empty })
	if err != nil {
		t.Fatal(err)
	}
	return &elevate.Service{Store: f.st, Roles: f.roles, Proofs: checker, MaxPending: 5, Observers: observers, Now: f.clock.Now}
}

// ask requests bank-admin for alice and proves it with a fresh TOTP.
func (f *fixture) ask(t *testing.T, s *elevate.Service, justification string) store.Elevation {
	t.Helper()
	ctx := context.Background()
	e, err := s.Request(ctx, f.alice, elevate.Ask{Role: role, Duration: 30 * time.Minute, Justification: justification})
	if err != nil {
		t.Fatal(err)
	}
	e, v, err := s.Prove(ctx, e.ID, f.alice, f.proofs(), f.methods)
	if err != nil || v.Outcome != policy.OutcomeAllow {
		t.Fatalf("prove: %v %v", v.Outcome, err)
	}
	return e
}

func (f *fixture) proofs() *policy.Request {
	now := f.clock.Now()
	return &policy.Request{
		Subject: policy.Subject{ID: f.alice.ID, Username: f.alice.Username}, ClientApp: policy.ClientBrowser, Now: now,
		Events: []strength.Event{
			{Method: "password", Time: now.Add(-2 * time.Minute), AMR: []string{"pwd"}},
			{Method: "totp", Time: now.Add(-time.Minute), AMR: []string{"otp"}},
		},
	}
}

func (f *fixture) methods() ([]string, error) { return []string{"password", "totp"}, nil }

var _ access.MethodSource = (*fixture)(nil).methods

// exposition is what /metrics serves.
func exposition(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// hasLines fails unless out holds every line.
func hasLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !slices.Contains(strings.Split(out, "\n"), l) {
			t.Errorf("missing %q in:\n%s", l, out)
		}
	}
}
