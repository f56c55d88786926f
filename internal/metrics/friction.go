package metrics

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// friction counts step-up prompts per user over the current UTC day and
// publishes their distribution: how often the median user, the 90th and
// 99th percentile and the most prompted user were asked to prove more
// today. Users cannot be labels (their number is unbounded), so the
// counts stay in memory, one small entry per user prompted today, and
// reset at midnight UTC.
type friction struct {
	mu     sync.Mutex
	now    func() time.Time
	day    string
	counts map[string]int

	perUser *prometheus.Desc
	users   *prometheus.Desc
}

func newFriction(now func() time.Time) *friction {
	return &friction{
		now: now, counts: map[string]int{},
		perUser: prometheus.NewDesc("stepgate_stepup_prompts_per_user_today",
			"Step-up prompts per user prompted so far today (UTC), at the given quantile (1 is the most prompted user).", []string{"quantile"}, nil),
		users: prometheus.NewDesc("stepgate_stepup_prompted_users_today",
			"Users prompted to step up at least once today (UTC).", nil, nil),
	}
}

// rollover starts a new day's counts; the caller holds mu.
func (f *friction) rollover() {
	if day := f.now().UTC().Format(time.DateOnly); day != f.day {
		f.day, f.counts = day, map[string]int{}
	}
}

func (f *friction) prompted(userID string) {
	if userID == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollover()
	f.counts[userID]++
}

// Describe implements prometheus.Collector.
func (f *friction) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.perUser
	ch <- f.users
}

// Collect implements prometheus.Collector.
func (f *friction) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	f.rollover()
	counts := make([]int, 0, len(f.counts))
	for _, n := range f.counts {
		counts = append(counts, n)
	}
	f.mu.Unlock()
	slices.Sort(counts)
	ch <- prometheus.MustNewConstMetric(f.users, prometheus.GaugeValue, float64(len(counts)))
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		ch <- prometheus.MustNewConstMetric(f.perUser, prometheus.GaugeValue, quantile(counts, q), strconv.FormatFloat(q, 'g', -1, 64))
	}
}

// quantile is the nearest-rank q-quantile of sorted counts (0 when none).
func quantile(sorted []int, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return float64(sorted[min(max(i, 0), len(sorted)-1)])
}
