package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// statusMappingHome is the one package allowed to decide which HTTP status
// an error is: every other package asks httpx.StatusOf.
const statusMappingHome = "internal/httpx"

// TestErrorsBecomeStatusesInOnePlace fails when code outside httpx turns
// an error into an HTTP error status itself: an if or case whose condition
// asks errors.Is or errors.As (or compares with a sentinel error) and
// whose body names an http.Status constant of 400 or above. Such a place is where two features would
// start to answer the same error with different statuses.
func TestErrorsBecomeStatusesInOnePlace(t *testing.T) {
	root := filepath.Join("..", "..")
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// pkg/ is the public SDK: it builds outside this module, so it
			// cannot reach httpx, and answers only RFC 6750 challenges.
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" ||
				filepath.ToSlash(rel) == statusMappingHome || filepath.ToSlash(rel) == "pkg") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := parseFile(path)
		if err != nil {
			return err
		}
		for _, m := range errorStatusMappings(src.fset, src.file) {
			found = append(found, filepath.ToSlash(rel)+":"+m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s: map the error with httpx.StatusOf (mark its sentinel with an errkind.Kind) instead", f)
	}
}

// TestErrorStatusMappingsFindsThem proves the check can fail.
func TestErrorStatusMappingsFindsThem(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"fail/if-errors-is", `package p
func f(err error) int {
	if errors.Is(err, store.ErrNotFound) {
		return http.StatusNotFound
	}
	return 0
}`, []string{"3: errors.Is → http.StatusNotFound"}},
		{"fail/case-errors-as", `package p
func f(err error) {
	var pe *pageError
	switch {
	case err == nil:
	case errors.As(err, &pe), errors.Is(err, x):
		write(http.StatusTeapot)
	}
}`, []string{"6: errors.As → http.StatusTeapot"}},
		{"fail/negated-in-condition", `package p
func f(err error) {
	if err != nil && !errors.Is(err, io.EOF) {
		write(http.StatusBadRequest)
	}
}`, []string{"3: errors.Is → http.StatusBadRequest"}},
		{"fail/compared-sentinel", `package p
func f(err error) {
	if err == sql.ErrNoRows {
		write(http.StatusNotFound)
	}
}`, []string{"3: == → http.StatusNotFound"}},
		{"ok/nil-check", `package p
func f(err error) {
	if err != nil {
		write(http.StatusInternalServerError)
	}
}`, nil},
		{"ok/success-and-redirect", `package p
func f(err error) {
	if errors.Is(err, errNext) {
		write(http.StatusOK)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		_ = http.StatusText(500)
	}
}`, nil},
		{"ok/status-from-httpx", `package p
func f(err error) {
	if errors.Is(err, store.ErrNotFound) {
		write(httpx.StatusOf(err))
	}
	write(http.StatusInternalServerError)
}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "p.go", tt.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := errorStatusMappings(fset, f); !slices.Equal(got, tt.want) {
				t.Errorf("mappings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

type parsedFile struct {
	fset *token.FileSet
	file *ast.File
}

func parseFile(path string) (parsedFile, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	return parsedFile{fset, f}, err
}

// errorStatusMappings lists, as "line: errors.Is → http.StatusX", each if
// statement and case clause that tests an error with errors.Is or
// errors.As and names an error status in its body.
func errorStatusMappings(fset *token.FileSet, f *ast.File) []string {
	var out []string
	report := func(at token.Pos, cond []ast.Expr, body []ast.Stmt) {
		test := errorsTest(cond)
		if test == "" {
			return
		}
		for _, s := range body {
			if status := errorStatusIn(s); status != "" {
				out = append(out, fmt.Sprintf("%d: %s → http.%s", fset.Position(at).Line, test, status))
				return
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IfStmt:
			report(n.Pos(), []ast.Expr{n.Cond}, n.Body.List)
		case *ast.CaseClause:
			report(n.Pos(), n.List, n.Body)
		}
		return true
	})
	return out
}

// errorsTest is "errors.Is" or "errors.As" when one of exprs calls it,
// or "==" when one compares with a sentinel error (err == store.ErrX).
func errorsTest(exprs []ast.Expr) string {
	var test string
	for _, e := range exprs {
		ast.Inspect(e, func(n ast.Node) bool {
			if test != "" {
				return false
			}
			switch n := n.(type) {
			case *ast.CallExpr:
				if name := selectorName(n.Fun, "errors"); name == "Is" || name == "As" {
					test = "errors." + name
				}
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (isSentinel(n.X) || isSentinel(n.Y)) {
					test = n.Op.String()
				}
			}
			return true
		})
	}
	return test
}

// isSentinel reports whether e names a sentinel error: ErrX, errX,
// pkg.ErrX.
func isSentinel(e ast.Expr) bool {
	var name string
	switch e := e.(type) {
	case *ast.Ident:
		name = e.Name
	case *ast.SelectorExpr:
		name = e.Sel.Name
	}
	return len(name) > 3 && (strings.HasPrefix(name, "Err") || strings.HasPrefix(name, "err")) && name[3] >= 'A' && name[3] <= 'Z'
}

// errorStatusIn is the first http.Status constant of 400 or above that
// n names, or "".
func errorStatusIn(n ast.Node) string {
	var status string
	ast.Inspect(n, func(n ast.Node) bool {
		if status != "" {
			return false
		}
		if name := selectorName(n, "http"); strings.HasPrefix(name, "Status") && !notAnErrorStatus[name] {
			status = name
		}
		return true
	})
	return status
}

// notAnErrorStatus are the names under http.Status… that are not an
// error status: informational, success and redirect codes, and the text
// function.
var notAnErrorStatus = map[string]bool{
	"StatusText": true, "StatusContinue": true, "StatusSwitchingProtocols": true, "StatusProcessing": true, "StatusEarlyHints": true,
	"StatusOK": true, "StatusCreated": true, "StatusAccepted": true, "StatusNonAuthoritativeInfo": true, "StatusNoContent": true,
	"StatusResetContent": true, "StatusPartialContent": true, "StatusMultiStatus": true, "StatusAlreadyReported": true, "StatusIMUsed": true,
	"StatusMultipleChoices": true, "StatusMovedPermanently": true, "StatusFound": true, "StatusSeeOther": true, "StatusNotModified": true,
	"StatusUseProxy": true, "StatusTemporaryRedirect": true, "StatusPermanentRedirect": true,
}

// selectorName is Sel of pkg.Sel, or "" when n is not such a selector.
func selectorName(n ast.Node, pkg string) string {
	sel, ok := n.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	if id, ok := sel.X.(*ast.Ident); ok && id.Name == pkg {
		return sel.Sel.Name
	}
	return ""
}
