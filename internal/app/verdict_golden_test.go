package app_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

var updateVerdicts = flag.Bool("update", false, "rewrite the expected answers of testdata/verdicts/*.golden")

// The verdict goldens pin what every enforcing adapter answers for the
// same request facts and session proofs: the built-in proxy to a browser
// and to an API client, both forward-auth endpoints, and the OIDC
// authorize endpoint. testdata/verdicts/cases.yaml holds the cases,
// policies.yaml the policy set they run under, and one .golden file per
// adapter the answers. The answers name no random value and no date:
// session proofs are made at ages before the test's clock, and times in
// the answers are printed as ages again.
const verdictDir = "testdata/verdicts"

// verdictAdapters are the adapters, in the order their files are written.
var verdictAdapters = []string{"proxy-browser", "proxy-api", "forward-auth", "auth-request", "authorize"}

// verdictCase is one entry of cases.yaml.
type verdictCase struct {
	Name string `yaml:"name"`
	// Why says what the case pins, for whoever reads a failure.
	Why  string `yaml:"why"`
	User struct {
		Name   string   `yaml:"name"`
		Groups []string `yaml:"groups"`
		// Methods are the user's registered methods beside the password:
		// totp, webauthn.
		Methods []string `yaml:"methods"`
	} `yaml:"user"`
	// Session are the proofs of the user's SSO session, oldest first;
	// none means no session.
	Session []verdictProof `yaml:"session"`
	// IP is the client's address (default 203.0.113.7, in DE);
	// UserAgent its User-Agent (default a desktop Firefox).
	IP        string `yaml:"ip"`
	UserAgent string `yaml:"user_agent"`
	// Request is what the gateway adapters are asked; none skips them.
	Request *struct {
		Method string `yaml:"method"`
		Path   string `yaml:"path"`
	} `yaml:"request"`
	// Authorize are the parameters added to a code request of client
	// bank; none skips the authorize adapter.
	Authorize map[string]string `yaml:"authorize"`
	// KnownBug names, per adapter, a wrong outcome reported and not yet
	// fixed: that answer is not pinned (see checkVerdictOutcome).
	KnownBug map[string]string `yaml:"known_bug"`
	// Token are the parameters added to the code request by which the
	// API client got its token (from the default address); none is a
	// plain request.
	Token map[string]string `yaml:"token"`
	// Repeat makes the request once first, answering the step-up it asks
	// for as the user would (see Answers) until it passes, and records
	// the answer to the same request made again on the same session: a
	// single-use proof, once spent, is asked for anew. The first answer
	// is printed in one line.
	Repeat bool `yaml:"repeat"`
	// Answers are the proofs the user gives, one per step-up page, when
	// the first request of a repeated case asks for a step-up, each made
	// at that moment (default: TOTP, then the password).
	Answers []verdictProof `yaml:"answers"`
}

func (c verdictCase) answers() []verdictProof {
	if len(c.Answers) > 0 {
		return c.Answers
	}
	return []verdictProof{{Method: "totp", AMR: []string{"otp"}}, {Method: "password", AMR: []string{"pwd"}}}
}

// verdictProof is one authentication event of a session.
type verdictProof struct {
	Method            string        `yaml:"method"`
	AMR               []string      `yaml:"amr"`
	Age               time.Duration `yaml:"age"`
	PhishingResistant bool          `yaml:"phishing_resistant"`
	Risk              string        `yaml:"risk"`
}

const (
	verdictDefaultIP = "203.0.113.7"
	verdictDefaultUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	verdictIssuer    = "http://localhost"
	verdictBank      = "bank.localhost"
	verdictFA        = "fa.localhost"
	// verdictProxyPeer is the proxy that asks the forward-auth endpoints.
	verdictProxyPeer = "127.0.0.1"
)

// TestVerdictGolden runs every case of testdata/verdicts/cases.yaml
// through every adapter and compares the answers with the golden files;
// -update rewrites them from today's answers (review the diff: an
// ok/ or fail/ outcome is checked apart from the text).
func TestVerdictGolden(t *testing.T) {
	cases := readVerdictCases(t)
	for _, adapter := range verdictAdapters {
		t.Run(adapter, func(t *testing.T) {
			// A Stepgate of its own for each adapter: a proof spent or a
			// challenge recorded through one must not change another's
			// answer (they share the user, the app and the second).
			rig := startVerdictRig(t)
			answers, ran := map[string]string{}, map[string]bool{}
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					ran[c.Name] = true
					ans, ok := rig.answer(t, c, adapter)
					if ok && checkVerdictOutcome(t, c, adapter, ans) {
						answers[c.Name] = ans
					}
				})
			}
			checkVerdictGolden(t, adapter, cases, ran, answers)
		})
	}
}

// checkVerdictOutcome checks, apart from the golden text, that an ok/
// case's request was let through and a fail/ case's was not, so -update
// cannot quietly bless a refusal that lets a request pass. A case's
// known_bug for this adapter turns a wrong outcome into a note, and the
// answer is then kept out of the golden file: a wrong answer is never
// pinned as the expected one. It reports whether to pin the answer.
func checkVerdictOutcome(t *testing.T, c verdictCase, adapter, ans string) bool {
	t.Helper()
	passed := verdictPassed(ans)
	wrong := strings.HasPrefix(c.Name, "ok/") != passed
	bug := c.KnownBug[adapter]
	switch {
	case wrong && bug != "":
		t.Logf("KNOWN SECURITY BUG, not pinned: %s\n%s", bug, ans)
		return false
	case bug != "":
		t.Errorf("the known bug %q no longer happens: remove known_bug.%s from the case and run with -update", bug, adapter)
	case wrong && passed:
		t.Errorf("%s let the request of a fail/ case through:\n%s", adapter, ans)
	case wrong:
		t.Errorf("%s refused the request of an ok/ case:\n%s", adapter, ans)
	}
	return true
}

// verdictPassed reports whether an answer (its last request, not the
// "first:" line of a repeated case) let the request through: the
// upstream served it, forward-auth said 200, or authorize gave a code.
func verdictPassed(ans string) bool {
	if strings.HasPrefix(ans, "first: ") {
		_, ans, _ = strings.Cut(ans, "\n")
	}
	if _, after, ok := strings.Cut(ans, "no token: "); ok {
		_, ans, _ = strings.Cut(after, "\n")
	}
	return strings.Contains(ans, "\nupstream: served\n") || strings.HasPrefix(ans, "status: 200\n") ||
		strings.Contains(ans, "/bank/callback?code=")
}

func readVerdictCases(t *testing.T) []verdictCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(verdictDir, "cases.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []verdictCase
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cases); err != nil {
		t.Fatalf("cases.yaml: %v", err)
	}
	names, users := map[string]bool{}, map[string]bool{}
	for _, c := range cases {
		if names[c.Name] || users[c.User.Name] {
			t.Fatalf("cases.yaml: case %q or user %q appears twice; each case has its own user", c.Name, c.User.Name)
		}
		names[c.Name], users[c.User.Name] = true, true
	}
	return cases
}

// checkVerdictGolden compares an adapter's answers to the cases that
// ran with its golden file, or rewrites the file with -update (a case
// that -run left out keeps its answer).
func checkVerdictGolden(t *testing.T, adapter string, cases []verdictCase, ran map[string]bool, got map[string]string) {
	t.Helper()
	file := filepath.Join(verdictDir, adapter+".golden")
	data, err := os.ReadFile(file)
	if missing := errors.Is(err, fs.ErrNotExist); err != nil && (!*updateVerdicts || !missing) {
		t.Fatalf("%v (run go test -run TestVerdictGolden ./internal/app/ -update to write it)", err)
	}
	want := splitVerdictGolden(string(data))
	if *updateVerdicts {
		var b strings.Builder
		for _, c := range cases {
			ans, ok := got[c.Name]
			if !ran[c.Name] {
				ans, ok = want[c.Name]
			}
			if ok {
				fmt.Fprintf(&b, "=== %s\n%s\n", c.Name, ans)
			}
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	known := map[string]bool{}
	for _, c := range cases {
		known[c.Name] = true
		if !ran[c.Name] {
			continue
		}
		g, gotOK := got[c.Name]
		w, wantOK := want[c.Name]
		if g != w || gotOK != wantOK {
			t.Errorf("%s answers %s differently from %s (-want +got); if that is meant, run go test -run TestVerdictGolden ./internal/app/ -update and review the diff\n%s",
				adapter, c.Name, file, lineDiff(w, g))
		}
	}
	for name := range want {
		if !known[name] {
			t.Errorf("%s has an answer for %s, which is no case of cases.yaml", file, name)
		}
	}
}

// lineDiff prints the lines of want and got, those only in want with
// "-", those only in got with "+" (a longest common subsequence).
func lineDiff(want, got string) string {
	a, b := strings.Split(strings.TrimSuffix(want, "\n"), "\n"), strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	// lcs[i][j] is the length of the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out.WriteString("  " + a[i] + "\n")
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			out.WriteString("- " + a[i] + "\n")
			i++
		default:
			out.WriteString("+ " + b[j] + "\n")
			j++
		}
	}
	return out.String()
}

// splitVerdictGolden reads a golden file into each case's answer.
func splitVerdictGolden(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, "=== ")[1:] {
		name, ans, _ := strings.Cut(part, "\n")
		out[name] = strings.TrimSuffix(ans, "\n")
	}
	return out
}
