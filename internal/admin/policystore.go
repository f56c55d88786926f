package admin

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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
	Name      string    `json:"name"`
	YAML      string    `json:"yaml"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// Source is the name policy problems and the console give the document:
// store:NAME, beside the file names of policy files.
func (d Document) Source() string { return StoreSource + d.Name }

// StoreSource prefixes the source of documents kept in the store.
const StoreSource = "store:"

// documents are the stored policy documents. kvspace.PolicyGeneration
// counts changes to them; every node polls it and recompiles when it
// moves.
var documents = kvspace.JSON[Document](kvspace.PolicyDocument)

// environmentDocuments are the stored documents of the other policy
// environments, under the environment's name. Production's stay where
// they always were, so a deployment without environments reads exactly
// what it read before.
var environmentDocuments = kvspace.JSON[Document](kvspace.PolicyEnvironmentDocument)

var documentName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ErrVersion means the document changed since the caller read it.
var ErrVersion = errkind.New(errkind.Conflict, "the document was changed by someone else since it was read; reload it and apply your change again")

// Documents keeps the stored policy documents.
type Documents struct {
	KV  store.KV
	Now func() time.Time
	// Env is the policy environment whose documents these are; empty is
	// production.
	Env string
}

// ProductionEnvironment is the environment of Documents with no Env.
const ProductionEnvironment = "production"

// InEnvironment returns the documents of the policy environment env, in
// the same store.
func (d *Documents) InEnvironment(env string) *Documents {
	if env == ProductionEnvironment {
		env = ""
	}
	return &Documents{KV: d.KV, Now: d.Now, Env: env}
}

// Environment names the policy environment of the documents.
func (d *Documents) Environment() string {
	if d.Env == "" {
		return ProductionEnvironment
	}
	return d.Env
}

// production reports whether the documents are production's, kept in
// their own namespace.
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

func (d *Documents) list(ctx context.Context) ([]kvspace.Item[Document], error) {
	if d.production() {
		return documents.List(ctx, d.KV)
	}
	if err := d.checkEnvironment(); err != nil {
		return nil, err
	}
	return environmentDocuments.List(ctx, d.KV, d.Env)
}

func (d *Documents) at(name string) kvspace.Ref[Document] {
	if d.production() {
		return documents.At(name)
	}
	if d.checkEnvironment() != nil {
		return environmentDocuments.At() // no key: every use fails
	}
	return environmentDocuments.At(d.Env, name)
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
	items, err := d.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("list policy documents: %w", err)
	}
	out := make([]Document, 0, len(items))
	for _, it := range items {
		if it.Err != nil {
			return nil, fmt.Errorf("policy document %s is not readable: %w", it.ID, it.Err)
		}
		out = append(out, it.Value)
	}
	return out, nil
}

// Get returns one document, or store.ErrNotFound.
func (d *Documents) Get(ctx context.Context, name string) (Document, error) {
	doc, err := d.at(name).Get(ctx, d.KV)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Document{}, fmt.Errorf("policy document %s is not readable: %w", name, err)
	}
	return doc, err
}

// Put creates the document (version 0) or replaces the version the
// caller read; any other version is ErrVersion. It returns the stored
// document.
func (d *Documents) Put(ctx context.Context, doc Document, version int64, actor string) (Document, error) {
	if err := CheckName(doc.Name); err != nil {
		return Document{}, err
	}
	if err := d.checkEnvironment(); err != nil {
		return Document{}, err
	}
	if len(doc.YAML) > policy.MaxFileSize {
		return Document{}, fmt.Errorf("document %s is %d bytes; the limit is %d", doc.Name, len(doc.YAML), policy.MaxFileSize)
	}
	doc.UpdatedAt, doc.UpdatedBy = d.Now().UTC(), actor
	rec := d.at(doc.Name)
	if version == 0 {
		doc.Version = 1
		if err := rec.Create(ctx, d.KV, doc, time.Time{}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return Document{}, fmt.Errorf("a policy document named %s already exists; edit it or choose another name: %w", doc.Name, ErrVersion)
			}
			return Document{}, err
		}
		return doc, d.bump(ctx)
	}
	err := rec.Update(ctx, d.KV, func(cur Document) (Document, error) {
		if cur.Version != version {
			return cur, ErrVersion
		}
		doc.Version = version + 1
		return doc, nil
	})
	if err != nil {
		return Document{}, err
	}
	return doc, d.bump(ctx)
}

// Delete removes the document if it is still at version.
func (d *Documents) Delete(ctx context.Context, name string, version int64) error {
	cur, err := d.Get(ctx, name)
	if err != nil {
		return err
	}
	if cur.Version != version {
		return ErrVersion
	}
	if err := d.at(name).Delete(ctx, d.KV); err != nil {
		return err
	}
	return d.bump(ctx)
}

// Generation is a counter that moves on every change to the stored
// documents.
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
