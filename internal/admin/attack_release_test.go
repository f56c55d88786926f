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
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// dupDoc defines the policy named dup; two documents holding it make a
// set that does not compile.
const dupDoc = "policies:\n  - name: dup\n    state: report-only\n    users: {include: {users: [all]}}\n    target: {apps: {include: [all]}}\n    grant: {controls: [mfa]}\n"

// betweenCheckAndCommit returns a copy of s whose compile runs meanwhile
// once, after the first compile of its environment's candidate set: the
// moment between a change's check and its commit.
func betweenCheckAndCommit(t *testing.T, s *Service, meanwhile func(ctx context.Context) error) *Service {
	t.Helper()
	var once sync.Once
	inner := s.Compile
	c := *s
	c.Compile = func(ctx context.Context, env string, stored []Document) (Compiled, error) {
		set, err := inner(ctx, env, stored)
		once.Do(func() {
			if merr := meanwhile(ctx); merr != nil {
				t.Errorf("the change made meanwhile: %v", merr)
			}
		})
		return set, err
	}
	return &c
}

// storedSetCompiles fails t when the stored documents of every
// environment do not compile together (what every node loads).
func storedSetCompiles(t *testing.T, s *Service) {
	t.Helper()
	if err := s.Reload(context.Background()); err != nil {
		t.Fatalf("the stored policy set no longer compiles, so no node can load it: %v", err)
	}
}

// TestAttackChangeCommitsOnlyTheSetItChecked: a save checks (compiles
// and tests) the environment's documents with its document in, then
// commits. A promotion, or another administrator's save, landing in
// between used to be kept under the save: the stored set was one that
// was never compiled or tested, and here one that does not compile at
// all (the same policy twice), so every node refused to reload and no
// later change could be made. The change must commit over the release
// it checked, and be checked again over a newer one.
func TestAttackChangeCommitsOnlyTheSetItChecked(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		stg, err := s.In("staging")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stg.Save(ctx, "user:root", "stage", Document{Name: "staged", YAML: dupDoc}, ""); err != nil {
			t.Fatal(err)
		}
		racing := betweenCheckAndCommit(t, s, func(ctx context.Context) error {
			head, err := s.Documents.Head(ctx)
			if err != nil {
				return err
			}
			sh, err := stg.Documents.Head(ctx)
			if err != nil {
				return err
			}
			_, err = s.Promote(ctx, "user:other", Promotion{From: "staging", To: ProductionEnvironment, FromVersion: sh.Version, ToVersion: head.Version, Reason: "release"})
			return err
		})
		_, err = racing.Save(ctx, "user:root", "same policy here", Document{Name: "local", YAML: dupDoc}, "")
		var ae *Error
		if !errors.As(err, &ae) || ae.Kind != Invalid || !strings.Contains(ae.Error(), "already declared") {
			t.Errorf("fail/save-over-promotion: the save over a promotion it was not checked with: %v", err)
		}
		storedSetCompiles(t, s)
		if docs, _ := s.Documents.List(ctx); len(docs) != 1 || docs[0].Name != "staged" {
			t.Errorf("production holds %+v, want the promotion alone", docs)
		}
	})
}

// TestAttackUpdateAndDeleteCommitOnlyTheSetTheyChecked: the same race
// for an update and a delete, against another administrator's save.
func TestAttackUpdateAndDeleteCommitOnlyTheSetTheyChecked(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		if _, err := s.Save(ctx, "user:root", "", Document{Name: "base", YAML: reportOnlyDoc}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx, "user:root", "", Document{Name: "extra", YAML: "policies: []\n"}, ""); err != nil {
			t.Fatal(err)
		}
		// The other save lands a document whose policy clashes with one
		// the state switch's check did not see.
		racing := betweenCheckAndCommit(t, s, func(ctx context.Context) error {
			_, err := s.Save(ctx, "user:other", "", Document{Name: "other", YAML: dupDoc}, "")
			return err
		})
		cur, _ := s.Documents.Get(ctx, "base")
		_, err := racing.Save(ctx, "user:root", "", Document{Name: "base", YAML: dupDoc, Version: cur.Version}, "")
		if err == nil {
			t.Errorf("fail/update-over-save: a save over a save it was not checked with was stored")
		}
		storedSetCompiles(t, s)

		// A delete racing a save still lands when the set it makes is
		// checked again and compiles: nothing is refused for nothing.
		racing = betweenCheckAndCommit(t, s, func(ctx context.Context) error {
			_, err := s.Save(ctx, "user:other", "", Document{Name: "another", YAML: "policies: []\n"}, "")
			return err
		})
		extra, _ := s.Documents.Get(ctx, "extra")
		if err := racing.Delete(ctx, "user:root", "", "extra", extra.Version, ""); err != nil {
			t.Errorf("ok/delete-over-unrelated-save: %v", err)
		}
		storedSetCompiles(t, s)
		if _, err := s.Documents.Get(ctx, "another"); err != nil {
			t.Errorf("the other save was lost: %v", err)
		}
	})
}

// TestAttackRacingSavesAreCheckedAgainAndLand: saves of different
// documents racing through the service are each checked again over the
// release that beat them, and all land.
func TestAttackRacingSavesAreCheckedAgainAndLand(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		const n = 6
		for _, err := range atOnce(n, func(i int) error {
			_, err := s.Save(ctx, "user:root", "", Document{Name: fmt.Sprintf("doc-%d", i), YAML: "policies: []\n"}, "")
			return err
		}) {
			if err != nil {
				t.Errorf("ok/racing-saves: %v", err)
			}
		}
		if head, err := s.Documents.Head(ctx); err != nil || len(head.Documents) != n {
			t.Fatalf("after %d racing saves: %d documents, %v", n, len(head.Documents), err)
		}
	})
}

// TestAttackAuditNamesTheEnvironment: the same document or policy name
// exists in staging and production; a change to either used to be
// audited as store:NAME or policy:NAME alone, so the audit trail could
// not tell a production change from a staging one (a change to
// production read as a harmless staging edit). Every change to an
// environment other than production names it in its target.
func TestAttackAuditNamesTheEnvironment(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	stg, err := s.In("staging")
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []*Service{s, stg} {
		if _, err := svc.Save(ctx, "user:root", "", Document{Name: "mfa", YAML: reportOnlyDoc}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.SetState(ctx, "user:root", "", "mfa", "enabled", ""); err != nil {
			t.Fatal(err)
		}
		doc, _ := svc.Documents.Get(ctx, "mfa")
		if err := svc.Delete(ctx, "user:root", "", "mfa", doc.Version, ""); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := audit.New(s.Store, nil).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string][]string{}
	for _, e := range entries {
		targets[e.Action] = append(targets[e.Action], e.Target)
	}
	for _, action := range []string{"policy.create", "policy.state", "policy.delete"} {
		got := targets[action]
		if len(got) != 2 || got[0] == got[1] {
			t.Errorf("fail/%s: targets %q do not tell production from staging", action, got)
			continue
		}
		if strings.Contains(got[0], "staging") || !strings.Contains(got[1], "staging") {
			t.Errorf("fail/%s: targets %q, want the staging one (second) to name staging", action, got)
		}
	}
}

// TestAttackReasonForgesHistoryLines: a reason with a line break, a tab
// or a terminal escape would forge lines of stepgate policy history (one
// line per version) or rewrite the operator's terminal; every policy
// change refuses it, stores nothing and audits nothing.
func TestAttackReasonForgesHistoryLines(t *testing.T) {
	forged := "CHG-1\n9  2026-05-04 12:00:00Z  user:ceo  promoted from staging v1  1  approved"
	for _, tc := range []struct {
		name   string
		reason string
	}{{"fail/newline", forged}, {"fail/carriage-return", "ok\rrolled back"}, {"fail/tab", "a\tb"}, {"fail/terminal-escape", "ok\x1b[2K\x1b[1A"}, {"fail/c1-control", "ok\u009b2K"}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newService(t)
			sh, head := readyToPromote(t, s)
			doc, _ := s.Documents.Get(ctx, "mfa")
			changes := map[string]func() error{
				"save": func() error {
					_, err := s.Save(ctx, "user:root", tc.reason, Document{Name: "mfa", YAML: enabledDoc, Version: doc.Version}, "")
					return err
				},
				"save-override": func() error {
					_, err := s.Save(ctx, "user:root", "ok", Document{Name: "mfa", YAML: enabledDoc, Version: doc.Version}, tc.reason)
					return err
				},
				"state": func() error {
					_, err := s.SetState(ctx, "user:root", tc.reason, "mfa", "enabled", "")
					return err
				},
				"delete": func() error { return s.Delete(ctx, "user:root", tc.reason, "mfa", doc.Version, "") },
				"promote": func() error {
					_, err := s.Promote(ctx, "user:root", Promotion{From: "staging", To: ProductionEnvironment, FromVersion: sh.Version, ToVersion: head.Version, Reason: tc.reason})
					return err
				},
				"rollback": func() error {
					_, err := s.RollBack(ctx, "user:root", Rollback{Env: "staging", Version: 1, HeadVersion: sh.Version + 1, Reason: tc.reason})
					return err
				},
			}
			for what, change := range changes {
				var ae *Error
				if err := change(); !errors.As(err, &ae) || ae.Kind != Invalid || !strings.Contains(ae.Message, "one line") {
					t.Errorf("%s with reason %q: %v", what, tc.reason, err)
				}
			}
			if after, _ := s.Documents.Head(ctx); after.Version != head.Version {
				t.Errorf("a refused change stored release %d", after.Version)
			}
		})
	}
}

// TestAttackInFromAnotherEnvironmentUsesProductionsEngine: the service
// of staging asked for production's kept staging's live engine, so an
// impact replay or review of a production change through it compared
// against staging's set. In always hands production its own engine.
func TestAttackInFromAnotherEnvironmentUsesProductionsEngine(t *testing.T) {
	s := newService(t)
	stg, err := s.In("staging")
	if err != nil {
		t.Fatal(err)
	}
	back, err := stg.In(ProductionEnvironment)
	if err != nil {
		t.Fatal(err)
	}
	if stg.Engine == s.Engine || back.Engine != s.Engine || back.Environment() != ProductionEnvironment {
		t.Fatalf("fail/engine-carried-over: production through staging has engine %p, production's is %p", back.Engine, s.Engine)
	}
}

// TestAttackForgedVersionsAreConflicts: a promotion or rollback naming a
// version below zero (the store's "whatever is current"), zero, or far
// beyond the current one, is refused and stores nothing.
func TestAttackForgedVersionsAreConflicts(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		sh, head := readyToPromote(t, s)
		for _, v := range []int64{anyVersion, -2, 0, head.Version + 1, 1 << 62} {
			if _, err := s.Promote(ctx, "user:root", Promotion{From: "staging", To: ProductionEnvironment, FromVersion: sh.Version, ToVersion: v, Reason: "r"}); err == nil {
				t.Errorf("fail/promote-to-version-%d: promoted", v)
			}
			if _, err := s.Promote(ctx, "user:root", Promotion{From: "staging", To: ProductionEnvironment, FromVersion: v, ToVersion: head.Version, Reason: "r"}); err == nil {
				t.Errorf("fail/promote-from-version-%d: promoted", v)
			}
			if _, err := s.RollBack(ctx, "user:root", Rollback{Env: ProductionEnvironment, Version: v, HeadVersion: head.Version, Reason: "r"}); err == nil {
				t.Errorf("fail/rollback-to-version-%d: rolled back", v)
			}
			if _, err := s.Documents.Replace(ctx, nil, v, Change{Action: "policy.promote", Actor: "user:root"}); !errors.Is(err, ErrReleaseVersion) {
				t.Errorf("fail/replace-over-version-%d: %v", v, err)
			}
		}
		if after, _ := s.Documents.Head(ctx); after.Version != head.Version {
			t.Fatalf("a forged version stored release %d", after.Version)
		}
	})
}

// silentKV is a store whose writes of the policy generation (what tells
// every node to reload) fail, as a store failing between two writes
// would.
type silentKV struct{ store.KV }

func (k silentKV) generation(key string) error {
	if gen, _ := kvspace.PolicyGeneration.At().Key(); key == gen {
		return errors.New("connection reset")
	}
	return nil
}

func (k silentKV) UpdateKV(ctx context.Context, key string, fn func([]byte) ([]byte, error)) (store.KVEntry, error) {
	if err := k.generation(key); err != nil {
		return store.KVEntry{}, err
	}
	return k.KV.UpdateKV(ctx, key, fn)
}

func (k silentKV) CreateKV(ctx context.Context, key string, value []byte, expiresAt time.Time) (store.KVEntry, error) {
	if err := k.generation(key); err != nil {
		return store.KVEntry{}, err
	}
	return k.KV.CreateKV(ctx, key, value, expiresAt)
}

// TestAttackStoredChangeIsAlwaysAudited: the release is stored, then
// telling the other nodes fails. The change was made, so it is audited
// (who, why) and reloaded here, and the error says it is stored; it used
// to look refused and go unaudited.
func TestAttackStoredChangeIsAlwaysAudited(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		sh, head := readyToPromote(t, s)
		s.Documents.KV = silentKV{s.Documents.KV}

		rel, err := s.Promote(ctx, "user:mallory", Promotion{From: "staging", To: ProductionEnvironment, FromVersion: sh.Version, ToVersion: head.Version, Reason: "quiet change"})
		if !Stored(err) || rel.Version != head.Version+1 {
			t.Fatalf("promote over a failing announcement: release %d, %v", rel.Version, err)
		}
		promoted, err := auditOf(ctx, s, "policy.promote")
		if err != nil || len(promoted) != 1 || promoted[0].Actor != "user:mallory" || promoted[0].Reason != "quiet change" {
			t.Fatalf("fail/unaudited-promotion: %+v %v", promoted, err)
		}
		if got := s.Engine.Load().Policies(); len(got) != 1 || got[0].State != "enabled" {
			t.Errorf("this node does not enforce the stored promotion")
		}

		doc, _ := s.Documents.Get(ctx, "mfa")
		if _, err := s.Save(ctx, "user:mallory", "quiet edit", Document{Name: "mfa", YAML: reportOnlyDoc, Version: doc.Version}, ""); !Stored(err) {
			t.Fatalf("save over a failing announcement: %v", err)
		}
		doc, _ = s.Documents.Get(ctx, "mfa")
		if err := s.Delete(ctx, "user:mallory", "quiet delete", "mfa", doc.Version, ""); !Stored(err) {
			t.Fatalf("delete over a failing announcement: %v", err)
		}
		for _, action := range []string{"policy.update", "policy.delete"} {
			if got, _ := auditOf(ctx, s, action); len(got) != 1 || got[0].Actor != "user:mallory" {
				t.Errorf("fail/unaudited-%s: %+v", action, got)
			}
		}
	})
}

// TestAttackNodesMigratingAtOnce: nodes starting together each find the
// documents kept one entry each and move them into a release at once;
// one release is made, every node reads the same documents, nothing is
// lost, and the history holds the move once. A legacy entry written
// after the move (by a node not yet upgraded) changes nothing.
func TestAttackNodesMigratingAtOnce(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		kv := s.Documents.KV
		for _, d := range []Document{{Name: "a", YAML: "policies: []\n", Version: 3}, {Name: "b", YAML: "policies: []\n", Version: 7}} {
			if err := legacyDocuments.At(d.Name).Create(ctx, kv, d, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		const nodes = 4
		heads := make(chan Release, nodes)
		var wg sync.WaitGroup
		for range nodes {
			wg.Go(func() {
				node := &Documents{KV: kv, Now: func() time.Time { return now }}
				h, err := node.Head(ctx)
				if err != nil {
					t.Error(err)
				}
				heads <- h
			})
		}
		wg.Wait()
		close(heads)
		for h := range heads {
			if h.Version != 7 || len(h.Documents) != 2 {
				t.Errorf("a node read version %d with %d documents, want 7 with 2", h.Version, len(h.Documents))
			}
		}
		if err := legacyDocuments.At("late").Create(ctx, kv, Document{Name: "late", YAML: "policies: []\n", Version: 1}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if head, _ := s.Documents.Head(ctx); head.Version != 7 || len(head.Documents) != 2 {
			t.Errorf("a legacy entry written after the move changed the release: %+v", head)
		}
		hist, err := s.History(ctx, ProductionEnvironment)
		if err != nil || len(hist) != 1 || hist[0].Action != migrateAction {
			t.Errorf("history after the racing moves: %+v %v", hist, err)
		}
	})
}

// TestAttackInvisibleReasons: a reason, or the reason that overrides
// failing scenario tests, made only of characters that show nothing (a
// zero-width space, a word joiner, a byte order mark, a Braille blank)
// passed as given, so the audit trail recorded an override whose reason
// reads as empty; and a right-to-left override or a line separator made
// the console and stepgate policy history show a reason other than the
// one stored. Every policy change refuses them, stores nothing and
// audits nothing.
func TestAttackInvisibleReasons(t *testing.T) {
	for _, tc := range []struct{ name, reason string }{
		{"fail/zero-width-space", "\u200b"},
		{"fail/word-joiner-and-bom", "\u2060\ufeff"},
		{"fail/bidi-marks", "\u200e\u200f"},
		{"fail/braille-blank", "\u2800\u2800"},
		{"fail/hangul-filler", "\u3164"},
		{"fail/right-to-left-override", "CHG-7 \u202edevorppa\u202c"},
		{"fail/line-separator", "CHG-7\u2028v9 promoted from staging"},
		{"fail/paragraph-separator", "CHG-7\u2029approved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newService(t)
			if _, err := s.Save(ctx, "user:root", "start", Document{Name: "mfa", YAML: reportOnlyDoc}, ""); err != nil {
				t.Fatal(err)
			}
			stg := staged(t, s, enabledDoc)
			if _, err := stg.Save(ctx, "user:root", "second", Document{Name: "other", YAML: "policies: []\n"}, ""); err != nil {
				t.Fatal(err)
			}
			// Every change from here on makes a scenario test fail, so
			// each one needs an override.
			s.Test = func(context.Context, string, Compiled) ([]string, error) {
				return []string{"prod.tests.yaml:3: scenario admins: expected challenge, got allow"}, nil
			}
			stg.Test = s.Test
			doc, _ := s.Documents.Get(ctx, "mfa")
			head, _ := s.Documents.Head(ctx)
			sh, _ := stg.Documents.Head(ctx)
			changes := map[string]func(reason, override string) error{
				"save": func(reason, override string) error {
					_, err := s.Save(ctx, "user:root", reason, Document{Name: "mfa", YAML: enabledDoc, Version: doc.Version}, override)
					return err
				},
				"state": func(reason, override string) error {
					_, err := s.SetState(ctx, "user:root", reason, "mfa", "enabled", override)
					return err
				},
				"delete": func(reason, override string) error {
					return s.Delete(ctx, "user:root", reason, "mfa", doc.Version, override)
				},
				"promote": func(reason, override string) error {
					_, err := s.Promote(ctx, "user:root", Promotion{From: "staging", To: ProductionEnvironment, FromVersion: sh.Version,
						ToVersion: head.Version, Reason: reason, OverrideTests: override})
					return err
				},
				"rollback": func(reason, override string) error {
					_, err := stg.RollBack(ctx, "user:root", Rollback{Env: "staging", Version: 1, HeadVersion: sh.Version, Reason: reason, OverrideTests: override})
					return err
				},
			}
			for what, change := range changes {
				if err := change("CHG-7", tc.reason); err == nil {
					t.Errorf("%s overridden with %q: saved", what, tc.reason)
				}
				if err := change(tc.reason, "accepted by the security team"); err == nil {
					t.Errorf("%s with reason %q: saved", what, tc.reason)
				}
			}
			if after, _ := s.Documents.Head(ctx); after.Version != head.Version {
				t.Errorf("a refused change stored production release %d", after.Version)
			}
			if after, _ := stg.Documents.Head(ctx); after.Version != sh.Version {
				t.Errorf("a refused change stored staging release %d", after.Version)
			}
			if entries, _ := auditOf(ctx, s, "policy.tests-overridden"); len(entries) != 0 {
				t.Errorf("overrides audited: %+v", entries)
			}
		})
	}
}

// TestAttackHistoryIsBounded: every change kept a whole copy of the
// environment's documents in the history for ever, so a script or a
// stolen API token saving in a loop grew the store without end and made
// every history listing longer. The history keeps the last Keep
// releases: older ones leave the store, are neither listed nor
// restorable (refused as not found, naming the window), and one left
// behind is dropped at the next listing.
func TestAttackHistoryIsBounded(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		const keep, changes = 5, 12
		s.Documents.Keep = keep
		doc := Document{Name: "mfa", YAML: reportOnlyDoc}
		for i := range changes {
			doc.YAML = fmt.Sprintf("# change %d\n%s", i, reportOnlyDoc)
			saved, err := s.Save(ctx, "user:root", "loop", doc, "")
			if err != nil {
				t.Fatal(err)
			}
			doc.Version = saved.Version
		}
		stored := func() (int, int) {
			full, err := history.List(ctx, s.Store, ProductionEnvironment)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := historyIndex.List(ctx, s.Store, ProductionEnvironment)
			if err != nil {
				t.Fatal(err)
			}
			return len(full), len(lines)
		}
		if full, lines := stored(); full > keep || lines > keep {
			t.Fatalf("fail/unbounded: after %d changes the store keeps %d releases and %d history lines, want at most %d", changes, full, lines, keep)
		}
		hist, err := s.History(ctx, ProductionEnvironment)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != keep || hist[0].Version != changes || hist[keep-1].Version != changes-keep+1 {
			t.Fatalf("history lists %d releases from %d, want the last %d", len(hist), hist[0].Version, keep)
		}
		var ae *Error
		if _, err := s.RollBack(ctx, "user:root", Rollback{Env: ProductionEnvironment, Version: changes - keep, HeadVersion: changes, Reason: "too old"}); !errors.As(err, &ae) || ae.Kind != NotFound || !strings.Contains(ae.Message, "keeps its last 5 versions") {
			t.Fatalf("fail/restore-dropped: %v, want not found naming the window", err)
		}
		if _, err := s.ReviewRollback(ctx, ProductionEnvironment, changes-keep+1, 7); err != nil {
			t.Fatalf("the oldest kept release cannot be reviewed: %v", err)
		}

		// A release left outside the window (a drop that failed, or a
		// history from before the window) is dropped at the next listing.
		left := Release{Env: ProductionEnvironment, Version: 2, Documents: []Document{}, Change: Change{Action: "policy.update", Actor: "user:root"}}
		if err := s.Documents.historyRef(2).Create(ctx, s.Store, left, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Documents.versionRef(historyIndex, 2).Create(ctx, s.Store, left, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if hist, _ := s.History(ctx, ProductionEnvironment); len(hist) != keep {
			t.Fatalf("a release outside the window is listed: %d releases", len(hist))
		}
		if full, lines := stored(); full > keep || lines > keep {
			t.Fatalf("fail/left-behind: %d releases and %d lines kept after a listing, want at most %d", full, lines, keep)
		}
	})
}

// TestAttackPromotionIntoItself: production named two ways (its name,
// and empty, which the service reads as production) passed the check
// that a promotion goes from one environment to another, so a
// "promotion" of production into itself made a release and an audit
// entry saying production was promoted from production. It is refused
// however either end is spelt, and stores nothing.
func TestAttackPromotionIntoItself(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	if _, err := s.Save(ctx, "user:root", "start", Document{Name: "mfa", YAML: reportOnlyDoc}, ""); err != nil {
		t.Fatal(err)
	}
	head, _ := s.Documents.Head(ctx)
	for _, ends := range [][2]string{{ProductionEnvironment, ""}, {"", ProductionEnvironment}, {"", ""}, {ProductionEnvironment, ProductionEnvironment}} {
		if _, err := s.ReviewPromotion(ctx, ends[0], ends[1], 7); err == nil {
			t.Errorf("fail/review-%q-to-%q: reviewed", ends[0], ends[1])
		}
		_, err := s.Promote(ctx, "user:root", Promotion{From: ends[0], To: ends[1], FromVersion: head.Version, ToVersion: head.Version, Reason: "same"})
		var ae *Error
		if !errors.As(err, &ae) || ae.Kind != Invalid {
			t.Errorf("fail/promote-%q-to-%q: %v, want refused as invalid", ends[0], ends[1], err)
		}
	}
	if after, _ := s.Documents.Head(ctx); after.Version != head.Version {
		t.Fatalf("a promotion into itself stored release %d", after.Version)
	}
}
