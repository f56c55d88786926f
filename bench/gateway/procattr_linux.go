package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd when this program ends, however
// it ends: an interrupted or killed harness leaves no nginx behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
