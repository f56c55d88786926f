// Package policytest compiles policy documents for the tests of the
// packages that enforce policies.
package policytest

import (
	"testing"

	"github.com/stepgate/stepgate/internal/policy"
)

// Snapshot compiles one policy document, given as YAML, with no
// directory; a problem in it fails the test.
func Snapshot(t testing.TB, yaml string) *policy.Snapshot {
	t.Helper()
	doc, probs := policy.Parse("policies.yaml", []byte(yaml))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	snap, probs := policy.Compile(nil, doc)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return snap
}
