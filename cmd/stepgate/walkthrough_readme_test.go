package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	readmeStepRe    = regexp.MustCompile(`(?m)^(\d+)\. \*\*(.+?)\.?\*\*`)
	readmeURLRe     = regexp.MustCompile("https?://[^\\s)`'\"*<>|]+")
	readmeFenceRe   = regexp.MustCompile("(?ms)^ *```(\\w*)\n(.*?)^ *```")
	readmeInlineRe  = regexp.MustCompile("`((?:curl|go run|\\./stepgate|stepgate) [^`]+)`")
	readmeSectionRe = regexp.MustCompile(`(?ms)^## The demo, step by step\n(.*?)\n## `)
)

// readmeStep is a step as the README writes it.
type readmeStep struct {
	title, text string
	urls        []string
	commands    []walkCommand
}

// readmeWalkThrough cuts the README's demo section into the text
// before step 1 and its numbered steps.
func readmeWalkThrough(readme string) ([]readmeStep, error) {
	m := readmeSectionRe.FindStringSubmatch(readme)
	if m == nil {
		return nil, fmt.Errorf(`the README has no "## The demo, step by step" section followed by another "## " section`)
	}
	section := m[1]
	starts := readmeStepRe.FindAllStringSubmatchIndex(section, -1)
	var steps []readmeStep
	from, title := 0, ""
	for i := 0; i <= len(starts); i++ {
		to := len(section)
		if i < len(starts) {
			to = starts[i][0]
		}
		steps = append(steps, parseReadmeStep(title, section[from:to]))
		if i < len(starts) {
			from, title = starts[i][0], section[starts[i][4]:starts[i][5]]
			if n := section[starts[i][2]:starts[i][3]]; n != fmt.Sprint(i+1) {
				return nil, fmt.Errorf("the README's step %q is numbered %s, want %d", title, n, i+1)
			}
		}
	}
	return steps, nil
}

func parseReadmeStep(title, text string) readmeStep {
	s := readmeStep{title: title, text: squeeze(text)}
	for _, u := range readmeURLRe.FindAllString(text, -1) {
		u = strings.TrimRight(u, ".,:;")
		if !slices.Contains(s.urls, u) {
			s.urls = append(s.urls, u)
		}
	}
	for _, block := range readmeFenceRe.FindAllStringSubmatch(text, -1) {
		if !slices.Contains([]string{"", "sh", "shell", "bash", "console"}, block[1]) {
			continue // a file's text, not commands
		}
		line := ""
		for _, l := range strings.Split(block[2], "\n") {
			l = strings.TrimSpace(l)
			switch {
			case l == "":
			case strings.HasPrefix(l, "# ") && len(s.commands) > 0:
				c := &s.commands[len(s.commands)-1]
				c.Outputs = append(c.Outputs, strings.TrimPrefix(l, "# "))
			case strings.HasSuffix(l, `\`):
				line += strings.TrimSuffix(l, `\`)
			default:
				s.commands = append(s.commands, walkCommand{Line: line + l})
				line = ""
			}
		}
	}
	for _, c := range readmeInlineRe.FindAllStringSubmatch(readmeFenceRe.ReplaceAllString(text, ""), -1) {
		s.commands = append(s.commands, walkCommand{Line: squeeze(c[1])})
	}
	return s
}

// squeeze folds every run of white space into one space, as Markdown
// reads a paragraph.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

// walkThroughProblems compares the README's demo section with steps and
// returns every difference.
func walkThroughProblems(readme string, steps []walkStep) []string {
	got, err := readmeWalkThrough(readme)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(got) != len(steps) {
		add("the README has %d steps and the walk-through test %d: change both together", len(got)-1, len(steps)-1)
	}
	for i := range min(len(got), len(steps)) {
		r, w := got[i], steps[i]
		name := fmt.Sprintf("step %d %q", i, w.Title)
		if i == 0 {
			name = "the text before step 1"
		}
		if r.title != w.Title {
			add("%s: the README calls it %q", name, r.title)
		}
		for _, u := range r.urls {
			if !slices.Contains(w.URLs, u) {
				add("%s: the README gives %s, the test does not open it", name, u)
			}
		}
		for _, u := range w.URLs {
			if !slices.Contains(r.urls, u) {
				add("%s: the test opens %s, the README does not give it", name, u)
			}
		}
		if !slices.EqualFunc(r.commands, w.Commands, func(a, b walkCommand) bool {
			return a.Line == b.Line && slices.Equal(a.Outputs, b.Outputs)
		}) {
			add("%s: the README's commands and outputs\n\t%q\ndiffer from the test's\n\t%q", name, r.commands, w.Commands)
		}
		for _, c := range w.Cites {
			if !strings.Contains(r.text, squeeze(c)) {
				add("%s: the test proves %q, which the README's step does not say", name, c)
			}
		}
	}
	return problems
}

// TestReadmeWalkThrough holds the README's "The demo, step by step" to
// walkSteps, which TestBrowserWalkThrough performs, so the README says
// only what the test proves.
func TestReadmeWalkThrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range walkThroughProblems(string(readme), walkSteps) {
		t.Error(p)
	}

	// Each kind of drift is caught, in either direction.
	text := string(readme)
	for _, tc := range []struct{ name, old, new string }{
		{"fail/step-renamed", "**Open Customers**", "**Open the customers**"},
		{"fail/url-added", "Public rates** at http://bank.localhost:8080/public/rates", "Public rates** at http://bank.localhost:8080/public/rates and http://bank.localhost:8080/public/news"},
		{"fail/url-removed", "Sign out at http://localhost:8080/logout,", "Sign out,"},
		{"fail/output-changed", "# 200", "# 204"},
		{"fail/command-changed", "user totp-code alice --demo\n", "user totp-code alice\n"},
		{"fail/cited-outcome-changed", "the customer list opens at once", "the customer list opens after a code"},
		{"fail/step-added", "## First steps", "8. **Sign out.** Done.\n\n## First steps"},
	} {
		changed := strings.Replace(text, tc.old, tc.new, 1)
		if changed == text {
			t.Errorf("%s: the README no longer contains %q; update this case", tc.name, tc.old)
			continue
		}
		if len(walkThroughProblems(changed, walkSteps)) == 0 {
			t.Errorf("%s: a README with %q instead of %q passes", tc.name, tc.new, tc.old)
		}
	}
	fewer := slices.Clone(walkSteps)
	fewer[4].Cites = append(slices.Clone(fewer[4].Cites), "customers open only after a passkey")
	if len(walkThroughProblems(text, fewer)) == 0 {
		t.Error("fail/test-cites-more: a test step citing text the README lacks passes")
	}
	if len(walkThroughProblems(text, walkSteps[:len(walkSteps)-1])) == 0 {
		t.Error("fail/test-step-removed: a test without the README's last step passes")
	}
}
