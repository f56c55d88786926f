// Command dbbench measures the database gateway the way its users load
// it: pgbench, PostgreSQL's own benchmark client, against the same
// PostgreSQL directly, through Debian's PgBouncer in session mode, and
// through Stepgate's database gateway, in one run on one machine.
//
//	go run ./bench/dbgate [-duration 10s] [-clients 16] [-threads 2] [-scale 4] [-rounds 1] [-modes simple,extended,prepared] [-tls] [-cpuprofile gw.pprof -profile 'select-only simple']
//
// One run starts a throwaway PostgreSQL on a loopback port (initdb, then
// postgres in the foreground, durability off as in the test suite's
// cluster; as the postgres user when run by root), fills pgbench's
// tables (pgbench -i), starts PgBouncer (pool_mode = session) and
// Stepgate (in this process, SQLite, one user, the database's OIDC
// client) in front of it, signs in and takes an access token for the
// database, which is pgbench's password through the gateway. Then, for
// each workload — the select-only and the TPC-B-like scripts, each with
// -M simple, extended and prepared — it runs pgbench against each
// target back to back, and prints the throughput and the ratios.
// Everything it started is stopped when it ends, however it ends.
//
// pgbench, PostgreSQL, PgBouncer and Stepgate share the machine's
// cores: absolute numbers say little, the ratios of one run more.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/stepgate/stepgate/bench/internal/rig"
	"github.com/stepgate/stepgate/internal/dbgate"
)

var errOut io.Writer = os.Stderr

// options are the command line's.
type options struct {
	duration         time.Duration
	clients, threads int
	scale, rounds    int
	modes, scripts   []string
	tls              bool
	cpuprofile       string
	profiled         string
}

func main() {
	var o options
	var modes, scripts string
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each pgbench run lasts (whole seconds)")
	flag.IntVar(&o.clients, "clients", 16, "pgbench clients (-c)")
	flag.IntVar(&o.threads, "threads", 2, "pgbench threads (-j)")
	flag.IntVar(&o.scale, "scale", 4, "pgbench scale factor (-i -s): 100,000 accounts each")
	flag.IntVar(&o.rounds, "rounds", 1, "run every workload against every target this many times, interleaved, and report the median")
	flag.StringVar(&modes, "modes", "simple,extended,prepared", "pgbench query modes (-M)")
	flag.StringVar(&scripts, "scripts", "select-only,tpcb-like", "pgbench builtin scripts (-b)")
	flag.BoolVar(&o.tls, "tls", false, "connect to every target with TLS (sslmode=require); default: to none")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (Stepgate) during one gateway run to this file")
	flag.StringVar(&o.profiled, "profile", "select-only simple", "the workload -cpuprofile profiles")
	flag.Parse()
	o.modes, o.scripts = strings.Split(modes, ","), strings.Split(scripts, ",")
	if o.duration < time.Second || o.duration > 10*time.Minute || o.clients < 1 || o.clients > 150 || o.threads < 1 ||
		o.threads > o.clients || o.scale < 1 || o.scale > 1000 || o.rounds < 1 || o.rounds > 9 {
		fmt.Fprintln(errOut, "dbbench: -duration must be in [1s, 10m], -clients in [1, 150], -threads in [1, clients], -scale in [1, 1000] and -rounds in [1, 9]")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(errOut, "dbbench:", err)
		os.Exit(1)
	}
}

// cell is one workload against one target, over the rounds.
type cell struct {
	rounds []outcome
}

// median is the round with the median throughput, and the median CPU
// per transaction over the rounds.
func (c *cell) median() outcome {
	if len(c.rounds) == 0 {
		return outcome{}
	}
	rs := slices.Clone(c.rounds)
	slices.SortFunc(rs, func(a, b outcome) int { return cmp.Compare(a.tps, b.tps) })
	m := rs[len(rs)/2]
	slices.SortFunc(rs, func(a, b outcome) int { return cmp.Compare(a.cpuPerTx, b.cpuPerTx) })
	m.cpuPerTx = rs[len(rs)/2].cpuPerTx
	return m
}

func run(o options) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	bin, err := pgBin()
	if err != nil {
		return err
	}
	as, err := serverOwner()
	if err != nil {
		return fmt.Errorf("the postgres user, to run PostgreSQL as: %w", err)
	}
	dir, err := os.MkdirTemp("", "dbbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { //nolint:gosec // the servers' user must reach its own subdirectories
		return err
	}
	sgDir := filepath.Join(dir, "stepgate")
	var certFile, keyFile string
	sslmode := "disable"
	if o.tls {
		// One certificate for every target: the gateway's, generated
		// where it keeps it.
		if _, certFile, err = dbgate.LoadOrCreateCert(sgDir, benchDB, []string{"127.0.0.1"}); err != nil {
			return err
		}
		keyFile = strings.TrimSuffix(certFile, ".crt") + ".key"
		sslmode = "require"
	}

	fmt.Fprintln(errOut, "starting PostgreSQL")
	pg, err := startPostgres(bin, filepath.Join(dir, "postgres"), as, certFile, keyFile)
	if err != nil {
		return err
	}
	defer pg.stop()
	fmt.Fprintf(errOut, "filling pgbench's tables, scale %d\n", o.scale)
	if err := initBench(bin, pg.addr, o.scale); err != nil {
		return err
	}
	targets := []target{{name: "direct", addr: pg.addr, user: pgUser}}
	bouncer, err := startPgBouncer(filepath.Join(dir, "pgbouncer"), as, pg.addr, certFile, keyFile)
	switch {
	case errors.Is(err, errNoPgBouncer):
		fmt.Fprintln(errOut, "pgbouncer:", err, "- its column stays empty")
	case err != nil:
		return err
	default:
		defer bouncer.stop()
		pid := bouncer.cmd.Process.Pid
		targets = append(targets, target{name: "pgbouncer", addr: bouncer.addr, user: pgUser, cpu: func() time.Duration { return processCPUOf(pid) }})
	}
	if !o.tls {
		relay, err := startGoRelay(pg.addr)
		if err != nil {
			return err
		}
		defer relay.stop()
		self := os.Getpid()
		targets = append(targets, target{name: "go-relay", addr: relay.addr(), user: pgUser, cpu: func() time.Duration { return processCPUOf(self) }})
	}
	sg, err := startStepgate(ctx, sgDir, pg.addr, o.tls)
	if err != nil {
		return fmt.Errorf("start stepgate: %w", err)
	}
	defer sg.stop()
	self := os.Getpid()
	targets = append(targets, target{name: "stepgate", addr: sg.dbAddr, user: rig.User, password: sg.token,
		cpu: func() time.Duration { return processCPUOf(self) }})

	var workloads []workload
	for _, s := range o.scripts {
		for _, m := range o.modes {
			workloads = append(workloads, workload{script: strings.TrimSpace(s), mode: strings.TrimSpace(m)})
		}
	}
	cells := map[workload]map[string]*cell{}
	for _, w := range workloads {
		cells[w] = map[string]*cell{}
		for _, t := range targets {
			cells[w][t.name] = &cell{}
		}
	}
	// Rounds interleave the workloads and each workload's targets, so a
	// burst of other work on the machine spoils one round of each
	// rather than one target.
	for round := range o.rounds {
		for _, w := range workloads {
			for _, t := range targets {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fmt.Fprintf(errOut, "round %d/%d  %-22s %-10s %s, %d clients\n", round+1, o.rounds, w, t.name, o.duration, o.clients)
				stopProfile, err := maybeProfile(o, round, w, t)
				if err != nil {
					return err
				}
				res, err := pgbench(bin, t, w, o.clients, o.threads, o.duration, sslmode)
				stopProfile()
				if err != nil {
					return err
				}
				cells[w][t.name].rounds = append(cells[w][t.name].rounds, res)
			}
		}
	}
	report(o, bin, workloads, cells)
	return nil
}

// maybeProfile starts the CPU profile of this process when t and w are
// the profiled gateway run of the first round.
func maybeProfile(o options, round int, w workload, t target) (stop func(), err error) {
	if o.cpuprofile == "" || round != 0 || t.name != "stepgate" || w.String() != o.profiled {
		return func() {}, nil
	}
	f, err := os.Create(o.cpuprofile)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

func report(o options, bin string, workloads []workload, cells map[workload]map[string]*cell) {
	transport := "no TLS on any target (Stepgate: insecure_loopback)"
	if o.tls {
		transport = "TLS to every target (sslmode=require)"
	}
	fmt.Printf("\npgbench -c %d -j %d -T %d, scale %d, median of %d round(s); %s\n%s, %s, Stepgate in-process (GOMAXPROCS %d, %s), %d CPUs\n\n",
		o.clients, o.threads, int(o.duration/time.Second), o.scale, o.rounds, transport,
		version(filepath.Join(bin, "postgres")), version(pgbouncerPath), runtime.GOMAXPROCS(0), runtime.Version(), runtime.NumCPU())
	ratio := func(v, base float64) string {
		if base == 0 || v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", v/base)
	}
	tps := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", v)
	}
	cpu := func(d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tdirect tps\tpgbouncer tps\tgo relay tps\tstepgate tps\tstepgate/pgbouncer\tstepgate/direct\tpgbouncer cpu/tx\tgo relay cpu/tx\tstepgate cpu/tx\t")
	for _, w := range workloads {
		get := func(name string) outcome {
			if c, ok := cells[w][name]; ok {
				return c.median()
			}
			return outcome{}
		}
		d, b, r, s := get("direct"), get("pgbouncer"), get("go-relay"), get("stepgate")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", w, tps(d.tps), tps(b.tps), tps(r.tps), tps(s.tps),
			ratio(s.tps, b.tps), ratio(s.tps, d.tps), cpu(b.cpuPerTx), cpu(r.cpuPerTx), cpu(s.cpuPerTx))
	}
	_ = tw.Flush()
	fmt.Println("\ncpu/tx: the proxy process's CPU time per transaction (the Go relay and Stepgate run in this harness, idle otherwise while pgbench runs).")
	fmt.Println("go relay: read and write both ways between each client and its own upstream connection, reading nothing (not with -tls).")
}

// version is a server's own one-line version, or its name.
func version(path string) string {
	out, err := exec.Command(path, "--version").Output() //nolint:gosec // fixed binaries
	if err != nil {
		return filepath.Base(path)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
