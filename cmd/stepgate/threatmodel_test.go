package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	threatModelFileRe = regexp.MustCompile("`((?:internal|cmd|pkg)/[^`]+?\\.go)`")
	threatModelTestRe = regexp.MustCompile(`\b((?:Test|Fuzz)[A-Z][A-Za-z0-9]+)\b`)
	testFuncRe        = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9]+)\(`)
)

// TestThreatModelNamesRealTests: docs/security.md maps each attack class
// to the test that performs it. A renamed or deleted test would leave a
// defence that looks proven and is not, so every file and every test the
// page names must exist.
func TestThreatModelNamesRealTests(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range threatModelFileRe.FindAllStringSubmatch(string(doc), -1) {
		if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
			t.Errorf("docs/security.md names %s, which does not exist", m[1])
		}
	}
	have := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range testFuncRe.FindAllStringSubmatch(string(src), -1) {
			have[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	named := threatModelTestRe.FindAllString(string(doc), -1)
	if len(named) < 50 {
		t.Fatalf("docs/security.md names %d tests; the table is missing or this check reads it wrongly", len(named))
	}
	for _, name := range named {
		if !have[name] {
			t.Errorf("docs/security.md names %s, which no test file defines", name)
		}
	}
}
