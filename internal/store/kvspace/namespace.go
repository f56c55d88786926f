package kvspace

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// The narrow parts of store.KV each operation needs, so a feature keeps
// declaring only what it uses.
type (
	// Getter reads entries.
	Getter interface {
		GetKV(ctx context.Context, key string) (store.KVEntry, error)
	}
	// Creator creates entries.
	Creator interface {
		CreateKV(ctx context.Context, key string, value []byte, expiresAt time.Time) (store.KVEntry, error)
	}
	// QuotaCreator creates entries within quotas.
	QuotaCreator interface {
		CreateKVWithin(ctx context.Context, key string, value []byte, expiresAt time.Time, quotas ...store.Quota) (store.KVEntry, error)
	}
	// Updater changes entries by compare-and-swap.
	Updater interface {
		UpdateKV(ctx context.Context, key string, fn func([]byte) ([]byte, error)) (store.KVEntry, error)
	}
	// Renewer changes entries and their expiry by compare-and-swap.
	Renewer interface {
		RenewKV(ctx context.Context, key string, fn func([]byte) ([]byte, time.Time, error)) (store.KVEntry, error)
	}
	// Deleter deletes entries.
	Deleter interface {
		DeleteKV(ctx context.Context, key string) error
	}
	// Lister lists entries by prefix.
	Lister interface {
		ListKV(ctx context.Context, prefix string) ([]store.KVEntry, error)
	}
)

// Namespace is a catalogued namespace with the type of its values.
type Namespace[T any] struct {
	Space
	codec codec[T]
}

// JSON binds the Go type of a namespace whose values are T encoded as
// JSON; the writer named in the catalogue owns T.
func JSON[T any](s Space) Namespace[T] { return Namespace[T]{Space: s, codec: jsonCodec[T]()} }

// LenientJSON is JSON whose corrupt values read as T's zero value.
func LenientJSON[T any](s Space) Namespace[T] {
	return Namespace[T]{Space: s, codec: lenientJSONCodec[T]()}
}

// Raw is the namespace with its values as stored, for tests and for
// namespaces of opaque bytes.
func Raw(s Space) Namespace[[]byte] { return Namespace[[]byte]{Space: s, codec: bytesCodec()} }

// Encode is v as stored.
func (n Namespace[T]) Encode(v T) ([]byte, error) { return n.codec.encode(v) }

// Decode is a stored value as T.
func (n Namespace[T]) Decode(b []byte) (T, error) {
	v, err := n.codec.decode(b)
	if err != nil {
		return v, fmt.Errorf("%w: %s: %w", ErrCorrupt, n.name, err)
	}
	return v, nil
}

// CheckSample reports whether T is the namespace's shape: the catalogue's
// sample value decodes as T and encodes back to the same bytes, so no
// field of the sample is unknown to T and T writes what the catalogue
// shows. Each writer's tests call it for the types it binds.
func (n Namespace[T]) CheckSample() error {
	v, err := n.Decode(n.sample)
	if err != nil {
		return err
	}
	b, err := n.codec.encode(v)
	if err != nil {
		return fmt.Errorf("%s: encode the sample: %w", n.name, err)
	}
	if !bytes.Equal(b, n.sample) {
		return fmt.Errorf("%s: the sample encodes as\n%s\nnot as the catalogue shows\n%s", n.name, b, n.sample)
	}
	return nil
}

// At is the entry of id (see Space.Key). A bad id makes a Ref whose every
// operation fails with ErrBadKey before the store is reached; reads and
// changes fail with store.ErrNotFound as well, since no entry can have
// such a key, so an id an attacker made up is simply not found.
func (n Namespace[T]) At(id ...string) Ref[T] {
	key, err := n.Key(id...)
	return Ref[T]{ns: n, key: key, err: err}
}

// AtDigest is the entry of a hashed namespace whose secret the caller
// has already hashed with SHA-256 (a cache keyed by the digest).
func (n Namespace[T]) AtDigest(sum [32]byte) Ref[T] {
	if n.shape != shapeHashed {
		return Ref[T]{ns: n, err: fmt.Errorf("%w: %s does not keep hashed secrets", ErrBadKey, n.name)}
	}
	return Ref[T]{ns: n, key: n.prefix + hex.EncodeToString(sum[:])}
}

// Quota bounds the namespace's live entries.
func (n Namespace[T]) Quota(maxCount int, maxBytes int64) store.Quota {
	return store.Quota{Prefix: n.prefix, MaxCount: maxCount, MaxBytes: maxBytes}
}

// Item is one listed entry: its id (the key without the prefix), its
// value, and the error of decoding it.
type Item[T any] struct {
	ID    string
	Value T
	Err   error
	Entry store.KVEntry
}

// List returns the live entries whose ids start with the segments owner
// (all entries when none), ordered by key.
func (n Namespace[T]) List(ctx context.Context, kv Lister, owner ...string) ([]Item[T], error) {
	prefix, err := n.ownerPrefix(owner...)
	if err != nil {
		return nil, err
	}
	entries, err := kv.ListKV(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", n.name, err)
	}
	out := make([]Item[T], 0, len(entries))
	for _, e := range entries {
		v, err := n.Decode(e.Value)
		out = append(out, Item[T]{ID: strings.TrimPrefix(e.Key, n.prefix), Value: v, Err: err, Entry: e})
	}
	return out, nil
}

// Ref is one entry of a namespace.
type Ref[T any] struct {
	ns  Namespace[T]
	key string
	err error
}

// Key is the entry's key, or why the id makes none.
func (r Ref[T]) Key() (string, error) { return r.key, r.err }

// missing is the error of reading or changing an entry whose id makes no
// key.
func (r Ref[T]) missing() error { return fmt.Errorf("%w: %w", store.ErrNotFound, r.err) }

// Get returns the value, or store.ErrNotFound.
func (r Ref[T]) Get(ctx context.Context, kv Getter) (T, error) {
	v, _, err := r.Entry(ctx, kv)
	return v, err
}

// Entry returns the value and the stored entry it came from.
func (r Ref[T]) Entry(ctx context.Context, kv Getter) (T, store.KVEntry, error) {
	var zero T
	if r.err != nil {
		return zero, store.KVEntry{}, r.missing()
	}
	e, err := kv.GetKV(ctx, r.key)
	if err != nil {
		return zero, e, err
	}
	v, err := r.ns.Decode(e.Value)
	return v, e, err
}

// Exists reports whether the entry is live; never for a bad id.
func (r Ref[T]) Exists(ctx context.Context, kv Getter) (bool, error) {
	if r.err != nil {
		return false, nil //nolint:nilerr // a bad id names no entry: it is simply absent
	}
	_, err := kv.GetKV(ctx, r.key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Create stores v unless a live entry holds the key (store.ErrConflict).
// A zero expires means never.
func (r Ref[T]) Create(ctx context.Context, kv Creator, v T, expires time.Time) error {
	b, err := r.encode(v)
	if err != nil {
		return err
	}
	_, err = kv.CreateKV(ctx, r.key, b, expires)
	return err
}

// CreateWithin is Create within quotas (store.KV.CreateKVWithin).
func (r Ref[T]) CreateWithin(ctx context.Context, kv QuotaCreator, v T, expires time.Time, quotas ...store.Quota) error {
	b, err := r.encode(v)
	if err != nil {
		return err
	}
	_, err = kv.CreateKVWithin(ctx, r.key, b, expires, quotas...)
	return err
}

// Update replaces the live value with fn's result in one
// compare-and-swap, keeping the entry's expiry; fn may run more than
// once. A corrupt stored value fails the update.
func (r Ref[T]) Update(ctx context.Context, kv Updater, fn func(T) (T, error)) error {
	if r.err != nil {
		return r.missing()
	}
	_, err := kv.UpdateKV(ctx, r.key, func(b []byte) ([]byte, error) {
		cur, err := r.ns.Decode(b)
		if err != nil {
			return nil, err
		}
		next, err := fn(cur)
		if err != nil {
			return nil, err
		}
		return r.ns.codec.encode(next)
	})
	return err
}

// Renew is Update that also sets when the entry expires (zero: never).
func (r Ref[T]) Renew(ctx context.Context, kv Renewer, fn func(T) (T, time.Time, error)) error {
	if r.err != nil {
		return r.missing()
	}
	_, err := kv.RenewKV(ctx, r.key, func(b []byte) ([]byte, time.Time, error) {
		cur, err := r.ns.Decode(b)
		if err != nil {
			return nil, time.Time{}, err
		}
		next, expires, err := fn(cur)
		if err != nil {
			return nil, time.Time{}, err
		}
		nb, err := r.ns.codec.encode(next)
		return nb, expires, err
	})
	return err
}

// Delete removes the entry, or returns store.ErrNotFound.
func (r Ref[T]) Delete(ctx context.Context, kv Deleter) error {
	if r.err != nil {
		return r.missing()
	}
	return kv.DeleteKV(ctx, r.key)
}

func (r Ref[T]) encode(v T) ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	b, err := r.ns.codec.encode(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", r.ns.name, err)
	}
	return b, nil
}
