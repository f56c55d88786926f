// Command gatewaybench measures the gateway the way a user would: with a
// load generator in a process of its own (Debian's wrk when it is
// installed, bench/loadgen otherwise), against Stepgate in a process of
// its own (`stepgate serve`, built from this checkout) and against
// Debian's nginx, in one run on one machine: the rows of one run share
// whatever else the machine is doing, so their ratios are the figures to
// compare.
//
// The main table's rows: nginx as a plain reverse proxy; Stepgate's
// gateway on a route that asks for no sign-in, then with a browser
// session and the full decision (policies evaluated), then with a bearer
// token; nginx's documented auth_request configuration asking Stepgate
// (keep-alive to both); nginx in front of Stepgate's gateway; the
// auth_request decision alone; and RFC 7662 introspection of one live
// token by a resource server. Then, unless -in-process=false, the
// harness's earlier table: the same Stepgate configuration, with the
// load generator, the upstream and Stepgate in this one process.
//
// Everything listens on 127.0.0.1 with free ports; each scenario first
// checks one answer, so a broken path cannot post good numbers.
// Everything the harness starts is stopped when it ends, on an error or
// an interrupt, and dies with it if it is killed.
//
//	go run ./bench/gateway [-duration 8s] [-conns 64] [-rounds 3] [-only session,bearer] [-generator auto|wrk|loadgen] [-in-process=false] [-spread] [-cpuprofile gw.pprof -profile session]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/stepgate/stepgate/bench/internal/rig"
)

var errOut io.Writer = os.Stderr

// options are the command line's.
type options struct {
	duration, warmup     time.Duration
	conns, rounds        int
	only, generator      string
	inProcess, spread    bool
	cpuprofile, profiled string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "how long to measure each scenario in each round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "how long to load each scenario before measuring it")
	flag.IntVar(&o.conns, "conns", 64, "concurrent keep-alive connections")
	flag.IntVar(&o.rounds, "rounds", 3, "measure every scenario this many times, interleaved, and report the median")
	flag.StringVar(&o.only, "only", "", "comma-separated scenarios to run (a part of their names; default: all)")
	flag.StringVar(&o.generator, "generator", "auto", "the load generator of the main table: wrk, loadgen (bench/loadgen), or auto (wrk when on PATH)")
	flag.BoolVar(&o.inProcess, "in-process", true, "also measure with the load generator inside this process, as the harness used to")
	flag.BoolVar(&o.spread, "spread", false, "also print each main scenario's p50, p90 and p99 for every round")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (in-process table: Stepgate, upstream, generator) during one scenario")
	flag.StringVar(&o.profiled, "profile", "session", "the in-process scenario -cpuprofile profiles (a part of its name)")
	flag.Parse()
	if o.duration <= 0 || o.duration > 5*time.Minute || o.warmup < 0 || o.warmup > time.Minute || o.conns < 1 || o.conns > 4096 ||
		o.rounds < 1 || o.rounds > 9 || (o.generator != "auto" && o.generator != "wrk" && o.generator != "loadgen") {
		fmt.Fprintln(errOut, "gatewaybench: -duration must be in (0, 5m], -warmup in [0, 1m], -conns in [1, 4096], -rounds in [1, 9], -generator auto, wrk or loadgen")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(errOut, "gatewaybench:", err)
		os.Exit(1)
	}
}

// upstreamBody is the upstream's answer: small, like a JSON API reply.
const upstreamBody = "hello from the upstream application\n"

// probePath makes the upstream echo the identity it received, so the
// check before each gateway scenario sees what the application sees.
const probePath = "/.bench/probe"

func upstreamHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if r.URL.Path == probePath {
		//nolint:gosec // G705: a text/plain answer to the harness's own check
		_, _ = io.WriteString(w, "user="+r.Header.Get("X-Stepgate-User")+" assertion="+fmt.Sprint(r.Header.Get("X-Stepgate-Assertion") != ""))
		return
	}
	_, _ = io.WriteString(w, upstreamBody)
}

func run(o options) (err error) {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	go func() {
		<-ctx.Done()
		// A second interrupt ends the harness at once; the kernel then
		// stops what it started.
		stopSignals()
	}()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gatewaybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, sub := range []string{"nginx", "stepgate", "inprocess", "bin"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	gen, err := findGenerator(ctx, o.generator, root, filepath.Join(dir, "bin"))
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "bin", "stepgate")
	fmt.Fprintln(errOut, "building stepgate")
	if err := goBuild(ctx, root, bin, "./cmd/stepgate"); err != nil {
		return err
	}

	// The upstream runs in this process, which does nothing else while
	// a load generator of its own process measures.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	up := &http.Server{Handler: http.HandlerFunc(upstreamHandler), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = up.Serve(upLn) }()
	defer up.Close()
	upAddr := upLn.Addr().String()

	var ports [5]string
	for i := range ports {
		if ports[i], err = rig.FreePort(); err != nil {
			return err
		}
	}
	addrs := nginxAddrs{plain: ports[1], gateway: ports[2], authRequest: ports[3]}
	_, authPort, _ := net.SplitHostPort(addrs.authRequest)
	cfgPath, err := writeStepgateConfig(filepath.Join(dir, "stepgate"), ports[0], "http://"+upAddr, authPort)
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "stepgate", "stepgate.log")
	sg, err := spawnStepgate(ctx, bin, cfgPath, ports[0], addrs.authRequest, logPath)
	if err != nil {
		return err
	}
	defer func() {
		sg.stop()
		if err != nil {
			log, _ := os.ReadFile(logPath) //nolint:gosec // the harness's own temporary directory
			fmt.Fprintf(errOut, "gatewaybench: Stepgate's log:\n%s", log)
		}
	}()
	if err := sg.prepare(); err != nil {
		return err
	}

	var ng *nginx
	noNginx := ""
	authRequest, err := documentedAuthRequest(root, addrs.authRequest, sg.addr, upAddr)
	if err != nil {
		return err
	}
	ng, err = startNginx(ctx, filepath.Join(dir, "nginx"), addrs, upAddr, sg.addr, authRequest)
	switch {
	case errors.Is(err, errNoNginx):
		noNginx = "nginx: " + err.Error()
		ng = nil
	case err != nil:
		return err
	default:
		defer ng.proc.stop()
		if err := sg.signInThroughNginx(sg.browser()); err != nil {
			return fmt.Errorf("sign in through nginx's auth_request: %w", err)
		}
	}

	rows := mainRows(sg, ng, upAddr, noNginx)
	if o.only != "" {
		rows = selectRows(rows, o.only)
	}
	if err := checkRows(rows); err != nil {
		return err
	}
	if err := measureRows(ctx, rows, gen, sg, ng, o); err != nil {
		return err
	}
	reportMain(os.Stdout, rows, gen, o)

	if !o.inProcess {
		return nil
	}
	return runInProcess(ctx, o, filepath.Join(dir, "inprocess"), upAddr, addrs, ng, rows)
}

// prepare signs the browser in through every route's hand-off and gets
// an access token for client bank.
func (s *stepgate) prepare() error {
	b := s.browser()
	if err := s.signIn(b); err != nil {
		return fmt.Errorf("sign in through the gateway: %w", err)
	}
	if err := s.fetchToken(b); err != nil {
		return fmt.Errorf("get a token for client bank: %w", err)
	}
	return nil
}

// repoRoot is the checkout this harness belongs to: the nearest
// directory up from the working directory with cmd/stepgate and the
// documented nginx configuration.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "cmd", "stepgate")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, nginxExample)); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the harness inside a Stepgate checkout (no cmd/stepgate above the working directory)")
		}
		dir = parent
	}
}

// goBuild builds pkg of the checkout at root into out, in at most ten
// minutes.
func goBuild(ctx context.Context, root, out, pkg string) error {
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, pkg) //nolint:gosec // the Go tool building this checkout
	cmd.Dir = root
	_, _, err := runChild(ctx, "go build "+pkg, cmd, 10*time.Minute)
	return err
}

// findGenerator picks the main table's load generator: wrk from PATH,
// or bench/loadgen built into dir.
func findGenerator(ctx context.Context, want, root, dir string) (*generator, error) {
	if want != "loadgen" {
		path, err := exec.LookPath("wrk")
		if err == nil {
			return &generator{name: "wrk", path: path, wrk: true, threads: runtime.NumCPU(), dir: dir}, nil
		}
		if want == "wrk" {
			return nil, errors.New("wrk is not on PATH (apt-get install wrk), and -generator wrk asks for it")
		}
	}
	path := filepath.Join(dir, "loadgen")
	fmt.Fprintln(errOut, "building bench/loadgen (wrk is not on PATH)")
	if err := goBuild(ctx, root, path, "./bench/loadgen"); err != nil {
		return nil, err
	}
	return &generator{name: "bench/loadgen", path: path, dir: dir}, nil
}

func selectRows(all []*row, only string) []*row {
	var out []*row
	for _, r := range all {
		if matchesAny(r.name, only) {
			out = append(out, r)
		}
	}
	return out
}

func matchesAny(name, only string) bool {
	for _, w := range strings.Split(only, ",") {
		if w = strings.TrimSpace(w); w != "" && strings.Contains(name, w) {
			return true
		}
	}
	return false
}
