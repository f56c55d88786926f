package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit/tally"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "stepgate.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func closeLog(t *testing.T, l *SignInLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func countAll(t *testing.T, s store.SignIns) int {
	t.Helper()
	n := 0
	if err := WalkSignIns(context.Background(), s, store.SignInQuery{}, 0, func(store.SignIn) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSignInLogKeepsEveryEntry(t *testing.T) {
	st := openStore(t)
	l := NewSignInLog(st, SignInLogOptions{Buffer: 64, Batch: 50, FlushEvery: 5 * time.Millisecond})
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Write(context.Background(), SignIn{Source: "gateway", UserID: fmt.Sprintf("u%d", w), App: "bank", Decision: "allow"}); err != nil {
					t.Errorf("write %d/%d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	closeLog(t, l)
	if n := countAll(t, st); n != writers*each {
		t.Fatalf("log holds %d entries, want %d", n, writers*each)
	}
	if err := l.Write(context.Background(), SignIn{Decision: "allow"}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

func TestSignInLogRoundTripsDetectionsAndPolicies(t *testing.T) {
	st := openStore(t)
	l := NewSignInLog(st, SignInLogOptions{})
	in := SignIn{
		Source: "sign-in", UserID: "u1", Username: "alice", IP: "203.0.113.9", Country: "BR",
		Decision: "success", RiskLevel: "medium",
		Risk: []Detection{{Type: "unfamiliar-properties", Level: "medium", Reason: "unfamiliar-properties",
			Evidence: map[string]string{"country": "BR", "known_countries": "DE"}}},
		Policies: []policy.PolicyResult{
			{Policy: "wire-transfer", Result: policy.ResultApplied, Satisfied: true},
			{Policy: "admins-mfa", Result: policy.ResultNotApplied, Reason: "user-not-included"},
			{Policy: "new-rule", Result: policy.ResultReportOnlyUserActionRequired},
		},
	}
	if err := l.Write(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := st.ListSignIns(context.Background(), store.SignInQuery{Policy: "new-rule"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("report-only policy filter: %d rows, %v", len(rows), err)
	}
	if rows, _ := st.ListSignIns(context.Background(), store.SignInQuery{Policy: "admins-mfa"}); len(rows) != 0 {
		t.Fatal("a policy that did not apply is indexed as applying")
	}
	got, err := Decode(rows[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Risk) != 1 || got.Risk[0].Evidence["known_countries"] != "DE" || got.Risk[0].Level != "medium" {
		t.Fatalf("detection evidence lost: %+v", got.Risk)
	}
	if got.ID == "" || got.Time.IsZero() || len(got.Policies) != 3 || got.Policies[1].Reason != "user-not-included" {
		t.Fatalf("entry lost data: %+v", got)
	}
	closeLog(t, l)
}

// gatedStore holds every append until the gate opens, and fails the
// first failures appends.
type gatedStore struct {
	store.SignIns
	gate     chan struct{}
	failures atomic.Int32
}

func (g *gatedStore) AppendSignIns(ctx context.Context, rows []store.SignIn) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if g.failures.Add(-1) >= 0 {
		return errors.New("database unavailable")
	}
	return g.SignIns.AppendSignIns(ctx, rows)
}

func TestSignInLogFailsClosedWhenFull(t *testing.T) {
	st := openStore(t)
	gs := &gatedStore{SignIns: st, gate: make(chan struct{})}
	var full atomic.Int32
	l := NewSignInLog(gs, SignInLogOptions{Buffer: 4, Batch: 1, FlushEvery: time.Millisecond,
		Overflow: OverflowFailClosed, Full: func(Overflow) { full.Add(1) }})
	accepted := 0
	var refused error
	for range 20 {
		if err := l.Write(context.Background(), SignIn{Decision: "allow"}); err != nil {
			refused = err
			break
		}
		accepted++
	}
	if !errors.Is(refused, ErrLogFull) || full.Load() != 1 {
		t.Fatalf("full buffer: err %v, Full called %d times; want ErrLogFull once", refused, full.Load())
	}
	close(gs.gate)
	closeLog(t, l)
	if n := countAll(t, st); n != accepted {
		t.Fatalf("log holds %d entries, want the %d accepted", n, accepted)
	}
}

func TestSignInLogPushesBackAndRetries(t *testing.T) {
	st := openStore(t)
	gs := &gatedStore{SignIns: st, gate: make(chan struct{})}
	gs.failures.Store(3)
	l := NewSignInLog(gs, SignInLogOptions{Buffer: 2, Batch: 1, FlushEvery: time.Millisecond})
	accepted := 0
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := l.Write(ctx, SignIn{Decision: "allow"})
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("blocked write: %v", err)
			}
			break
		}
		accepted++
	}
	if accepted >= 10 {
		t.Fatal("writes never pushed back on a stalled store")
	}
	close(gs.gate) // the store comes back, failing three more times first
	closeLog(t, l)
	if n := countAll(t, st); n != accepted {
		t.Fatalf("log holds %d entries after retries, want %d", n, accepted)
	}
}

// BenchmarkSignInLogWrite measures the sign-in log's throughput on each
// backend: many decisions writing at once through the buffer, batched
// into the store, timed until the last entry is committed.
func BenchmarkSignInLogWrite(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"sqlite", func(b *testing.B) store.Store {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "stepgate.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
		{"postgres", func(b *testing.B) store.Store {
			st, err := postgres.Open(context.Background(), pgtest.DSN(b), postgres.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
	}
	for _, backend := range backends {
		b.Run(backend.name, func(b *testing.B) {
			st := backend.open(b)
			defer st.Close()
			benchSignInLogWrite(b, NewSignInLog(st, SignInLogOptions{}))
		})
	}
}

func benchSignInLogWrite(b *testing.B, l *SignInLog) {
	ctx := context.Background()
	e := SignIn{Source: "oidc", UserID: "u1", Username: "alice", App: "bank", Contexts: []string{"c2"},
		IP: "198.51.100.7", Country: "DE", ClientApp: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		RiskLevel: "low", Risk: []Detection{{Type: "unfamiliar-properties", Level: "low", Reason: "unfamiliar-properties",
			Evidence: map[string]string{"country": "DE"}}},
		Decision: "allow", MethodsCompleted: []string{"pwd", "totp"}, LatencyMicros: 250,
		Policies: []policy.PolicyResult{
			{Policy: "baseline-sign-in", Result: policy.ResultApplied, Satisfied: true},
			{Policy: "mfa-on-risk", Result: policy.ResultApplied, Satisfied: true},
			{Policy: "admins-mfa", Result: policy.ResultNotApplied, Reason: "user-not-included"},
		}}
	b.ReportAllocs()
	b.SetParallelism(8) // decisions arrive from many requests at once
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Write(ctx, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := l.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// DecodeOutcome reads everything Decode does except the request facts.
func TestDecodeOutcomeLeavesOutTheFacts(t *testing.T) {
	e := SignIn{ID: "e1", Time: time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC), Source: "gateway", Username: "alice", App: "bank",
		Decision: "challenge", Policies: []policy.PolicyResult{{Policy: "c2-mfa", Result: policy.ResultApplied, Grant: "all-of"}},
		Facts: NewFacts(&policy.Request{Subject: policy.Subject{ID: "u1", Username: "alice"}, App: "bank"})}
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	row := store.SignIn{ID: e.ID, Body: body}
	full, err := Decode(row)
	if err != nil || full.Facts == nil {
		t.Fatalf("Decode: facts %v, %v", full.Facts, err)
	}
	out, err := DecodeOutcome(row)
	if err != nil || out.Facts != nil {
		t.Fatalf("DecodeOutcome: facts %v, %v; want none", out.Facts, err)
	}
	full.Facts = nil
	if a, b := fmt.Sprintf("%+v", full), fmt.Sprintf("%+v", out); a != b {
		t.Fatalf("DecodeOutcome read\n%s\nwhere Decode read\n%s", b, a)
	}
	if got := out.Triggers(); len(got) != 1 || got[0].Policy != "c2-mfa" {
		t.Fatalf("triggers %+v, want c2-mfa", got)
	}
	if _, err := DecodeOutcome(store.SignIn{ID: "bad", Body: []byte(`{"facts": [`)}); err == nil {
		t.Fatal("a malformed entry decoded without an error")
	}
}

// TestTriggersFollowTheDecision: an unmet policy counts as what the
// entry records it did. A grant the user had no method for ends in a
// block, and that is counted as a block by the policy, not a challenge.
func TestTriggersFollowTheDecision(t *testing.T) {
	unmet := func(name, grant string) policy.PolicyResult {
		return policy.PolicyResult{Policy: name, Result: policy.ResultApplied, Grant: grant}
	}
	tests := []struct {
		name     string
		decision string
		policies []policy.PolicyResult
		want     []Trigger
	}{
		{"ok/challenge", "challenge", []policy.PolicyResult{unmet("c2-mfa", "all-of")}, []Trigger{{Policy: "c2-mfa"}}},
		{"ok/no-usable-method-is-a-block", "block", []policy.PolicyResult{unmet("c3-passkey", "all-of")}, []Trigger{{Policy: "c3-passkey", Block: true}}},
		{"ok/block-grant", "block", []policy.PolicyResult{unmet("high-risk", "block")}, []Trigger{{Policy: "high-risk", Block: true}}},
		{"ok/met-is-no-trigger", "allow", []policy.PolicyResult{{Policy: "c2-mfa", Result: policy.ResultApplied, Satisfied: true}}, nil},
		{"ok/report-only-stays-report-only", "block", []policy.PolicyResult{unmet("c3-passkey", "all-of"), {Policy: "trial", Result: policy.ResultReportOnlyUserActionRequired}},
			[]Trigger{{Policy: "c3-passkey", Block: true}, {Policy: "trial", ReportOnly: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SignIn{Decision: tt.decision, Policies: tt.policies}.Triggers()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("triggers %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSignInLogCountsWhatTheStoreReadsBack: the writer hands the store
// each entry's counters with it, so the store need not read the body
// again. They must be the counters the store reads from the body when
// it counts the log again (at an upgrade), on both backends, or the
// totals would change at a rebuild.
func TestSignInLogCountsWhatTheStoreReadsBack(t *testing.T) {
	backends := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store { return openStore(t) },
		"postgres": func(t *testing.T) store.Store {
			st, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			l := NewSignInLog(st, SignInLogOptions{Batch: 7, FlushEvery: time.Millisecond})
			base := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
			results := [][]policy.PolicyResult{
				nil,
				{{Policy: "mfa", Result: policy.ResultApplied, Grant: "all-of"}},
				{{Policy: "legacy", Result: policy.ResultApplied, Grant: "block"}, {Policy: "trial", Result: policy.ResultReportOnlyFailure}},
				{{Policy: "trial", Result: policy.ResultReportOnlyUserActionRequired}, {Policy: "base", Result: policy.ResultApplied, Satisfied: true}},
			}
			kinds := []struct{ source, decision string }{
				{"oidc", "allow"}, {"gateway", "challenge"}, {"oidc", "block"}, {"sign-in", "failure"},
				{"sign-in", "throttled"}, {"step-up", "success"}, {"step-up", "failure"}, {"security-info", "success"},
			}
			for i := range 200 {
				k := kinds[i%len(kinds)]
				e := SignIn{Time: base.Add(time.Duration(i) * 97 * time.Second), Source: k.source, Decision: k.decision,
					App: []string{"bank", "wiki"}[i%2], UserID: "u1", Policies: results[i%len(results)]}
				if err := l.Write(context.Background(), e); err != nil {
					t.Fatal(err)
				}
			}
			closeLog(t, l)
			written := totalsOf(t, st)
			if len(written) < 10 {
				t.Fatalf("only %d totals: the entries count too little to compare", len(written))
			}
			if _, err := st.(interface{ SQL() *sql.DB }).SQL().ExecContext(context.Background(), "DELETE FROM sign_in_totals_state"); err != nil {
				t.Fatal(err)
			}
			if r, err := st.RebuildSignInTotals(context.Background()); err != nil || !r.Rebuilt || r.Entries != 200 {
				t.Fatalf("rebuild: %+v %v", r, err)
			}
			if reread := totalsOf(t, st); !maps.Equal(written, reread) {
				t.Fatalf("totals as written %v,\nas read back from the log %v", written, reread)
			}
		})
	}
}

func totalsOf(t *testing.T, st store.Store) map[string]int64 {
	t.Helper()
	rows, err := st.SignInTotals(context.Background(), store.SignInTotalsQuery{
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[fmt.Sprint(r.Hour.UTC().Format(time.RFC3339), " ", r.Name, " ", r.Policy)] = r.N
	}
	return out
}

// TestTallyReadsPolicyResults: the running totals read a policy's result
// from an entry by their own copy of its JSON names and values (storage
// must not depend on the policy engine); a renamed field or value in
// package policy would make them count nothing.
func TestTallyReadsPolicyResults(t *testing.T) {
	t.Parallel()
	for _, r := range []policy.Result{policy.ResultApplied, policy.ResultReportOnlyFailure, policy.ResultReportOnlyUserActionRequired} {
		body, err := json.Marshal(SignIn{Source: "oidc", Decision: "block", Policies: []policy.PolicyResult{{Policy: "p", Result: r, Grant: "block"}}})
		if err != nil {
			t.Fatal(err)
		}
		var o tally.Outcome
		if err := json.Unmarshal(body, &o); err != nil {
			t.Fatal(err)
		}
		if len(o.Triggers()) != 1 || o.Policies[0].Result != string(r) || o.Policies[0].Grant != "block" || o.Policies[0].Policy != "p" {
			t.Fatalf("%s: tally read %+v", r, o.Policies)
		}
	}
}
