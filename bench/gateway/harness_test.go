package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/bench/internal/httpload"
)

// wrkReport is wrk 4.1's --latency report, as Debian's wrk prints it.
const wrkReport = `Running 8s test @ http://127.0.0.1:40123/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.95ms  41.37ms   89.21%
    Req/Sec    17.71k     1.20k   20.11k    71.25%
  Latency Distribution
     50%    1.62ms
     75%    2.40ms
     90%    3.71ms
     99%   10.05ms
  281846 requests in 8.01s, 40.32MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  35185.52
Transfer/sec:      5.03MB
`

func TestParseWrk(t *testing.T) {
	m, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatal(err)
	}
	want := measurement{requests: 281846, errors: 7, elapsed: 8010 * time.Millisecond, rps: 35185.52,
		p50: 1620 * time.Microsecond, p90: 3710 * time.Microsecond, p99: 10050 * time.Microsecond}
	if m != want {
		t.Errorf("parsed %+v\nwant   %+v", m, want)
	}
	for _, tc := range []struct{ name, out string }{
		{"fail/no-latency-distribution", "  281846 requests in 8.01s, 40.32MB read\nRequests/sec:  35185.52\n"},
		{"fail/no-rate", "unable to connect to 127.0.0.1:1 Connection refused\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseWrk(tc.out); err == nil {
				t.Errorf("parsed %q without an error", tc.out)
			}
		})
	}
}

func TestWrkTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"812.00us", 812 * time.Microsecond, true},
		{"1.50ms", 1500 * time.Microsecond, true},
		{"8.01s", 8010 * time.Millisecond, true},
		{"1.00m", time.Minute, true},
		{"3.00h", 0, false},
		{"ms", 0, false},
	} {
		got, err := wrkTime(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("wrkTime(%q) = %s, %v; want %s, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseLoadgen(t *testing.T) {
	m, err := parseLoadgen([]byte(`{"connections":64,"seconds":8,"requests":80000,"errors":2,"requests_per_second":10000,"p50_us":1500,"p90_us":3000,"p99_us":9000,"cpu_seconds":4.2}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.requests != 80000 || m.errors != 2 || m.rps != 10000 || m.p50 != 1500*time.Microsecond || m.p99 != 9*time.Millisecond || m.elapsed != 8*time.Second || m.generatorCPU != 4200*time.Millisecond {
		t.Errorf("parsed %+v", m)
	}
	if _, err := parseLoadgen([]byte("loadgen: want one URL\n")); err == nil {
		t.Error("parsed a usage message")
	}
}

// TestGeneratorArgs: both generators get the same request, wrk's method
// and body through a script.
func TestGeneratorArgs(t *testing.T) {
	target := httpload.Target{Addr: "127.0.0.1:8080", URL: "http://127.0.0.1:8080/oauth2/introspect", Method: http.MethodPost, Body: "token=a.b.c",
		Header: http.Header{"Authorization": {"Basic YXBpOnNlY3JldA=="}}}
	routed := httpload.Target{Addr: "127.0.0.1:9000", URL: "http://bank.localhost:8080/", Header: http.Header{"Cookie": {"stepgate_gw=x"}}}

	wrk := &generator{name: "wrk", wrk: true, threads: 2, dir: t.TempDir()}
	args, err := wrk.args(target, 64, time.Second, 8*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"-t2", "-c64", "-d8s", "--latency"}; !slices.Equal(args[:4], want) || args[len(args)-1] != "http://127.0.0.1:8080/oauth2/introspect" {
		t.Errorf("wrk args %q", args)
	}
	i := slices.Index(args, "-s")
	if i < 0 {
		t.Fatalf("wrk args %q: no script for the POST", args)
	}
	lua, err := os.ReadFile(args[i+1])
	if err != nil || string(lua) != "wrk.method = \"POST\"\nwrk.body = \"token=a.b.c\"\n" {
		t.Errorf("script %q, %v", lua, err)
	}

	own := &generator{name: "bench/loadgen"}
	args, err = own.args(routed, 64, time.Second, 8*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	if joined != "-c 64 -d 8s -warmup 1s -H Host: bank.localhost:8080 -H Cookie: stepgate_gw=x http://127.0.0.1:9000/" {
		t.Errorf("loadgen args %q", joined)
	}
	if d := wrkDuration(300 * time.Millisecond); d != "1s" {
		t.Errorf("wrk duration of 300ms: %s, want at least 1s", d)
	}
}

func TestMedianRoundAndRatio(t *testing.T) {
	rounds := []measurement{{rps: 300}, {rps: 100}, {rps: 200}}
	if m := medianRound(rounds); m.rps != 200 {
		t.Errorf("median of 300, 100, 200: %v", m.rps)
	}
	if rounds[0].rps != 300 {
		t.Error("medianRound reordered its argument")
	}
	if m := medianRound(rounds[:2]); m.rps != 300 {
		t.Errorf("median of two rounds: %v, want the higher", m.rps)
	}
	for _, tc := range []struct {
		v, base float64
		want    string
	}{{21417, 35185, "0.61x"}, {40700, 35185, "1.16x"}, {1, 0, "-"}} {
		if got := ratio(tc.v, tc.base); got != tc.want {
			t.Errorf("ratio(%v, %v) = %s, want %s", tc.v, tc.base, got, tc.want)
		}
	}
	m := measurement{requests: 1000, stepgateCPU: 50 * time.Millisecond}
	if got := perRequestCell(m.perRequest(m.stepgateCPU)); got != "50.0µs" {
		t.Errorf("CPU per request %s, want 50.0µs", got)
	}
}

func TestParseLoadAverageAndStat(t *testing.T) {
	if got := parseLoadAverage("11.32 9.87 6.01 3/912 123456\n"); got != 11.32 {
		t.Errorf("load average %v", got)
	}
	// A command name with a space and a parenthesis.
	line := "4242 (nginx: worker) S 4240 4240 4240 0 -1 4194624 100 0 0 0 150 25 0 0 20 0 1 0 100 1000 200 18446744073709551615"
	pgid, cpu, ok := parseStat(line)
	if !ok || pgid != 4240 || cpu != 1750*time.Millisecond {
		t.Errorf("parseStat: group %d, cpu %s, ok %v", pgid, cpu, ok)
	}
	if _, _, ok := parseStat("4242 (x) S 1"); ok {
		t.Error("parsed a truncated stat line")
	}
}

// TestDocumentedAuthRequest: the auth_request row runs the nginx
// configuration docs/gateway.md shows, with keep-alive connections to
// Stepgate and to the application, and with nothing left pointing at the
// example's hosts.
func TestDocumentedAuthRequest(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := documentedAuthRequest(root, "127.0.0.1:8443", "127.0.0.1:8080", "127.0.0.1:9090")
	if err != nil {
		t.Fatal(err)
	}
	for _, leftover := range []string{"bank.example.com", "stepgate.internal", "9001", "listen 80;"} {
		if strings.Contains(conf, leftover) {
			t.Errorf("the configuration still has %q", leftover)
		}
	}
	blocks := regexp.MustCompile(`(?s)upstream (\w+) \{(.*?)\}`).FindAllStringSubmatch(conf, -1)
	if len(blocks) != 2 {
		t.Fatalf("%d upstream blocks, want Stepgate's and the application's", len(blocks))
	}
	for _, b := range blocks {
		if !regexp.MustCompile(`keepalive \d+;`).MatchString(b[2]) {
			t.Errorf("upstream %s keeps no connections alive", b[1])
		}
	}
	// Keep-alive to an upstream needs HTTP/1.1 and an empty Connection
	// header in every location that proxies to it.
	if n, want := strings.Count(conf, `proxy_set_header Connection "";`), strings.Count(conf, "proxy_pass http://"); n != want || strings.Count(conf, "proxy_http_version 1.1;") != want {
		t.Errorf("%d proxy_pass, %d empty Connection headers, %d HTTP/1.1", want, n, strings.Count(conf, "proxy_http_version 1.1;"))
	}
	if !strings.Contains(conf, "proxy_set_header X-Original-Host nginx.localhost:8443;") || !strings.Contains(conf, "server 127.0.0.1:8080;") {
		t.Errorf("the route's host or Stepgate's address is not put in:\n%s", conf)
	}
}
