package main

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignInReasonsComeFromTheCatalogue fails when a sign-in log reason
// is written as a string literal instead of a code of package reason:
// a literal is how a code slips past the catalogue, its sentence and its
// stability test. It looks at the two shapes a reason is written in, a
// SignIn literal's Reason field and the last argument of a log… helper
// (logStepUp, logSecurity, logMethod), whose reason parameter is a
// reason.Code that an untyped literal would still satisfy.
func TestSignInReasonsComeFromTheCatalogue(t *testing.T) {
	root := filepath.Join("..", "..", "internal")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		fset := token.NewFileSet()
		f, err := goparser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if !isSignInType(n.Type) {
					return true
				}
				for _, el := range n.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Reason") && isStringLit(kv.Value) {
						t.Errorf("%s: a sign-in log reason written as a literal; use a code of package reason", fset.Position(kv.Pos()))
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if ok && strings.HasPrefix(sel.Sel.Name, "log") && len(n.Args) >= 4 && isStringLit(n.Args[len(n.Args)-1]) {
					t.Errorf("%s: %s given a reason as a literal; use a code of package reason", fset.Position(n.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d files; is the test run from cmd/stepgate?", checked)
	}
}

func isSignInType(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "SignIn"
	case *ast.SelectorExpr:
		return e.Sel.Name == "SignIn" && isIdent(e.X, "audit")
	}
	return false
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isStringLit(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING && lit.Value != `""`
}
