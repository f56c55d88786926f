package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// gatewayEntries returns the gateway's sign-in log entries for the bank
// route, oldest first, once everything queued is written.
func (g *gatewayRig) gatewayEntries(t *testing.T) []audit.SignIn {
	t.Helper()
	ctx := context.Background()
	if err := g.server.app.SignIns.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var out []audit.SignIn
	err := audit.WalkSignIns(ctx, g.server.app.Store, store.SignInQuery{App: "bank"}, 0, func(row store.SignIn) error {
		e, err := audit.Decode(row)
		if err == nil && e.Source == "gateway" { // the OIDC client bank logs under the same app
			out = append(out, e)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(out)
	return out
}

// resultOf returns the named policy's result in e.
func resultOf(e audit.SignIn, name string) (policy.PolicyResult, bool) {
	i := slices.IndexFunc(e.Policies, func(p policy.PolicyResult) bool { return p.Policy == name })
	if i < 0 {
		return policy.PolicyResult{}, false
	}
	return e.Policies[i], true
}

// signedInGateway signs a new browser in through the gateway with a
// routine read.
func (g *gatewayRig) signedInGateway(t *testing.T) *http.Client {
	t.Helper()
	b := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, body := g.walk(t, b, mustDo(t, b, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in through the gateway: %d %q", resp.StatusCode, body)
	}
	return b
}

// TestGatewayLogsStepUp: a transfer that needs c2 is logged once as a
// challenge, with the context, the methods offered and each policy's
// result; the replay after the step-up is logged as an allow.
func TestGatewayLogsStepUp(t *testing.T) {
	g := startGateway(t)
	b := g.signedInGateway(t)
	secret := g.enrollTOTP(t, b)
	if n := len(g.gatewayEntries(t)); n != 0 {
		t.Fatalf("signing in with a routine read left %d gateway entries, want none", n)
	}

	transfer := mustDo(t, b, "POST", g.app+"/transfers", "amount=100", "X-Request-Id", "req-4711")
	resp, body := g.walk(t, b, transfer, func(loc *url.URL) *http.Response {
		_, page := get(t, b, loc.String())
		csrf, cer := formOf(t, page)
		r, _ := post(t, b, g.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
			"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {loc.Query().Get("return_to")}})
		return r
	})
	if resp.StatusCode != http.StatusOK || body != "upstream: POST /transfers" {
		t.Fatalf("transfer after step-up: %d %q", resp.StatusCode, body)
	}

	entries := g.gatewayEntries(t)
	if len(entries) != 2 {
		t.Fatalf("%d gateway entries, want the challenge and the allowed replay: %+v", len(entries), entries)
	}
	ch, ok := entries[0], entries[1]
	if ch.Decision != "challenge" || ch.Reason != policy.ReasonControlsNotSatisfied || ch.RequestID != "req-4711" ||
		ch.UserID != g.user.ID || ch.Username != testUser || !slices.Equal(ch.Contexts, []string{"c2"}) ||
		!slices.Equal(ch.MethodsPrompted, []string{"totp"}) || ch.IP != "127.0.0.1" || ch.ClientApp != policy.ClientBrowser || ch.LatencyMicros <= 0 {
		t.Errorf("challenge entry %+v", ch)
	}
	if r, found := resultOf(ch, "c2-mfa"); !found || r.Result != policy.ResultApplied || r.Satisfied {
		t.Errorf("challenge: c2-mfa result %+v (found %v), want applied and unsatisfied", r, found)
	}
	if r, found := resultOf(ch, "c1-fresh-sign-in"); !found || r.Result != policy.ResultNotApplied || r.Reason != policy.ReasonContextNotTargeted {
		t.Errorf("challenge: c1-fresh-sign-in result %+v (found %v), want not applied, context not targeted", r, found)
	}
	if ok.Decision != "allow" || ok.Reason != "" || !slices.Equal(ok.Contexts, []string{"c2"}) || len(ok.MethodsPrompted) != 0 {
		t.Errorf("replay entry %+v", ok)
	}
	if r, found := resultOf(ok, "c2-mfa"); !found || r.Result != policy.ResultApplied || !r.Satisfied {
		t.Errorf("replay: c2-mfa result %+v (found %v), want applied and satisfied", r, found)
	}
}

// TestGatewayLogsRoutineReadsNot: reads under the default rule are
// counted, not logged; a read under a max_age rule in the same session is
// logged, so the count below is not blind.
func TestGatewayLogsRoutineReadsNot(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) {
		cfg.Gateway.Routes[0].Rules[2].MaxAge = config.Duration(10 * time.Minute) // /statements
	}, withForwardRoute)
	b := g.signedInGateway(t)
	before := len(g.gatewayEntries(t))
	const reads = 40
	for i := range reads {
		path := []string{"/accounts", "/balance", "/transfers"}[i%3] // POST is what /transfers guards
		resp := mustDo(t, b, "GET", g.app+path, "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if after := len(g.gatewayEntries(t)); after != before {
		t.Fatalf("%d routine reads left %d gateway entries, want none", reads, after-before)
	}

	resp := mustDo(t, b, "GET", g.app+"/statements", "")
	resp.Body.Close()
	entries := g.gatewayEntries(t)
	if resp.StatusCode != http.StatusOK || len(entries) != before+1 {
		t.Fatalf("GET /statements: %d, %d new entries; want 200 and one entry", resp.StatusCode, len(entries)-before)
	}
	if e := entries[len(entries)-1]; e.Decision != "allow" || len(e.Contexts) != 0 || len(e.Policies) == 0 {
		t.Fatalf("max_age read entry %+v, want an allow with the policies' results", e)
	}
}

// TestGatewayLogsReportOnlyHits: a report-only policy that would have
// challenged makes routine reads worth an entry each, allowed, with the
// report-only outcome among the policies' results.
func TestGatewayLogsReportOnlyHits(t *testing.T) {
	g := startGateway(t)
	g.usePolicies(t, `
policies:
  - name: bank-mfa-trial
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [bank]}}
    grant: {controls: [mfa]}
`)
	b := g.signedInGateway(t) // one read: the first entry
	for range 2 {
		resp := mustDo(t, b, "GET", g.app+"/accounts", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a report-only policy changed the answer: %d", resp.StatusCode)
		}
	}
	entries := g.gatewayEntries(t)
	if len(entries) != 3 {
		t.Fatalf("%d gateway entries, want one per read (3)", len(entries))
	}
	for _, e := range entries {
		r, found := resultOf(e, "bank-mfa-trial")
		if e.Decision != "allow" || !found || r.State != policy.StateReportOnly || r.Result != policy.ResultReportOnlyUserActionRequired {
			t.Fatalf("entry %s %s: bank-mfa-trial %+v (found %v), want an allow with report-only-user-action-required", e.Decision, e.Reason, r, found)
		}
	}
}

// stallingStore holds sign-in log writes while stalled, as a database
// that stopped answering would; everything else passes straight through.
type stallingStore struct {
	store.Store
	stalled atomic.Bool
	held    chan struct{} // told when a write is being held
	release chan struct{}
}

func (s *stallingStore) AppendSignIns(ctx context.Context, rows []store.SignIn) error {
	if s.stalled.Load() {
		select {
		case s.held <- struct{}{}:
		default:
		}
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.AppendSignIns(ctx, rows)
}

// fill stalls the writer on a batch, then fills the buffer until the log
// refuses: from then on it stays full.
func (s *stallingStore) fill(t *testing.T, l *audit.SignInLog) {
	t.Helper()
	ctx := context.Background()
	s.stalled.Store(true)
	if err := l.Write(ctx, audit.SignIn{Source: "test", Decision: "allow"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the sign-in log writer never tried to store its batch")
	}
	for range 1 << 16 {
		err := l.Write(ctx, audit.SignIn{Source: "test", Decision: "allow"})
		if errors.Is(err, audit.ErrLogFull) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the sign-in log never filled up")
}

// TestGatewayRefusesWhatItCannotLog: with the sign-in log full and set
// to fail closed, a decision that must be logged is refused (503, JSON
// for API clients), never proxied or passed by forward-auth unlogged.
// Routine reads, which are never logged, still go through.
func TestGatewayRefusesWhatItCannotLog(t *testing.T) {
	st := &stallingStore{held: make(chan struct{}, 1), release: make(chan struct{})}
	g := startGatewayOver(t, func(s store.Store) store.Store { st.Store = s; return st }, func(cfg *config.Config) {
		cfg.SignInLog.Overflow = "fail-closed"
		cfg.SignInLog.Buffer = 16
		cfg.Gateway.Routes[0].Rules[2].MaxAge = config.Duration(10 * time.Minute) // /statements
	}, withForwardRoute)
	t.Cleanup(func() { // before the server's own cleanup, which writes the log out
		st.stalled.Store(false)
		close(st.release)
	})
	b := g.signedInGateway(t)
	faHost := forwardHost(g)
	faCookie := g.forwardSignIn(t, b, faHost)
	g.enrollTOTP(t, b) // so that a transfer is a step-up, not a refusal
	st.fill(t, g.server.app.SignIns)

	resp := mustDo(t, b, "GET", g.app+"/statements", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /statements with a full log: %d, want 503", resp.StatusCode)
	}
	resp = mustDo(t, b, "GET", g.app+"/statements", "", "Accept", "application/json")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"error_description":"This request could not be recorded in the sign-in log`) {
		t.Errorf("an API client with a full log: %d %s, want 503 with a JSON error", resp.StatusCode, body)
	}
	resp = mustDo(t, b, "POST", g.app+"/transfers", "amount=100")
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a transfer with a full log: %d %s, want 503, not a step-up", resp.StatusCode, resp.Header.Get("Location"))
	}
	proxy := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp = mustDo(t, proxy, "GET", g.base+"/gateway/forward-auth", "", "Cookie", faCookie,
		"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", faHost, "X-Forwarded-Uri", "/statements")
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("forward-auth with a full log: %d, want 503", resp.StatusCode)
	}
	if n := g.upstream.count("GET", "/statements") + g.upstream.count("POST", "/transfers"); n != 0 {
		t.Fatalf("the upstream received %d requests whose decisions were not logged", n)
	}

	resp = mustDo(t, b, "GET", g.app+"/accounts", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a routine read with a full log: %d, want 200 (it is never logged)", resp.StatusCode)
	}
}
