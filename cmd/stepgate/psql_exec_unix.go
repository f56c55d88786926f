//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// execPsql replaces this process with psql, so psql has the terminal,
// its signals (Ctrl-C cancels a query, not the command) and its exit
// status to itself.
func execPsql(path string, args, env []string) error {
	err := syscall.Exec(path, append([]string{"psql"}, args...), env) //nolint:gosec // psql from PATH, by design
	return fmt.Errorf("run %s: %w", path, err)
}
