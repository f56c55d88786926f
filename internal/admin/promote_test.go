package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

const (
	reportOnlyDoc = "policies:\n  - name: mfa\n    state: report-only\n    users: {include: {users: [all]}}\n    target: {apps: {include: [all]}}\n    grant: {controls: [mfa]}\n"
	enabledDoc    = "policies:\n  - name: mfa\n    state: enabled\n    users: {include: {users: [all]}}\n    target: {apps: {include: [all]}}\n    grant: {controls: [mfa]}\n"
)

// onBothBackends runs fn with a service over SQLite, then over
// PostgreSQL when a server is configured (make check configures one).
func onBothBackends(t *testing.T, fn func(t *testing.T, s *Service)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newService(t)) })
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, newServiceOn(t, st))
	})
}

// auditOf lists the audit trail's entries of action.
func auditOf(ctx context.Context, s *Service, action string) ([]audit.Entry, error) {
	all, err := audit.New(s.Store, nil).List(ctx)
	var out []audit.Entry
	for _, e := range all {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out, err
}

// staged saves yaml as the document mfa in staging and returns the
// service of staging.
func staged(t *testing.T, s *Service, yaml string) *Service {
	t.Helper()
	stg, err := s.In("staging")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := stg.Documents.Get(context.Background(), "mfa")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := stg.Save(context.Background(), "user:root", "stage it", Document{Name: "mfa", YAML: yaml, Version: cur.Version}, ""); err != nil {
		t.Fatal(err)
	}
	return stg
}

// readyToPromote saves mfa report-only in production and enabled in
// staging, and returns the heads of staging and production: the
// versions a promotion names.
func readyToPromote(t *testing.T, s *Service) (staging, production Release) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Save(ctx, "user:root", "start", Document{Name: "mfa", YAML: reportOnlyDoc}, ""); err != nil {
		t.Fatal(err)
	}
	staging, err := staged(t, s, enabledDoc).Documents.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if production, err = s.Documents.Head(ctx); err != nil {
		t.Fatal(err)
	}
	return staging, production
}

// atOnce runs fn(0) to fn(n-1) at the same time and returns their
// errors.
func atOnce(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errs
}

// TestPromotionReplacesProductionInOneChange: a promotion shows the
// diff of every document, then makes staging's documents production's
// as one new release, audited with its reason; production's engine
// enforces them at once, and the history keeps the release before.
func TestPromotionReplacesProductionInOneChange(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		if _, err := s.Save(ctx, "user:root", "start", Document{Name: "mfa", YAML: reportOnlyDoc}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx, "user:root", "old", Document{Name: "legacy", YAML: "policies: []\n"}, ""); err != nil {
			t.Fatal(err)
		}
		staged(t, s, enabledDoc)
		rev, err := s.ReviewPromotion(ctx, "staging", ProductionEnvironment, 7)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]string{}
		for _, c := range rev.Changes {
			kinds[c.Name] = c.Kind
		}
		if kinds["mfa"] != "changed" || kinds["legacy"] != "removed" || len(kinds) != 2 {
			t.Fatalf("review changes = %v, want mfa changed and legacy removed", kinds)
		}
		if d := rev.Changes[1].Diff; !strings.Contains(d, "-    state: report-only") {
			t.Errorf("the diff of mfa does not show the state line going:\n%s", d)
		}
		if got := s.Engine.Load().Policies(); len(got) != 1 || got[0].State != "report-only" {
			t.Fatalf("a review changed production: %+v", got)
		}
		rel, err := s.Promote(ctx, "user:root", Promotion{From: "staging", To: ProductionEnvironment,
			FromVersion: rev.FromVersion, ToVersion: rev.Version, Reason: "CHG-1"})
		if err != nil {
			t.Fatal(err)
		}
		if rel.Version != rev.Version+1 || rel.Action != "policy.promote" || rel.FromEnv != "staging" || len(rel.Documents) != 1 {
			t.Fatalf("release after promotion = %+v", rel)
		}
		if got := s.Engine.Load().Policies(); len(got) != 1 || got[0].State != "enabled" {
			t.Fatalf("production enforces %+v after the promotion, want mfa enabled", got)
		}
		hist, err := s.History(ctx, ProductionEnvironment)
		if err != nil || len(hist) != 3 || hist[0].Version != rel.Version || hist[1].Documents[0].Name != "legacy" {
			t.Fatalf("history = %+v %v, want the promotion and the two saves before it", hist, err)
		}
		entries, err := auditOf(ctx, s, "policy.promote")
		if err != nil || len(entries) != 1 || entries[0].Reason != "CHG-1" || entries[0].Actor != "user:root" {
			t.Fatalf("audit of the promotion = %+v %v", entries, err)
		}
	})
}

// TestPromotionAppliesOnlyWhatWasReviewed: a change to either
// environment after the review refuses the promotion, so what is
// applied is what was reviewed; so does a missing reason, a promotion
// to itself, and an environment that is not configured.
func TestPromotionAppliesOnlyWhatWasReviewed(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		stg := staged(t, s, reportOnlyDoc)
		rev, err := s.ReviewPromotion(ctx, "staging", ProductionEnvironment, 7)
		if err != nil {
			t.Fatal(err)
		}
		ask := Promotion{From: "staging", To: ProductionEnvironment, FromVersion: rev.FromVersion, ToVersion: rev.Version, Reason: "CHG-2"}
		for name, p := range map[string]Promotion{
			"fail/no-reason":       {From: "staging", To: ProductionEnvironment, FromVersion: rev.FromVersion, ToVersion: rev.Version},
			"fail/to-itself":       {From: "staging", To: "staging", FromVersion: rev.FromVersion, ToVersion: rev.FromVersion, Reason: "x"},
			"fail/unknown-env":     {From: "qa", To: ProductionEnvironment, Reason: "x"},
			"fail/key-in-env-name": {From: "staging/../production", To: ProductionEnvironment, Reason: "x"},
		} {
			if _, err := s.Promote(ctx, "user:eve", p); err == nil {
				t.Errorf("%s: promoted", name)
			}
		}
		// Staging moves on after the review: what is there now was never reviewed.
		staged(t, s, enabledDoc)
		var ae *Error
		if _, err := s.Promote(ctx, "user:root", ask); !errors.As(err, &ae) || ae.Kind != Conflict {
			t.Fatalf("fail/staging-changed-since-review: %v, want a conflict", err)
		}
		// Production moves on after a fresh review.
		rev, err = s.ReviewPromotion(ctx, "staging", ProductionEnvironment, 7)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx, "user:root", "hotfix", Document{Name: "hotfix", YAML: "policies: []\n"}, ""); err != nil {
			t.Fatal(err)
		}
		ask = Promotion{From: "staging", To: ProductionEnvironment, FromVersion: rev.FromVersion, ToVersion: rev.Version, Reason: "CHG-3"}
		if _, err := s.Promote(ctx, "user:root", ask); !errors.As(err, &ae) || ae.Kind != Conflict {
			t.Fatalf("fail/production-changed-since-review: %v, want a conflict", err)
		}
		if docs, _ := s.Documents.List(ctx); len(docs) != 1 || docs[0].Name != "hotfix" {
			t.Fatalf("a refused promotion changed production: %+v", docs)
		}
		if docs, _ := stg.Documents.List(ctx); len(docs) != 1 || docs[0].Name != "mfa" {
			t.Fatalf("a promotion changed its source: %+v", docs)
		}
	})
}

// TestPromotionWithFailingScenariosNeedsOverride: a promotion that
// makes production's scenario tests fail is refused unless overridden
// with a reason, and the override is audited with the failures.
func TestPromotionWithFailingScenariosNeedsOverride(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		var tested []string
		s.Test = func(_ context.Context, env string, set Compiled) ([]string, error) {
			tested = append(tested, env)
			if env == ProductionEnvironment && len(set.Snapshot.Policies()) > 0 {
				return []string{"prod.tests.yaml:3: scenario everyone-in: expected allow, got challenge"}, nil
			}
			return nil, nil
		}
		staged(t, s, enabledDoc)
		rev, err := s.ReviewPromotion(ctx, "staging", ProductionEnvironment, 7)
		if err != nil || len(rev.Failed) != 1 {
			t.Fatalf("review: %+v %v, want the failing scenario listed", rev.Failed, err)
		}
		ask := Promotion{From: "staging", To: ProductionEnvironment, FromVersion: rev.FromVersion, ToVersion: rev.Version, Reason: "CHG-4"}
		var ae *Error
		if _, err := s.Promote(ctx, "user:root", ask); !errors.As(err, &ae) || ae.Kind != TestsFailed {
			t.Fatalf("fail/tests-fail: %v, want TestsFailed", err)
		}
		if docs, _ := s.Documents.List(ctx); len(docs) != 0 {
			t.Fatalf("a refused promotion stored %+v", docs)
		}
		ask.OverrideTests = "accepted by the security team"
		if _, err := s.Promote(ctx, "user:root", ask); err != nil {
			t.Fatal(err)
		}
		entries, err := auditOf(ctx, s, "policy.tests-overridden")
		if err != nil || len(entries) != 1 || entries[0].Reason != "accepted by the security team" {
			t.Fatalf("override audit = %+v %v", entries, err)
		}
		if tested[len(tested)-1] != ProductionEnvironment {
			t.Errorf("the tests run were those of %q, want production's", tested[len(tested)-1])
		}
	})
}

// TestRollbackRestoresAnyEarlierVersion: a rollback restores the
// documents of an earlier release as a new release, the history keeping
// everything between; a document that comes back gets a version no
// editor open on an older text holds.
func TestRollbackRestoresAnyEarlierVersion(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		v1, err := s.Save(ctx, "user:root", "one", Document{Name: "mfa", YAML: reportOnlyDoc}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx, "user:root", "two", Document{Name: "mfa", YAML: enabledDoc, Version: v1.Version}, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "user:root", "three", "mfa", 2, ""); err != nil {
			t.Fatal(err)
		}
		rev, err := s.ReviewRollback(ctx, ProductionEnvironment, 1, 7)
		if err != nil || len(rev.Changes) != 1 || rev.Changes[0].Kind != "added" || rev.Version != 3 {
			t.Fatalf("review of the rollback: %+v %v", rev, err)
		}
		for name, r := range map[string]Rollback{
			"fail/no-reason":      {Env: ProductionEnvironment, Version: 1, HeadVersion: 3},
			"fail/stale-head":     {Env: ProductionEnvironment, Version: 1, HeadVersion: 2, Reason: "x"},
			"fail/unknown":        {Env: ProductionEnvironment, Version: 42, HeadVersion: 3, Reason: "x"},
			"fail/not-earlier":    {Env: ProductionEnvironment, Version: 3, HeadVersion: 3, Reason: "x"},
			"fail/unknown-env":    {Env: "qa", Version: 1, HeadVersion: 3, Reason: "x"},
			"fail/negative-order": {Env: ProductionEnvironment, Version: -1, HeadVersion: 3, Reason: "x"},
		} {
			if _, err := s.RollBack(ctx, "user:eve", r); err == nil {
				t.Errorf("%s: rolled back", name)
			}
		}
		rel, err := s.RollBack(ctx, "user:root", Rollback{Env: ProductionEnvironment, Version: 1, HeadVersion: 3, Reason: "INC-7"})
		if err != nil {
			t.Fatal(err)
		}
		doc := rel.document("mfa")
		if rel.Version != 4 || doc.YAML != reportOnlyDoc || doc.Version <= 2 {
			t.Fatalf("after the rollback: release %d, mfa %+v", rel.Version, doc)
		}
		if _, err := s.Save(ctx, "user:eve", "stale editor", Document{Name: "mfa", YAML: enabledDoc, Version: 1}, ""); err == nil {
			t.Fatal("an editor open on version 1 saved over the restored document")
		}
		hist, _ := s.History(ctx, ProductionEnvironment)
		if len(hist) != 4 || hist[0].Action != "policy.rollback" || hist[0].FromVersion != 1 || hist[0].Reason != "INC-7" {
			t.Fatalf("history after the rollback = %+v", hist)
		}
	})
}

// TestConcurrentChangesLoseNothing: saves of different documents racing
// on one release all land (each compare-and-swap retries on the new
// release), and a promotion racing them either lands whole or is
// refused whole.
func TestConcurrentChangesLoseNothing(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		const n = 8
		for _, err := range atOnce(n, func(i int) error {
			_, err := s.Documents.Put(ctx, Document{Name: fmt.Sprintf("doc-%d", i), YAML: "policies: []\n"}, 0, "user:root")
			return err
		}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		head, err := s.Documents.Head(ctx)
		if err != nil || len(head.Documents) != n || head.Version != n {
			t.Fatalf("after %d racing creates: version %d, %d documents, %v", n, head.Version, len(head.Documents), err)
		}
		hist, err := s.History(ctx, ProductionEnvironment)
		if err != nil || len(hist) != n {
			t.Fatalf("history holds %d releases, want %d: %v", len(hist), n, err)
		}
	})
}

// TestDocumentsMoveIntoARelease: documents stored one entry each (as
// before releases) are moved into the environment's first release on
// the first read, nothing lost and versions kept, and the old entries
// are removed.
func TestDocumentsMoveIntoARelease(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	for _, d := range []Document{{Name: "a", YAML: "policies: []\n", Version: 5}, {Name: "b", YAML: "policies: []\n", Version: 2}} {
		if err := legacyDocuments.At(d.Name).Create(ctx, st, d, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := legacyEnvironmentDocuments.At("staging", "c").Create(ctx, st, Document{Name: "c", YAML: "policies: []\n", Version: 1}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	prod := &Documents{KV: st, Now: func() time.Time { return now }}
	head, err := prod.Head(ctx)
	if err != nil || head.Version != 5 || len(head.Documents) != 2 || head.Documents[0].Version != 5 || head.Action != migrateAction {
		t.Fatalf("production after the move: %+v %v", head, err)
	}
	if left, _ := legacyDocuments.List(ctx, st); len(left) != 0 {
		t.Errorf("%d old entries left", len(left))
	}
	stg, err := prod.InEnvironment("staging").List(ctx)
	if err != nil || len(stg) != 1 || stg[0].Name != "c" {
		t.Fatalf("staging after the move: %+v %v", stg, err)
	}
	if left, _ := legacyEnvironmentDocuments.List(ctx, st); len(left) != 0 {
		t.Errorf("%d old staging entries left", len(left))
	}
	// The next save builds on the moved release.
	if _, err := prod.Put(ctx, Document{Name: "a", YAML: "policies: []\n# edited\n"}, 5, "user:root"); err != nil {
		t.Fatal(err)
	}
	if head, _ := prod.Head(ctx); head.Version != 6 || head.document("a").Version != 6 {
		t.Fatalf("after a save on the moved release: %+v", head)
	}
}

// TestReleaseBounds: an environment holds a bounded number of
// documents, and a change past the bound is refused with the fix and
// stores nothing.
func TestReleaseBounds(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	docs := make([]Document, MaxDocuments+1)
	for i := range docs {
		docs[i] = Document{Name: fmt.Sprintf("d-%03d", i), YAML: "policies: []\n"}
	}
	_, err := s.Documents.Replace(ctx, docs, 0, Change{Action: "policy.promote", Actor: "user:root"})
	if err == nil || !strings.Contains(err.Error(), "the limit is 200") {
		t.Fatalf("fail/too-many-documents: %v", err)
	}
	if head, _ := s.Documents.Head(ctx); head.Version != 0 {
		t.Fatalf("a refused change stored release %d", head.Version)
	}
}
