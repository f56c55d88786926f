package kvspace_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/store/kvspace"
)

// rawKVMethods are the store's key/value methods that take a key or a
// prefix. Only this package and the store's own packages call them; the
// sweep of expired entries (DeleteExpiredKV) spans every namespace and
// stays with the wiring.
var rawKVMethods = map[string]bool{
	"GetKV": true, "CreateKV": true, "CreateKVWithin": true, "UpdateKV": true,
	"RenewKV": true, "DeleteKV": true, "ListKV": true, "KVUsage": true,
}

// rawKeyUses reports, in one Go source file, every call of a raw
// key/value method and every string literal that starts with a
// catalogued prefix: a key built by hand outside the catalogue.
func rawKeyUses(fset *token.FileSet, f *ast.File) []string {
	var found []string
	prefixes := []string{kvspace.GatewayKept}
	for _, s := range kvspace.All() {
		prefixes = append(prefixes, s.Prefix())
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && rawKVMethods[sel.Sel.Name] {
				found = append(found, fset.Position(n.Pos()).String()+": calls "+sel.Sel.Name)
			}
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(n.Value)
			if err != nil {
				return true
			}
			for _, p := range prefixes {
				if strings.HasPrefix(v, p) {
					found = append(found, fset.Position(n.Pos()).String()+": spells the key prefix "+strconv.Quote(p))
					break
				}
			}
		}
		return true
	})
	return found
}

// moduleRoot is the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// TestNoRawKeysOutsideTheCatalogue fails when any package but the store's
// reaches the key/value space without a namespace: a raw GetKV, or a key
// prefix spelled out. Tests are exempt: they read stored bytes on purpose.
func TestNoRawKeysOutsideTheCatalogue(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	storeDir := filepath.Join(root, "internal", "store") + string(filepath.Separator)
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasPrefix(path, storeDir) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		for _, use := range rawKeyUses(fset, f) {
			t.Errorf("%s; use the namespace in internal/store/kvspace instead", strings.TrimPrefix(use, root+string(filepath.Separator)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d files; the walk missed the source tree", checked)
	}
}

// TestRawKeyCheckFindsRawKeys proves the check above can fail.
func TestRawKeyCheckFindsRawKeys(t *testing.T) {
	t.Parallel()
	src := `package p
func f(kv KV) {
	kv.GetKV(ctx, "x")
	_ = "authn/throttle/" + key
	_ = Quota{Prefix: "gw/kept/"}
	_ = "oidc/keyring"
	kv.DeleteExpiredKV(ctx, now)
	_ = "/tap/not-a-key"
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := rawKeyUses(fset, f); len(got) != 4 {
		t.Fatalf("found %d raw uses, want 4 (a call, three prefixes): %q", len(got), got)
	}
}
