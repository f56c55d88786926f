package policy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the expected decisions of testdata/golden/*.txt")

// Golden cases live in testdata/golden, one file each: the policy set,
// a line of ten dashes, the request, another such line, and the expected
// decision as Explain prints it. A "# outcome: X" comment in the policy
// part is checked independently of the expected text, so -update cannot
// quietly bless a wrong outcome.
const goldenSep = "----------\n"

var goldenNow = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

// goldenDirectory is the organisation every golden case runs in.
func goldenDirectory() Directory {
	return NewDirectory(
		[]string{"alice", "bob", "carol", "dave", "erin", "breakglass"},
		[]string{"admin", "auditor", "developer"},
		[]string{"payroll", "wiki", "crm", "admin-portal", "mail", "ci-bot", "batch-job", "hr", "bank"},
		map[string][]string{
			"staff":        nil,
			"finance":      {"staff"},
			"finance-emea": {"finance"},
			"engineering":  {"staff"},
			"contractors":  nil,
			"breakglass":   nil,
		},
	)
}

// goldenRequest is the request part of a case: the What-If input plus
// what the server would look up about the user, and the device as one
// mapping.
type goldenRequest struct {
	WhatIf `yaml:",inline"`
	ID     string   `yaml:"id"`
	Groups []string `yaml:"groups"`
	Roles  []string `yaml:"roles"`
	Device struct {
		ID         string            `yaml:"id"`
		Compliant  bool              `yaml:"compliant"`
		TrustType  string            `yaml:"trust_type"`
		Attributes map[string]string `yaml:"attributes"`
	} `yaml:"device"`
}

func (g goldenRequest) request(t *testing.T) *Request {
	t.Helper()
	w := g.WhatIf
	w.DeviceID, w.DeviceCompliant, w.DeviceTrustType, w.DeviceAttributes = g.Device.ID, g.Device.Compliant, g.Device.TrustType, g.Device.Attributes
	r, err := w.Request(goldenNow, Subject{ID: g.ID, Username: g.User, Groups: g.Groups, Roles: g.Roles})
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return r
}

var outcomeComment = regexp.MustCompile(`(?m)^# outcome: (\S+)$`)

func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 60 {
		t.Errorf("only %d golden cases; keep at least 60", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runGolden(t, f)
		})
	}
}

func runGolden(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(data), goldenSep, 3)
	if len(parts) != 3 {
		t.Fatalf("want policy set, request and expected decision separated by %q", strings.TrimSpace(goldenSep))
	}
	m := outcomeComment.FindStringSubmatch(parts[0])
	if m == nil {
		t.Fatal(`the policy set needs a "# outcome: allow|block|challenge|compile-error" comment`)
	}
	got, outcome := goldenOutput(t, file, parts[0], parts[1])
	if outcome != m[1] {
		t.Errorf("outcome = %s, the case says %s", outcome, m[1])
	}
	if *update {
		out := parts[0] + goldenSep + parts[1] + goldenSep + got
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != parts[2] {
		t.Errorf("decision differs (run go test -run TestGolden -update to rewrite)\n--- got\n%s\n--- want\n%s", got, parts[2])
	}
}

// goldenOutput compiles and evaluates one case, returning the text to
// compare and the outcome's name.
func goldenOutput(t *testing.T, file, policies, request string) (string, string) {
	doc, probs := Parse(filepath.Base(file), []byte(policies))
	snap, cprobs := Compile(goldenDirectory(), doc)
	if probs = append(probs, cprobs...); len(probs) > 0 {
		var b strings.Builder
		for _, p := range probs.Sorted() {
			b.WriteString(p.String() + "\n")
		}
		return b.String(), "compile-error"
	}
	var gr goldenRequest
	dec := yaml.NewDecoder(bytes.NewReader([]byte(request)))
	dec.KnownFields(true)
	if err := dec.Decode(&gr); err != nil {
		t.Fatalf("request: %v", err)
	}
	req := gr.request(t)
	explained := snap.Evaluate(req, EvaluateOptions{Explain: true})
	fast := snap.Evaluate(req, EvaluateOptions{ReportOnly: true})
	assertSameDecision(t, fast, explained)
	return Explain(&explained), explained.Outcome.String()
}

// assertSameDecision checks that the indexed fast path and the
// visit-everything explain path agree on everything but the per-policy
// results.
func assertSameDecision(t *testing.T, fast, explained Decision) {
	t.Helper()
	explained.Policies = nil
	if !reflect.DeepEqual(fast, explained) {
		t.Errorf("fast path and explain path disagree:\nfast:    %+v\nexplain: %+v", fast, explained)
	}
}
