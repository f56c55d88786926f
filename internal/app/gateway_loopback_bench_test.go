package app_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// The benchmarks in this file drive Stepgate's handler over real
// loopback connections, served as Serve serves it (its server settings
// and garbage collector target), from kept-alive HTTP/1.1 connections
// that each send one request at a time, as wrk does: the cost of the
// server side of net/http, of the gateway and of its upstream
// connections is in the numbers, which BenchmarkGatewaySession's
// in-memory recorder leaves out.

// loopbackConns is how many kept-alive connections per core the
// load generator keeps busy (b.RunParallel's parallelism).
const loopbackConns = 16

// serveLoopback serves h on a loopback port with Serve's server settings
// and returns its address.
func serveLoopback(b *testing.B, h http.Handler) string {
	b.Helper()
	cfg := config.Default()
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(cfg.Server.GCPercent)
		b.Cleanup(func() { debug.SetGCPercent(old) })
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(), IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn)}
	// Stepgate's goroutines carry the label party=stepgate in a CPU
	// profile (its connections' goroutines inherit it), the load
	// generator's party=client; the upstream's have none. So
	// -cpuprofile parts the CPU between the three: go tool pprof
	// -tagfocus party=stepgate (or -tags) shows Stepgate's own.
	go pprof.Do(context.Background(), pprof.Labels("party", "stepgate"), func(context.Context) { _ = srv.Serve(ln) })
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// loopbackScenario is one kind of request and the answer it must get.
type loopbackScenario struct {
	name string
	head []byte // the whole request, written as is
	body string // the answer's body the upstream must have sent
}

// scenarios are the route with no sign-in, a browser session and a
// bearer token, each a GET of / whose upstream echoes X-Stepgate-User.
func (g *gatewayBench) scenarios() []loopbackScenario {
	head := func(host string, extra ...string) []byte {
		var s strings.Builder
		s.WriteString("GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: loopback-bench\r\nAccept: */*\r\n")
		for _, h := range extra {
			s.WriteString(h + "\r\n")
		}
		s.WriteString("\r\n")
		return []byte(s.String())
	}
	return []loopbackScenario{
		{"public", head(g.public), "user="},
		{"session", head(g.bank, "Cookie: "+g.cookie), "user=" + testUser},
		{"bearer", head(g.bank, "Authorization: Bearer "+g.bearer), "user=" + testUser},
	}
}

// loopbackClient is one kept-alive connection of the load generator.
type loopbackClient struct {
	conn net.Conn
	br   *bufio.Reader
	body []byte
}

func dialLoopback(addr string) (*loopbackClient, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &loopbackClient{conn: c, br: bufio.NewReaderSize(c, 16<<10), body: make([]byte, 0, 512)}, nil
}

// do sends s's request and checks its answer: a broken path cannot post
// good numbers.
func (c *loopbackClient) do(s *loopbackScenario) error {
	if _, err := c.conn.Write(s.head); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	buf := bytes.NewBuffer(c.body[:0])
	_, err = io.Copy(buf, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || buf.String() != s.body {
		return fmt.Errorf("%s: status %d, body %q", s.name, resp.StatusCode, buf.Bytes())
	}
	if resp.Close {
		return fmt.Errorf("%s: the gateway closed a kept-alive connection", s.name)
	}
	return nil
}

// runLoopback sends s's request b.N times from loopbackConns connections
// per core and reports requests per second and CPU per request.
func runLoopback(b *testing.B, addr string, s *loopbackScenario) {
	b.Helper()
	b.ReportAllocs()
	b.SetParallelism(loopbackConns)
	var failed atomic.Value
	cpu := processCPU()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("party", "client")))
		c, err := dialLoopback(addr)
		if err != nil {
			failed.Store(err)
			return
		}
		defer c.conn.Close()
		for pb.Next() {
			if err := c.do(s); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.ReportMetric(float64(b.N)/took.Seconds(), "req/s")
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkGatewayLoopback: the route with no sign-in, a browser session
// with the full decision (cookie to identity, policy, identity headers
// and the signed assertion), and a bearer token, each over loopback
// connections to the real handler and from it to a loopback upstream.
// The ratio of session to public ns/op is the decision's whole cost.
//
//	go test -run '^$' -bench GatewayLoopback -benchtime 100000x ./internal/app/
func BenchmarkGatewayLoopback(b *testing.B) {
	g := newGatewayBench(b)
	addr := serveLoopback(b, g.h)
	for _, s := range g.scenarios() {
		b.Run(s.name, func(b *testing.B) { runLoopback(b, addr, &s) })
	}
}

// soakRequests is how many requests BenchmarkGatewaySoak sends:
// STEPGATE_SOAK_REQUESTS, or 200,000 (about ten seconds here), so that a
// plain -bench run stays short. The memory target is checked with
// STEPGATE_SOAK_REQUESTS=5000000.
func soakRequests(b *testing.B) int {
	b.Helper()
	v := os.Getenv("STEPGATE_SOAK_REQUESTS")
	if v == "" {
		return 200_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("STEPGATE_SOAK_REQUESTS=%q: want a positive number of requests", v)
	}
	return n
}

// BenchmarkGatewaySoak sends a bounded, large number of session requests
// (and one on the route with no sign-in for every eight) through the
// gateway over loopback and reports the process's resident memory and
// the heap in use, after a collection, before and after: memory must
// stay flat however many requests pass. It reports, it does not time.
//
//	STEPGATE_SOAK_REQUESTS=5000000 go test -run '^$' -bench GatewaySoak -benchtime 1x -timeout 60m ./internal/app/
func BenchmarkGatewaySoak(b *testing.B) {
	g := newGatewayBench(b)
	addr := serveLoopback(b, g.h)
	scenarios := g.scenarios()
	// Seven session requests to one on the route with no sign-in. No
	// bearer token: it expires (oidc.access_token_lifetime, 10 minutes)
	// before millions of requests are through, where a client would
	// refresh it.
	mix := []*loopbackScenario{&scenarios[1], &scenarios[1], &scenarios[1], &scenarios[0],
		&scenarios[1], &scenarios[1], &scenarios[1], &scenarios[1]}
	total := soakRequests(b)
	// A first pass warms the caches and the connection pools, so that
	// "before" is the steady state rather than a cold start.
	warm := min(total/10, 20_000)
	soak(b, addr, mix, warm)
	rssBefore, heapBefore := memoryInUse()
	// One soak per call, whatever b.N: the number of requests is the
	// soak's own, and a -benchtime meant for the other benchmarks must
	// not multiply it.
	b.ResetTimer()
	soak(b, addr, mix, total)
	b.StopTimer()
	rssAfter, heapAfter := memoryInUse()
	const mib = 1 << 20
	b.ReportMetric(float64(total), "requests")
	b.ReportMetric(float64(rssBefore)/mib, "rss-before-MiB")
	b.ReportMetric(float64(rssAfter)/mib, "rss-after-MiB")
	b.ReportMetric(float64(heapBefore)/mib, "heap-before-MiB")
	b.ReportMetric(float64(heapAfter)/mib, "heap-after-MiB")
}

// soak sends n requests of mix, in turn, from 32 kept-alive connections.
func soak(b *testing.B, addr string, mix []*loopbackScenario, n int) {
	b.Helper()
	const conns = 32
	var next atomic.Int64
	errs := make(chan error, conns)
	for range conns {
		go func() {
			c, err := dialLoopback(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.conn.Close()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					errs <- nil
					return
				}
				if err := c.do(mix[i%int64(len(mix))]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			next.Store(int64(n)) // stop the others
			b.Fatal(err)
		}
	}
}

// memoryInUse is the process's resident set (0 where /proc does not say)
// and the heap in use, after a collection.
func memoryInUse() (rss, heap uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return residentSet(), ms.HeapInuse
}

// residentSet reads VmRSS from /proc/self/status.
func residentSet() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}
