//go:build unix

package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer lets the server log while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeReloadsPoliciesOnSIGHUP is not parallel: the signal goes to
// the whole test process, which serve has asked to receive it.
func TestServeReloadsPoliciesOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	pol := write(t, dir, "policies.yaml", strings.ReplaceAll(lintGood, "groups: [staff]", "users: [all]"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	t.Setenv("STEPGATE_POLICY_FILES", pol)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--data-dir", filepath.Join(dir, "data")},
			strings.NewReader(""), &bytes.Buffer{}, &logs)
	}()
	waitFor(t, "the server", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	if !strings.Contains(logs.String(), "policies=2") {
		t.Fatalf("the policies were not loaded at start:\n%s", logs.String())
	}

	write(t, dir, "policies.yaml", lintBad)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed reload", func() bool { return strings.Contains(logs.String(), "policy reload failed") })
	if !strings.Contains(logs.String(), pol+":12: policies[0].sesion") {
		t.Errorf("the reload did not log the problems:\n%s", logs.String())
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
}
