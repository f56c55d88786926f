package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ownGroup puts cmd in a process group of its own, so that a Ctrl-C at
// the terminal reaches the harness alone and the harness stops its
// children in order, and makes the kernel send deathSig to cmd when the
// harness ends however it ends: killed, nothing it started outlives it.
func ownGroup(cmd *exec.Cmd, deathSig syscall.Signal) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
}

// killGroup kills every process in the group pgid (nginx's workers with
// their master).
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// groupCPU is the CPU time (user and system) used so far by the live
// processes of the process group pgid.
func groupCPU(pgid int) time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, path := range stats {
		b, err := os.ReadFile(path) //nolint:gosec // /proc
		if err != nil {
			continue // the process ended
		}
		if group, cpu, ok := parseStat(string(b)); ok && group == pgid {
			total += cpu
		}
	}
	return total
}
