package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDecisionCounts: each decision lands in its own series, counted
// once, with its latency, however many goroutines count at once and
// whether or not the series was looked up before.
func TestDecisionCounts(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				m.Decision("gateway", "allow", "bank", time.Millisecond)
				m.Decision("gateway", "challenge", "bank", time.Millisecond)
				m.Decision("oidc", "allow", "bank", time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, tc := range []struct {
		source, outcome string
		want            float64
	}{{"gateway", "allow", 800}, {"gateway", "challenge", 800}, {"oidc", "allow", 800}, {"oidc", "block", 0}} {
		if got := testutil.ToFloat64(m.decisions.WithLabelValues(tc.source, tc.outcome, "bank")); got != tc.want {
			t.Errorf("%s %s: %v decisions, want %v", tc.source, tc.outcome, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency); n != 2 {
		t.Errorf("%d latency series, want one per source (2)", n)
	}
	var nilMetrics *Metrics
	nilMetrics.Decision("gateway", "allow", "bank", time.Millisecond) // counts nothing, and does not panic
}
