package metrics

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestElevationCounters: activations count per role, the approval wait
// lands in the role's histogram, notices per channel and result.
func TestElevationCounters(t *testing.T) {
	m := New()
	m.ElevationActivated("bank-admin")
	m.ElevationActivated("bank-admin")
	m.ElevationActivated("db-admin")
	m.ElevationEvent("activated")
	m.ElevationApproved("bank-admin", 90*time.Second)
	m.ElevationApproved("bank-admin", -time.Second) // a clock set back counts as no wait, not a negative one
	m.ElevationNotice("webhook", "delivered")
	m.ElevationNotice("webhook", "retried")
	m.ElevationNotice("webhook", "retried")
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"activations bank-admin", testutil.ToFloat64(m.elevation.activations.WithLabelValues("bank-admin")), 2},
		{"activations db-admin", testutil.ToFloat64(m.elevation.activations.WithLabelValues("db-admin")), 1},
		{"events activated", testutil.ToFloat64(m.elevation.events.WithLabelValues("activated")), 1},
		{"webhook delivered", testutil.ToFloat64(m.elevation.notices.WithLabelValues("webhook", "delivered")), 1},
		{"webhook retried", testutil.ToFloat64(m.elevation.notices.WithLabelValues("webhook", "retried")), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	want := `
# HELP stepgate_elevation_approval_seconds Time from a request's proof (or, unproven, its request) to the approval that made it active, by role.
# TYPE stepgate_elevation_approval_seconds histogram
stepgate_elevation_approval_seconds_bucket{role="bank-admin",le="30"} 1
stepgate_elevation_approval_seconds_bucket{role="bank-admin",le="60"} 1
stepgate_elevation_approval_seconds_bucket{role="bank-admin",le="120"} 2
`
	got := exposition(t, m)
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		if !strings.Contains(got, line) {
			t.Errorf("approval histogram lacks %q:\n%s", line, got)
		}
	}
	var nilMetrics *Metrics
	nilMetrics.ElevationActivated("bank-admin") // counts nothing, and does not panic
}

// TestActiveElevationsGauge: the gauge is what the store holds (so it is
// right after a restart), is read at most once per refresh however often
// and however concurrently it is scraped, shows 0 for a role whose last
// elevation ended, and keeps the last good count when the store fails.
func TestActiveElevationsGauge(t *testing.T) {
	m := New()
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var reads atomic.Int32
	stored := map[string]int{"bank-admin": 2, "db-admin": 1}
	var fail atomic.Bool
	m.WatchElevations(func(context.Context) (map[string]int, error) {
		reads.Add(1)
		if fail.Load() {
			return nil, errors.New("store down")
		}
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range stored {
			out[k] = v
		}
		return out, nil
	}, 15*time.Second, clock)

	scrape := func() string {
		t.Helper()
		return exposition(t, m)
	}
	expect := func(out string, lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(out, l) {
				t.Errorf("scrape lacks %q:\n%s", l, out)
			}
		}
	}
	expect(scrape(), `stepgate_elevations_active{role="bank-admin"} 2`, `stepgate_elevations_active{role="db-admin"} 1`)

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { scrape() })
	}
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Fatalf("21 scrapes within the refresh read the store %d times, want 1", n)
	}

	mu.Lock()
	stored = map[string]int{"bank-admin": 1}
	mu.Unlock()
	advance(16 * time.Second)
	expect(scrape(), `stepgate_elevations_active{role="bank-admin"} 1`, `stepgate_elevations_active{role="db-admin"} 0`)

	fail.Store(true)
	advance(16 * time.Second)
	expect(scrape(), `stepgate_elevations_active{role="bank-admin"} 1`, `stepgate_elevations_active_count_errors_total 1`)
	if n := reads.Load(); n != 3 {
		t.Fatalf("the store was read %d times, want 3", n)
	}
}

// exposition is what /metrics serves.
func exposition(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
