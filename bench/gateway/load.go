package main

import (
	"context"
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
	hist             histogram
}

func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// worker is one keep-alive client connection.
type worker struct {
	client *http.Client
	req    *http.Request
	res    result
}

func newWorker(t target) (*worker, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, t.addr)
		},
		MaxIdleConns: 1, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1,
		DisableCompression: true,
	}
	req, err := http.NewRequest(http.MethodGet, t.url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	return &worker{client: &http.Client{Transport: tr, Timeout: 5 * time.Second}, req: req}, nil
}

// run sends requests one after the other until deadline. The request is
// reused (allowed once the previous response body is closed) and the body
// is discarded through io.Discard's pooled buffer, so the loop adds no
// allocations of its own to net/http's.
func (w *worker) run(deadline time.Time, record bool) {
	for {
		start := time.Now()
		if !start.Before(deadline) {
			return
		}
		resp, err := w.client.Do(w.req)
		if err != nil {
			w.res.errors++
			time.Sleep(time.Millisecond) // a refused connection must not spin
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if !record {
			continue
		}
		w.res.hist.record(time.Since(start))
		w.res.requests++
		if resp.StatusCode != http.StatusOK {
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
	total.elapsed = phase(duration, true)
	for _, w := range workers {
		total.requests += w.res.requests
		total.errors += w.res.errors
		total.hist.add(&w.res.hist)
		w.client.CloseIdleConnections()
	}
	return total, nil
}
