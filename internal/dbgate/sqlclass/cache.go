package sqlclass

import (
	"container/list"
	"fmt"
	"strings"
	"sync"

	"github.com/stepgate/stepgate/internal/errkind"
)

// ErrTooLong is returned for a string longer than a Classifier's
// MaxTextBytes; its Facts are ClassUnknown.
var ErrTooLong = errkind.New(errkind.Invalid, "sql: statement text too long to classify")

// Default bounds of a Classifier.
const (
	DefaultCacheEntries = 10000
	DefaultCacheBytes   = 64 << 20
	DefaultMaxTextBytes = 256 << 10
)

// CacheOptions bounds a Classifier's parse cache and the text it parses.
// Zero values take the defaults; a negative MaxEntries turns the cache
// off.
type CacheOptions struct {
	// MaxEntries is how many distinct query strings are kept.
	MaxEntries int
	// MaxBytes bounds the text and facts kept, in bytes. A single string
	// larger than a sixteenth of it is classified but not kept, so one
	// huge statement cannot evict everything else.
	MaxBytes int
	// MaxTextBytes is the longest string parsed; a longer one is
	// ClassUnknown with ErrTooLong. Parsing costs a few microseconds of
	// CPU per byte, so the bound keeps one client from buying seconds of
	// the gateway's CPU with a single huge statement.
	MaxTextBytes int
}

// CacheStats counts a Classifier's cache use.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
	Bytes        int
}

// Classifier classifies query strings through a bounded
// least-recently-used cache keyed by the exact text, so a statement a
// client repeats costs one map lookup; a data statement is kept under
// its text with its numbers set aside (numberKey), so the same statement
// with other numbers written into it costs a scan and a lookup. It is
// safe for concurrent use.
//
// Strings that do not parse are not cached: each one costs a parse again,
// and none can push a good entry out.
type Classifier struct {
	classify     func(sql string, trustPath bool) (Facts, error)
	maxEntries   int
	maxBytes     int
	maxTextBytes int

	mu      sync.Mutex // guards the fields below
	entries map[string]*list.Element
	order   *list.List // front: most recently used; values are *cacheEntry
	bytes   int
	hits    uint64
	misses  uint64
}

type cacheEntry struct {
	sql   string
	facts Facts
	size  int
}

// NewClassifier returns a Classifier with a cache bounded by opts.
func NewClassifier(opts CacheOptions) *Classifier {
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultCacheEntries
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultCacheBytes
	}
	if opts.MaxTextBytes <= 0 {
		opts.MaxTextBytes = DefaultMaxTextBytes
	}
	return &Classifier{
		classify:     func(sql string, trustPath bool) (Facts, error) { return classifyText(sql, trustPath, nil) },
		maxEntries:   opts.MaxEntries,
		maxBytes:     opts.MaxBytes,
		maxTextBytes: opts.MaxTextBytes,
		entries:      map[string]*list.Element{},
		order:        list.New(),
	}
}

// Classify is the package's Classify, through the cache. The Facts
// returned are the caller's own copy.
func (c *Classifier) Classify(sql string) (Facts, error) {
	return c.cached(sql, true)
}

// cached classifies through the cache. A string read with search_path
// distrusted is kept under its own key, which starts with a NUL byte that
// no classified text can hold.
func (c *Classifier) cached(sql string, trustPath bool) (Facts, error) {
	if len(sql) > c.maxTextBytes {
		return unknownFacts(), fmt.Errorf("%w: %d bytes, over the limit of %d; send smaller statements or raise the limit", ErrTooLong, len(sql), c.maxTextBytes)
	}
	if strings.IndexByte(sql, 0) >= 0 {
		// Refused by the parser; checked first so that no such text can
		// spell another one's key.
		return c.classify(sql, trustPath)
	}
	key := sql
	if !trustPath {
		key = "\x00" + sql
	}
	numKey, numbered := numberKey(sql, trustPath)
	if facts, ok := c.lookup(key, !numbered); ok {
		return facts, nil
	}
	if numbered {
		if facts, ok := c.lookup(numKey, true); ok {
			return facts, nil
		}
	}
	facts, err := c.classify(sql, trustPath)
	if err != nil {
		return facts, err
	}
	if numbered && numberFree(facts) {
		key = numKey
	}
	c.store(key, facts)
	return facts.clone(), nil
}

// numberFree reports whether facts are those of data statements only,
// whose facts do not depend on the values of their numeric constants
// (numkey.go), so that they may be kept under the string's number key;
// and whose normalized text kept none of them (pg_query's normalization
// leaves a position such as ORDER BY 1 as it is).
func numberFree(f Facts) bool {
	return dataStatements(f) && numberless(f.Normalized)
}

// dataStatements reports whether f holds only SELECT, INSERT, UPDATE and
// DELETE statements, none of them unknown.
func dataStatements(f Facts) bool {
	if len(f.Statements) == 0 || f.Class == ClassUnknown {
		return false
	}
	for _, st := range f.Statements {
		switch st.Command {
		case "SELECT", "INSERT", "UPDATE", "DELETE":
		default:
			return false
		}
		if st.Prepares != "" || st.Executes != "" {
			return false
		}
	}
	return true
}

// lookup finds key's facts; count counts a miss (a hit always counts).
func (c *Classifier) lookup(key string, count bool) (Facts, bool) {
	c.mu.Lock()
	el, ok := c.entries[key]
	if !ok {
		if count {
			c.misses++
		}
		c.mu.Unlock()
		return Facts{}, false
	}
	c.hits++
	c.order.MoveToFront(el)
	facts := el.Value.(*cacheEntry).facts
	c.mu.Unlock()
	return facts.clone(), true
}

func (c *Classifier) store(sql string, facts Facts) {
	if c.maxEntries < 0 {
		return
	}
	size := len(sql) + facts.size()
	if size > c.maxBytes/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[sql]; ok {
		return // another caller stored it meanwhile
	}
	c.entries[sql] = c.order.PushFront(&cacheEntry{sql: sql, facts: facts, size: size})
	c.bytes += size
	for len(c.entries) > c.maxEntries || c.bytes > c.maxBytes {
		oldest := c.order.Back()
		entry := oldest.Value.(*cacheEntry)
		c.order.Remove(oldest)
		delete(c.entries, entry.sql)
		c.bytes -= entry.size
	}
}

// Stats returns the cache's counters.
func (c *Classifier) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Entries: len(c.entries), Bytes: c.bytes}
}
