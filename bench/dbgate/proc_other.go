//go:build !linux

package main

import "os/exec"

// runAs runs cmd as the harness's own user: the harness runs its servers
// as another user (when run by root) on Linux only. Without the kernel's
// parent-death signal, stop the harness with an interrupt, which stops
// the servers it started.
func runAs(*exec.Cmd, int, int) {}
