package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/elevate"
	"github.com/stepgate/stepgate/internal/elevate/observe"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

const elevationHookSecret = "elevation-hook-secret-of-forty-characters"

// TestElevationIsWatched runs one elevation through the server's own
// wiring: each step is in the audit trail and the sign-in log (source
// elevation), the signed webhook receives the told steps, and /metrics
// shows the activation and the elevation active now, counted from the
// store.
func TestElevationIsWatched(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := observe.Verify(elevationHookSecret, r.Header.Get(observe.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook post does not verify: %v", err)
		}
		var b observe.Body
		_ = json.Unmarshal(body, &b)
		mu.Lock()
		kinds = append(kinds, b.Event.Kind)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	s := startWith(t, "", func(cfg *config.Config) {
		cfg.Elevation.Roles = []config.ElevationRole{{Role: "bank-admin", Approvers: &config.ElevationApprovers{Group: "admins"}}}
		cfg.Elevation.Webhook = config.ElevationWebhook{URL: hook.URL + "/hooks/T0/B0", Secret: elevationHookSecret}
	})
	ctx := context.Background()
	st := s.app.Store
	alice, bob := seedElevation(t, s)
	el := s.app.Elevation
	e, err := el.Request(ctx, alice, elevate.Ask{Role: "bank-admin", Justification: "INC-7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, v, err := el.Prove(ctx, e.ID, alice, totpProofs(alice), userMethods); err != nil || v.Outcome != policy.OutcomeAllow {
		t.Fatalf("prove: %s %v", v.Outcome, err)
	}
	if _, err := el.Decide(ctx, e.ID, bob, true, "go"); err != nil {
		t.Fatal(err)
	}

	entries, err := s.app.Audit.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, en := range entries {
		if strings.HasPrefix(en.Action, "elevation.") {
			actions = append(actions, en.Action+" "+en.Actor)
		}
	}
	if want := []string{"elevation.requested user:alice", "elevation.proven user:alice", "elevation.approved user:bob", "elevation.activated user:bob"}; !slices.Equal(actions, want) {
		t.Errorf("audit trail %v, want %v", actions, want)
	}

	flushSignIns(t, s)
	rows, err := st.ListSignIns(ctx, store.SignInQuery{App: elevate.App, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var decisions []string
	for _, row := range rows {
		en, err := audit.Decode(row)
		if err != nil || en.Source != "elevation" {
			t.Fatalf("entry %+v, %v", en, err)
		}
		decisions = append(decisions, en.Decision)
	}
	if want := []string{"activated", "approved", "proven", "requested"}; !slices.Equal(decisions, want) {
		t.Errorf("sign-in log (newest first) %v, want %v", decisions, want)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(kinds)
		mu.Unlock()
		if slices.Equal(got, []string{"proven", "approved", "activated"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook received %v, want proven, approved, activated", got)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The receiver has the third post; its count follows the answer.
	var body string
	for range 100 {
		if _, body = get(t, http.DefaultClient, s.base+"/metrics"); strings.Contains(body, `result="delivered"} 3`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{
		`stepgate_elevation_activations_total{role="bank-admin"} 1`,
		`stepgate_elevations_active{role="bank-admin"} 1`,
		`stepgate_elevation_approval_seconds_count{role="bank-admin"} 1`,
		`stepgate_elevation_notices_total{channel="webhook",result="delivered"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestConsoleShowsElevationSteps: the console's sign-in log lists the
// steps of an elevation (filterable by their decision, with the role),
// explains one with its role, request, actor and comment, and the
// overview still renders with them in the log.
func TestConsoleShowsElevationSteps(t *testing.T) {
	s := startConsole(t)
	c := s.login(t, adminName, adminPassword)
	at := time.Now().UTC()
	ev := elevate.Event{Kind: elevate.Approved, Requester: s.bob, Actor: s.admin.ID, ActorName: adminName, Comment: "go <b>ahead</b>", At: at,
		Elevation: store.Elevation{ID: "elv_console", UserID: s.bob.ID, Role: "bank-admin", State: store.ElevationActive, ActivatedAt: at, Until: at.Add(time.Hour)}}
	if err := s.app.SignIns.Write(context.Background(), observe.SignInEntry(ev)); err != nil {
		t.Fatal(err)
	}
	row := s.lastEntry(t, store.SignInQuery{App: elevate.App, Decision: "approved"})

	resp, body := get(t, c, s.base+"/admin/signins?decision=approved")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-seq="`+strconv.FormatInt(row.Seq, 10)+`"`) ||
		!strings.Contains(body, `<span class="badge ok">approved</span>`) || !strings.Contains(body, `<span class="tag">bank-admin</span>`) ||
		!strings.Contains(body, `<option selected>approved</option>`) {
		t.Errorf("the sign-in log does not list the approval: status %d\n%s", resp.StatusCode, body)
	}
	resp, body = get(t, c, s.base+"/admin/signins/"+strconv.FormatInt(row.Seq, 10))
	for _, want := range []string{"elv_console", "user:root", "go &lt;b&gt;ahead&lt;/b&gt;", "elevation-approved", "An approver approved", "Active until"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("the entry's page (status %d) lacks %q:\n%s", resp.StatusCode, want, body)
		}
	}
	if resp, _ := get(t, c, s.base+"/admin"); resp.StatusCode != http.StatusOK {
		t.Errorf("the overview: status %d", resp.StatusCode)
	}
}

// seedElevation makes alice eligible for bank-admin, and bob a member of
// admins, its approvers.
func seedElevation(t *testing.T, s *server) (alice, bob store.User) {
	t.Helper()
	ctx := context.Background()
	st := s.app.Store
	if _, err := st.CreateGroup(ctx, store.Group{Name: "admins"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRole(ctx, store.Role{Name: "bank-admin"}); err != nil {
		t.Fatal(err)
	}
	alice, err := st.CreateUser(ctx, store.User{ID: "u-alice", Username: "alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err = st.CreateUser(ctx, store.User{ID: "u-bob", Username: "bob", Groups: []string{"admins"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra-1", Role: "bank-admin", Kind: store.AssignEligible, Principal: store.UserPrincipal(alice.ID)}); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// totpProofs is u's access request after a password and a TOTP code
// just now.
func totpProofs(u store.User) *policy.Request {
	now := time.Now()
	return &policy.Request{Subject: policy.Subject{ID: u.ID, Username: u.Username}, ClientApp: policy.ClientBrowser, Now: now,
		Events: []strength.Event{{Method: "password", Time: now.Add(-time.Minute), AMR: []string{"pwd"}}, {Method: "totp", Time: now, AMR: []string{"otp"}}}}
}

func userMethods() ([]string, error) { return []string{"password", "totp"}, nil }

// TestPoliciesTargetActivation: activation is the app stepgate-elevation,
// which a policy file may name (the server loads it), and the policy
// decides what activation takes: here a passkey, so a password and a
// TOTP code are not enough.
func TestPoliciesTargetActivation(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policies.yaml")
	writePolicy(t, file, `policies:
  - name: activation-needs-a-passkey
    state: enabled
    users: {include: {users: [all]}}
    target: {apps: {include: [stepgate-elevation]}}
    grant: {controls: [{strength: phishing-resistant}]}
`)
	s := startWith(t, "", func(cfg *config.Config) {
		cfg.Policy.Files = []string{file}
		cfg.Elevation.Roles = []config.ElevationRole{{Role: "bank-admin", Approvers: &config.ElevationApprovers{Group: "admins"}}}
	})
	alice, _ := seedElevation(t, s)
	ctx := context.Background()
	e, err := s.app.Elevation.Request(ctx, alice, elevate.Ask{Role: "bank-admin"})
	if err != nil {
		t.Fatal(err)
	}
	got, v, err := s.app.Elevation.Prove(ctx, e.ID, alice, totpProofs(alice), userMethods)
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome == policy.OutcomeAllow || !got.ProvenAt.IsZero() {
		t.Fatalf("a TOTP code proved an activation the policy asks a passkey for: %s", v.Outcome)
	}
}
