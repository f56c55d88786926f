//go:build unix

package demo

import (
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// osUser is a system account PostgreSQL's programs run as.
type osUser struct{ uid, gid int }

// lookupPostgresUser finds the postgres system user that Debian's
// package creates, for a demo started as root.
func lookupPostgresUser() (*osUser, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errNoPostgresUser
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("the postgres user's ids %q/%q are not numbers", u.Uid, u.Gid)
	}
	return &osUser{uid: uid, gid: gid}, nil
}

// setOwner makes cmd run as owner (when set) in a process group of its
// own.
func setOwner(cmd *exec.Cmd, owner *osUser) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if owner != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(owner.uid), Gid: uint32(owner.gid)} //nolint:gosec // ids from the system's user database
	}
}
