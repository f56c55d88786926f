package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// histogram counts latencies in microseconds in log-linear buckets: exact
// below 64 µs, then 32 buckets per power of two (about 3% wide), so a
// percentile is read without keeping every sample and recording one
// allocates nothing.
type histogram [histBuckets]uint64

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

func (h *histogram) record(d time.Duration) { h[bucketOf(max(d.Microseconds(), 0))]++ }

func (h *histogram) add(o *histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// percentile returns the q-th quantile (0 < q < 1), as the middle of its
// bucket.
func (h *histogram) percentile(q float64) time.Duration {
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

// target is what one scenario's clients send: GET url to addr, with the
// given Host and extra headers.
type target struct {
	addr   string // 127.0.0.1:port to dial
	url    string // http://host[:port]/path; its host is the Host header
	header http.Header
}

// result is one scenario's measurement.
type result struct {
	requests, errors uint64
	elapsed          time.Duration
	// cpu is the CPU time this process used while measuring: the load
	// generator's, the upstream's and, unless Stepgate runs in a process
	// of its own, Stepgate's.
	cpu  time.Duration
	hist histogram
}

func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequest is the process's CPU time per request, zero when
// unknown. On a machine shared with other work it moves less than the
// throughput, which depends on the share of the cores the harness gets.
func (r *result) cpuPerRequest() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return time.Duration(float64(r.cpu) / float64(r.requests))
}

// worker is one keep-alive client connection, driven from one goroutine
// the way wrk drives a socket from its event loop: the request is
// serialized once (by net/http) and written as is, and each answer is
// read with net/http's own parser. http.Client would add a reader and a
// writer goroutine per connection, and hand every request and answer
// between them, in the process that also runs what is measured.
type worker struct {
	addr string
	req  *http.Request // what the answers answer (ReadResponse needs the method)
	wire []byte        // req as sent
	conn net.Conn
	br   *bufio.Reader
	res  result
}

func newWorker(t target) (*worker, error) {
	req, err := http.NewRequest(http.MethodGet, t.url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil, err
	}
	return &worker{addr: t.addr, req: req, wire: wire.Bytes()}, nil
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
			w.res.errors++
			time.Sleep(time.Millisecond) // a refused connection must not spin
			continue
		}
		if !record {
			continue
		}
		w.res.hist.record(time.Since(start))
		w.res.requests++
		if status != http.StatusOK {
			w.res.errors++
		}
	}
}

// load runs conns keep-alive clients against t: a short warm-up that
// opens the connections and fills caches, then duration measured.
func load(t target, conns int, warmup, duration time.Duration) (result, error) {
	workers := make([]*worker, conns)
	for i := range workers {
		w, err := newWorker(t)
		if err != nil {
			return result{}, err
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
	phase(warmup, false)
	var total result
	cpu := processCPU()
	total.elapsed = phase(duration, true)
	if cpu > 0 {
		total.cpu = time.Duration(processCPU() - cpu)
	}
	for _, w := range workers {
		total.requests += w.res.requests
		total.errors += w.res.errors
		total.hist.add(&w.res.hist)
		w.close()
	}
	return total, nil
}
