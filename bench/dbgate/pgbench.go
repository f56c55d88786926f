package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// target is where pgbench connects: PostgreSQL itself, PgBouncer or the
// gateway.
type target struct {
	name string
	addr string
	user string
	// password returns the password for one run ("" for none): for the
	// gateway, a fresh access token.
	password func() (string, error)
	// cpu is the CPU time the target's process has used so far (nil:
	// not measured).
	cpu func() time.Duration
}

// workload is one pgbench script in one query mode.
type workload struct {
	script string // a pgbench builtin: select-only, tpcb-like
	mode   string // simple, extended, prepared
}

func (w workload) String() string { return w.script + " " + w.mode }

// outcome is one pgbench run.
type outcome struct {
	tps float64
	txs int64
	// cpuPerTx is the target process's CPU time per transaction (zero:
	// not measured).
	cpuPerTx time.Duration
}

var (
	tpsRe       = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	processedRe = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	failedRe    = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

// pgbench runs one workload against t for duration with clients
// connections over threads threads.
func pgbench(bin string, t target, w workload, clients, threads int, duration time.Duration, sslmode string) (outcome, error) {
	host, port, _ := net.SplitHostPort(t.addr)
	args := []string{"-n", "-b", w.script, "-M", w.mode, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(int(duration.Round(time.Second) / time.Second)), "-h", host, "-p", port, "-U", t.user, benchDB}
	cmd := exec.Command(filepath.Join(bin, "pgbench"), args...) //nolint:gosec // a fixed binary
	cmd.Env = append(os.Environ(), "PGSSLMODE="+sslmode, "PGAPPNAME=pgbench")
	if t.password != nil {
		pw, err := t.password()
		if err != nil {
			return outcome{}, err
		}
		cmd.Env = append(cmd.Env, "PGPASSWORD="+pw)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	var cpuBefore time.Duration
	if t.cpu != nil {
		cpuBefore = t.cpu()
	}
	err := cmd.Run()
	var cpu time.Duration
	if t.cpu != nil {
		cpu = t.cpu() - cpuBefore
	}
	if err != nil {
		return outcome{}, fmt.Errorf("pgbench %s against %s: %w\n%s", w, t.name, err, tail(out.Bytes()))
	}
	m := tpsRe.FindSubmatch(out.Bytes())
	n := processedRe.FindSubmatch(out.Bytes())
	if m == nil || n == nil {
		return outcome{}, fmt.Errorf("pgbench %s against %s printed no throughput:\n%s", w, t.name, tail(out.Bytes()))
	}
	if f := failedRe.FindSubmatch(out.Bytes()); f != nil && string(f[1]) != "0" {
		return outcome{}, fmt.Errorf("pgbench %s against %s: %s transactions failed:\n%s", w, t.name, f[1], tail(out.Bytes()))
	}
	o := outcome{}
	o.tps, _ = strconv.ParseFloat(string(m[1]), 64)
	o.txs, _ = strconv.ParseInt(string(n[1]), 10, 64)
	if o.txs == 0 {
		return outcome{}, fmt.Errorf("pgbench %s against %s processed no transaction:\n%s", w, t.name, tail(out.Bytes()))
	}
	if cpu > 0 {
		o.cpuPerTx = cpu / time.Duration(o.txs)
	}
	return o, nil
}

// tail is the end of pgbench's output, for an error.
func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
