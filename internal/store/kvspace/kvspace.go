// Package kvspace is the catalogue of the namespaces of the store's
// key/value space, and the typed accessors through which every feature
// reads and writes them.
//
// Each namespace is named once, in catalogue.go: its key prefix, what it
// holds, the Go type and encoding of its values, when its entries expire,
// and which package writes it. A feature never writes a raw key: it asks
// its namespace for a Ref (Namespace.At) and calls Get, Create, Update,
// Renew or Delete on it, which build the key from the prefix, check it,
// and encode or decode the value. A test in this package fails when any
// other package calls the store's key/value methods itself or spells a
// catalogued prefix.
//
// Keys cannot leave their namespace. Prefixes are unique and none is a
// prefix of another (a test checks it), so a key of one namespace can
// never equal a key of another, whatever its id holds. Within a
// namespace, ids are "/"-separated segments of a fixed count, and a
// segment that is empty, holds the separator, a control character or
// invalid UTF-8, or is longer than MaxSegment is refused with ErrBadKey:
// an id such as "alice/x" can therefore never reach into the entries
// listed under "alice/" of another key, nor a name typed by an anonymous
// client into another record. Bearer values (codes, tickets, cookies) are
// kept under their SHA-256 only, so a read of the database yields nothing
// that can be replayed; any string may be such a secret.
//
// Package store stays free of features: this package imports only store,
// and features import this package.
package kvspace

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Separator divides the segments of a key.
const Separator = "/"

// MaxSegment is the longest segment of a key, in bytes.
const MaxSegment = 512

// Errors of the accessors.
var (
	// ErrBadKey means an id would not make a key of its namespace.
	ErrBadKey = errors.New("bad key/value key")
	// ErrCorrupt means a stored value does not decode as its namespace's
	// type.
	ErrCorrupt = errors.New("stored value is corrupt")
)

// keyShape is how a namespace turns an id into a key.
type keyShape int

const (
	// shapeFixed: the namespace is one entry; its key is the prefix.
	shapeFixed keyShape = iota
	// shapeSegments: the key is the prefix and minParts to maxParts
	// checked segments.
	shapeSegments
	// shapeHashed: the key is the prefix and the hex SHA-256 of a secret.
	shapeHashed
)

// Use is one way a namespace's writer uses its entries; the conformance
// suite tests each use a namespace declares.
type Use uint8

// Uses of a namespace.
const (
	// UseCreateOnly: Create claims the key once; a second Create fails
	// with store.ErrConflict (single use, replay records, races of nodes).
	UseCreateOnly Use = 1 << iota
	// UseUpdate: entries change by compare-and-swap, keeping their expiry.
	UseUpdate
	// UseRenew: entries change by compare-and-swap with a new expiry.
	UseRenew
	// UseList: entries are listed by prefix (all, or one owner's).
	UseList
	// UseQuota: entries are created within a quota.
	UseQuota
)

// Expiry says when a namespace's entries stop existing.
type Expiry uint8

// Expiry rules.
const (
	// Never: entries live until deleted.
	Never Expiry = iota
	// Fixed: each entry's expiry is set when it is created.
	Fixed
	// Renewed: each change sets a new expiry (zero: never).
	Renewed
)

// Space is one catalogued namespace, without its value type. Only the
// catalogue makes them.
type Space struct {
	name     string
	prefix   string
	holds    string
	value    string
	expiry   Expiry
	expires  string
	writer   string
	shape    keyShape
	minParts int
	maxParts int
	uses     Use
	// sampleID and sample are a representative id and stored value,
	// which the conformance suite stores on every backend.
	sampleID []string
	sample   []byte
}

// Name is the namespace's name in the catalogue.
func (s Space) Name() string { return s.name }

// Prefix is the start of every key of the namespace (the whole key of a
// fixed one).
func (s Space) Prefix() string { return s.prefix }

// Holds says what the namespace holds.
func (s Space) Holds() string { return s.holds }

// Value names the Go type of the values and their encoding.
func (s Space) Value() string { return s.value }

// Expiry is the namespace's expiry rule, and ExpiresWhen says it in words.
func (s Space) Expiry() Expiry { return s.expiry }

// ExpiresWhen says when entries expire.
func (s Space) ExpiresWhen() string { return s.expires }

// Writer names the package that writes the namespace.
func (s Space) Writer() string { return s.writer }

// Uses reports whether the namespace's writer uses its entries in way u.
func (s Space) Uses(u Use) bool { return s.uses&u != 0 }

// Fixed reports whether the namespace is a single entry.
func (s Space) Fixed() bool { return s.shape == shapeFixed }

// Hashed reports whether ids are secrets kept as their SHA-256.
func (s Space) Hashed() bool { return s.shape == shapeHashed }

// Parts is how many segments an id has, at least and at most.
func (s Space) Parts() (minParts, maxParts int) { return s.minParts, s.maxParts }

// Sample is a representative id and stored value of the namespace.
func (s Space) Sample() (id []string, value []byte) {
	return append([]string(nil), s.sampleID...), append([]byte(nil), s.sample...)
}

// Key builds the key of id: for a fixed namespace no id, for a hashed one
// the secret, otherwise one argument per segment (where the count of
// segments varies, a single argument may hold them joined by Separator).
func (s Space) Key(id ...string) (string, error) {
	switch s.shape {
	case shapeFixed:
		if len(id) != 0 {
			return "", fmt.Errorf("%w: %s is a single entry and takes no id", ErrBadKey, s.name)
		}
		return s.prefix, nil
	case shapeHashed:
		if len(id) != 1 {
			return "", fmt.Errorf("%w: %s takes one secret, got %d values", ErrBadKey, s.name, len(id))
		}
		sum := sha256.Sum256([]byte(id[0]))
		return s.prefix + hex.EncodeToString(sum[:]), nil
	}
	joined := strings.Join(id, Separator)
	parts := id
	if len(id) == 1 && s.minParts != s.maxParts {
		// A key of a varying number of segments may come as one string.
		parts = strings.Split(joined, Separator)
	}
	if len(parts) < s.minParts || len(parts) > s.maxParts {
		return "", fmt.Errorf("%w: an id of %s has %s, got %q", ErrBadKey, s.name, s.partsText(), joined)
	}
	for _, p := range parts {
		if err := checkSegment(p); err != nil {
			return "", fmt.Errorf("%w: id %q of %s: %w", ErrBadKey, joined, s.name, err)
		}
	}
	return s.prefix + joined, nil
}

// ownerPrefix is the prefix of the keys whose leading segments are
// owner, for listing one owner's entries.
func (s Space) ownerPrefix(owner ...string) (string, error) {
	if len(owner) == 0 {
		return s.prefix, nil
	}
	if s.shape != shapeSegments || len(owner) >= s.minParts {
		return "", fmt.Errorf("%w: %s lists by at most %d leading segments", ErrBadKey, s.name, s.minParts-1)
	}
	for _, p := range owner {
		if err := checkSegment(p); err != nil {
			return "", fmt.Errorf("%w: owner %q of %s: %w", ErrBadKey, p, s.name, err)
		}
	}
	return s.prefix + strings.Join(owner, Separator) + Separator, nil
}

func (s Space) partsText() string {
	if s.minParts == s.maxParts {
		return fmt.Sprintf("%d segment(s) separated by %q", s.minParts, Separator)
	}
	return fmt.Sprintf("%d to %d segments separated by %q", s.minParts, s.maxParts, Separator)
}

// checkSegment refuses a segment that could change the shape of a key:
// the separator would make two, and control characters or broken UTF-8
// are stored differently (or refused) by the backends.
func checkSegment(p string) error {
	switch {
	case p == "":
		return errors.New("a segment is empty")
	case strings.Contains(p, Separator):
		return fmt.Errorf("a segment holds the separator %q", Separator)
	case len(p) > MaxSegment:
		return fmt.Errorf("a segment is %d bytes, at most %d are allowed", len(p), MaxSegment)
	case !utf8.ValidString(p):
		return errors.New("a segment is not valid UTF-8")
	case strings.ContainsFunc(p, unicode.IsControl):
		return errors.New("a segment holds a control character")
	}
	return nil
}
