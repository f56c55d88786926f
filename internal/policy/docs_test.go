package policy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsExamplesCompile keeps docs/policy.md honest: every YAML example
// that is a whole policy file must parse and compile.
func TestDocsExamplesCompile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	topLevel := regexp.MustCompile(`^(auth_contexts|named_locations|strengths|terms_of_use|policies):`)
	n := 0
	for _, b := range blocks {
		src := b[1]
		if !topLevel.MatchString(src) {
			continue // a fragment, like the grant syntax
		}
		n++
		doc, probs := Parse("policy.md", []byte(src))
		if _, cprobs := Compile(nil, doc); len(probs)+len(cprobs) > 0 {
			t.Errorf("example does not compile:\n%s\n%v%v", src, probs, cprobs)
		}
		if strings.Contains(src, "policies:\n  -") && len(doc.Policies) == 0 {
			t.Errorf("example lost its policies:\n%s", src)
		}
	}
	if n < 6 {
		t.Errorf("found only %d whole-file examples; the extraction is broken", n)
	}
}
