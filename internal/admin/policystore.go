package admin

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// Document is a policy document created in the console or through the
// API. It is YAML in the same format as a policy file, kept in the store
// so every node enforces it; policy files stay in the operator's hands
// (and in git), and the console shows their content read-only.
type Document struct {
	Name string `json:"name"`
	// YAML is the document's text; a release of the history lists its
	// documents without it.
	YAML      string    `json:"yaml,omitempty"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// Source is the name policy problems and the console give the document:
// store:NAME, beside the file names of policy files.
func (d Document) Source() string { return StoreSource + d.Name }

// StoreSource prefixes the source of documents kept in the store.
const StoreSource = "store:"

// legacyDocuments and legacyEnvironmentDocuments are where documents
// were kept, one entry each, before an environment's documents became
// one release; the first read of an environment moves them into it.
var (
	legacyDocuments            = kvspace.JSON[Document](kvspace.PolicyDocument)
	legacyEnvironmentDocuments = kvspace.JSON[Document](kvspace.PolicyEnvironmentDocument)
)

var documentName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ErrVersion means the document changed since the caller read it.
var ErrVersion = errkind.New(errkind.Conflict, "the document was changed by someone else since it was read; reload it and apply your change again")

// ErrReleaseVersion means the environment's documents changed since the
// caller looked at them (a promotion or rollback reviewed against an
// older version).
var ErrReleaseVersion = errkind.New(errkind.Conflict, "the policy environment was changed by someone else since it was reviewed; review the change again")

// Documents keeps the stored policy documents of one policy environment,
// as releases (see Release).
type Documents struct {
	KV  store.KV
	Now func() time.Time
	// Env is the policy environment whose documents these are; empty is
	// production.
	Env string
	// Keep is how many releases the history keeps, the current one
	// included; 0 is MaxHistory.
	Keep int
}

// ProductionEnvironment is the environment of Documents with no Env.
const ProductionEnvironment = "production"

// InEnvironment returns the documents of the policy environment env, in
// the same store.
func (d *Documents) InEnvironment(env string) *Documents {
	if env == ProductionEnvironment {
		env = ""
	}
	return &Documents{KV: d.KV, Now: d.Now, Env: env, Keep: d.Keep}
}

// Environment names the policy environment of the documents.
func (d *Documents) Environment() string {
	if d.Env == "" {
		return ProductionEnvironment
	}
	return d.Env
}

// production reports whether the documents are production's.
func (d *Documents) production() bool { return d.Env == "" || d.Env == ProductionEnvironment }

// environmentName is the form of a policy environment's name, as the
// configuration checks it; a name of another form (a store key with
// separators in it) never reaches the store.
var environmentName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func (d *Documents) checkEnvironment() error {
	if d.production() || environmentName.MatchString(d.Env) {
		return nil
	}
	return fmt.Errorf("policy environment %q: use 1 to 32 lowercase letters, digits and dashes, starting with a letter (like staging)", d.Env)
}

// CheckName reports a document name that is not a lowercase slug.
func CheckName(name string) error {
	if !documentName.MatchString(name) {
		return fmt.Errorf("document name %q: use 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit (like mfa-for-admins)", name)
	}
	return nil
}

// List returns every stored document, ordered by name.
func (d *Documents) List(ctx context.Context) ([]Document, error) {
	head, err := d.Head(ctx)
	if err != nil {
		return nil, err
	}
	return head.Documents, nil
}

// Get returns one document, or store.ErrNotFound.
func (d *Documents) Get(ctx context.Context, name string) (Document, error) {
	docs, err := d.List(ctx)
	if err != nil {
		return Document{}, err
	}
	for _, doc := range docs {
		if doc.Name == name {
			return doc, nil
		}
	}
	return Document{}, fmt.Errorf("policy document %s: %w", name, store.ErrNotFound)
}

// Put creates the document (version 0) or replaces the version the
// caller read; any other version is ErrVersion. It returns the stored
// document.
func (d *Documents) Put(ctx context.Context, doc Document, version int64, actor string) (Document, error) {
	action := "policy.update"
	if version == 0 {
		action = "policy.create"
	}
	return d.Save(ctx, doc, version, Change{Action: action, Target: doc.Name, Actor: actor})
}

// Save is Put recording change as the release's reason for being.
func (d *Documents) Save(ctx context.Context, doc Document, version int64, change Change) (Document, error) {
	return d.SaveOver(ctx, doc, version, anyVersion, change)
}

// SaveOver is Save only while the environment's current release is
// still release, the one the caller checked the change against; any
// other is ErrReleaseVersion. The service saves this way so that the set
// it stores is exactly the set it compiled and tested.
func (d *Documents) SaveOver(ctx context.Context, doc Document, version, release int64, change Change) (Document, error) {
	if err := CheckName(doc.Name); err != nil {
		return Document{}, err
	}
	if len(doc.YAML) > policy.MaxFileSize {
		return Document{}, fmt.Errorf("document %s is %d bytes; the limit is %d", doc.Name, len(doc.YAML), policy.MaxFileSize)
	}
	doc.UpdatedAt, doc.UpdatedBy = d.Now().UTC(), change.Actor
	rel, err := d.commit(ctx, change, release, func(docs []Document, _ int64) ([]Document, error) {
		return putDocument(docs, doc, version)
	})
	if err != nil && !Stored(err) {
		return Document{}, err
	}
	return rel.document(doc.Name), err
}

// putDocument returns docs with doc put in place of the version the
// caller read (0: a new document).
func putDocument(docs []Document, doc Document, version int64) ([]Document, error) {
	i := slices.IndexFunc(docs, func(d Document) bool { return d.Name == doc.Name })
	switch {
	case version == 0 && i >= 0:
		return nil, fmt.Errorf("a policy document named %s already exists; edit it or choose another name: %w", doc.Name, ErrVersion)
	case version == 0:
		doc.Version = 1
		return append(slices.Clone(docs), doc), nil
	case i < 0:
		return nil, fmt.Errorf("policy document %s: %w", doc.Name, store.ErrNotFound)
	case docs[i].Version != version:
		return nil, ErrVersion
	}
	out := slices.Clone(docs)
	doc.Version = version + 1
	out[i] = doc
	return out, nil
}

// Delete removes the document if it is still at version.
func (d *Documents) Delete(ctx context.Context, name string, version int64) error {
	return d.Remove(ctx, name, version, Change{Action: "policy.delete", Target: name})
}

// Remove is Delete recording change as the release's reason for being.
func (d *Documents) Remove(ctx context.Context, name string, version int64, change Change) error {
	return d.RemoveOver(ctx, name, version, anyVersion, change)
}

// RemoveOver is Remove only while the current release is still release
// (see SaveOver).
func (d *Documents) RemoveOver(ctx context.Context, name string, version, release int64, change Change) error {
	_, err := d.commit(ctx, change, release, func(docs []Document, _ int64) ([]Document, error) {
		i := slices.IndexFunc(docs, func(d Document) bool { return d.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("policy document %s: %w", name, store.ErrNotFound)
		}
		if docs[i].Version != version {
			return nil, ErrVersion
		}
		return slices.Delete(slices.Clone(docs), i, i+1), nil
	})
	return err
}

// Generation is a counter that moves on every change to the stored
// documents of any environment.
func (d *Documents) Generation(ctx context.Context) (int64, error) {
	n, err := kvspace.PolicyGeneration.At().Get(ctx, d.KV)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return n, err
}

func (d *Documents) bump(ctx context.Context) error {
	gen := kvspace.PolicyGeneration.At()
	err := gen.Update(ctx, d.KV, func(n int64) (int64, error) { return n + 1, nil })
	if errors.Is(err, store.ErrNotFound) {
		err = gen.Create(ctx, d.KV, 1, time.Time{})
		if errors.Is(err, store.ErrConflict) { // another node created it first
			return d.bump(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("record the policy change: %w", err)
	}
	return nil
}

// Parse parses every document for compiling beside the policy files.
func Parse(docs []Document) ([]*policy.Document, policy.Problems) {
	out := make([]*policy.Document, 0, len(docs))
	var probs policy.Problems
	for _, d := range docs {
		doc, ps := policy.Parse(d.Source(), []byte(d.YAML))
		out = append(out, doc)
		probs = append(probs, ps...)
	}
	return out, probs
}
