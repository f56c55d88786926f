package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// invocation is what is known of how this program was started, so that
// the commands it prints for the reader to run next (the demo's "get
// alice's code with: …") can be pasted as printed. A binary built by
// `go run` lives in a temporary directory and is no command anyone can
// type; a binary not on the PATH needs its path.
type invocation struct {
	// Exe is the running binary (os.Executable).
	Exe string
	// Arg0 is the name it was started by (os.Args[0]).
	Arg0 string
	// OnPath says `stepgate` on the PATH is this very binary.
	OnPath bool
	// Source says the working directory holds this program's source
	// (./cmd/stepgate), where `go run ./cmd/stepgate` builds it.
	Source bool
	// GoCache is the go command's build cache (GOCACHE), where `go run`
	// keeps the binaries it builds.
	GoCache string
	// Module and Version are the main module's path and version from the
	// build information; Version is "(devel)" for a local build.
	Module, Version string
}

// currentInvocation looks at the running process.
func currentInvocation() invocation {
	inv := invocation{Arg0: os.Args[0], GoCache: os.Getenv("GOCACHE")}
	inv.Exe, _ = os.Executable()
	if found, err := exec.LookPath("stepgate"); err == nil {
		inv.OnPath = sameFile(found, inv.Exe)
	}
	if st, err := os.Stat(filepath.Join("cmd", "stepgate", "main.go")); err == nil && st.Mode().IsRegular() {
		inv.Source = true
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		inv.Module, inv.Version = bi.Main.Path, bi.Main.Version
	}
	return inv
}

func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// goRunBuild reports whether the binary is one `go run` built: in a
// temporary go-build work directory, or in the build cache (by default
// a go-build directory too), where `go run` keeps what it builds.
func (inv invocation) goRunBuild() bool {
	exe := filepath.ToSlash(inv.Exe)
	if inv.GoCache != "" && strings.HasPrefix(exe, strings.TrimSuffix(filepath.ToSlash(inv.GoCache), "/")+"/") {
		return true
	}
	return strings.Contains(exe, "/go-build")
}

// command is the prefix of a command that runs this program again, from
// the directory it was started in.
func (inv invocation) command() string {
	switch {
	case inv.OnPath:
		return "stepgate"
	case inv.goRunBuild() && inv.Source:
		return "go run ./cmd/stepgate"
	case inv.goRunBuild() && inv.Module != "" && inv.Version != "" && inv.Version != "(devel)":
		return "go run " + inv.Module + "/cmd/stepgate@" + inv.Version
	case inv.goRunBuild():
		// Started with `go run` from elsewhere in the source tree: the
		// temporary binary lives as long as this program does.
		return shellQuote(inv.Exe)
	case strings.ContainsRune(inv.Arg0, '/') || strings.ContainsRune(inv.Arg0, filepath.Separator):
		return shellQuote(inv.Arg0)
	}
	return "stepgate"
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// plain path characters.
func shellQuote(s string) string {
	plainChar := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r)
	}
	plain := strings.IndexFunc(s, func(r rune) bool { return !plainChar(r) }) < 0
	if plain && s != "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
