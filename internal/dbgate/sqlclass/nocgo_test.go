//go:build !cgo

package sqlclass

import (
	"errors"
	"os"
	"slices"
	"testing"
)

// TestParserRequired turns this build's missing parser into a failure
// when STEPGATE_REQUIRE_SQL_PARSER is set (make test sets it), so the
// classifier's tests, which need the parser, cannot be skipped unseen.
func TestParserRequired(t *testing.T) {
	if os.Getenv("STEPGATE_REQUIRE_SQL_PARSER") != "" {
		t.Fatal("built without cgo, so without PostgreSQL's parser: install a C compiler (make cgo-deps) and build with CGO_ENABLED=1")
	}
}

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
