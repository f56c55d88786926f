//go:build !unix

package demo

import "os/exec"

// osUser is a system account PostgreSQL's programs run as; only Unix
// systems switch to one.
type osUser struct{ uid, gid int }

func lookupPostgresUser() (*osUser, error) { return nil, errNoPostgresUser }

func setOwner(*exec.Cmd, *osUser) {}
