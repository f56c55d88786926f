package reason

import (
	"bufio"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// declaredCodes reads the Code constants from reason.go, so a code added
// to the source is checked here whether or not anyone remembered the
// sentences map.
func declaredCodes(t *testing.T) []Code {
	t.Helper()
	f, err := goparser.ParseFile(token.NewFileSet(), "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Code
	ast.Inspect(f, func(node ast.Node) bool {
		spec, ok := node.(*ast.ValueSpec)
		if !ok || spec.Type == nil {
			return true
		}
		if id, ok := spec.Type.(*ast.Ident); !ok || id.Name != "Code" {
			return true
		}
		for _, v := range spec.Values {
			if lit, ok := v.(*ast.BasicLit); ok {
				code, _ := strconv.Unquote(lit.Value)
				out = append(out, Code(code))
			}
		}
		return true
	})
	if len(out) < 40 {
		t.Fatalf("found only %d codes in reason.go; the extraction is broken", len(out))
	}
	return out
}

// Every code has a sentence, so none shows up bare in the console, and no
// two constants share a code.
func TestEveryCodeHasASentence(t *testing.T) {
	codes := declaredCodes(t)
	seen := map[Code]bool{}
	for _, c := range codes {
		if seen[c] {
			t.Errorf("code %q is declared twice", c)
		}
		seen[c] = true
		if s := c.Sentence(); s == string(c) || s == "" || !c.Known() {
			t.Errorf("code %q has no sentence", c)
		}
	}
	if len(All()) != len(codes) {
		t.Errorf("the catalogue has %d sentences for %d declared codes", len(All()), len(codes))
	}
}

// The released codes are stable: dashboards count by them, and old log
// entries keep them. A code in testdata/codes.txt that is no longer
// declared was renamed or removed; a declared code missing there is new
// and is added to the file in the same change.
func TestReleasedCodesAreStable(t *testing.T) {
	f, err := os.Open("testdata/codes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var released []Code
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			released = append(released, Code(line))
		}
	}
	declared := declaredCodes(t)
	for _, c := range released {
		if !slices.Contains(declared, c) {
			t.Errorf("released code %q is gone: a code is never renamed or removed", c)
		}
	}
	for _, c := range declared {
		if !slices.Contains(released, c) {
			t.Errorf("code %q is not in testdata/codes.txt: add it there, where it stays for good", c)
		}
	}
}

func TestQualifiedCode(t *testing.T) {
	c := MethodAdded.With("temporary-access-pass")
	if c != "method-added:temporary-access-pass" || !c.Known() || c.Sentence() != MethodAdded.Sentence() {
		t.Errorf("%q known=%v sentence %q", c, c.Known(), c.Sentence())
	}
	if Code("made-up").Known() || Code("made-up").Sentence() != "made-up" {
		t.Error("an unknown code is reported as known")
	}
}
