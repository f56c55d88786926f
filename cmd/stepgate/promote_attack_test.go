package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/admin"
)

// TestAttackHistoryLineCannotBeForged: a release kept with a reason or
// an actor holding a line break, a tab, a terminal escape, a
// right-to-left override or a line separator (stored before such
// reasons were refused, or written to the store directly) prints as one
// quoted line of stepgate policy history, never as lines of its own, as
// escapes that rewrite the terminal or as text shown in another order.
func TestAttackHistoryLineCannotBeForged(t *testing.T) {
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	rels := []admin.Release{
		{Env: "production", Version: 2, Change: admin.Change{Action: "policy.update", Target: "mfa", Actor: "user:root", At: at,
			Reason: "CHG-1\n9  2026-05-04 12:00:00Z  user:ceo  promoted from staging v1  1  approved\x1b[2K"}},
		{Env: "production", Version: 1, Change: admin.Change{Action: "policy.create", Target: "mfa\tx", Actor: "user:root\r", At: at, Reason: "start"}},
		{Env: "production", Version: 0, Change: admin.Change{Action: "policy.create", Target: "mfa", Actor: "user:root", At: at, Reason: "CHG-2 \u202edevorppa\u202c\u2028v9"}},
	}
	var out bytes.Buffer
	if err := printHistory(&out, "production", rels); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("fail/forged-lines: %d lines for 3 releases:\n%s", len(lines), out.String())
	}
	if strings.ContainsAny(out.String(), "\x1b\r\t\u202e\u2028") {
		t.Errorf("fail/terminal-escape: control characters reach the terminal: %q", out.String())
	}
	if !strings.Contains(lines[1], `\x1b[2K`) || !strings.Contains(lines[1], `\n9`) {
		t.Errorf("the quoted reason is not shown for what it is: %q", lines[1])
	}
}
