package main

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
)

// owner is the account the harness runs PostgreSQL and PgBouncer as:
// PostgreSQL refuses to run as root, so a harness run by root runs them
// as the postgres user the Debian package creates (as
// scripts/with-postgres.sh does), and owns their files by it.
type owner struct {
	uid, gid int // -1: the harness's own
}

// serverOwner is the postgres user when the harness runs as root, the
// harness's own user otherwise.
func serverOwner() (*owner, error) {
	if os.Geteuid() != 0 {
		return &owner{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &owner{uid: uid, gid: gid}, nil
}

func (o *owner) chown(path string) error {
	if o.uid < 0 {
		return nil
	}
	return os.Chown(path, o.uid, o.gid)
}

func (o *owner) mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return o.chown(dir)
}

func (o *owner) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil { //nolint:gosec // G703: files in the harness's own temporary directory
		return err
	}
	return o.chown(path)
}

func (o *owner) copyFile(from, to string) error {
	b, err := os.ReadFile(from) //nolint:gosec // the harness's own temporary files
	if err != nil {
		return err
	}
	return o.writeFile(to, string(b))
}

// run makes cmd run as the owner, and die with the harness.
func (o *owner) run(cmd *exec.Cmd) {
	runAs(cmd, o.uid, o.gid)
}
