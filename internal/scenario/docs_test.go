package scenario

import (
	"os"
	"regexp"
	"testing"
)

// TestDocsExampleParses keeps the test file shown in docs/policy.md
// honest: it parses without a problem.
func TestDocsExampleParses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range regexp.MustCompile("(?s)```yaml\n(now:.*?)```").FindAllStringSubmatch(string(data), -1) {
		n++
		if _, probs := Parse("policy.md", []byte(b[1])); len(probs) > 0 {
			t.Errorf("the example does not parse:\n%s\n%v", b[1], probs)
		}
	}
	if n == 0 {
		t.Error("docs/policy.md shows no scenario test file (a yaml block starting with now:)")
	}
}
