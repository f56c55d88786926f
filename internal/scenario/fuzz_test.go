package scenario

import (
	"strings"
	"testing"
)

// FuzzParse: no test file, however malformed, makes the parser panic or
// return a problem without a message.
func FuzzParse(f *testing.F) {
	f.Add([]byte("now: 2026-01-05T09:00:00Z\nscenarios:\n  - name: a\n    user: u\n    app: x\n    proofs: [{method: totp, age: 5m}]\n    expect: {decision: allow}\n"))
	f.Add([]byte("a: &a [*a, *a]\nscenarios: *a\n"))
	f.Add([]byte("scenarios: [{name: x, device: {attributes: [1]}, route: 3}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, probs := Parse("f.tests.yaml", data)
		for _, p := range probs {
			if p.Message == "" {
				t.Fatalf("a problem without a message: %+v", p)
			}
		}
	})
}

// TestAliasBomb: a file whose aliases would expand to billions of
// values (a scenario repeated, each with a list of proofs repeated) is
// refused quickly with one problem, not walked.
func TestAliasBomb(t *testing.T) {
	t.Parallel()
	const n = 2000
	var b strings.Builder
	b.WriteString("x: &p {method: totp, age: 1m}\n")
	b.WriteString("y: &s {name: s, subject: {username: u}, app: a, expect: {decision: allow}, proofs: [")
	b.WriteString(strings.Repeat("*p, ", n))
	b.WriteString("*p]}\nscenarios: [")
	b.WriteString(strings.Repeat("*s, ", n))
	b.WriteString("*s]\n")
	_, probs := Parse("bomb.tests.yaml", []byte(b.String()))
	if len(probs) > 3 {
		t.Fatalf("%d problems; want the expansion refused at once", len(probs))
	}
	found := false
	for _, p := range probs {
		found = found || strings.Contains(p.Message, "expands to more than")
	}
	if !found {
		t.Fatalf("no expansion problem: %v", probs)
	}
}
