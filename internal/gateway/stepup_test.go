package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/access"
	"github.com/stepgate/stepgate/internal/secrets"
	"github.com/stepgate/stepgate/internal/store"
)

// stepUpRig is a reaskRig whose gateway has the bank's compiled routes
// and a box for kept requests.
func stepUpRig(t *testing.T) *reaskRig {
	t.Helper()
	rig := newReaskRig(t)
	routes, err := compileRoutes([]Route{{Name: "bank", From: "http://bank.example", To: "http://127.0.0.1:9",
		Rules: []Rule{
			{Path: "/transfers", Methods: []string{"POST"}, Context: "c2"},
			{Path: "/admin/*", Context: "c3", SingleUse: true},
			{Path: "/limits", Context: "c2", MaxAge: 5 * time.Minute},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	rig.g.routes, rig.g.Box, rig.g.Options.ReplayBodyLimit = routes, box, 1<<10
	// The configuration's defaults.
	rig.g.Options.KeptRequests = KeptRequests{MaxCount: 1000, MaxBytes: 64 << 20, PerAddress: 30, Window: 10 * time.Minute,
		AnonymousBodyLimit: 64 << 10, AnonymousMaxCount: 200, AnonymousMaxBytes: 8 << 20, AnonymousPerAddress: 10}
	return rig
}

// keepPost keeps a POST of path for user, as a challenge does, and
// returns the kept request's id.
func (rig *reaskRig) keepPost(t *testing.T, path string, u store.User) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://bank.example"+path, strings.NewReader("amount=100"))
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	id, ok := rig.g.keep(httptest.NewRecorder(), r, rig.g.routes[0], path, &u, strings.Repeat("0", 64), "")
	if !ok {
		t.Fatal("the request was not kept")
	}
	return id
}

func startAddress(target, kept string) string {
	q := url.Values{"route": {"bank"}, "target": {target}, "b": {strings.Repeat("0", 64)}}
	if kept != "" {
		q.Set("kept", kept)
	}
	return "/gateway/start?" + q.Encode()
}

// TestStepUpForDescribesFromConfig: what the step-up page states comes
// from the compiled routes, the policies and the session, never from the
// address: editing it can name another request of the user's own, but
// cannot invent a requirement, borrow another user's kept request or
// point outside the route.
func TestStepUpForDescribesFromConfig(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodGet, "http://stepgate.example/stepup", nil)
	tests := []struct {
		name     string
		setup    func(t *testing.T, rig *reaskRig) string // returns the return address
		ok       bool
		contexts string
		need     string // the first requirement's first need
		reask    access.Reask
		met      bool
	}{
		{name: "ok/kept-post-c2", setup: func(t *testing.T, rig *reaskRig) string {
			rig.prove("password", 0)
			return startAddress("/transfers", rig.keepPost(t, "/transfers", rig.user))
		}, ok: true, contexts: "Transfer", need: "mfa"},
		{name: "attack/target-without-kept-is-a-get", setup: func(_ *testing.T, rig *reaskRig) string {
			rig.prove("password", 0)
			// The c2 rule is for POST: a GET of the same path needs
			// only the sign-in the session has.
			return startAddress("/transfers", "")
		}, ok: true, met: true},
		{name: "attack/another-users-kept-request", setup: func(t *testing.T, rig *reaskRig) string {
			rig.prove("password", 0)
			return startAddress("/transfers", rig.keepPost(t, "/transfers", store.User{ID: "u-other"}))
		}, ok: true, met: true},
		{name: "ok/single-use-reask", setup: func(_ *testing.T, rig *reaskRig) string {
			rig.prove("password", 0)
			rig.prove("webauthn", time.Minute) // the passkey answered an earlier challenge
			rig.now = rig.at(2 * time.Minute)
			return startAddress("/admin/users", "")
		}, ok: true, contexts: "Admin", need: "strength phishing-resistant", reask: access.ReaskSingleUse},
		{name: "ok/max-age", setup: func(_ *testing.T, rig *reaskRig) string {
			rig.prove("password", 0)
			rig.prove("totp", time.Minute)
			rig.now = rig.at(30 * time.Minute)
			return startAddress("/limits", "")
		}, ok: true, contexts: "Transfer", need: "mfa", reask: access.ReaskMaxAge},
		{name: "fail/unknown-route", setup: func(*testing.T, *reaskRig) string {
			return "/gateway/start?route=payroll&target=%2Fx"
		}},
		{name: "fail/target-off-host", setup: func(*testing.T, *reaskRig) string { return startAddress("//evil.example/x", "") }},
		{name: "fail/not-a-hand-off", setup: func(*testing.T, *reaskRig) string { return "/account/security" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := stepUpRig(t)
			back := tc.setup(t, rig)
			before := len(rig.kv.m)
			ask, ok := rig.g.StepUpFor(req, rig.user, rig.sess, back)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if len(rig.kv.m) != before {
				t.Fatal("describing a step-up changed the store (a kept request taken, a proof spent)")
			}
			if !ok {
				return
			}
			var names []string
			for _, c := range ask.Contexts {
				names = append(names, c.Name)
			}
			if strings.Join(names, ",") != tc.contexts || ask.App != "bank" || ask.Reask != tc.reask || ask.Blocked {
				t.Fatalf("app %q contexts %v reask %q blocked %v, want bank %q %q", ask.App, names, ask.Reask, ask.Blocked, tc.contexts, tc.reask)
			}
			if tc.met {
				if len(ask.Missing) != 0 {
					t.Fatalf("missing %+v, want nothing", ask.Missing)
				}
				return
			}
			if len(ask.Missing) == 0 || ask.Missing[0].AnyOf[0].String() != tc.need && !strings.HasPrefix(ask.Missing[0].AnyOf[0].String(), tc.need+" ") {
				t.Fatalf("missing %+v, want %s", ask.Missing, tc.need)
			}
			if tc.reask == access.ReaskMaxAge && ask.MaxAge != 5*time.Minute {
				t.Fatalf("max age %v, want the rule's 5m", ask.MaxAge)
			}
		})
	}
}
