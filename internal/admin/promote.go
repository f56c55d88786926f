package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kylelemons/godebug/diff"

	"github.com/stepgate/stepgate/internal/store"
)

// Review is what replacing a policy environment's stored documents
// would change, worked out against the two releases it names: the
// environment's current one (Version) and the one the documents come
// from (FromEnv at FromVersion). A promotion or a rollback is reviewed
// first and then applied only if neither release moved since, so what
// is applied is exactly what was reviewed.
type Review struct {
	Env         string `json:"env"`
	Version     int64  `json:"version"`
	FromEnv     string `json:"from_env"`
	FromVersion int64  `json:"from_version"`
	// Changes are the documents added, changed and removed, with a line
	// diff each; none means the documents are already the same.
	Changes []DocumentChange `json:"changes"`
	// Impact is the environment's recent decisions replayed against the
	// set the change would make.
	Impact Impact `json:"impact"`
	// Failed are the environment's scenario tests that fail with the
	// change; applying it then needs a reason to override them.
	Failed []string `json:"failed_scenarios,omitempty"`
}

// DocumentChange is one document a promotion or rollback adds, changes
// or removes.
type DocumentChange struct {
	Name string `json:"name"`
	// Kind is added, changed or removed.
	Kind string `json:"kind"`
	// Diff is the line diff of the YAML, lines marked "+" and "-".
	Diff string `json:"diff"`
}

// Promotion asks to make the stored documents of From, as reviewed at
// FromVersion, the stored documents of To, still at ToVersion.
type Promotion struct {
	From        string `json:"from"`
	To          string `json:"to"`
	FromVersion int64  `json:"from_version"`
	ToVersion   int64  `json:"to_version"`
	Reason      string `json:"reason"`
	// OverrideTests is the reason to promote although scenario tests
	// fail.
	OverrideTests string `json:"override_tests,omitempty"`
}

// Rollback asks to restore release Version of Env, whose current
// release is still HeadVersion.
type Rollback struct {
	Env           string `json:"env"`
	Version       int64  `json:"version"`
	HeadVersion   int64  `json:"head_version"`
	Reason        string `json:"reason"`
	OverrideTests string `json:"override_tests,omitempty"`
}

// ReviewPromotion works out what promoting from's stored documents to
// to would change, over the last days of to's decisions.
func (s *Service) ReviewPromotion(ctx context.Context, from, to string, days int) (Review, error) {
	src, dst, err := s.promotionEnds(from, to)
	if err != nil {
		return Review{}, err
	}
	rel, err := src.Documents.Head(ctx)
	if err != nil {
		return Review{}, err
	}
	return dst.review(ctx, rel, days)
}

// ReviewRollback works out what restoring release version of env would
// change.
func (s *Service) ReviewRollback(ctx context.Context, env string, version int64, days int) (Review, error) {
	in, err := s.In(env)
	if err != nil {
		return Review{}, err
	}
	rel, err := in.release(ctx, version)
	if err != nil {
		return Review{}, err
	}
	return in.review(ctx, rel, days)
}

// Promote makes the stored documents of p.From the stored documents of
// p.To in one compare-and-swap, after the checks every change passes
// (the set compiles, its scenario tests pass or are overridden with a
// reason), and records it in the audit trail. Either release having
// moved since the review is a conflict: review again.
func (s *Service) Promote(ctx context.Context, actor Actor, p Promotion) (Release, error) {
	if strings.TrimSpace(p.Reason) == "" {
		return Release{}, invalid("a promotion needs a reason, for the audit trail")
	}
	if err := plainReasons(p.Reason, p.OverrideTests); err != nil {
		return Release{}, err
	}
	src, dst, err := s.promotionEnds(p.From, p.To)
	if err != nil {
		return Release{}, err
	}
	rel, err := src.Documents.Head(ctx)
	if err != nil {
		return Release{}, err
	}
	if rel.Version != p.FromVersion {
		return Release{}, &Error{Kind: Conflict, Message: fmt.Sprintf("%s is at version %d now, not %d as reviewed; review the promotion again", p.From, rel.Version, p.FromVersion)}
	}
	change := s.change(actor, "policy.promote", "environment:"+dst.Environment(), p.Reason)
	change.FromEnv, change.FromVersion = src.Environment(), rel.Version
	return dst.replace(ctx, actor, rel.Documents, p.ToVersion, change, p.OverrideTests)
}

// RollBack restores the stored documents of an earlier release of
// r.Env as a new release (the history keeps everything in between),
// after the same checks as a promotion.
func (s *Service) RollBack(ctx context.Context, actor Actor, r Rollback) (Release, error) {
	if strings.TrimSpace(r.Reason) == "" {
		return Release{}, invalid("a rollback needs a reason, for the audit trail")
	}
	if err := plainReasons(r.Reason, r.OverrideTests); err != nil {
		return Release{}, err
	}
	in, err := s.In(r.Env)
	if err != nil {
		return Release{}, err
	}
	rel, err := in.release(ctx, r.Version)
	if err != nil {
		return Release{}, err
	}
	if rel.Version >= r.HeadVersion {
		return Release{}, invalid("roll back to an earlier version than the current %d (stepgate policy history %s lists them)", r.HeadVersion, in.Environment())
	}
	change := s.change(actor, "policy.rollback", "environment:"+in.Environment(), r.Reason)
	change.FromEnv, change.FromVersion = in.Environment(), rel.Version
	return in.replace(ctx, actor, rel.Documents, r.HeadVersion, change, r.OverrideTests)
}

// History lists the environment's releases, newest first.
func (s *Service) History(ctx context.Context, env string) ([]Release, error) {
	in, err := s.In(env)
	if err != nil {
		return nil, err
	}
	return in.Documents.History(ctx)
}

// promotionEnds are the services of a promotion's two environments.
// They are compared by the environments In resolved, not by the names
// given: production spelt as its name at one end and empty at the other
// used to pass for two environments, and production was "promoted" into
// itself, with a release and an audit entry saying so.
func (s *Service) promotionEnds(from, to string) (src, dst *Service, err error) {
	if src, err = s.In(from); err != nil {
		return nil, nil, err
	}
	if dst, err = s.In(to); err != nil {
		return nil, nil, err
	}
	if src.Environment() == dst.Environment() {
		return nil, nil, invalid("promote from one policy environment to another (like staging to production), not %s to itself", dst.Environment())
	}
	return src, dst, nil
}

// release returns the environment's release of the given version.
func (s *Service) release(ctx context.Context, version int64) (Release, error) {
	rel, err := s.Documents.At(ctx, version)
	if errors.Is(err, store.ErrNotFound) {
		return Release{}, &Error{Kind: NotFound, Message: err.Error()}
	}
	return rel, err
}

// review works out what making rel's documents the service's
// environment's would change.
func (s *Service) review(ctx context.Context, rel Release, days int) (Review, error) {
	if days < 1 || days > 90 {
		return Review{}, invalid("days must be between 1 and 90 (got %d)", days)
	}
	head, err := s.Documents.Head(ctx)
	if err != nil {
		return Review{}, err
	}
	out := Review{Env: s.Environment(), Version: head.Version, FromEnv: rel.Env, FromVersion: rel.Version,
		Changes: documentChanges(head.Documents, rel.Documents)}
	set, err := s.compile(ctx, rel.Documents)
	if err != nil {
		return Review{}, err
	}
	if s.Test != nil {
		if out.Failed, err = s.Test(ctx, s.Environment(), set); err != nil {
			return Review{}, fmt.Errorf("run the scenario tests: %w", err)
		}
	}
	out.Impact, err = s.replay(ctx, set.Snapshot, days)
	return out, err
}

// compile compiles the environment's files with docs as its stored
// documents; problems come back as an *Error listing every one.
func (s *Service) compile(ctx context.Context, docs []Document) (Compiled, error) {
	set, err := s.Compile(ctx, s.Environment(), docs)
	if probs := policyProblems(err); probs != nil {
		return Compiled{}, &Error{Kind: Invalid, Message: "the policies of " + s.Environment() + " would not compile", Problems: probs}
	}
	return set, err
}

// replace makes docs the environment's stored documents if its release
// is still expect, after the checks, audits it and reloads.
func (s *Service) replace(ctx context.Context, actor Actor, docs []Document, expect int64, change Change, overrideTests string) (Release, error) {
	set, err := s.compile(ctx, docs)
	if err != nil {
		return Release{}, err
	}
	failed, err := s.runTests(ctx, set, overrideTests)
	if err != nil {
		return Release{}, err
	}
	before, err := s.Documents.Head(ctx)
	if err != nil {
		return Release{}, err
	}
	if before.Version != expect {
		return Release{}, &Error{Kind: Conflict, Message: fmt.Sprintf("%s is at version %d now, not %d as reviewed; review the change again", s.Environment(), before.Version, expect)}
	}
	rel, err := s.Documents.Replace(ctx, docs, expect, change)
	if err != nil && !Stored(err) {
		return Release{}, s.storeErr(err, change.Target)
	}
	overrideErr := s.recordOverride(ctx, actor, change.Target, overrideTests, failed)
	return rel, errors.Join(err, overrideErr, s.afterChange(ctx, actor, change.Action, change.Target, change.Reason, releaseSummary(before), releaseSummary(rel)))
}

// releaseSummary is what the audit trail keeps of a release: its
// version, where it came from, and each document's version.
func releaseSummary(r Release) map[string]any {
	docs := map[string]int64{}
	for _, d := range r.Documents {
		docs[d.Name] = d.Version
	}
	out := map[string]any{"version": r.Version, "documents": docs}
	if r.FromEnv != "" {
		out["from"] = fmt.Sprintf("%s@%d", r.FromEnv, r.FromVersion)
	}
	return out
}

// documentChanges lists the documents next adds, changes and removes
// from cur, by name.
func documentChanges(cur, next []Document) []DocumentChange {
	out := []DocumentChange{}
	byName := func(docs []Document, name string) (Document, bool) {
		i := slices.IndexFunc(docs, func(d Document) bool { return d.Name == name })
		if i < 0 {
			return Document{}, false
		}
		return docs[i], true
	}
	for _, n := range next {
		c, ok := byName(cur, n.Name)
		switch {
		case !ok:
			out = append(out, DocumentChange{Name: n.Name, Kind: "added", Diff: diff.Diff("", n.YAML)})
		case c.YAML != n.YAML:
			out = append(out, DocumentChange{Name: n.Name, Kind: "changed", Diff: diff.Diff(c.YAML, n.YAML)})
		}
	}
	for _, c := range cur {
		if _, ok := byName(next, c.Name); !ok {
			out = append(out, DocumentChange{Name: c.Name, Kind: "removed", Diff: diff.Diff(c.YAML, "")})
		}
	}
	slices.SortFunc(out, func(a, b DocumentChange) int { return strings.Compare(a.Name, b.Name) })
	return out
}
