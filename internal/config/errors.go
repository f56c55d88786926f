package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	// Path is the dotted key path ("sessions.idle_timeout",
	// "server.trusted_proxies[1]") or, for an environment variable that
	// could not be parsed, "env STEPGATE_X". Empty for file-level problems
	// such as a YAML syntax error.
	Path string
	// Line is the 1-based line in the configuration file; 0 means the value
	// did not come from the file or the line is unknown.
	Line int
	// Message says what is wrong and how to fix it. It never contains a
	// secret: DSN passwords are redacted before they are quoted.
	Message string
}

// String formats the problem as "path (line N): message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Path)
	switch {
	case p.Line > 0 && p.Path != "":
		fmt.Fprintf(&b, " (line %d)", p.Line)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d", p.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors is every problem found while resolving the configuration. Resolve
// collects them all before failing so a user can fix everything in one
// edit instead of discovering mistakes one restart at a time.
type Errors struct {
	// File is the configuration file's path as given; empty when no file
	// was used.
	File     string
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *Errors) Error() string {
	var b strings.Builder
	name := e.File
	if name == "" {
		name = "configuration"
	}
	noun := "problems"
	if len(e.Problems) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(&b, "%s: %d %s:", name, len(e.Problems), noun)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}
