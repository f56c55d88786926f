// Command gatewaybench measures the gateway against a direct upstream and
// against nginx as a plain reverse proxy, in one run on one machine: the
// upstream alone, nginx in front of it, Go's own httputil.ReverseProxy in
// front of it (no authentication), Stepgate's gateway on a route that asks
// for no sign-in (the proxying alone), then with a browser session (the
// full decision; then the same decision on routes whose upstream is told
// nothing of the user, or only through the signed assertion, which show
// what the identity headers cost apart from the decision) and with a
// bearer token, and the forward-auth decision alone. Everything listens on 127.0.0.1 with random ports; each scenario
// first checks one response, so a broken path cannot post good numbers.
//
//	go run ./bench/gateway [-duration 8s] [-conns 32] [-rounds 3] [-only session,bearer] [-spread] [-cpuprofile gw.pprof -profile session] [-own-process] [-external]
//
// The load generator, the upstream and Stepgate run in this process (with
// -own-process, Stepgate runs in a child process) and share the machine's
// cores with everything they measure. The load generator drives each
// connection from one goroutine, as wrk drives sockets from an event
// loop, so that measuring takes as little from the measured as it can.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

var errOut io.Writer = os.Stderr

func main() {
	duration := flag.Duration("duration", 8*time.Second, "how long to measure each scenario")
	conns := flag.Int("conns", 32, "concurrent keep-alive connections")
	only := flag.String("only", "", "comma-separated scenarios to run (default: all)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of one scenario to this file")
	rounds := flag.Int("rounds", 1, "measure every scenario this many times, interleaved, and report the median")
	profiled := flag.String("profile", "session", "the scenario -cpuprofile profiles (a part of its name)")
	spread := flag.Bool("spread", false, "also print each scenario's latency quantiles from p5 to p99")
	external := flag.Bool("external", false, "set everything up, print a wrk command for each scenario, and wait (until interrupted) for another load generator")
	ownProcess := flag.Bool("own-process", false, "run Stepgate in a process of its own instead of inside this one")
	serveDir := flag.String("serve-stepgate", "", "serve Stepgate with its data in this directory until standard input closes (how the harness starts its Stepgate process)")
	upstream := flag.String("upstream", "", "with -serve-stepgate: the upstream URL of the route")
	flag.Parse()
	if *serveDir != "" {
		if err := serveStepgate(*serveDir, *upstream); err != nil {
			fmt.Fprintln(errOut, "gatewaybench: stepgate:", err)
			os.Exit(1)
		}
		return
	}
	if *duration <= 0 || *duration > 5*time.Minute || *conns < 1 || *conns > 4096 || *rounds < 1 || *rounds > 9 {
		fmt.Fprintln(errOut, "gatewaybench: -duration must be in (0, 5m], -conns in [1, 4096] and -rounds in [1, 9]")
		os.Exit(2)
	}
	if err := run(*duration, *conns, *rounds, *only, *cpuprofile, *profiled, *ownProcess, *spread, *external); err != nil {
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

// scenario is one row of the table.
type scenario struct {
	name string
	t    target
	// check validates one response (nil: any 200), or why the scenario
	// could not run at all.
	check   func(*http.Response, string) error
	skipped string
	rounds  []result
	res     result // the round with the median throughput
	// cpu is the median round's CPU time per request (the median of
	// that column, which may come from another round).
	cpu time.Duration
}

func run(duration time.Duration, conns, rounds int, only, cpuprofile, profiled string, ownProcess, spread, external bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "gatewaybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, sub := range []string{"nginx", "stepgate"} {
		if err := os.Mkdir(dir+"/"+sub, 0o700); err != nil {
			return err
		}
	}

	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	up := &http.Server{Handler: http.HandlerFunc(upstreamHandler), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = up.Serve(upLn) }()
	defer up.Close()
	upAddr := upLn.Addr().String()

	start := startStepgate
	if ownProcess {
		start = spawnStepgate
	}
	sg, err := start(ctx, dir+"/stepgate", "http://"+upAddr)
	if err != nil {
		return fmt.Errorf("start stepgate: %w", err)
	}
	defer sg.stop()
	b := sg.browser()
	if err := sg.signIn(b); err != nil {
		return fmt.Errorf("sign in through the gateway: %w", err)
	}
	if err := sg.fetchToken(b); err != nil {
		return fmt.Errorf("get a token for client bank: %w", err)
	}
	faHost := strings.TrimPrefix(sg.fa, "http://")

	identityCheck := func(resp *http.Response, body string) error {
		if want := "user=" + benchUser + " assertion=true"; body != want {
			return fmt.Errorf("the upstream saw %q, want %q", body, want)
		}
		return nil
	}
	anonymousCheck := func(resp *http.Response, body string) error {
		if want := "user= assertion=false"; body != want {
			return fmt.Errorf("the upstream saw %q, want %q", body, want)
		}
		return nil
	}
	assertionOnlyCheck := func(resp *http.Response, body string) error {
		if want := "user= assertion=true"; body != want {
			return fmt.Errorf("the upstream saw %q, want %q", body, want)
		}
		return nil
	}
	goProxy, err := startGoProxy(upAddr)
	if err != nil {
		return err
	}
	defer goProxy.Close()
	cookie := http.Header{"Cookie": {"stepgate_gw=" + sg.cookie}}
	scenarios := []*scenario{
		{name: "upstream direct", t: target{addr: upAddr, url: "http://" + upAddr + "/"}},
		{name: "nginx plain proxy", t: target{url: "http://bank.localhost/"}},
		{name: "Go httputil.ReverseProxy, plain", t: target{addr: goProxy.Addr, url: "http://" + goProxy.Addr + "/"}},
		{name: "gateway, route with no sign-in", t: target{addr: sg.addr, url: sg.public + "/"}, check: anonymousCheck},
		{name: "gateway, session cookie", t: target{addr: sg.addr, url: sg.bank + "/", header: cookie}, check: identityCheck},
		{name: "gateway, session cookie, no identity headers", t: target{addr: sg.addr, url: sg.lean + "/", header: http.Header{"Cookie": {"stepgate_gw=" + sg.leanCookie}}}, check: anonymousCheck},
		{name: "gateway, session cookie, assertion only", t: target{addr: sg.addr, url: sg.signed + "/", header: http.Header{"Cookie": {"stepgate_gw=" + sg.signedCookie}}}, check: assertionOnlyCheck},
		{name: "gateway, bearer token", t: target{addr: sg.addr, url: sg.bank + "/", header: http.Header{"Authorization": {"Bearer " + sg.token}}}, check: identityCheck},
		{name: "forward-auth decision", t: target{addr: sg.addr, url: sg.base + "/gateway/forward-auth", header: http.Header{
			"Cookie": {"stepgate_gw=" + sg.faCookie}, "X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {faHost}, "X-Forwarded-Uri": {"/"},
		}}, check: func(resp *http.Response, _ string) error {
			if u := resp.Header.Get("X-Stepgate-User"); u != benchUser || resp.Header.Get("X-Stepgate-Assertion") == "" {
				return fmt.Errorf("X-Stepgate-User %q (want %s) and an assertion", u, benchUser)
			}
			return nil
		}},
	}
	if only != "" {
		scenarios = selectScenarios(scenarios, only)
	}

	for _, sc := range scenarios {
		if sc.name != "nginx plain proxy" {
			continue
		}
		ng, err := startNginx(dir+"/nginx", upAddr)
		if errors.Is(err, errNoNginx) {
			sc.skipped = "nginx: " + err.Error()
			continue
		}
		if err != nil {
			return err
		}
		defer ng.stop()
		sc.t.addr = ng.addr
	}
	for _, sc := range scenarios {
		if sc.skipped == "" {
			if err := checkOnce(sc.probe(), sc.check); err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
		}
	}
	if external {
		return holdForExternalLoad(ctx, scenarios, conns, duration)
	}
	// Rounds interleave the scenarios, so a burst of other work on the
	// machine spoils one round of each rather than one scenario.
	for round := range rounds {
		for _, sc := range scenarios {
			if sc.skipped != "" {
				continue
			}
			prof := ""
			if round == 0 && cpuprofile != "" && strings.Contains(sc.name, profiled) {
				prof = cpuprofile
			}
			fmt.Fprintf(errOut, "round %d/%d  %-26s %s, %d connections\n", round+1, rounds, sc.name, duration, conns)
			res, err := measure(sc.t, conns, duration, prof)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			sc.rounds = append(sc.rounds, res)
		}
	}
	for _, sc := range scenarios {
		if sc.skipped == "" {
			cpus := make([]time.Duration, 0, len(sc.rounds))
			for i := range sc.rounds {
				cpus = append(cpus, sc.rounds[i].cpuPerRequest())
			}
			slices.Sort(cpus)
			sc.cpu = cpus[len(cpus)/2]
			slices.SortFunc(sc.rounds, func(a, b result) int { return cmp.Compare(a.rps(), b.rps()) })
			sc.res = sc.rounds[len(sc.rounds)/2]
		}
	}
	report(scenarios, conns, rounds, duration, spread)
	return nil
}

// startGoProxy serves Go's own reverse proxy, with no authentication, in
// front of the upstream: the row that shows what Go's HTTP server and
// proxy cost before Stepgate adds anything.
func startGoProxy(upAddr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upAddr})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	proxy.Transport = tr
	srv := &http.Server{Addr: ln.Addr().String(), Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

// holdForExternalLoad prints, for each scenario, the wrk command that
// loads it as this program's load generator would, then keeps everything
// running until the program is interrupted: a cross-check with a load
// generator in a process (and a language) of its own.
func holdForExternalLoad(ctx context.Context, scenarios []*scenario, conns int, duration time.Duration) error {
	fmt.Println("Ready. Run any of these, then interrupt this program:")
	for _, sc := range scenarios {
		if sc.skipped != "" {
			continue
		}
		u, err := url.Parse(sc.t.url)
		if err != nil {
			return err
		}
		cmd := fmt.Sprintf("wrk -t1 -c%d -d%s --latency -H 'Host: %s'", conns, duration, u.Host)
		for k, vv := range sc.t.header {
			for _, v := range vv {
				cmd += fmt.Sprintf(" -H '%s: %s'", k, v)
			}
		}
		fmt.Printf("\n# %s\n%s http://%s%s\n", sc.name, cmd, sc.t.addr, u.RequestURI())
	}
	interrupted, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-interrupted.Done()
	return nil
}

func selectScenarios(all []*scenario, only string) []*scenario {
	var out []*scenario
	for _, sc := range all {
		for _, w := range strings.Split(only, ",") {
			if w = strings.TrimSpace(w); w != "" && strings.Contains(sc.name, w) {
				out = append(out, sc)
				break
			}
		}
	}
	return out
}

// probe is the scenario's request for the correctness check: for the
// gateway, the upstream's path that echoes the identity it received.
func (sc *scenario) probe() target {
	t := sc.t
	if sc.check != nil && !strings.Contains(t.url, "/gateway/") {
		t.url = strings.TrimSuffix(t.url, "/") + probePath
	}
	return t
}

// measure loads t, with a CPU profile written to cpuprofile unless empty.
func measure(t target, conns int, duration time.Duration, cpuprofile string) (result, error) {
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile) //nolint:gosec // a path the user named on the command line
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
		defer pprof.StopCPUProfile()
	}
	return load(t, conns, min(time.Second, duration/4), duration)
}

func checkOnce(t target, check func(*http.Response, string) error) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, t.addr)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d, want 200: %.200s", resp.StatusCode, body)
	}
	if check != nil {
		return check(resp, string(body))
	}
	return nil
}

// cpuCell is a cpu/req cell: microseconds, or "-" when unknown.
func cpuCell(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
}

func report(scenarios []*scenario, conns, rounds int, duration time.Duration, spread bool) {
	fmt.Printf("\n%d keep-alive connections, %s per scenario, median of %d round(s), GOMAXPROCS %d, %s\n\n",
		conns, duration, rounds, runtime.GOMAXPROCS(0), runtime.Version())
	var direct, nginx float64
	for _, sc := range scenarios {
		switch sc.name {
		case "upstream direct":
			direct = sc.res.rps()
		case "nginx plain proxy":
			if sc.skipped == "" {
				nginx = sc.res.rps()
			}
		}
	}
	ratio := func(v, base float64) string {
		if base == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", v/base)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\tp50\tp99\terrors\tvs direct\tvs nginx\tcpu/req\t")
	for _, sc := range scenarios {
		if sc.skipped != "" {
			fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\n", sc.skipped)
			continue
		}
		r := &sc.res
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%s\t%s\t%s\t\n", sc.name, r.rps(), r.hist.percentile(0.50), r.hist.percentile(0.99),
			r.errors, ratio(r.rps(), direct), ratio(r.rps(), nginx), cpuCell(sc.cpu))
	}
	_ = tw.Flush()
	if !spread {
		return
	}
	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	quantiles := []float64{0.05, 0.25, 0.50, 0.75, 0.90, 0.99}
	fmt.Fprint(tw, "latency spread\tmean\t")
	for _, q := range quantiles {
		fmt.Fprintf(tw, "p%02.0f\t", q*100)
	}
	fmt.Fprintln(tw)
	for _, sc := range scenarios {
		if sc.skipped != "" {
			continue
		}
		r := &sc.res
		// With every connection always busy, the mean is the connection
		// count over the throughput (Little's law); the quantiles show
		// how the answers spread around it.
		fmt.Fprintf(tw, "%s\t%s\t", sc.name, (time.Duration(float64(conns) / r.rps() * float64(time.Second))).Round(time.Microsecond))
		for _, q := range quantiles {
			fmt.Fprintf(tw, "%s\t", r.hist.percentile(q))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}
