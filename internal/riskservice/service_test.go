package riskservice

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/risk"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// clock is a test clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// revocations records what the service revoked.
type revocations struct {
	mu   sync.Mutex
	list []string // "userID:reason"
}

func (r *revocations) RevokeUser(_ context.Context, userID, reason string) error {
	r.mu.Lock()
	r.list = append(r.list, userID+":"+reason)
	r.mu.Unlock()
	return nil
}

func (r *revocations) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// detections counts what the service reported to the metrics.
type detections struct {
	mu      sync.Mutex
	reasons []string
}

func (d *detections) Detection(reason, _ string) {
	d.mu.Lock()
	d.reasons = append(d.reasons, reason)
	d.mu.Unlock()
}

type rig struct {
	svc     *Service
	st      store.Store
	clock   *clock
	revoked *revocations
	metrics *detections
}

// newRig builds a service over a fresh SQLite store; edit adjusts its
// options first.
func newRig(t *testing.T, edit func(*Options)) *rig {
	t.Helper()
	c := &clock{now: time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rg := &rig{st: st, clock: c, revoked: &revocations{}, metrics: &detections{}}
	o := Options{
		Detectors: risk.Config{MaxSpeedKmh: 1000, LearningSignIns: 5, SprayThreshold: 3, BruteForceThreshold: 10},
		LowAgeOut: 7 * 24 * time.Hour, Store: st, Revoker: rg.revoked, Metrics: rg.metrics, Now: c.Now,
	}
	if edit != nil {
		edit(&o)
	}
	if rg.svc, err = New(o); err != nil {
		t.Fatal(err)
	}
	return rg
}

// request is a sign-in from ip with a desktop Firefox.
func request(ip string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.RemoteAddr = ip + ":40000"
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	return r
}

func TestNewNeedsAStore(t *testing.T) {
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "store") {
		t.Fatalf("New without a store: %v, want an error naming the store", err)
	}
}

// TestUserRisk: what raises, remediates, confirms and dismisses a user's
// risk, and which changes end the user's sessions.
func TestUserRisk(t *testing.T) {
	ctx := context.Background()
	medium := risk.Detection{Type: "test", Level: risk.Medium, Reason: "test"}
	high := risk.Detection{Type: risk.TypeLeaked, Level: risk.High, Reason: risk.ReasonLeakedPassword}
	for _, tc := range []struct {
		name        string
		do          func(s *Service)
		wantLevel   string
		wantRevoked []string
	}{
		{"ok/medium-is-not-revoked", func(s *Service) { s.Raise(ctx, "u1", medium) }, "medium", nil},
		{"ok/high-revokes-once", func(s *Service) { s.Raise(ctx, "u1", high); s.Raise(ctx, "u1", high) }, "high", []string{"u1:risk-high"}},
		{"ok/fraud-report-is-high", func(s *Service) { s.FraudReported(ctx, "u1") }, "high", []string{"u1:risk-high"}},
		{"ok/security-change-report-is-high", func(s *Service) { s.SecurityChangeReported(ctx, "u1") }, "high", []string{"u1:risk-high"}},
		{"ok/secure-password-change-remediates", func(s *Service) {
			s.Raise(ctx, "u1", medium)
			s.PasswordChanged(ctx, "u1", true)
		}, "", nil},
		// A thief with the password alone must not clear the risk their
		// own sign-in raised by changing the password.
		{"fail/password-change-without-mfa-keeps-risk", func(s *Service) {
			s.Raise(ctx, "u1", medium)
			s.PasswordChanged(ctx, "u1", false)
		}, "medium", nil},
		{"ok/confirmed-compromised", func(s *Service) {
			if err := s.SetUserRisk(ctx, "u1", true); err != nil {
				t.Fatal(err)
			}
		}, "high", []string{"u1:confirmed-compromised"}},
		{"ok/dismissed", func(s *Service) {
			s.Raise(ctx, "u1", medium)
			if err := s.SetUserRisk(ctx, "u1", false); err != nil {
				t.Fatal(err)
			}
		}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t, nil)
			if got := rg.svc.UserRisk(ctx, "u1"); got != "" {
				t.Fatalf("risk before: %q, want none", got)
			}
			tc.do(rg.svc)
			// Read at once: a change on this node drops the cached answer.
			if got := rg.svc.UserRisk(ctx, "u1"); got != tc.wantLevel {
				t.Errorf("risk after: %q, want %q", got, tc.wantLevel)
			}
			if got := rg.revoked.all(); !slices.Equal(got, tc.wantRevoked) {
				t.Errorf("revoked %v, want %v", got, tc.wantRevoked)
			}
			if got := rg.svc.UserRisk(ctx, "u2"); got != "" {
				t.Errorf("another user's risk: %q, want none", got)
			}
		})
	}
}

// TestUserRiskCacheOnAnotherNode: a node that read a user's risk answers
// from its cache for at most userRiskTTL after another node raised it.
func TestUserRiskCacheOnAnotherNode(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t, nil)
	other, err := New(Options{Store: rg.st, Now: rg.clock.Now, LowAgeOut: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got := rg.svc.UserRisk(ctx, "u1"); got != "" {
		t.Fatalf("risk before: %q", got)
	}
	other.Raise(ctx, "u1", risk.Detection{Type: "test", Level: risk.Medium, Reason: "test"})
	if got := rg.svc.UserRisk(ctx, "u1"); got != "" {
		t.Fatalf("within the cache's life: %q, want the cached none", got)
	}
	rg.clock.Add(userRiskTTL)
	if got := rg.svc.UserRisk(ctx, "u1"); got != "medium" {
		t.Fatalf("after the cache's life: %q, want medium", got)
	}
}

// TestSprayCountsUnknownNames performs a password spray over names that
// are no accounts: each still counts, so the sprayer's later sign-in to a
// real account from the same network is flagged high.
func TestSprayCountsUnknownNames(t *testing.T) {
	rg := newRig(t, nil)
	for _, name := range []string{"nobody1", "nobody2", " NoBody3 "} {
		rg.svc.Failed(request("203.0.113.7"), name)
		rg.clock.Add(time.Second)
	}
	alice := store.User{ID: "u-alice", Username: "alice"}
	level, found := rg.svc.SignedIn(request("203.0.113.99"), alice, "correct horse", "")
	if level != "high" || len(found) == 0 || found[0].Type != risk.TypeSpray {
		t.Fatalf("sign-in after the spray: %q %v, want high password-spray", level, found)
	}
	if !slices.Contains(rg.metrics.reasons, risk.ReasonPasswordSpray) {
		t.Errorf("metrics saw %v, want %s", rg.metrics.reasons, risk.ReasonPasswordSpray)
	}
	// The risky sign-in does not join the history until remediated.
	if _, err := rg.st.GetKV(context.Background(), recentKey(alice.ID)); err == nil {
		t.Errorf("a risky sign-in joined the history before any further proof")
	}

	// From another network nothing is flagged.
	if level, found := rg.svc.SignedIn(request("198.51.100.4"), alice, "correct horse", ""); level != "" {
		t.Errorf("sign-in from another network: %q %v, want none", level, found)
	}
}

// TestHistoryKeepsHashedDevice: a sign-in without risk joins the history
// at once, with a hash of the device cookie, never its value.
func TestHistoryKeepsHashedDevice(t *testing.T) {
	rg := newRig(t, nil)
	const device = "device-cookie-secret-value"
	if level, _ := rg.svc.SignedIn(request("192.0.2.1"), store.User{ID: "u1", Username: "bob"}, "pw", device); level != "" {
		t.Fatalf("first sign-in: %q, want none", level)
	}
	e, err := rg.st.GetKV(context.Background(), recentKey("u1"))
	if err != nil {
		t.Fatalf("history after a sign-in without risk: %v", err)
	}
	if strings.Contains(string(e.Value), device) {
		t.Fatalf("the history holds the device cookie's value: %s", e.Value)
	}
	if !strings.Contains(string(e.Value), "firefox") {
		t.Errorf("the history lacks the browser: %s", e.Value)
	}
}

// TestRemediatedJoinsHistory: the risky sign-in's place becomes familiar
// only after the further proof.
func TestRemediatedJoinsHistory(t *testing.T) {
	rg := newRig(t, nil)
	ctx := context.Background()
	rg.svc.Remediated(request("192.0.2.1"), store.Session{UserID: "u1", Events: []store.AuthEvent{{Time: rg.clock.Now()}}})
	if _, err := rg.st.GetKV(ctx, recentKey("u1")); err == nil {
		t.Fatal("a sign-in without risk was added again on remediation")
	}
	rg.svc.Remediated(request("192.0.2.1"), store.Session{UserID: "u1", Events: []store.AuthEvent{{Time: rg.clock.Now(), Risk: "medium"}}})
	if _, err := rg.st.GetKV(ctx, recentKey("u1")); err != nil {
		t.Fatalf("a remediated sign-in did not join the history: %v", err)
	}
}

// TestReloadChangedLists: a threat feed refreshed in place is read again;
// one that no longer parses keeps the previous lists.
func TestReloadChangedLists(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "tor.txt")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("192.0.2.0/24\n")
	rg := newRig(t, func(o *Options) {
		o.IPLists = []IPList{{Name: "tor", File: file, Level: risk.High, Key: "risk.ip_lists[0]"}}
	})
	levelFrom := func(ip string) string {
		t.Helper()
		level, _ := rg.svc.SignedIn(request(ip), store.User{ID: "u-" + ip, Username: "u"}, "pw", "")
		return level
	}
	if got := levelFrom("192.0.2.9"); got != "high" {
		t.Fatalf("listed address: %q, want high", got)
	}
	if err := rg.svc.ReloadChangedLists(ctx); err != nil {
		t.Fatalf("unchanged lists: %v", err)
	}

	write("not an address at all\n")
	err := rg.svc.ReloadChangedLists(ctx)
	if err == nil || !strings.Contains(err.Error(), "risk.ip_lists[0]") || !strings.Contains(err.Error(), "keeping the previous lists") {
		t.Fatalf("broken list: %v, want an error naming the entry", err)
	}
	if got := levelFrom("192.0.2.10"); got != "high" {
		t.Fatalf("after a broken reload: %q, want the previous lists (high)", got)
	}
	if err := rg.svc.ReloadChangedLists(ctx); err != nil {
		t.Fatalf("the same broken file is reported once: %v", err)
	}

	write("198.51.100.0/24\n# moved\n")
	if err := rg.svc.ReloadChangedLists(ctx); err != nil {
		t.Fatal(err)
	}
	if got := levelFrom("198.51.100.9"); got != "high" {
		t.Errorf("newly listed address: %q, want high", got)
	}
	if got := levelFrom("192.0.2.11"); got != "" {
		t.Errorf("address no longer listed: %q, want none", got)
	}
}

func TestNewRefusesAMissingListFile(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	_, err = New(Options{Store: st, IPLists: []IPList{{Name: "x", File: filepath.Join(t.TempDir(), "missing"), Level: risk.Low, Key: "risk.ip_lists[2]"}}})
	if err == nil || !strings.Contains(err.Error(), "risk.ip_lists[2].file") {
		t.Fatalf("missing list file: %v, want an error naming risk.ip_lists[2].file", err)
	}
}

func TestBrowserOf(t *testing.T) {
	for _, tc := range []struct{ ua, want string }{
		{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "firefox"},
		{"Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36 Edg/126.0", "edge"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", "chrome"},
		{"Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15", "safari"},
		{"curl/8.5.0", "other"},
		{"", ""},
	} {
		if got := browserOf(tc.ua); got != tc.want {
			t.Errorf("browserOf(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}

// recentKey is where the user's recent sign-ins are stored.
func recentKey(userID string) string {
	k, _ := kvspace.RiskRecent.Key(userID)
	return k
}
