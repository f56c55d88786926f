package main

import (
	"os/exec"
	"syscall"
)

// runAs makes cmd run as uid and gid (unless negative), and makes the
// kernel kill it when this program ends, however it ends: an interrupted
// or killed harness leaves no PostgreSQL or PgBouncer behind.
func runAs(cmd *exec.Cmd, uid, gid int) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)} //nolint:gosec // ids from the user database
	}
}
