//go:build !linux

package main

import (
	"os/exec"
	"syscall"
	"time"
)

// ownGroup does nothing where the kernel offers no parent-death signal;
// stop the harness with an interrupt there, which stops its children.
func ownGroup(*exec.Cmd, syscall.Signal) {}

func killGroup(int) {}

// groupCPU is zero where the harness does not read other processes' CPU
// time: the CPU columns then stay empty.
func groupCPU(int) time.Duration { return 0 }
