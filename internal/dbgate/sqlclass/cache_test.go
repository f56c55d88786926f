package sqlclass

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// countingClassifier returns a Classifier whose parser is a stand-in that
// counts its calls, so the cache's rules are tested without cgo.
func countingClassifier(opts CacheOptions) (*Classifier, *atomic.Int64) {
	var calls atomic.Int64
	c := NewClassifier(opts)
	c.classify = func(sql string, _ bool) (Facts, error) {
		calls.Add(1)
		if strings.HasPrefix(sql, "bad") {
			return unknownFacts(), ErrUnparsable
		}
		f := Facts{Statements: []Statement{{Command: "SELECT", Class: ClassRead, Tables: []Table{{Name: sql}}}}}
		f.summarize()
		return f, nil
	}
	return c, &calls
}

func TestCacheHitCostsNoParse(t *testing.T) {
	c, calls := countingClassifier(CacheOptions{})
	for range 3 {
		facts, err := c.Classify("SELECT 1")
		if err != nil || facts.Class != ClassRead {
			t.Fatalf("Classify = %+v, %v", facts, err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("parsed %d times, want 1", calls.Load())
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 1 || s.Entries != 1 || s.Bytes <= 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c, calls := countingClassifier(CacheOptions{MaxEntries: 2})
	for _, sql := range []string{"a", "b", "a", "c"} { // "a" used again, so "b" is the oldest
		if _, err := c.Classify(sql); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Entries != 2 {
		t.Errorf("entries = %d, want 2", s.Entries)
	}
	before := calls.Load()
	c.Classify("a")
	c.Classify("c")
	if calls.Load() != before {
		t.Error("a or c was evicted; want b evicted")
	}
	c.Classify("b")
	if calls.Load() != before+1 {
		t.Error("b was still cached")
	}
}

// TestCacheBoundedByBytes: a flood of distinct long statements keeps the
// cache under its byte budget, and one huge statement is not kept at all.
func TestCacheBoundedByBytes(t *testing.T) {
	const budget = 64 << 10
	c, _ := countingClassifier(CacheOptions{MaxBytes: budget})
	for i := range 2000 {
		c.Classify(fmt.Sprintf("SELECT %d, '%s'", i, strings.Repeat("x", 200)))
		if s := c.Stats(); s.Bytes > budget {
			t.Fatalf("after %d statements the cache holds %d bytes, over %d", i+1, s.Bytes, budget)
		}
	}
	entries := c.Stats().Entries
	c.Classify(strings.Repeat("y", budget/8))
	if s := c.Stats(); s.Entries > entries || s.Bytes > budget {
		t.Errorf("a huge statement was kept: %+v", s)
	}
}

func TestCacheKeepsNoFailures(t *testing.T) {
	c, calls := countingClassifier(CacheOptions{})
	for range 2 {
		facts, err := c.Classify("bad sql")
		if !errors.Is(err, ErrUnparsable) || facts.Class != ClassUnknown {
			t.Fatalf("Classify = %+v, %v; want unknown and the error", facts, err)
		}
	}
	if calls.Load() != 2 || c.Stats().Entries != 0 {
		t.Errorf("a failure was cached: calls %d, %+v", calls.Load(), c.Stats())
	}
}

// TestCacheEntryCannotBePoisoned: a caller that edits the Facts it got
// (lowers the class, drops a table) does not change what the next caller
// gets for the same statement.
func TestCacheEntryCannotBePoisoned(t *testing.T) {
	c, _ := countingClassifier(CacheOptions{})
	first, _ := c.Classify("customers")
	first.Class = ClassSession
	first.Tables[0].Name = "harmless"
	first.Statements[0].Tables[0].Name = "harmless"
	first.Statements[0].Class = ClassSession
	second, _ := c.Classify("customers")
	if second.Class != ClassRead || second.Tables[0].Name != "customers" || second.Statements[0].Tables[0].Name != "customers" || second.Statements[0].Class != ClassRead {
		t.Errorf("cached facts were changed through a returned copy: %+v", second)
	}
}

func TestCacheDisabled(t *testing.T) {
	c, calls := countingClassifier(CacheOptions{MaxEntries: -1})
	c.Classify("a")
	c.Classify("a")
	if calls.Load() != 2 || c.Stats().Entries != 0 {
		t.Errorf("disabled cache kept entries: %d calls, %+v", calls.Load(), c.Stats())
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	c, _ := countingClassifier(CacheOptions{MaxEntries: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				sql := fmt.Sprintf("q%d", (i*7+g)%80)
				facts, err := c.Classify(sql)
				if err != nil || facts.Tables[0].Name != sql {
					t.Errorf("Classify(%q) = %+v, %v", sql, facts, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.Entries > 50 || s.Hits+s.Misses != 4000 {
		t.Errorf("stats = %+v", s)
	}
}

// TestClassifierRefusesHugeText: a string over MaxTextBytes is unknown
// without being parsed, so it cannot buy seconds of CPU.
func TestClassifierRefusesHugeText(t *testing.T) {
	c, calls := countingClassifier(CacheOptions{MaxTextBytes: 100})
	facts, err := c.Classify("SELECT " + strings.Repeat("1,", 100) + "1")
	if !errors.Is(err, ErrTooLong) || facts.Class != ClassUnknown || calls.Load() != 0 {
		t.Errorf("Classify = %s, %v after %d parses; want unknown, ErrTooLong, no parse", facts.Class, err, calls.Load())
	}
	if !strings.Contains(err.Error(), "limit of 100") {
		t.Errorf("error %q does not name the limit", err)
	}
	if _, err := c.Classify("SELECT 1"); err != nil {
		t.Errorf("a short statement: %v", err)
	}
}

// TestCloneAppendsApart: the slices of a copy share one allocation per
// kind, yet appending to one never writes over another, in the copy or
// in the cached entry.
func TestCloneAppendsApart(t *testing.T) {
	f := Facts{Statements: []Statement{
		{Command: "SELECT", Class: ClassRead, Tables: []Table{{Name: "a"}}, Columns: []Column{{Table: "a", Name: "x"}}},
		{Command: "SELECT", Class: ClassRead, Tables: []Table{{Name: "b"}}, Columns: []Column{{Table: "b", Name: "y"}}},
	}}
	f.summarize()
	c := f.clone()
	c.Statements[0].Tables = append(c.Statements[0].Tables, Table{Name: "evil"})
	c.Statements[0].Columns = append(c.Statements[0].Columns, Column{Name: "evil"})
	c.Statements[0].Functions = append(c.Statements[0].Functions, "evil")
	if c.Statements[1].Tables[0].Name != "b" || c.Statements[1].Columns[0].Name != "y" || len(c.Statements[1].Functions) != 0 {
		t.Errorf("appending to the first statement's slices changed the second: %+v", c.Statements[1])
	}
	if c.Tables[0].Name != "a" || c.Tables[1].Name != "b" || len(c.Functions) != 0 {
		t.Errorf("appending to a statement's slices changed the string's: %+v", c)
	}
	if f.Statements[0].Tables[0].Name != "a" || len(f.Statements[0].Tables) != 1 {
		t.Errorf("the original changed: %+v", f.Statements[0])
	}
	if c := (Facts{}).clone(); c.Statements != nil || c.Tables != nil {
		t.Errorf("a clone of empty facts = %+v, want nil slices", c)
	}
}
