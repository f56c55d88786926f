//go:build !cgo

package sqlclass

import (
	"errors"
	"slices"
	"testing"
)

// TestNoParserFailsClosed: a build without cgo has no parser, so every
// string, the harmless ones too, is unknown and hits every label.
func TestNoParserFailsClosed(t *testing.T) {
	if ParserAvailable {
		t.Fatal("ParserAvailable in a build without cgo")
	}
	for _, sql := range []string{"SELECT 1", "DROP TABLE t"} {
		facts, err := Classify(sql)
		if !errors.Is(err, ErrNoParser) || facts.Class != ClassUnknown {
			t.Errorf("Classify(%q) = %s, %v; want unknown and ErrNoParser", sql, facts.Class, err)
		}
		if got := Label(facts, testLabels); !slices.Equal(got, []string{"billing", "pii", "secret"}) {
			t.Errorf("labels = %v, want all", got)
		}
	}
	facts, err := NewClassifier(CacheOptions{}).Classify("SELECT 1")
	if !errors.Is(err, ErrNoParser) || facts.Class != ClassUnknown {
		t.Errorf("Classifier: %s, %v", facts.Class, err)
	}
}
