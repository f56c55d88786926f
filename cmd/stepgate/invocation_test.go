package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestInvocationCommand: the commands the demo prints start the way the
// reader started it, so they can be pasted as printed.
func TestInvocationCommand(t *testing.T) {
	goRun := "/tmp/go-build1234/b001/exe/stepgate"
	cached := "/root/.cache/go-build/0b/0ba41b26-d/stepgate" // go run keeps its binaries in the build cache
	tests := []struct {
		name string
		inv  invocation
		want string
	}{
		{"ok/installed-on-path", invocation{Exe: "/home/u/go/bin/stepgate", Arg0: "stepgate", OnPath: true, Version: "v1.2.0"}, "stepgate"},
		{"ok/go-run-in-the-source", invocation{Exe: goRun, Arg0: goRun, Source: true, Version: "(devel)"}, "go run ./cmd/stepgate"},
		{"ok/go-run-cached", invocation{Exe: cached, Arg0: cached, Source: true, Version: "(devel)"}, "go run ./cmd/stepgate"},
		{"ok/go-run-cached-in-a-custom-cache", invocation{Exe: "/var/cache/gc/0b/0ba4-d/stepgate", Arg0: "/var/cache/gc/0b/0ba4-d/stepgate", GoCache: "/var/cache/gc/", Source: true}, "go run ./cmd/stepgate"},
		{"ok/built-beside-a-custom-cache", invocation{Exe: "/var/cache/gcx/stepgate", Arg0: "/var/cache/gcx/stepgate", GoCache: "/var/cache/gc"}, "/var/cache/gcx/stepgate"},
		{"ok/go-run-of-a-version", invocation{Exe: goRun, Arg0: goRun, Module: "github.com/stepgate/stepgate", Version: "v1.2.0"},
			"go run github.com/stepgate/stepgate/cmd/stepgate@v1.2.0"},
		{"ok/go-run-elsewhere-in-the-tree", invocation{Exe: goRun, Arg0: goRun, Version: "(devel)"}, goRun},
		{"ok/built-in-this-directory", invocation{Exe: "/src/stepgate/stepgate", Arg0: "./stepgate"}, "./stepgate"},
		{"ok/path-with-a-space", invocation{Exe: "/opt/my tools/stepgate", Arg0: "/opt/my tools/stepgate"}, "'/opt/my tools/stepgate'"},
		{"ok/by-name-but-another-binary-on-path", invocation{Exe: "/usr/local/bin/stepgate", Arg0: "stepgate"}, "stepgate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.inv.command(); got != tt.want {
				t.Fatalf("command() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDemoPrintedCommandsRun starts the demo from a built binary that
// is not on the PATH, as `make build && ./stepgate demo` does, and runs
// the command it prints for alice's code, as printed, in a shell in the
// same directory: it must print a six-digit code.
func TestDemoPrintedCommandsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildStepgate(t)
	dir := filepath.Dir(bin)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	demoCmd := exec.CommandContext(ctx, "./stepgate", "demo", "--listen", "127.0.0.1:0")
	demoCmd.Dir, demoCmd.Env = dir, childEnv()
	out, err := demoCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	demoCmd.Stderr = io.Discard
	if err := demoCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = demoCmd.Process.Signal(os.Interrupt)
		_ = demoCmd.Wait()
	})
	printed := map[string]string{}
	lines := bufio.NewScanner(out)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "Data:") {
		if before, after, ok := strings.Cut(lines.Text(), " with: "); ok {
			printed[before] = after
		}
	}
	code := printed["get alice's current code"]
	if code != "./stepgate user totp-code alice --demo" {
		t.Fatalf("printed %q for alice's code, want ./stepgate user totp-code alice --demo (all printed: %q)", code, printed)
	}
	if tap := printed["a password alone adds no sign-in method; give bob a pass"]; tap != "./stepgate user tap bob --lifetime 1h --demo" {
		t.Errorf("printed %q for bob's pass", tap)
	}
	sh := exec.CommandContext(ctx, "sh", "-c", code) //nolint:gosec // the command the demo printed, from the binary this test built
	sh.Dir, sh.Env = dir, childEnv()
	got, err := sh.Output()
	if err != nil || !regexp.MustCompile(`^\d{6}\n$`).Match(got) {
		t.Fatalf("the printed command %q gave %q, %v; want a six-digit code", code, got, err)
	}
}
