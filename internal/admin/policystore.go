package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/errkind"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
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

const (
	prefixDocument = "policy/doc/"
	// generationKey counts changes to stored documents; every node polls
	// it and recompiles when it moves.
	generationKey = "policy/generation"
)

var documentName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ErrVersion means the document changed since the caller read it.
var ErrVersion = errkind.New(errkind.Conflict, "the document was changed by someone else since it was read; reload it and apply your change again")

// Documents keeps the stored policy documents.
type Documents struct {
	KV  store.KV
	Now func() time.Time
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
	entries, err := d.KV.ListKV(ctx, prefixDocument)
	if err != nil {
		return nil, fmt.Errorf("list policy documents: %w", err)
	}
	out := make([]Document, 0, len(entries))
	for _, e := range entries {
		var doc Document
		if err := json.Unmarshal(e.Value, &doc); err != nil {
			return nil, fmt.Errorf("policy document %s is not readable: %w", strings.TrimPrefix(e.Key, prefixDocument), err)
		}
		out = append(out, doc)
	}
	return out, nil
}

// Get returns one document, or store.ErrNotFound.
func (d *Documents) Get(ctx context.Context, name string) (Document, error) {
	e, err := d.KV.GetKV(ctx, prefixDocument+name)
	if err != nil {
		return Document{}, err
	}
	var doc Document
	if err := json.Unmarshal(e.Value, &doc); err != nil {
		return Document{}, fmt.Errorf("policy document %s is not readable: %w", name, err)
	}
	return doc, nil
}

// Put creates the document (version 0) or replaces the version the
// caller read; any other version is ErrVersion. It returns the stored
// document.
func (d *Documents) Put(ctx context.Context, doc Document, version int64, actor string) (Document, error) {
	if err := CheckName(doc.Name); err != nil {
		return Document{}, err
	}
	if len(doc.YAML) > policy.MaxFileSize {
		return Document{}, fmt.Errorf("document %s is %d bytes; the limit is %d", doc.Name, len(doc.YAML), policy.MaxFileSize)
	}
	doc.UpdatedAt, doc.UpdatedBy = d.Now().UTC(), actor
	key := prefixDocument + doc.Name
	if version == 0 {
		doc.Version = 1
		b, _ := json.Marshal(doc)
		if _, err := d.KV.CreateKV(ctx, key, b, time.Time{}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return Document{}, fmt.Errorf("a policy document named %s already exists; edit it or choose another name: %w", doc.Name, ErrVersion)
			}
			return Document{}, err
		}
		return doc, d.bump(ctx)
	}
	_, err := d.KV.UpdateKV(ctx, key, func(old []byte) ([]byte, error) {
		var cur Document
		if err := json.Unmarshal(old, &cur); err != nil {
			return nil, err
		}
		if cur.Version != version {
			return nil, ErrVersion
		}
		doc.Version = version + 1
		return json.Marshal(doc)
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
	if err := d.KV.DeleteKV(ctx, prefixDocument+name); err != nil {
		return err
	}
	return d.bump(ctx)
}

// Generation is a counter that moves on every change to the stored
// documents.
func (d *Documents) Generation(ctx context.Context) (int64, error) {
	e, err := d.KV.GetKV(ctx, generationKey)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(e.Value), 10, 64)
}

func (d *Documents) bump(ctx context.Context) error {
	_, err := d.KV.UpdateKV(ctx, generationKey, func(old []byte) ([]byte, error) {
		n, err := strconv.ParseInt(string(old), 10, 64)
		if err != nil {
			n = 0
		}
		return []byte(strconv.FormatInt(n+1, 10)), nil
	})
	if errors.Is(err, store.ErrNotFound) {
		_, err = d.KV.CreateKV(ctx, generationKey, []byte("1"), time.Time{})
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
