package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
)

func TestNewParsesEveryPage(t *testing.T) {
	t.Parallel()
	c, err := New(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range pageNames {
		if c.pages[name] == nil {
			t.Errorf("page %s is not parsed", name)
		}
	}
}

// TestChangeRule evaluates the built-in rule the way the console does:
// a console request needs a user-verified passkey (or a password and a
// passkey) from the last hour, and nothing less.
func TestChangeRule(t *testing.T) {
	t.Parallel()
	rule, err := compileChangeRule()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name string
		auth string
		want policy.Outcome
	}{
		{"ok/fresh-passkey", "webauthn:uv@-10m", policy.OutcomeAllow},
		{"ok/password-and-key", "pwd@-20m,webauthn@-5m", policy.OutcomeAllow},
		{"fail/no-proof", "", policy.OutcomeChallenge},
		{"fail/password-only", "pwd@-1m", policy.OutcomeChallenge},
		{"fail/totp-is-not-phishing-resistant", "pwd@-1m,totp@-1m", policy.OutcomeChallenge},
		{"fail/stale-passkey", "webauthn:uv@-61m", policy.OutcomeChallenge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := strength.ParseEvents(tc.auth, now)
			if err != nil {
				t.Fatal(err)
			}
			req := &policy.Request{Subject: policy.Subject{ID: "u1", Username: "root", Roles: []string{admin.Role}},
				App: admin.ConsoleApp, Events: ev, Now: now}
			d := rule.Evaluate(req, policy.EvaluateOptions{Explain: true})
			if d.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s (%+v)", d.Outcome, tc.want, d)
			}
			if len(d.Policies) != 1 || d.Policies[0].Policy != ChangeRuleName {
				t.Fatalf("results %+v, want the built-in rule's", d.Policies)
			}
		})
	}

	// Other apps are none of its business.
	d := rule.Evaluate(&policy.Request{Subject: policy.Subject{ID: "u1"}, App: "payroll", Now: now}, policy.EvaluateOptions{})
	if d.Outcome != policy.OutcomeAllow {
		t.Errorf("another app: %s, want allow", d.Outcome)
	}
}

func TestNiceStep(t *testing.T) {
	t.Parallel()
	for peak, want := range map[int]int{0: 1, 1: 1, 4: 1, 5: 2, 8: 2, 9: 5, 20: 5, 21: 10, 399: 100, 401: 200} {
		if got := niceStep(peak); got != want || 4*got < peak {
			t.Errorf("niceStep(%d) = %d, want %d", peak, got, want)
		}
	}
}

// TestTimeChartStacksWithinThePlot: the segments of the tallest bar fill
// the plot without leaving it, and a single event is still visible.
func TestTimeChartStacksWithinThePlot(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	o := admin.Overview{Bucket: time.Hour, Buckets: make([]admin.Bucket, 24)}
	for i := range o.Buckets {
		o.Buckets[i].Start = start.Add(time.Duration(i) * time.Hour)
	}
	o.Buckets[3] = admin.Bucket{Start: o.Buckets[3].Start, Allow: 300, Challenge: 80, Block: 15, Failure: 5}
	o.Buckets[4].Block = 1
	ch := newTimeChart(o)
	if len(ch.Bars) != 24 || len(ch.Labels) != 4 || len(ch.Grid) != 5 {
		t.Fatalf("%d bars, %d labels, %d grid lines", len(ch.Bars), len(ch.Labels), len(ch.Grid))
	}
	tall := ch.Bars[3].Segs
	if len(tall) != 4 || tall[len(tall)-1].Y < timeTop || tall[0].Y+tall[0].Height != ch.PlotBottom {
		t.Errorf("the tallest bar %+v leaves the plot (%d..%d)", tall, timeTop, ch.PlotBottom)
	}
	if got := ch.Bars[4].Segs; len(got) != 1 || got[0].Height < 1 || got[0].Class != "s-block" {
		t.Errorf("one block: %+v, want one visible block segment", got)
	}
	if ch.Grid[4].Label != "400" {
		t.Errorf("top grid line %q, want 400", ch.Grid[4].Label)
	}
	if !strings.Contains(ch.Bars[3].Title, "300 allowed, 80 challenged, 15 blocked, 5 failed") {
		t.Errorf("bar title %q", ch.Bars[3].Title)
	}
}

func TestNumberLinesHangsProblemsOnTheirLines(t *testing.T) {
	t.Parallel()
	lines := numberLines("policies:\n  - name: x\n    state: enabeld\n", "store:doc", []policy.Problem{
		{File: "store:doc", Line: 3, Path: "policies[0].state", Message: `"enabeld" is not a state`},
		{File: "other.yaml", Line: 3, Message: "elsewhere"},
	})
	if len(lines) != 3 || lines[2].N != 3 || !slices.Equal(lines[2].Problems, []string{`policies[0].state: "enabeld" is not a state`}) || len(lines[0].Problems) != 0 {
		t.Fatalf("%+v", lines)
	}
}

func TestBackToStaysInTheConsole(t *testing.T) {
	t.Parallel()
	for back, ok := range map[string]bool{
		"/admin": true, "/admin/policies": true, "/admin?period=7d": true, "/admin/users/bob": true,
		"/administrator": false, "//evil.example/admin": false, "https://evil.example/admin": false, "/account": false, "": false,
	} {
		r := httptest.NewRequest(http.MethodPost, "/admin/users/bob/revoke", strings.NewReader(url.Values{"back": {back}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := backTo(r) == back; got != ok {
			t.Errorf("back %q accepted = %v, want %v (got %q)", back, got, ok, backTo(r))
		}
	}
}
