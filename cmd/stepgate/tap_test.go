package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestUserTap: a pass is printed once, a second one is refused while the
// first is active, bounds and missing flags are named, and --revoke ends
// it so a new one can be issued.
func TestUserTap(t *testing.T) {
	dd := "--data-dir=" + t.TempDir()
	stepgate(t, "correct horse battery\n", "user", "add", "bob", "--email", "bob@example.com", "--password-stdin", dd).mustSucceed(t)
	stepgate(t, "", "user", "tap", "bob", dd).mustFail(t, 2, "--lifetime 1h")
	stepgate(t, "", "user", "tap", "bob", "--lifetime", "1m", dd).mustFail(t, 1, "10m0s and 168h")
	r := stepgate(t, "", "user", "tap", "bob", "--lifetime", "1h", "--once", dd).mustSucceed(t)
	if !regexp.MustCompile(`temporary access pass for bob: [a-z0-9]{4}(-[a-z0-9]{4}){4}\n`).MatchString(r.stdout) || !strings.Contains(r.stdout, "one session") {
		t.Fatalf("the pass is not printed:\n%s", r.stdout)
	}
	stepgate(t, "", "user", "tap", "bob", "--lifetime", "1h", dd).mustFail(t, 1, "already has an active temporary access pass", "--revoke")
	stepgate(t, "", "user", "tap", "bob", "--revoke", dd).mustSucceed(t)
	stepgate(t, "", "user", "tap", "bob", "--revoke", dd).mustFail(t, 1, "no active temporary access pass")
	stepgate(t, "", "user", "tap", "bob", "--lifetime", "2h", "--json", dd).mustSucceed(t)
	stepgate(t, "", "user", "tap", "nobody", "--lifetime", "1h", dd).mustFail(t, 1, "nobody")
}
