//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death
// signal; stop the harness with an interrupt there, which stops nginx.
func dieWithParent(*exec.Cmd) {}
