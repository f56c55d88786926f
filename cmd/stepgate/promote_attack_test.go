package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
)

// TestAttackHistoryLineCannotBeForged: a release kept with a reason or
// an actor holding a line break, a tab or a terminal escape (stored
// before such reasons were refused, or written to the store directly)
// prints as one quoted line of stepgate policy history, never as lines
// of its own or as escapes that rewrite the terminal.
func TestAttackHistoryLineCannotBeForged(t *testing.T) {
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	rels := []admin.Release{
		{Env: "production", Version: 2, Change: admin.Change{Action: "policy.update", Target: "mfa", Actor: "user:root", At: at,
			Reason: "CHG-1\n9  2026-05-04 12:00:00Z  user:ceo  promoted from staging v1  1  approved\x1b[2K"}},
		{Env: "production", Version: 1, Change: admin.Change{Action: "policy.create", Target: "mfa\tx", Actor: "user:root\r", At: at, Reason: "start"}},
	}
	var out bytes.Buffer
	if err := printHistory(&out, "production", rels); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("fail/forged-lines: %d lines for 2 releases:\n%s", len(lines), out.String())
	}
	if strings.ContainsAny(out.String(), "\x1b\r\t") {
		t.Errorf("fail/terminal-escape: control characters reach the terminal: %q", out.String())
	}
	if !strings.Contains(lines[1], `\x1b[2K`) || !strings.Contains(lines[1], `\n9`) {
		t.Errorf("the quoted reason is not shown for what it is: %q", lines[1])
	}
}
