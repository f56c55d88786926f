package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a policy file or policy set.
type Problem struct {
	// File is the file name given to Parse; empty for problems of the set
	// as a whole.
	File string `json:"file,omitempty"`
	// Line is 1-based; 0 when unknown (a document built in code).
	Line int `json:"line,omitempty"`
	// Path is the key path, like policies[0].conditions.locations.include[1].
	Path string `json:"path,omitempty"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
}

// String formats the problem the way compilers do, so editors can jump
// to it: "policies.yaml:12: policies[0].state: ...".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found; Parse and Compile collect them all so
// a user fixes everything in one edit.
type Problems []Problem

// Error lists the problems, one per line.
func (ps Problems) Error() string {
	noun := "problems"
	if len(ps) == 1 {
		noun = "problem"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d policy %s:", len(ps), noun)
	for _, p := range ps {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Sorted returns the problems ordered by file and line, the order a
// person fixes them in; problems without a line come first.
func (ps Problems) Sorted() Problems {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b Problem) int {
		if c := cmp.Compare(a.File, b.File); c != 0 {
			return c
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return out
}

// Err returns ps as an error, or nil when there are none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}
