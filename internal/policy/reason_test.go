package policy

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"strconv"
	"testing"
)

// TestEveryReasonHasASentence reads the Reason constants from reason.go,
// so a code added without a sentence fails here rather than showing up
// bare in the console.
func TestEveryReasonHasASentence(t *testing.T) {
	t.Parallel()
	f, err := goparser.ParseFile(token.NewFileSet(), "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		spec, ok := node.(*ast.ValueSpec)
		if !ok || spec.Type == nil {
			return true
		}
		if id, ok := spec.Type.(*ast.Ident); !ok || id.Name != "Reason" {
			return true
		}
		for _, v := range spec.Values {
			lit, ok := v.(*ast.BasicLit)
			if !ok {
				continue
			}
			code, _ := strconv.Unquote(lit.Value)
			n++
			if s := Reason(code).Sentence(); s == code || s == "" {
				t.Errorf("reason %q has no sentence", code)
			}
		}
		return true
	})
	if n < 20 {
		t.Fatalf("found only %d reason codes in reason.go; the extraction is broken", n)
	}
}
