package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the import path every pattern in boundaryRules is relative to.
const module = "github.com/stepgate/stepgate"

// boundaryRule forbids the packages matching from, but not those matching
// except, to import a package matching never, directly or through any
// chain of imports. Patterns are import paths relative to the module
// (standard library paths stay as they are); a trailing "/..." matches
// the package and everything below it, as in the go command.
type boundaryRule struct {
	from   string
	except []string
	never  []string
	// allow are packages matching never that may be imported all the
	// same (a leaf under a tree that is otherwise forbidden).
	allow []string
	why   string
}

// boundaryRules are the design's nevers, as the README's Development
// section lists them. Test files are not checked: a test may reach across
// to drive the real thing. internal/demo is the "stepgate demo" command's
// wiring, so, like cmd/, it may build an app.
var boundaryRules = []boundaryRule{
	{from: "internal/policy/...", never: []string{"internal/store/...", "internal/web/...", "internal/gateway/...", "net/http/..."},
		why: "the policy engine is pure: plain values in, a Decision out"},
	{from: "internal/risk", never: []string{"internal/store/..."},
		why: "the risk detectors and scorer are pure; what feeds them state lives elsewhere"},
	{from: "internal/store/...", never: []string{"internal/policy/...", "internal/gateway/..."},
		why: "storage holds records and knows nothing of decisions or proxying"},
	{from: "pkg/stepup/...", never: []string{"internal/..."},
		why: "the public SDK builds outside this module"},
	{from: "internal/...", except: []string{"internal/app/...", "internal/web/...", "internal/demo/..."}, never: []string{"internal/web/...", "internal/app/..."},
		why: "features are wired by app and framed by web, never the other way round"},
	{from: "internal/gateway/...", never: []string{"internal/oidc/..."},
		why: "the gateway reads tokens through package oauth, not the provider"},
	{from: "internal/audit/...", never: []string{"internal/risk/..."},
		why: "the sign-in log keeps its own shape of a risk detection"},
	{from: "internal/access/...", never: []string{"internal/gateway/...", "internal/oidc/...", "internal/admin/...", "internal/riskservice/..."},
		why: "the decision core is what every enforcement point calls; it knows none of them"},
	{from: "internal/reason", never: []string{"internal/..."},
		why: "the catalogue of reason codes is a leaf every package may name"},
	{from: "internal/...", except: []string{"internal/config/...", "internal/app/...", "internal/demo/..."}, never: []string{"internal/config/..."},
		why: "features own their option types (gateway.Options, oidc.ClientsOptions); only the wiring reads the configuration"},
	{from: "internal/errkind", never: []string{"internal/...", "net/..."},
		why: "every package marks its errors with errkind, the pure ones too: it is a leaf"},
	{from: "internal/dbgate/sqlclass", never: []string{"internal/...", "net/..."}, allow: []string{"internal/errkind"},
		why: "the statement classifier is pure: query text in, facts out"},
	{from: "internal/dbgate", never: []string{"internal/oidc/...", "internal/gateway/...", "internal/admin/...", "internal/store/sqlite/...", "internal/store/postgres/..."},
		why: "the database gateway reads tokens through package oauth and decides through the decision core, like the HTTP gateway"},
	{from: "internal/httpx", never: []string{"internal/..."}, allow: []string{"internal/errkind"},
		why: "httpx maps every feature's errors to statuses through errkind, so features import it, never the reverse"},
}

// TestPackageBoundaries fails when a package imports what the design
// forbids, naming the chain of imports that crosses the boundary.
func TestPackageBoundaries(t *testing.T) {
	graph := moduleImportGraph(t)
	if len(graph) < 20 {
		t.Fatalf("go list found only %d packages; is it run at the module root?", len(graph))
	}
	for _, crossing := range boundaryCrossings(graph, boundaryRules) {
		t.Error(crossing)
	}
}

// TestBoundaryCrossingsNamesThePath proves the check can fail: a forbidden
// import two steps away is reported with the chain that reaches it.
func TestBoundaryCrossingsNamesThePath(t *testing.T) {
	rules := []boundaryRule{{from: "internal/a/...", except: []string{"internal/a/wiring"}, never: []string{"internal/c/...", "net/http/..."},
		allow: []string{"internal/c/leaf"}, why: "a is pure"}}
	tests := []struct {
		name  string
		graph map[string][]string
		want  []string
	}{
		{"ok/no-forbidden-edge", map[string][]string{
			module + "/internal/a": {module + "/internal/b", "strings"},
			module + "/internal/b": {"strings"},
		}, nil},
		{"ok/excepted-package", map[string][]string{
			module + "/internal/a/wiring": {module + "/internal/c"},
		}, nil},
		{"fail/transitive", map[string][]string{
			module + "/internal/a":   {module + "/internal/b"},
			module + "/internal/b":   {module + "/internal/c/x"},
			module + "/internal/c/x": nil,
		}, []string{"internal/a → internal/b → internal/c/x (a is pure)"}},
		{"ok/allowed-leaf", map[string][]string{
			module + "/internal/a/leafuser": {module + "/internal/c/leaf"},
		}, nil},
		{"fail/through-allowed-leaf", map[string][]string{
			module + "/internal/a/leafuser": {module + "/internal/c/leaf"},
			module + "/internal/c/leaf":     {module + "/internal/c/x"},
		}, []string{"internal/a/leafuser → internal/c/leaf → internal/c/x (a is pure)"}},
		{"fail/standard-library", map[string][]string{
			module + "/internal/a/sub": {"net/http/httptest"},
			"net/http/httptest":        {"net/http"},
		}, []string{
			"internal/a/sub → net/http/httptest (a is pure)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := boundaryCrossings(tt.graph, rules)
			if !slices.Equal(got, tt.want) {
				t.Errorf("crossings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// moduleImportGraph maps every package the module's packages build from
// (standard library included) to its non-test imports.
func moduleImportGraph(t *testing.T) map[string][]string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the boundary check needs the go command on PATH: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-e", "-deps", "-json=ImportPath,Imports,Error", "./...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			ImportPath string
			Imports    []string
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if pkg.Error != nil {
			t.Fatalf("go list %s: %s", pkg.ImportPath, pkg.Error.Err)
		}
		graph[pkg.ImportPath] = pkg.Imports
	}
	return graph
}

// boundaryCrossings returns, sorted, one line per package and forbidden
// package it reaches, with the shortest chain of imports between them.
func boundaryCrossings(graph map[string][]string, rules []boundaryRule) []string {
	var crossings []string
	for _, rule := range rules {
		for pkg := range graph {
			if !matchesAny(pkg, []string{rule.from}) || matchesAny(pkg, rule.except) {
				continue
			}
			for _, chain := range forbiddenChains(graph, pkg, rule.never, rule.allow) {
				crossings = append(crossings, fmt.Sprintf("%s (%s)", strings.Join(chain, " → "), rule.why))
			}
		}
	}
	slices.Sort(crossings)
	return crossings
}

// forbiddenChains walks the imports of start breadth first and returns the
// shortest chain to each package matching never. It does not walk on from
// a forbidden package: the first crossing is the one to fix.
func forbiddenChains(graph map[string][]string, start string, never, allow []string) [][]string {
	cameFrom := map[string]string{start: ""}
	queue := []string{start}
	var chains [][]string
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		for _, imp := range graph[pkg] {
			if _, seen := cameFrom[imp]; seen {
				continue
			}
			cameFrom[imp] = pkg
			if matchesAny(imp, never) && !matchesAny(imp, allow) {
				chains = append(chains, chainTo(cameFrom, imp))
				continue
			}
			queue = append(queue, imp)
		}
	}
	return chains
}

// chainTo follows cameFrom back from pkg to the start of the walk.
func chainTo(cameFrom map[string]string, pkg string) []string {
	var chain []string
	for p := pkg; p != ""; p = cameFrom[p] {
		chain = append(chain, strings.TrimPrefix(p, module+"/"))
	}
	slices.Reverse(chain)
	return chain
}

// matchesAny reports whether the import path matches one of the patterns.
func matchesAny(importPath string, patterns []string) bool {
	for _, pattern := range patterns {
		full := pattern
		if strings.HasPrefix(pattern, "internal/") || strings.HasPrefix(pattern, "pkg/") || strings.HasPrefix(pattern, "cmd/") {
			full = module + "/" + pattern
		}
		if tree, ok := strings.CutSuffix(full, "/..."); ok {
			if importPath == tree || strings.HasPrefix(importPath, tree+"/") {
				return true
			}
		} else if importPath == full {
			return true
		}
	}
	return false
}
