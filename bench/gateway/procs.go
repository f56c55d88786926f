package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a process the harness started and must stop: nginx, Stepgate,
// a load generator.
type child struct {
	name    string
	cmd     *exec.Cmd
	stopSig os.Signal
	done    chan struct{}
}

// startChild starts cmd in a process group of its own. stop sends it
// stopSig; the kernel sends it deathSig if the harness dies first.
func startChild(name string, cmd *exec.Cmd, stopSig os.Signal, deathSig syscall.Signal) (*child, error) {
	ownGroup(cmd, deathSig)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, stopSig: stopSig, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the process to end, and kills its whole group if it has not
// within ten seconds.
func (c *child) stop() {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(c.stopSig)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(errOut, "gatewaybench: %s did not stop; killing it\n", c.name)
		killGroup(c.cmd.Process.Pid)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// cpu is the CPU time the child's process group has used so far.
func (c *child) cpu() time.Duration { return groupCPU(c.cmd.Process.Pid) }

// runChild runs cmd to its end and returns its standard output and the
// CPU time it used, killing it when ctx ends or after timeout.
func runChild(ctx context.Context, name string, cmd *exec.Cmd, timeout time.Duration) ([]byte, time.Duration, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	c, err := startChild(name, cmd, syscall.SIGKILL, syscall.SIGKILL)
	if err != nil {
		return nil, 0, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-ctx.Done():
		c.stop()
		return nil, 0, ctx.Err()
	case <-timer.C:
		c.stop()
		return nil, 0, fmt.Errorf("%s ran past %s; killed", name, timeout)
	}
	state := c.cmd.ProcessState
	if !state.Success() {
		return nil, 0, fmt.Errorf("%s: %s: %s", name, state, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), state.UserTime() + state.SystemTime(), nil
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ), 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// parseStat reads a /proc/PID/stat line: the process group and the CPU
// time (user and system) used.
func parseStat(line string) (pgid int, cpu time.Duration, ok bool) {
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields that follow start after the last ')'.
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, false
	}
	pgid, err1 := strconv.Atoi(f[2])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return pgid, time.Duration(utime+stime) * clockTick, true
}
