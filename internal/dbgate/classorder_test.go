package dbgate

import (
	"slices"
	"testing"

	"github.com/stepgate/stepgate/internal/dbgate/sqlclass"
	"github.com/stepgate/stepgate/internal/policy"
)

// TestStatementClassOrderAgrees: the policy engine keeps its own copy of
// the classifier's class order (it must not import the gateway), and a
// statements condition on "write" covers what the classifier ranks above
// write. If the two orders drifted, a policy would quietly stop covering a
// class the gateway treats as more sensitive.
func TestStatementClassOrderAgrees(t *testing.T) {
	t.Parallel()
	var gateway []string
	for c := sqlclass.ClassSession; c <= sqlclass.ClassUnknown; c++ {
		gateway = append(gateway, c.String())
	}
	if engine := policy.StatementClasses(); !slices.Equal(engine, gateway) {
		t.Fatalf("policy.StatementClasses() = %v, the classifier's order is %v", engine, gateway)
	}
}
