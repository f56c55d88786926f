package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stepgate/stepgate/bench/internal/httpload"
	"github.com/stepgate/stepgate/bench/internal/rig"
)

// inProcessRow is one row of the in-process table: the load generator
// (httpload, one goroutine per connection), the upstream and Stepgate
// all in this process, as the harness measured before its main table
// existed. ownProcess names the main table's row it is compared with.
type inProcessRow struct {
	row
	ownProcess string
	results    []httpload.Result
}

// runInProcess measures the in-process table, with a Stepgate of its own
// started inside this process from the same configuration, and prints
// it beside the main table's medians.
func runInProcess(ctx context.Context, o options, dir, upAddr string, addrs nginxAddrs, ng *nginx, main []*row) error {
	addr, err := rig.FreePort()
	if err != nil {
		return err
	}
	_, authPort, _ := net.SplitHostPort(addrs.authRequest)
	cfgPath, err := writeStepgateConfig(dir, addr, "http://"+upAddr, authPort)
	if err != nil {
		return err
	}
	sg, err := startStepgate(ctx, cfgPath, addrs.authRequest)
	if err != nil {
		return fmt.Errorf("start stepgate in this process: %w", err)
	}
	defer sg.stop()
	if err := sg.prepare(); err != nil {
		return err
	}
	goProxy, err := startGoProxy(upAddr)
	if err != nil {
		return err
	}
	defer goProxy.Close()

	rows := inProcessRows(sg, upAddr, goProxy.Addr, ng)
	if o.only != "" {
		rows = slices.DeleteFunc(rows, func(r *inProcessRow) bool { return !matchesAny(r.name, o.only) })
	}
	checked := make([]*row, len(rows))
	for i, r := range rows {
		checked[i] = &r.row
	}
	if err := checkRows(checked); err != nil {
		return fmt.Errorf("in process: %w", err)
	}
	for round := range o.rounds {
		for _, r := range rows {
			if r.skipped != "" {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			prof := ""
			if round == 0 && o.cpuprofile != "" && strings.Contains(r.name, o.profiled) {
				prof = o.cpuprofile
			}
			fmt.Fprintf(errOut, "round %d/%d  in process: %-42s %s, %d connections\n", round+1, o.rounds, r.name, o.duration, o.conns)
			res, err := measureInProcess(r.t, o, prof)
			if err != nil {
				return fmt.Errorf("in process: %s: %w", r.name, err)
			}
			r.results = append(r.results, res)
		}
	}
	reportInProcess(rows, medians(main), o)
	return nil
}

func inProcessRows(sg *stepgate, upAddr, goProxy string, ng *nginx) []*inProcessRow {
	identity := wantUpstreamSaw("user=" + rig.User + " assertion=true")
	anonymous := wantUpstreamSaw("user= assertion=false")
	faHost := strings.TrimPrefix(sg.fa, "http://")
	rows := []*inProcessRow{
		{row: row{name: "upstream direct", t: httpload.Target{Addr: upAddr, URL: "http://" + upAddr + "/"}}, ownProcess: "upstream direct"},
		{row: row{name: rowNginx, t: httpload.Target{URL: "http://bank.localhost/"}}, ownProcess: rowNginx},
		{row: row{name: "Go httputil.ReverseProxy, plain", t: httpload.Target{Addr: goProxy, URL: "http://" + goProxy + "/"}}},
		{row: row{name: rowNoSignIn, t: httpload.Target{Addr: sg.addr, URL: sg.public + "/"}, probe: true, check: anonymous}, ownProcess: rowNoSignIn},
		{row: row{name: rowSession, t: httpload.Target{Addr: sg.addr, URL: sg.bank + "/", Header: http.Header{"Cookie": {"stepgate_gw=" + sg.cookie}}}, probe: true, check: identity}, ownProcess: rowSession},
		{row: row{name: "gateway, session, no identity headers", t: httpload.Target{Addr: sg.addr, URL: sg.lean + "/", Header: http.Header{"Cookie": {"stepgate_gw=" + sg.leanCookie}}}, probe: true, check: anonymous}},
		{row: row{name: "gateway, session, assertion only", t: httpload.Target{Addr: sg.addr, URL: sg.signed + "/", Header: http.Header{"Cookie": {"stepgate_gw=" + sg.signedCookie}}}, probe: true, check: wantUpstreamSaw("user= assertion=true")}},
		{row: row{name: rowBearer, t: httpload.Target{Addr: sg.addr, URL: sg.bank + "/", Header: http.Header{"Authorization": {"Bearer " + sg.token}}}, probe: true, check: identity}, ownProcess: rowBearer},
		{row: row{name: "forward-auth decision", t: httpload.Target{Addr: sg.addr, URL: sg.base + "/gateway/forward-auth", Header: http.Header{
			"Cookie": {"stepgate_gw=" + sg.faCookie}, "X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {faHost}, "X-Forwarded-Uri": {"/"},
		}}, check: wantAllowedForUser}},
	}
	for _, r := range rows {
		if r.name == rowNginx {
			if ng == nil {
				r.skipped = "nginx: " + errNoNginx.Error()
			} else {
				r.t.Addr = ng.plain
			}
		}
	}
	return rows
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

// measureInProcess loads t from this process, with a CPU profile written
// to cpuprofile unless empty.
func measureInProcess(t httpload.Target, o options, cpuprofile string) (httpload.Result, error) {
	if cpuprofile != "" {
		f, err := os.Create(filepath.Clean(cpuprofile))
		if err != nil {
			return httpload.Result{}, err
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.StartCPUProfile(f); err != nil {
			return httpload.Result{}, err
		}
		defer pprof.StopCPUProfile()
	}
	return httpload.Run(t, o.conns, o.warmup, o.duration)
}

func reportInProcess(rows []*inProcessRow, ownProcess map[string]measurement, o options) {
	med := make(map[string]httpload.Result)
	for _, r := range rows {
		if len(r.results) > 0 {
			sorted := slices.Clone(r.results)
			slices.SortFunc(sorted, func(a, b httpload.Result) int { return cmp.Compare(a.RPS(), b.RPS()) })
			med[r.name] = sorted[len(sorted)/2]
		}
	}
	fmt.Printf("\nIn-process generator: the load generator, the upstream and Stepgate in this one process (GOMAXPROCS %d), nginx in its own; %d connections, %s per scenario, median of %d round(s), load average %.1f at the end.\n\n",
		runtime.GOMAXPROCS(0), o.conns, o.duration, o.rounds, loadAverage())
	nginxRPS := 0.0
	if r, ok := med[rowNginx]; ok {
		nginxRPS = r.RPS()
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario (in-process generator)\treq/s\tp50\tp99\terrors\tvs nginx plain\tprocess CPU/req\tvs own-process req/s\tratio vs nginx, own process\t")
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Fprintf(tw, "%s: %s\t\t\t\t\t\t\t\t\t\n", r.name, r.skipped)
			continue
		}
		res := med[r.name]
		own, ownNginx := ownProcess[r.ownProcess], ownProcess[rowNginx]
		ownRatio := "-"
		if r.ownProcess != "" && own.rps > 0 {
			ownRatio = ratio(own.rps, ownNginx.rps)
		}
		vsOwn := "-"
		if r.ownProcess != "" {
			vsOwn = ratio(res.RPS(), own.rps)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", r.name, res.RPS(), res.Hist.Percentile(0.50), res.Hist.Percentile(0.99), res.Errors,
			ratio(res.RPS(), nginxRPS), perRequestCell(res.CPUPerRequest()), vsOwn, ownRatio)
	}
	_ = tw.Flush()
}
