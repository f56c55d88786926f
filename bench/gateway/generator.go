package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/bench/internal/httpload"
)

// measurement is one run of a load generator in a process of its own.
type measurement struct {
	requests, errors uint64
	elapsed          time.Duration
	rps              float64
	p50, p90, p99    time.Duration
	// stepgateCPU and nginxCPU are the CPU time those processes used
	// during the run, and generatorCPU the load generator's (zero when
	// not read).
	stepgateCPU, nginxCPU, generatorCPU time.Duration
	// load is the machine's one-minute load average when the run ended.
	load float64
}

func (m *measurement) perRequest(d time.Duration) time.Duration {
	if m.requests == 0 {
		return 0
	}
	return time.Duration(float64(d) / float64(m.requests))
}

// generator runs a load generator in a process of its own: Debian's wrk
// when it is installed, bench/loadgen otherwise.
type generator struct {
	name string // "wrk 4.1.0" or "bench/loadgen"
	path string
	wrk  bool
	// threads is wrk's -t: one event loop per core, as many as the
	// machine has and no more.
	threads int
	dir     string // where a wrk script is written
}

// args is the command line that loads t with conns connections for d,
// after warmup for bench/loadgen (wrk has no warm-up: run warms it up
// with a run of its own).
func (g *generator) args(t httpload.Target, conns int, warmup, d time.Duration) ([]string, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, err
	}
	target := "http://" + t.Addr + u.RequestURI()
	var args []string
	if g.wrk {
		args = []string{"-t" + strconv.Itoa(min(g.threads, conns)), "-c" + strconv.Itoa(conns), "-d" + wrkDuration(d), "--latency"}
		if t.Method != "" || t.Body != "" {
			script, err := g.script(t)
			if err != nil {
				return nil, err
			}
			args = append(args, "-s", script)
		}
	} else {
		args = []string{"-c", strconv.Itoa(conns), "-d", d.String(), "-warmup", warmup.String()}
		if t.Method != "" {
			args = append(args, "-X", t.Method)
		}
		if t.Body != "" {
			args = append(args, "-body", t.Body)
		}
	}
	args = append(args, "-H", "Host: "+u.Host)
	for k, vv := range t.Header {
		for _, v := range vv {
			args = append(args, "-H", k+": "+v)
		}
	}
	return append(args, target), nil
}

// wrkDuration is d in wrk's notation: whole seconds, at least one.
func wrkDuration(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s"
}

// script writes the wrk Lua script that sets t's method and body.
func (g *generator) script(t httpload.Target) (string, error) {
	method := t.Method
	if method == "" {
		method = "GET"
	}
	lua := fmt.Sprintf("wrk.method = %s\nwrk.body = %s\n", strconv.Quote(method), strconv.Quote(t.Body))
	path := filepath.Join(g.dir, "wrk-"+strconv.Itoa(len(t.Body))+"-"+method+".lua")
	return path, os.WriteFile(path, []byte(lua), 0o600)
}

// run loads t for warmup (not counted), then for d, and reads the
// generator's report.
func (g *generator) run(ctx context.Context, t httpload.Target, conns int, warmup, d time.Duration) (measurement, error) {
	if g.wrk && warmup > 0 {
		args, err := g.args(t, conns, 0, warmup)
		if err != nil {
			return measurement{}, err
		}
		if _, _, err := runChild(ctx, g.name, exec.Command(g.path, args...), warmup+30*time.Second); err != nil { //nolint:gosec // wrk, with the harness's own arguments
			return measurement{}, err
		}
	}
	args, err := g.args(t, conns, warmup, d)
	if err != nil {
		return measurement{}, err
	}
	out, cpu, err := runChild(ctx, g.name, exec.Command(g.path, args...), warmup+d+30*time.Second) //nolint:gosec // wrk or bench/loadgen, with the harness's own arguments
	if err != nil {
		return measurement{}, err
	}
	if !g.wrk {
		return parseLoadgen(out) // its report counts its CPU time after the warm-up
	}
	m, err := parseWrk(string(out))
	m.generatorCPU = cpu
	return m, err
}

func parseLoadgen(out []byte) (measurement, error) {
	var r httpload.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return measurement{}, fmt.Errorf("bench/loadgen printed %q: %w", out, err)
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return measurement{requests: r.Requests, errors: r.Errors, elapsed: time.Duration(r.Seconds * float64(time.Second)),
		rps: r.RequestsPerSecond, p50: us(r.P50Micros), p90: us(r.P90Micros), p99: us(r.P99Micros),
		generatorCPU: time.Duration(r.CPUSeconds * float64(time.Second))}, nil
}

var (
	wrkRequests   = regexp.MustCompile(`(\d+) requests in ([\d.]+\w+),`)
	wrkRate       = regexp.MustCompile(`Requests/sec:\s*([\d.]+)`)
	wrkPercentile = regexp.MustCompile(`(?m)^\s*(50|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$`)
	wrkSocket     = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx     = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads wrk --latency's report. Errors are the socket errors
// and the answers wrk counts as non-2xx or 3xx.
func parseWrk(out string) (measurement, error) {
	var m measurement
	req := wrkRequests.FindStringSubmatch(out)
	rate := wrkRate.FindStringSubmatch(out)
	if req == nil || rate == nil {
		return m, fmt.Errorf("wrk printed no request count or rate: %q", out)
	}
	m.requests, _ = strconv.ParseUint(req[1], 10, 64)
	m.rps, _ = strconv.ParseFloat(rate[1], 64)
	var err error
	if m.elapsed, err = wrkTime(req[2]); err != nil {
		return m, err
	}
	for _, p := range wrkPercentile.FindAllStringSubmatch(out, -1) {
		d, err := wrkTime(p[2] + p[3])
		if err != nil {
			return m, err
		}
		switch p[1] {
		case "50":
			m.p50 = d
		case "90":
			m.p90 = d
		case "99":
			m.p99 = d
		}
	}
	if m.p50 == 0 || m.p99 == 0 {
		return m, errors.New("wrk printed no latency distribution (run it with --latency)")
	}
	if s := wrkSocket.FindStringSubmatch(out); s != nil {
		for _, v := range s[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			m.errors += n
		}
	}
	if s := wrkNon2xx.FindStringSubmatch(out); s != nil {
		n, _ := strconv.ParseUint(s[1], 10, 64)
		m.errors += n
	}
	return m, nil
}

// wrkTime reads one of wrk's times: "812.00us", "1.23ms", "8.00s", "1.00m".
func wrkTime(s string) (time.Duration, error) {
	for _, unit := range []struct {
		suffix string
		d      time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if v, ok := strings.CutSuffix(s, unit.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk time %q: %w", s, err)
			}
			return time.Duration(f * float64(unit.d)), nil
		}
	}
	return 0, fmt.Errorf("wrk time %q: unknown unit", s)
}
