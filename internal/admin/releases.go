package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Release is one version of a policy environment's stored documents: the
// whole set as it stood after one change, and that change. An
// environment's current release is one store entry, so every change
// (a document saved, a promotion replacing every document at once, a
// rollback) is one compare-and-swap of it: no node ever compiles half
// of a promotion. Each release is also kept in the history, so any
// earlier version can be looked at and restored.
type Release struct {
	Env       string     `json:"env"`
	Version   int64      `json:"version"`
	Documents []Document `json:"documents"`
	Change
}

// Change is what made a release: the audit action, what it acted on,
// who and why, and for a promotion or a rollback where the documents
// came from.
type Change struct {
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
	// FromEnv and FromVersion: a promotion's source environment and
	// release, or a rollback's restored release (FromEnv is the
	// environment itself).
	FromEnv     string `json:"from_env,omitempty"`
	FromVersion int64  `json:"from_version,omitempty"`
}

// Bounds of one environment's stored documents, so a release stays one
// reasonable store entry: each document is at most policy.MaxFileSize.
const (
	MaxDocuments    = 200
	MaxReleaseBytes = 16 << 20
)

// MaxHistory is how many releases of an environment the history keeps,
// the current one included: enough to roll back over months of changes.
// Attack: every change kept a whole copy of the environment's documents
// for ever, so a script or a stolen API token saving in a loop grew the
// store without end (up to MaxReleaseBytes a change) and made every
// history listing longer. Each change now drops the release that falls
// out of the window; the audit trail still records every change.
const MaxHistory = 500

// errReleaseBounds marks a change refused for the bounds.
var errReleaseBounds = errkind.New(errkind.Invalid, "too many or too large policy documents")

// anyVersion lets a change apply to whatever release is current (a
// document's own version guards it); a promotion or rollback names the
// release it was reviewed against instead.
const anyVersion = -1

// actions of releases made by the store itself.
const migrateAction = "policy.migrate"

var (
	releases = kvspace.JSON[Release](kvspace.PolicyRelease)
	history  = kvspace.JSON[Release](kvspace.PolicyHistory)
	// historyIndex holds each release without its documents' text.
	historyIndex = kvspace.JSON[Release](kvspace.PolicyHistoryIndex)
)

func (d *Documents) releaseRef() kvspace.Ref[Release] {
	if d.checkEnvironment() != nil {
		return releases.At() // no key: every use fails
	}
	return releases.At(d.Environment())
}

func (d *Documents) historyRef(version int64) kvspace.Ref[Release] {
	return d.versionRef(history, version)
}

func (d *Documents) versionRef(ns kvspace.Namespace[Release], version int64) kvspace.Ref[Release] {
	if d.checkEnvironment() != nil {
		return ns.At()
	}
	return ns.At(d.Environment(), fmt.Sprintf("%012d", version))
}

// summary is r with its documents named and versioned but without their
// text: what the history lists.
func (r Release) summary() Release {
	out := r
	out.Documents = make([]Document, len(r.Documents))
	for i, doc := range r.Documents {
		doc.YAML = ""
		out.Documents[i] = doc
	}
	return out
}

// document returns the release's document named name.
func (r Release) document(name string) Document {
	for _, d := range r.Documents {
		if d.Name == name {
			return d
		}
	}
	return Document{}
}

// Head returns the environment's current release; version 0 with no
// documents when nothing was ever stored.
func (d *Documents) Head(ctx context.Context) (Release, error) {
	if err := d.checkEnvironment(); err != nil {
		return Release{}, err
	}
	rel, err := d.releaseRef().Get(ctx, d.KV)
	if errors.Is(err, store.ErrNotFound) {
		return d.migrate(ctx)
	}
	if err != nil {
		return Release{}, fmt.Errorf("the policy documents of %s are not readable: %w", d.Environment(), err)
	}
	return rel, nil
}

// commit makes the next release: fn gets the current documents and the
// next version and returns the documents of the next release. With
// expect set (not anyVersion) the current release must be that version.
// The release and its history entry are written, and every node told.
func (d *Documents) commit(ctx context.Context, change Change, expect int64, fn func(docs []Document, next int64) ([]Document, error)) (Release, error) {
	if err := d.checkEnvironment(); err != nil {
		return Release{}, err
	}
	change.At = d.Now().UTC()
	cur, err := d.Head(ctx)
	if err != nil {
		return Release{}, err
	}
	d.keep(ctx, cur)
	var next Release
	build := func(h Release) (Release, error) {
		if expect != anyVersion && h.Version != expect {
			return Release{}, ErrReleaseVersion
		}
		docs, err := fn(h.Documents, h.Version+1)
		if err != nil {
			return Release{}, err
		}
		next = Release{Env: d.Environment(), Version: h.Version + 1, Documents: sortedDocuments(docs), Change: change}
		return next, checkRelease(next)
	}
	if cur.Version == 0 {
		first, err := build(cur)
		if err != nil {
			return Release{}, err
		}
		if err := d.releaseRef().Create(ctx, d.KV, first, time.Time{}); errors.Is(err, store.ErrConflict) {
			return d.commit(ctx, change, expect, fn) // another node stored the first release
		} else if err != nil {
			return Release{}, err
		}
	} else if err := d.releaseRef().Update(ctx, d.KV, build); err != nil {
		return Release{}, err
	}
	d.keep(ctx, next)
	d.drop(ctx, next.Version-d.kept())
	if err := d.bump(ctx); err != nil {
		return next, &unannouncedError{err: err}
	}
	return next, nil
}

// unannouncedError is the failure to tell every node about a change
// that is stored all the same: the release is made, and the other
// nodes enforce it after the next change. Attack: a store that failed
// between the two writes (the release, then the generation) used to
// make a promotion look refused, and the service then skipped its audit
// entry and its reload, so production changed with no record of who or
// why. A caller that gets it has made the change and audits it.
type unannouncedError struct{ err error }

func (e *unannouncedError) Error() string {
	return "the change is stored, but the other nodes could not be told to reload (they enforce it after the next change): " + e.err.Error()
}

func (e *unannouncedError) Unwrap() error { return e.err }

// Stored reports whether err, from a change, still means the change was
// stored (only telling the other nodes failed).
func Stored(err error) bool {
	var u *unannouncedError
	return errors.As(err, &u)
}

// keep writes rel to the history. A writer keeps its release right
// after making it and the release it started from before moving on, so
// a node that stopped between the two leaves no gap behind the next
// change. Failing to keep is not failing the change: History shows the
// current release from the release entry itself.
func (d *Documents) keep(ctx context.Context, rel Release) {
	if rel.Version == 0 {
		return
	}
	_ = d.historyRef(rel.Version).Create(ctx, d.KV, rel, time.Time{})
	_ = d.versionRef(historyIndex, rel.Version).Create(ctx, d.KV, rel.summary(), time.Time{})
}

// kept is how many releases the history keeps.
func (d *Documents) kept() int64 {
	if d.Keep > 0 {
		return int64(d.Keep)
	}
	return MaxHistory
}

// oldestKept is the oldest version the history keeps while head is the
// current one.
func (d *Documents) oldestKept(head int64) int64 { return max(1, head-d.kept()+1) }

// drop removes release version from the history, once it has fallen out
// of the kept window. Failing to drop is not failing the change: the
// history never shows or restores a release outside the window, and the
// next listing drops it again.
func (d *Documents) drop(ctx context.Context, version int64) {
	if version < 1 {
		return
	}
	_ = d.historyRef(version).Delete(ctx, d.KV)
	_ = d.versionRef(historyIndex, version).Delete(ctx, d.KV)
}

// checkRelease refuses a release past the bounds.
func checkRelease(r Release) error {
	if len(r.Documents) > MaxDocuments {
		return fmt.Errorf("policy environment %s would hold %d documents; the limit is %d: merge documents or keep policies in policy files: %w", r.Env, len(r.Documents), MaxDocuments, errReleaseBounds)
	}
	size := 0
	for _, doc := range r.Documents {
		size += len(doc.YAML)
	}
	if size > MaxReleaseBytes {
		return fmt.Errorf("policy environment %s would hold %d bytes of documents; the limit is %d: keep large policy sets in policy files: %w", r.Env, size, MaxReleaseBytes, errReleaseBounds)
	}
	return nil
}

func sortedDocuments(docs []Document) []Document {
	out := slices.Clone(docs)
	slices.SortFunc(out, func(a, b Document) int { return strings.Compare(a.Name, b.Name) })
	if out == nil {
		out = []Document{}
	}
	return out
}

// History returns every kept release of the environment, newest first,
// the current one included, each with its documents' names and versions
// but not their text (At gives a whole release): listing a long history
// reads a line per release, never every set.
func (d *Documents) History(ctx context.Context) ([]Release, error) {
	head, err := d.Head(ctx)
	if err != nil || head.Version == 0 {
		return nil, err
	}
	items, err := historyIndex.List(ctx, d.KV, d.Environment())
	if err != nil {
		return nil, err
	}
	out := []Release{head.summary()}
	oldest := d.oldestKept(head.Version)
	for _, it := range items {
		if it.Err != nil {
			return nil, fmt.Errorf("policy history entry %s is not readable: %w", it.ID, it.Err)
		}
		switch v := it.Value.Version; {
		case v < oldest:
			// Out of the window: left by a change whose drop failed, or
			// kept before the history had one.
			d.drop(ctx, v)
		case v < head.Version:
			out = append(out, it.Value)
		}
	}
	slices.SortFunc(out, func(a, b Release) int { return cmp.Compare(b.Version, a.Version) })
	return out, nil
}

// At returns the release of the given version, from the history.
func (d *Documents) At(ctx context.Context, version int64) (Release, error) {
	head, err := d.Head(ctx)
	if err != nil {
		return Release{}, err
	}
	if version == head.Version && version > 0 {
		return head, nil
	}
	if version > 0 && version < d.oldestKept(head.Version) {
		return Release{}, fmt.Errorf("policy environment %s keeps its last %d versions (%d to %d), not version %d; the audit trail records every change: %w",
			d.Environment(), d.kept(), d.oldestKept(head.Version), head.Version, version, store.ErrNotFound)
	}
	rel, err := d.historyRef(version).Get(ctx, d.KV)
	if errors.Is(err, store.ErrNotFound) {
		return Release{}, fmt.Errorf("policy environment %s has no version %d (stepgate policy history %s lists them): %w", d.Environment(), version, d.Environment(), store.ErrNotFound)
	}
	return rel, err
}

// Replace makes docs the environment's documents in one release, if the
// current release is still expect: what a promotion and a rollback do.
// A document whose text is unchanged keeps its version; one that changes
// or comes back gets a version above any it had, so an editor open on
// an older text cannot save over it.
func (d *Documents) Replace(ctx context.Context, docs []Document, expect int64, change Change) (Release, error) {
	if expect < 0 {
		// A forged version below zero would be anyVersion: the
		// compare-and-swap a promotion or rollback rests on, skipped.
		return Release{}, ErrReleaseVersion
	}
	for _, doc := range docs {
		if err := CheckName(doc.Name); err != nil {
			return Release{}, err
		}
	}
	return d.commit(ctx, change, expect, func(cur []Document, next int64) ([]Document, error) {
		out := make([]Document, 0, len(docs))
		for _, doc := range docs {
			i := slices.IndexFunc(cur, func(c Document) bool { return c.Name == doc.Name })
			switch {
			case i >= 0 && cur[i].YAML == doc.YAML:
				doc = cur[i]
			case i >= 0:
				doc.Version = max(cur[i].Version+1, next)
				doc.UpdatedAt, doc.UpdatedBy = change.At, change.Actor
			default:
				doc.Version = next
				doc.UpdatedAt, doc.UpdatedBy = change.At, change.Actor
			}
			out = append(out, doc)
		}
		return out, nil
	})
}

// migrate moves documents kept one entry each (before releases) into
// the environment's first release, and removes the old entries. With
// none, the environment simply has no release yet. Its version is above
// every document's, as every later release's is.
func (d *Documents) migrate(ctx context.Context) (Release, error) {
	items, err := d.legacy(ctx)
	if err != nil || len(items) == 0 {
		return Release{Env: d.Environment(), Documents: []Document{}}, err
	}
	first := Release{Env: d.Environment(), Version: 1, Change: Change{Action: migrateAction, Actor: "stepgate", At: d.Now().UTC(),
		Reason: "documents moved into one release per environment"}}
	for _, it := range items {
		if it.Err != nil {
			return Release{}, fmt.Errorf("policy document %s is not readable: %w", it.ID, it.Err)
		}
		first.Documents = append(first.Documents, it.Value)
		first.Version = max(first.Version, it.Value.Version)
	}
	first.Documents = sortedDocuments(first.Documents)
	err = d.releaseRef().Create(ctx, d.KV, first, time.Time{})
	if errors.Is(err, store.ErrConflict) { // another node moved them first
		return d.Head(ctx)
	}
	if err != nil {
		return Release{}, fmt.Errorf("move the policy documents of %s into a release: %w", d.Environment(), err)
	}
	d.keep(ctx, first)
	for _, it := range items {
		_ = d.legacyRef(it.ID).Delete(ctx, d.KV) // a leftover is ignored once the release exists
	}
	return first, nil
}

// legacyRef is the old entry of the listed id (a name, or for another
// environment its name and the document's).
func (d *Documents) legacyRef(id string) kvspace.Ref[Document] {
	if d.production() {
		return legacyDocuments.At(id)
	}
	return legacyEnvironmentDocuments.At(strings.Split(id, "/")...)
}

func (d *Documents) legacy(ctx context.Context) ([]kvspace.Item[Document], error) {
	if d.production() {
		return legacyDocuments.List(ctx, d.KV)
	}
	return legacyEnvironmentDocuments.List(ctx, d.KV, d.Env)
}
