package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stepgate/stepgate/bench/internal/httpload"
	"github.com/stepgate/stepgate/bench/internal/rig"
)

// row is one scenario of the main table.
type row struct {
	name string
	t    httpload.Target
	// check validates one answer (nil: any 200); with probe, the answer
	// to the upstream's probePath through the same path.
	check   func(http.Header, string) error
	probe   bool
	skipped string // why the row could not run
	rounds  []measurement
}

// Names of the rows other rows are compared with.
const (
	rowNginx    = "nginx plain proxy"
	rowNoSignIn = "gateway, route with no sign-in"
	rowSession  = "gateway, session plus policy"
	rowBearer   = "gateway, bearer token"
)

func wantUpstreamSaw(want string) func(http.Header, string) error {
	return func(_ http.Header, body string) error {
		if body != want {
			return fmt.Errorf("the upstream saw %q, want %q", body, want)
		}
		return nil
	}
}

// wantAllowedForUser checks a forward-auth decision's answer: it names
// the bench user and carries an assertion for the upstream.
func wantAllowedForUser(header http.Header, _ string) error {
	if u := header.Get("X-Stepgate-User"); u != rig.User || header.Get("X-Stepgate-Assertion") == "" {
		return fmt.Errorf("X-Stepgate-User %q (want %s) and an assertion", u, rig.User)
	}
	return nil
}

// mainRows are the main table's scenarios; ng is nil when nginx is not
// installed (noNginx says so).
func mainRows(sg *stepgate, ng *nginx, upAddr, noNginx string) []*row {
	identity := wantUpstreamSaw("user=" + rig.User + " assertion=true")
	session := http.Header{"Cookie": {"stepgate_gw=" + sg.cookie}}
	faHost := strings.TrimPrefix(sg.fa, "http://")
	rows := []*row{
		{name: "upstream direct", t: httpload.Target{Addr: upAddr, URL: "http://" + upAddr + "/"}},
		{name: rowNginx, t: httpload.Target{URL: "http://bank.localhost/"}},
		{name: rowNoSignIn, t: httpload.Target{Addr: sg.addr, URL: sg.public + "/"}, probe: true, check: wantUpstreamSaw("user= assertion=false")},
		{name: rowSession, t: httpload.Target{Addr: sg.addr, URL: sg.bank + "/", Header: session}, probe: true, check: identity},
		{name: rowBearer, t: httpload.Target{Addr: sg.addr, URL: sg.bank + "/", Header: http.Header{"Authorization": {"Bearer " + sg.token}}}, probe: true, check: identity},
		{name: "nginx auth_request → Stepgate, keep-alive", t: httpload.Target{URL: sg.nginx + "/"}, probe: true, check: identity},
		{name: "nginx → gateway, session", t: httpload.Target{URL: sg.bank + "/", Header: session}, probe: true, check: identity},
		{name: "auth-request decision alone", t: httpload.Target{Addr: sg.addr, URL: sg.base + "/gateway/auth-request", Header: http.Header{
			"Cookie": {"stepgate_gw=" + sg.faCookie}, "X-Original-Method": {"GET"}, "X-Original-Host": {faHost}, "X-Original-URI": {"/"},
		}}, check: wantAllowedForUser},
		{name: "token introspection, one live token", t: httpload.Target{Addr: sg.addr, URL: sg.base + "/oauth2/introspect", Method: http.MethodPost,
			Body: url.Values{"token": {sg.token}}.Encode(), Header: http.Header{
				"Content-Type":  {"application/x-www-form-urlencoded"},
				"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(apiID+":"+apiSecret))},
			}}, check: func(_ http.Header, body string) error {
			if !strings.Contains(body, `"active":true`) || !strings.Contains(body, `"username":"`+rig.User+`"`) {
				return fmt.Errorf("introspection answered %.200s, want the token active for %s", body, rig.User)
			}
			return nil
		}},
	}
	for _, r := range rows {
		switch {
		case r.t.Addr != "":
		case ng == nil:
			r.skipped = noNginx
		case r.name == rowNginx:
			r.t.Addr = ng.plain
		case strings.HasPrefix(r.name, "nginx auth_request"):
			r.t.Addr = ng.authRequest
			r.t.Header = http.Header{"Cookie": {"stepgate_gw=" + sg.nginxCookie}}
		default:
			r.t.Addr = ng.gateway
		}
	}
	return rows
}

func checkRows(rows []*row) error {
	for _, r := range rows {
		if r.skipped != "" {
			continue
		}
		t := r.t
		if r.probe {
			t.URL = strings.TrimSuffix(t.URL, "/") + probePath
		}
		if err := checkOnce(t, r.check); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	return nil
}

// checkOnce sends t's request once: 200, and what check says of it.
func checkOnce(t httpload.Target, check func(http.Header, string) error) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, t.Addr)
	}}
	defer tr.CloseIdleConnections()
	req, err := t.NewRequest()
	if err != nil {
		return err
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
		return check(resp.Header, string(body))
	}
	return nil
}

// measureRows runs every row o.rounds times. Rounds interleave the rows,
// so a burst of other work on the machine spoils one round of each
// rather than one row.
func measureRows(ctx context.Context, rows []*row, gen *generator, sg *stepgate, ng *nginx, o options) error {
	for round := range o.rounds {
		for _, r := range rows {
			if r.skipped != "" {
				continue
			}
			fmt.Fprintf(errOut, "round %d/%d  %-42s %s, %d connections, %s\n", round+1, o.rounds, r.name, o.duration, o.conns, gen.name)
			var sgBefore, ngBefore time.Duration
			sgBefore = sg.proc.cpu()
			if ng != nil {
				ngBefore = ng.proc.cpu()
			}
			m, err := gen.run(ctx, r.t, o.conns, o.warmup, o.duration)
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			m.stepgateCPU = sg.proc.cpu() - sgBefore
			if ng != nil {
				m.nginxCPU = ng.proc.cpu() - ngBefore
			}
			m.load = loadAverage()
			r.rounds = append(r.rounds, m)
		}
	}
	return nil
}

// medianRound is the round with the median throughput (of an even
// count, the higher of the two middle ones).
func medianRound(rounds []measurement) measurement {
	sorted := slices.Clone(rounds)
	slices.SortFunc(sorted, func(a, b measurement) int { return cmp.Compare(a.rps, b.rps) })
	return sorted[len(sorted)/2]
}

// ratio is v/base as "0.61x", or "-" without a base.
func ratio(v, base float64) string {
	if base <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v/base)
}

// perRequestCell is a CPU time per request in microseconds, or "-".
func perRequestCell(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
}

// loadAverage is the machine's one-minute load average, zero where
// /proc/loadavg is not.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	return parseLoadAverage(string(b))
}

func parseLoadAverage(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// medians maps each measured row's name to its median round.
func medians(rows []*row) map[string]measurement {
	out := make(map[string]measurement)
	for _, r := range rows {
		if r.skipped == "" && len(r.rounds) > 0 {
			out[r.name] = medianRound(r.rounds)
		}
	}
	return out
}

func reportMain(w io.Writer, rows []*row, gen *generator, o options) {
	med := medians(rows)
	lo, hi := 0.0, 0.0
	for _, r := range rows {
		for _, m := range r.rounds {
			if lo == 0 || m.load < lo {
				lo = m.load
			}
			hi = max(hi, m.load)
		}
	}
	fmt.Fprintf(w, "\nLoad generator %s in its own process; Stepgate (stepgate serve) and nginx in their own. %d keep-alive connections, %s per scenario after %s of warm-up, median of %d interleaved round(s), %d cores, load average %.1f–%.1f during the rounds.\n\n",
		gen.name, o.conns, o.duration, o.warmup, o.rounds, runtime.NumCPU(), lo, hi)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\trounds\tp50\tp99\terrors\tvs nginx plain\tvs no sign-in\tStepgate CPU/req\tnginx CPU/req\tgenerator CPU/req\t")
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Fprintf(tw, "%s: %s\t\t\t\t\t\t\t\t\t\t\t\n", r.name, r.skipped)
			continue
		}
		m := med[r.name]
		minRPS, maxRPS := m.rps, m.rps
		for _, x := range r.rounds {
			minRPS, maxRPS = min(minRPS, x.rps), max(maxRPS, x.rps)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f–%.0f\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.name, m.rps, minRPS, maxRPS, m.p50, m.p99, m.errors,
			ratio(m.rps, med[rowNginx].rps), ratio(m.rps, med[rowNoSignIn].rps), perRequestCell(m.perRequest(m.stepgateCPU)),
			perRequestCell(m.perRequest(m.nginxCPU)), perRequestCell(m.perRequest(m.generatorCPU)))
	}
	_ = tw.Flush()
	if !o.spread {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "every round\tround\treq/s\tp50\tp90\tp99\tload average\t")
	for _, r := range rows {
		for i, m := range r.rounds {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%.2f\t\n", r.name, i+1, m.rps, m.p50, m.p90, m.p99, m.load)
		}
	}
	_ = tw.Flush()
}
