package httpload

import (
	"encoding/json"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramPercentile(t *testing.T) {
	var h Histogram
	if got := h.Percentile(0.5); got != 0 {
		t.Fatalf("empty histogram: p50 %s, want 0", got)
	}
	for us := 1; us <= 100; us++ {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	for _, tc := range []struct {
		name   string
		q      float64
		lo, hi time.Duration
	}{
		{"ok/exact-below-64us", 0.30, 30 * time.Microsecond, 32 * time.Microsecond},
		{"ok/p50", 0.50, 49 * time.Microsecond, 53 * time.Microsecond},
		{"ok/p99-within-bucket-width", 0.99, 96 * time.Microsecond, 104 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.Percentile(tc.q); got < tc.lo || got > tc.hi {
				t.Errorf("p%.0f = %s, want in [%s, %s]", tc.q*100, got, tc.lo, tc.hi)
			}
		})
	}
}

func TestTargetNewRequest(t *testing.T) {
	tg := Target{Addr: "127.0.0.1:1", URL: "http://127.0.0.1:1/oauth2/introspect", Method: http.MethodPost, Body: "token=x",
		Header: http.Header{"Host": {"rs.localhost:1"}, "Content-Type": {"application/x-www-form-urlencoded"}}}
	req, err := tg.NewRequest()
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPost || req.Host != "rs.localhost:1" || req.ContentLength != int64(len("token=x")) || req.Header.Get("Host") != "" {
		t.Errorf("request %s Host %q length %d header %v", req.Method, req.Host, req.ContentLength, req.Header)
	}
}

// TestWorkerExchanges: a worker sends its request on one kept-alive
// connection and reads each answer whole, whatever its status.
func TestWorkerExchanges(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	srv := &http.Server{ReadHeaderTimeout: time.Second, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		path   string
		status int
	}{{"ok/200", "/", http.StatusOK}, {"ok/404-read-whole", "/missing", http.StatusNotFound}} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := newWorker(Target{Addr: ln.Addr().String(), URL: "http://" + ln.Addr().String() + tc.path})
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			before := conns.Load()
			for range 3 {
				status, err := w.do(time.Now().Add(time.Minute))
				if err != nil || status != tc.status {
					t.Fatalf("status %d, %v; want %d", status, err, tc.status)
				}
			}
			if n := conns.Load() - before; n != 1 {
				t.Errorf("%d connections for three requests, want one kept alive", n)
			}
		})
	}
}

func TestReportRoundTrip(t *testing.T) {
	res := Result{Requests: 1000, Errors: 3, Elapsed: 2 * time.Second}
	res.Hist.Record(40 * time.Microsecond)
	var back Report
	b, _ := json.Marshal(res.Report(64))
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Requests != 1000 || back.Errors != 3 || back.Connections != 64 || back.RequestsPerSecond != 500 || back.P50Micros != 40 {
		t.Errorf("report %s", b)
	}
}
