package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/strength"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

var now = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "stepgate.db"), sqlite.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newService is a service whose live sets are the stored documents
// alone (no policy files), in production and staging, with the audit
// trail in the same store.
func newService(t testing.TB) *Service {
	t.Helper()
	return newServiceOn(t, openStore(t))
}

// newServiceOn is newService over st.
func newServiceOn(t testing.TB, st store.Store) *Service {
	t.Helper()
	docs := &Documents{KV: st, Now: func() time.Time { return now }}
	engines := map[string]*policy.Engine{ProductionEnvironment: policy.NewEngine(nil), "staging": policy.NewEngine(nil)}
	compile := func(_ context.Context, _ string, stored []Document) (Compiled, error) {
		parsed, probs := Parse(stored)
		snap, cprobs := policy.Compile(nil, parsed...)
		if probs = append(probs, cprobs...); len(probs) > 0 {
			return Compiled{}, probs.Sorted()
		}
		return Compiled{Snapshot: snap, Documents: parsed}, nil
	}
	s := New(Deps{Store: st, Documents: docs, Engine: engines[ProductionEnvironment], Compile: compile, Audit: audit.New(st, func() time.Time { return now }),
		Environments:     func(env string) (*policy.Engine, bool) { e, ok := engines[env]; return e, ok },
		EnvironmentNames: []string{ProductionEnvironment, "staging"},
		Now:              func() time.Time { return now }})
	s.Reload = func(ctx context.Context) error {
		for env, engine := range engines {
			stored, err := docs.InEnvironment(env).List(ctx)
			if err != nil {
				return err
			}
			set, err := compile(ctx, env, stored)
			if err != nil {
				return err
			}
			engine.Swap(set.Snapshot)
		}
		return nil
	}
	return s
}

func TestDocumentsCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	d := &Documents{KV: openStore(t), Now: func() time.Time { return now }}
	doc := Document{Name: "mfa", YAML: "policies: []\n"}
	v1, err := d.Put(ctx, doc, 0, "user:root")
	if err != nil || v1.Version != 1 || v1.UpdatedBy != "user:root" {
		t.Fatalf("create: %+v %v", v1, err)
	}
	if _, err := d.Put(ctx, doc, 0, "user:eve"); !errors.Is(err, ErrVersion) {
		t.Fatalf("creating an existing document: %v, want ErrVersion", err)
	}
	if v2, err := d.Put(ctx, doc, 1, "user:root"); err != nil || v2.Version != 2 {
		t.Fatalf("update from version 1: %+v %v", v2, err)
	}
	if _, err := d.Put(ctx, doc, 1, "user:eve"); !errors.Is(err, ErrVersion) {
		t.Fatalf("update from a stale version: %v, want ErrVersion", err)
	}
	if err := d.Delete(ctx, "mfa", 1); !errors.Is(err, ErrVersion) {
		t.Fatalf("delete from a stale version: %v, want ErrVersion", err)
	}
	if err := d.Delete(ctx, "mfa", 2); err != nil {
		t.Fatal(err)
	}
	if gen, err := d.Generation(ctx); err != nil || gen != 3 {
		t.Fatalf("generation after create, update, delete: %d %v, want 3", gen, err)
	}
	for _, bad := range []string{"", "Upper", "-dash", "a/b", "../x", strings.Repeat("a", 64)} {
		if _, err := d.Put(ctx, Document{Name: bad}, 0, "user:root"); err == nil {
			t.Errorf("document name %q was accepted", bad)
		}
	}
}

// TestDocumentsPerEnvironment proves that each policy environment keeps
// its own documents: a change saved to staging can never reach
// production's set, nor the other way round, and production's documents
// stay where a deployment without environments kept them.
func TestDocumentsPerEnvironment(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	prod := &Documents{KV: st, Now: func() time.Time { return now }}
	staging := prod.InEnvironment("staging")
	if staging.Environment() != "staging" || prod.Environment() != ProductionEnvironment || prod.InEnvironment(ProductionEnvironment).Env != "" {
		t.Fatalf("environments: %q %q", staging.Environment(), prod.Environment())
	}
	if _, err := staging.Put(ctx, Document{Name: "mfa", YAML: "policies: []\n"}, 0, "user:root"); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Put(ctx, Document{Name: "other", YAML: "policies: []\n"}, 0, "user:root"); err != nil {
		t.Fatal(err)
	}
	names := func(d *Documents) []string {
		t.Helper()
		docs, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, doc := range docs {
			out = append(out, doc.Name)
		}
		return out
	}
	if got := names(staging); len(got) != 1 || got[0] != "mfa" {
		t.Errorf("staging documents = %q, want [mfa]", got)
	}
	if got := names(prod); len(got) != 1 || got[0] != "other" {
		t.Errorf("production documents = %q, want [other]", got)
	}
	if got := names(prod.InEnvironment("preview")); len(got) != 0 {
		t.Errorf("an environment with no documents lists %q", got)
	}
	if _, err := prod.Get(ctx, "mfa"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("production reads staging's document: %v", err)
	}
	// Names that would climb out of the environment are refused.
	for _, bad := range []string{"../mfa", "a/b"} {
		if _, err := staging.Put(ctx, Document{Name: bad}, 0, "user:root"); err == nil {
			t.Errorf("document name %q was accepted", bad)
		}
	}
	// An environment name that would climb into another's keys reads
	// and writes nothing.
	for _, bad := range []string{"staging/mfa", "..", ""} {
		d := &Documents{KV: st, Now: prod.Now, Env: bad}
		if bad == "" {
			continue // production
		}
		if docs, err := d.List(ctx); err == nil && len(docs) > 0 {
			t.Errorf("environment %q lists %d documents", bad, len(docs))
		}
		if _, err := d.Put(ctx, Document{Name: "x", YAML: "policies: []\n"}, 0, "user:root"); err == nil {
			t.Errorf("environment %q accepted a document", bad)
		}
	}
	if gen, err := prod.Generation(ctx); err != nil || gen != 2 {
		t.Errorf("generation = %d %v, want 2: every environment's change moves it", gen, err)
	}
}

func TestSetPolicyStateKeepsTheRestOfTheDocument(t *testing.T) {
	const doc = `# Trial policies, owned by the security team.
policies:
  - name: first
    state: report-only # until the pilot ends
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    grant: {controls: [mfa]}
  - name: second
    users: {include: {users: [all]}}
    target: {apps: {include: [all]}}
    grant: block
`
	out, err := setPolicyState(doc, "first", "enabled")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Trial policies, owned by the security team.", "state: enabled # until the pilot ends", "grant: block"} {
		if !strings.Contains(out, want) {
			t.Errorf("after the state change the document lacks %q:\n%s", want, out)
		}
	}
	out, err = setPolicyState(out, "second", "disabled")
	if err != nil {
		t.Fatal(err)
	}
	parsed, probs := policy.Parse("x.yaml", []byte(out))
	if len(probs) > 0 || parsed.Policies[0].State != "enabled" || parsed.Policies[1].State != "disabled" {
		t.Fatalf("states %+v, problems %v:\n%s", parsed.Policies, probs, out)
	}
	var e *Error
	if _, err := setPolicyState(doc, "third", "enabled"); !errors.As(err, &e) || e.Kind != NotFound {
		t.Fatalf("an unknown policy: %v, want NotFound", err)
	}
}

const mfaForPayroll = `policies:
  - name: payroll-mfa
    state: report-only
    users: {include: {users: [all]}}
    target: {apps: {include: [payroll]}}
    grant: {controls: [mfa]}
`

// entry is a sign-in log entry for app at t, with facts unless bare.
func entry(id, app, decision string, t time.Time, results []policy.PolicyResult, bare bool) store.SignIn {
	e := audit.SignIn{ID: id, Time: t, Source: "oidc", Username: "alice", App: app, Decision: decision, Policies: results}
	if !bare {
		e.Facts = audit.NewFacts(&policy.Request{Subject: policy.Subject{ID: "u1", Username: "alice"}, App: app,
			IP: netip.MustParseAddr("192.0.2.1"), Now: t, Events: []strength.Event{{Method: "password", Time: t, AMR: []string{"pwd"}}}})
	}
	body, _ := json.Marshal(e)
	return store.SignIn{ID: id, Time: t, UserID: "u1", App: app, Decision: decision, Body: body}
}

func TestSaveValidatesImpactAndStateChange(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	rows := []store.SignIn{
		entry("1", "payroll", "allow", now.Add(-3*time.Hour), nil, false),
		entry("2", "payroll", "allow", now.Add(-2*time.Hour), nil, false),
		entry("3", "wiki", "allow", now.Add(-time.Hour), nil, false),
		entry("4", "payroll", "failure", now.Add(-time.Hour), nil, true),
		entry("5", "payroll", "allow", now.Add(-9*24*time.Hour), nil, false), // outside the window
	}
	if err := s.Store.AppendSignIns(ctx, rows); err != nil {
		t.Fatal(err)
	}

	var e *Error
	if _, err := s.Save(ctx, "user:root", "", Document{Name: "payroll", YAML: "policies:\n  - name: x\n    grant: sometimes\n"}, ""); !errors.As(err, &e) || e.Kind != Invalid || len(e.Problems) == 0 || e.Problems[0].File != "store:payroll" {
		t.Fatalf("an invalid document: %v, want Invalid with problems in store:payroll", err)
	}
	doc, err := s.Save(ctx, "user:root", "pilot", Document{Name: "payroll", YAML: mfaForPayroll}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Engine.Load().Policies(); len(got) != 1 || got[0].State != policy.StateReportOnly {
		t.Fatalf("live set after save: %+v", got)
	}

	enabled := strings.Replace(mfaForPayroll, "report-only", "enabled", 1)
	imp, err := s.Impact(ctx, Candidate{Doc: Document{Name: "payroll", YAML: enabled, Version: doc.Version}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if imp.Replayed != 3 || imp.Skipped != 1 || imp.Changed != 2 || len(imp.Transitions) != 1 ||
		imp.Transitions[0] != (Transition{From: "allow", To: "challenge", Count: 2}) || len(imp.Examples) != 2 {
		t.Fatalf("impact of enabling: %+v", imp)
	}
	if s.Engine.Load().Policies()[0].State != policy.StateReportOnly {
		t.Fatal("measuring the impact changed the live set")
	}

	if _, err := s.SetState(ctx, "user:root", "pilot over", "payroll-mfa", "enabled", ""); err != nil {
		t.Fatal(err)
	}
	if got := s.Engine.Load().Policies()[0].State; got != policy.StateEnabled {
		t.Fatalf("state after enabling: %s", got)
	}
	if _, err := s.SetState(ctx, "user:root", "", "payroll-mfa", "sometimes", ""); !errors.As(err, &e) || e.Kind != Invalid {
		t.Fatalf("an unknown state: %v", err)
	}
	entries, err := s.Audit.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range entries {
		got = append(got, en.Action+" "+en.Target+" "+en.Reason)
	}
	if want := "policy.create store:payroll pilot|policy.state policy:payroll-mfa pilot over"; strings.Join(got, "|") != want {
		t.Fatalf("audit trail %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestOverviewCounts(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	challenged := []policy.PolicyResult{{Policy: "c2-mfa", Result: policy.ResultApplied, Grant: "all-of"}}
	blocked := []policy.PolicyResult{{Policy: "no-legacy", Result: policy.ResultApplied, Grant: "block"}}
	trial := []policy.PolicyResult{{Policy: "trial", Result: policy.ResultReportOnlyUserActionRequired}}
	rows := []store.SignIn{
		entry("1", "bank", "allow", now.Add(-23*time.Hour), trial, false),
		entry("2", "bank", "challenge", now.Add(-90*time.Minute), append(challenged, trial...), false),
		entry("3", "bank", "block", now.Add(-30*time.Minute), blocked, false),
		entry("4", "bank", "challenge", now.Add(-10*time.Minute), challenged, false),
		entry("5", "bank", "allow", now.Add(-30*time.Hour), trial, false), // before the period
	}
	stepUp := audit.SignIn{ID: "6", Time: now.Add(-9 * time.Minute), Source: "step-up", Decision: "success"}
	body, _ := json.Marshal(stepUp)
	rows = append(rows, store.SignIn{ID: "6", Time: stepUp.Time, Decision: "success", Body: body})
	if err := s.Store.AppendSignIns(ctx, rows); err != nil {
		t.Fatal(err)
	}
	o, err := s.Overview(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if o.Totals.Allow != 1 || o.Totals.Challenge != 2 || o.Totals.Block != 1 || o.StepUps != 1 || o.CompletionRate() != 0.5 {
		t.Fatalf("totals %+v, step-ups %d, completion %v", o.Totals, o.StepUps, o.CompletionRate())
	}
	if last, before := o.Buckets[23], o.Buckets[22]; last.Challenge != 1 || last.Block != 1 || before.Challenge != 1 {
		t.Fatalf("the last two hours' buckets: %+v %+v", before, last)
	}
	if first := o.Buckets[1]; first.Allow != 1 {
		t.Fatalf("the second hour's bucket: %+v", first)
	}
	want := []PolicyStats{
		{Policy: "c2-mfa", Challenged: 2},
		{Policy: "trial", WouldChallenge: 2},
		{Policy: "no-legacy", Blocked: 1},
	}
	if len(o.Policies) != len(want) {
		t.Fatalf("policy stats %+v, want %+v", o.Policies, want)
	}
	for i := range want {
		if o.Policies[i] != want[i] {
			t.Fatalf("policy stats %+v, want %+v", o.Policies, want)
		}
	}
	// The period is whole hours, the totals' unit, rounded out: it ends
	// with the current hour and starts with the hour 24 hours ago.
	if !o.Since.Equal(now.Add(-24*time.Hour)) || !o.Until.Equal(now.Add(time.Hour)) || len(o.Buckets) != 25 || o.Bucket != time.Hour {
		t.Fatalf("24 hours at 12:00 span %s to %s in %d buckets of %s, want 12:00 to 13:00 the next day in 25 of 1h",
			o.Since, o.Until, len(o.Buckets), o.Bucket)
	}
	s.Now = func() time.Time { return now.Add(25 * time.Minute) }
	week, err := s.Overview(ctx, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if week.Bucket != 7*time.Hour || !week.Since.Add(time.Duration(len(week.Buckets))*week.Bucket).Equal(now.Add(time.Hour)) ||
		week.Since.After(now.Add(25*time.Minute-7*24*time.Hour)) || week.Totals.Allow != 2 {
		t.Fatalf("a week at 12:25: %s to %s in %d buckets of %s, %d allowed; want whole buckets of 7h covering the week and both allows",
			week.Since, week.Until, len(week.Buckets), week.Bucket, week.Totals.Allow)
	}
	if _, err := s.Overview(ctx, time.Minute); err == nil {
		t.Fatal("a one-minute period was accepted")
	}
}

// TestUsersPages: the users list comes a page at a time, each page's
// cursor leading to the next, with the search applied across pages.
func TestUsersPages(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	for i := range 7 {
		name := fmt.Sprintf("user%d", i)
		if i%2 == 0 {
			name = fmt.Sprintf("ops%d", i)
		}
		if _, err := s.Store.CreateUser(ctx, store.User{ID: name, Username: name, Email: name + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	cursor := ""
	for range 10 {
		page, err := s.Users(ctx, "", cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Users {
			seen = append(seen, u.Username)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
		if len(page.Users) != 3 {
			t.Fatalf("a page before the last holds %d users, want 3", len(page.Users))
		}
	}
	if want := "ops0 ops2 ops4 ops6 user1 user3 user5"; strings.Join(seen, " ") != want {
		t.Fatalf("paged through %v, want %s", seen, want)
	}
	// Exactly a page's worth: no cursor to an empty page.
	if page, err := s.Users(ctx, "ops", "", 4); err != nil || len(page.Users) != 4 || page.Next != "" {
		t.Fatalf("four matches in a page of four: %+v %v, want all four and no next cursor", page, err)
	}
	if page, err := s.Users(ctx, "OPS", "ops2", 0); err != nil || len(page.Users) != 2 || page.Users[0].Username != "ops4" {
		t.Fatalf("search after a cursor: %+v %v, want ops4, ops6", page, err)
	}
	if _, err := s.Users(ctx, "", "", MaxUserPage+1); err == nil || !strings.Contains(err.Error(), "limit must be between 1 and 1000") {
		t.Fatalf("an oversized page: %v, want a clear refusal", err)
	}
}

// BenchmarkOverview100k: the console's overview over a week holding
// MaxScan entries, each with its request facts and a policy result. It
// reads the running totals, so it costs the same for any number of
// entries; storetest's BenchOverview measures a million.
func BenchmarkOverview100k(b *testing.B) {
	ctx := context.Background()
	s := newService(b)
	results := []policy.PolicyResult{{Policy: "c2-mfa", Result: policy.ResultApplied, Grant: "all-of"}}
	for i := 0; i < MaxScan; i += 1000 {
		rows := make([]store.SignIn, 0, 1000)
		for j := range 1000 {
			n := i + j
			rows = append(rows, entry(fmt.Sprint(n), "bank", "challenge", now.Add(-time.Duration(n)*5*time.Second), results, false))
		}
		if err := s.Store.AppendSignIns(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		o, err := s.Overview(ctx, 7*24*time.Hour)
		if err != nil || o.Totals.Challenge != MaxScan {
			b.Fatalf("counted %d challenges, want %d: %v", o.Totals.Challenge, MaxScan, err)
		}
	}
}

// TestElevatedAdminRoleOpensNothing: the administrator role counts only
// when it is standing. An elevation of it (granted by mistake, or through
// an eligible assignment an attacker obtained) must not open the console
// or the admin API, from which elevations themselves are approved.
func TestElevatedAdminRoleOpensNothing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := store.User{ID: "u1", Grants: []store.Grant{{Role: Role, Elevation: "elv_1", Since: now.Add(-time.Minute), Until: now.Add(time.Hour)}}}
	if !slices.Contains(u.RolesAt(now, ConsoleApp), Role) {
		t.Fatal("the test's elevation does not count; it proves nothing")
	}
	if IsAdmin(u) {
		t.Fatal("fail/elevated-admin: an elevated administrator role opens the console")
	}
	u.Roles = []string{Role}
	if !IsAdmin(u) {
		t.Fatal("ok/standing-admin: the standing role does not")
	}
}
