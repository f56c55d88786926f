// Package httpload keeps HTTP/1.1 keep-alive connections busy against one
// target and measures throughput and latency: the load generator of
// bench/loadgen (a process of its own) and of bench/gateway's in-process
// rows.
package httpload

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Histogram counts latencies in microseconds in log-linear buckets: exact
// below 64 µs, then 32 buckets per power of two (about 3% wide), so a
// percentile is read without keeping every sample and recording one
// allocates nothing.
type Histogram [histBuckets]uint64

const histBuckets = 1024

func bucketOf(us int64) int64 {
	var e int64
	for v := us; v >= 64; v >>= 1 {
		e++
	}
	return min(e*32+us>>e, histBuckets-1)
}

// lowerBound is the smallest latency, in microseconds, in bucket i.
func lowerBound(i int64) int64 {
	e := max(0, i/32-1)
	return (i - e*32) << e
}

// Record counts one latency.
func (h *Histogram) Record(d time.Duration) { h[bucketOf(max(d.Microseconds(), 0))]++ }

// Add counts o's latencies in h.
func (h *Histogram) Add(o *Histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// Percentile returns the q-th quantile (0 < q < 1), as the middle of its
// bucket, or zero when nothing was recorded.
func (h *Histogram) Percentile(q float64) time.Duration {
	var total uint64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	var seen uint64
	for i, n := range h {
		seen += n
		if seen > rank {
			lo, hi := lowerBound(int64(i)), lowerBound(int64(i)+1)
			return time.Duration((lo+hi)/2) * time.Microsecond
		}
	}
	return 0
}

// Target is what the clients send: Method (GET when empty) URL, with
// Body, to Addr, with URL's host as the Host header unless Header has one.
type Target struct {
	Addr   string // 127.0.0.1:port to dial
	URL    string // http://host[:port]/path
	Header http.Header
	Method string
	Body   string
}

// NewRequest is t as a request: the one the load generator sends, and
// the one a check sends before measuring.
func (t Target) NewRequest() (*http.Request, error) {
	method := t.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if t.Body != "" {
		body = strings.NewReader(t.Body)
	}
	req, err := http.NewRequest(method, t.URL, body)
	if err != nil {
		return nil, err
	}
	for k, v := range t.Header {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	return req, nil
}

// Result is one measurement.
type Result struct {
	// Requests counts the answers read; Errors the exchanges that failed
	// and the answers other than 200.
	Requests, Errors uint64
	Elapsed          time.Duration
	// CPU is the CPU time this process used while measuring.
	CPU  time.Duration
	Hist Histogram
}

// RPS is the throughput in requests per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// CPUPerRequest is the process's CPU time per request, zero when
// unknown.
func (r *Result) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return time.Duration(float64(r.CPU) / float64(r.Requests))
}

// Report is a Result as bench/loadgen prints it, one JSON object.
type Report struct {
	Connections       int     `json:"connections"`
	Seconds           float64 `json:"seconds"`
	Requests          uint64  `json:"requests"`
	Errors            uint64  `json:"errors"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// P50Micros and the others are latency percentiles in microseconds.
	P50Micros int64 `json:"p50_us"`
	P90Micros int64 `json:"p90_us"`
	P99Micros int64 `json:"p99_us"`
	// CPUSeconds is the load generator's own CPU time while measuring.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// Report summarises r, measured with conns connections.
func (r *Result) Report(conns int) Report {
	return Report{
		Connections: conns, Seconds: r.Elapsed.Seconds(), Requests: r.Requests, Errors: r.Errors, RequestsPerSecond: r.RPS(),
		P50Micros: r.Hist.Percentile(0.50).Microseconds(), P90Micros: r.Hist.Percentile(0.90).Microseconds(),
		P99Micros: r.Hist.Percentile(0.99).Microseconds(), CPUSeconds: r.CPU.Seconds(),
	}
}

// worker is one keep-alive client connection, driven from one goroutine
// the way wrk drives a socket from its event loop: the request is
// serialized once (by net/http) and written as is, and each answer is
// read with net/http's own parser. http.Client would add a reader and a
// writer goroutine per connection, and hand every request and answer
// between them.
type worker struct {
	addr string
	req  *http.Request // what the answers answer (ReadResponse needs the method)
	wire []byte        // req as sent
	conn net.Conn
	br   *bufio.Reader
	res  Result
}

func newWorker(t Target) (*worker, error) {
	req, err := t.NewRequest()
	if err != nil {
		return nil, err
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil, err
	}
	return &worker{addr: t.Addr, req: req, wire: wire.Bytes()}, nil
}

// do sends the request once and reads the whole answer, dialing when the
// worker has no connection; a connection that failed or that the server
// closes is dropped. Nothing waits past deadline.
func (w *worker) do(deadline time.Time) (status int, err error) {
	if w.conn == nil {
		c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		w.conn, w.br = c, bufio.NewReaderSize(c, 16<<10)
		_ = c.SetDeadline(deadline)
	}
	status, closing, err := w.exchange()
	if err != nil || closing {
		w.close()
	}
	return status, err
}

// exchange writes the request and reads the answer to its end; closing
// reports that the server closes the connection after it.
func (w *worker) exchange() (status int, closing bool, err error) {
	if _, err := w.conn.Write(w.wire); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(w.br, w.req)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Close, err
}

func (w *worker) close() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// run sends requests one after the other until deadline. The connection
// may wait a little past it for the last answer, never more than 5 s.
func (w *worker) run(deadline time.Time, record bool) {
	if w.conn != nil {
		_ = w.conn.SetDeadline(deadline.Add(5 * time.Second))
	}
	for {
		start := time.Now()
		if !start.Before(deadline) {
			return
		}
		status, err := w.do(deadline.Add(5 * time.Second))
		if err != nil {
			w.res.Errors++
			time.Sleep(time.Millisecond) // a refused connection must not spin
			continue
		}
		if !record {
			continue
		}
		w.res.Hist.Record(time.Since(start))
		w.res.Requests++
		if status != http.StatusOK {
			w.res.Errors++
		}
	}
}

// Run keeps conns keep-alive clients busy against t: a warm-up that
// opens the connections and fills caches, then duration measured.
func Run(t Target, conns int, warmup, duration time.Duration) (Result, error) {
	workers := make([]*worker, conns)
	for i := range workers {
		w, err := newWorker(t)
		if err != nil {
			return Result{}, err
		}
		workers[i] = w
	}
	phase := func(d time.Duration, record bool) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(d)
		for _, w := range workers {
			wg.Go(func() { w.run(deadline, record) })
		}
		wg.Wait()
		return time.Since(start)
	}
	if warmup > 0 {
		phase(warmup, false)
		for _, w := range workers {
			w.res.Errors = 0 // a warm-up's refusals are not the measurement's
		}
	}
	var total Result
	cpu := processCPU()
	total.Elapsed = phase(duration, true)
	if cpu > 0 {
		total.CPU = time.Duration(processCPU() - cpu)
	}
	for _, w := range workers {
		total.Requests += w.res.Requests
		total.Errors += w.res.Errors
		total.Hist.Add(&w.res.Hist)
		w.close()
	}
	return total, nil
}
