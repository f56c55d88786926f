package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/stepgate/stepgate/internal/policy"
)

// ErrNoTests means there is no scenario test file where they were looked
// for.
var ErrNoTests = errors.New("no scenario test files (*.tests.yaml)")

// Find expands paths into scenario test files: a file stands for itself,
// a directory for every *.tests.yaml and *.tests.yml file directly in
// it, in name order.
func Find(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("scenario test file %s does not exist", p)
		}
		if err != nil {
			return nil, fmt.Errorf("scenario test file: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("scenario test directory %s: %w", p, err)
		}
		for _, e := range entries {
			if !e.IsDir() && IsTestFile(e.Name()) {
				out = append(out, filepath.Join(p, e.Name()))
			}
		}
	}
	return out, nil
}

// Beside lists the directories that hold the policies paths name (the
// directories themselves, and the directory of each file), where their
// scenario test files live, without repeats.
func Beside(paths []string) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, p := range paths {
		dir := p
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			dir = filepath.Dir(p)
		}
		if !seen[dir] {
			seen[dir] = true
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// Load reads and parses the test files. An unreadable file is an error;
// problems in the files' content are returned, every one of them.
func Load(files []string) ([]*File, policy.Problems, error) {
	var out []*File
	var probs policy.Problems
	for _, name := range files {
		if !IsTestFile(name) {
			probs = append(probs, policy.Problem{File: name, Message: fmt.Sprintf(
				"not a scenario test file: their names end in %s, so that the policy loader never reads one as policies; rename it", strings.Join(Suffixes, " or "))})
			continue
		}
		data, err := readFile(name)
		if err != nil {
			return nil, nil, err
		}
		f, ps := Parse(name, data)
		out = append(out, f)
		probs = append(probs, ps...)
	}
	return out, probs, nil
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name) //nolint:gosec // the operator names their own test files
	if err != nil {
		return nil, fmt.Errorf("read scenario test file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read scenario test file %s: %w", name, err)
	}
	return data, nil
}

// Report is the outcome of a whole run.
type Report struct {
	Results []Result
	Gaps    []Gap
}

// Failures counts the scenarios that failed.
func (r *Report) Failures() int {
	n := 0
	for i := range r.Results {
		if r.Results[i].Failed() {
			n++
		}
	}
	return n
}

// RunAll runs every scenario of files against env and measures coverage
// of env's documents.
func RunAll(ctx context.Context, env Env, files []*File) Report {
	var rep Report
	for _, f := range files {
		rep.Results = append(rep.Results, Run(ctx, env, f)...)
	}
	rep.Gaps = Coverage(env.Documents, rep.Results)
	return rep
}

// WriteFailures prints each failed scenario as
// "file:line: scenario NAME: expected X, got Y" with a diff of what was
// expected and what the decision core answered.
func (r *Report) WriteFailures(w io.Writer) {
	for i := range r.Results {
		res := &r.Results[i]
		if !res.Failed() {
			continue
		}
		s := res.Scenario
		if res.Err != nil {
			fmt.Fprintf(w, "%s:%d: scenario %q: could not run: %v\n", res.File, s.Line, s.Name, res.Err)
			continue
		}
		first := res.Diffs[0]
		fmt.Fprintf(w, "%s:%d: scenario %q: expected %s %s, got %s\n", res.File, s.LineOf("expect."+first.Key), s.Name, first.Key, first.Expected, first.Actual)
		writeDiff(w, s, res)
	}
}

func writeDiff(w io.Writer, s *Scenario, res *Result) {
	a := res.Answer
	actual := map[string]string{
		"decision": a.Decision, "policy": listOr(a.Policies, "(none)"), "reason": or(a.Reason, "(none)"), "methods": listOr(a.Methods, "[]"),
	}
	for _, key := range []string{"decision", "policy", "reason", "methods"} {
		var d *Diff
		for j := range res.Diffs {
			if res.Diffs[j].Key == key {
				d = &res.Diffs[j]
			}
		}
		switch {
		case d != nil:
			fmt.Fprintf(w, "    - %s: %s\n    + %s: %s\n", key, d.Expected, key, d.Actual)
		case key == "decision" || s.Has("expect."+key):
			fmt.Fprintf(w, "      %s: %s\n", key, actual[key])
		default:
			fmt.Fprintf(w, "      %s: %s (not expected)\n", key, actual[key])
		}
	}
}

// WriteSummary prints the coverage gaps and a one-line count.
func (r *Report) WriteSummary(w io.Writer) {
	if len(r.Gaps) > 0 {
		fmt.Fprintf(w, "coverage: %d not exercised by any scenario:\n", len(r.Gaps))
		for _, g := range r.Gaps {
			fmt.Fprintf(w, "  %s\n", g)
		}
	} else {
		fmt.Fprintln(w, "coverage: every enabled and report-only policy applied, and each of its conditions left a scenario out")
	}
	fmt.Fprintf(w, "%d scenarios: %d passed, %d failed\n", len(r.Results), len(r.Results)-r.Failures(), r.Failures())
}
