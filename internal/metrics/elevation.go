package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// elevationMeters count just-in-time elevations. The role label takes
// the names of roles an administrator created (a request names a role
// the user is eligible for, so it exists), never free text.
type elevationMeters struct {
	events      *prometheus.CounterVec
	activations *prometheus.CounterVec
	approval    *prometheus.HistogramVec
	notices     *prometheus.CounterVec
}

func newElevationMeters() elevationMeters {
	return elevationMeters{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_elevation_events_total",
			Help: "Steps of just-in-time elevations by kind: requested, proven, approved, denied, activated, expired, deactivated.",
		}, []string{"kind"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_elevation_activations_total",
			Help: "Elevations that turned active, by role.",
		}, []string{"role"}),
		approval: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepgate_elevation_approval_seconds",
			Help: "Time from a request's proof (or, unproven, its request) to the approval that made it active, by role.",
			// From an approver at the keyboard to a request left overnight.
			Buckets: []float64{30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800},
		}, []string{"role"}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_elevation_notices_total",
			Help: "Elevation notices by channel (mail, webhook) and result: delivered; retried (an attempt failed, another follows); failed (given up); dropped (the queue was full).",
		}, []string{"channel", "result"}),
	}
}

func (e elevationMeters) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.events, e.activations, e.approval, e.notices}
}

// ElevationEvent counts one step of an elevation.
func (m *Metrics) ElevationEvent(kind string) {
	if m != nil {
		m.elevation.events.WithLabelValues(kind).Inc()
	}
}

// ElevationActivated counts an activation of role.
func (m *Metrics) ElevationActivated(role string) {
	if m != nil {
		m.elevation.activations.WithLabelValues(role).Inc()
	}
}

// ElevationApproved records how long role's request waited for the
// approval that made it active.
func (m *Metrics) ElevationApproved(role string, waited time.Duration) {
	if m != nil {
		m.elevation.approval.WithLabelValues(role).Observe(max(waited, 0).Seconds())
	}
}

// ElevationNotice counts what became of one notice on channel.
func (m *Metrics) ElevationNotice(channel, result string) {
	if m != nil {
		m.elevation.notices.WithLabelValues(channel, result).Inc()
	}
}

// ActiveCounter counts the elevations active now, by role, from the
// store: the one count every node agrees on, and right after a restart.
type ActiveCounter func(ctx context.Context) (map[string]int, error)

// WatchElevations publishes stepgate_elevations_active from count. A
// scrape reads the store at most once per refresh (shorter scrape
// intervals, or several scrapers, see the last count), one read at a
// time, so /metrics cannot be turned into a load on the database.
func (m *Metrics) WatchElevations(count ActiveCounter, refresh time.Duration, now func() time.Time) {
	if m == nil {
		return
	}
	if now == nil {
		now = time.Now
	}
	m.reg.MustRegister(&activeElevations{
		count: count, refresh: refresh, now: now,
		desc: prometheus.NewDesc("stepgate_elevations_active",
			"Elevations active now, by role (counted from the store at most once per refresh).", []string{"role"}, nil),
		errDesc: prometheus.NewDesc("stepgate_elevations_active_count_errors_total",
			"Counts of active elevations that failed (the gauge then shows the last good count).", nil, nil),
	})
}

// activeElevations is the collector of the active-elevations gauge.
type activeElevations struct {
	count   ActiveCounter
	refresh time.Duration
	now     func() time.Time
	desc    *prometheus.Desc
	errDesc *prometheus.Desc

	// mu guards the fields below; a refresh holds it, so concurrent
	// scrapes wait for one read instead of each making their own.
	mu sync.Mutex
	// at is when the store was last read (tried marks that it was).
	at     time.Time
	tried  bool
	byRole map[string]int
	// seen are the roles ever counted: a role whose last elevation ended
	// shows 0, not a series that vanishes.
	seen   map[string]bool
	errors int
}

// Describe implements prometheus.Collector.
func (a *activeElevations) Describe(ch chan<- *prometheus.Desc) {
	ch <- a.desc
	ch <- a.errDesc
}

// Collect implements prometheus.Collector.
func (a *activeElevations) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now := a.now(); !a.tried || now.Sub(a.at) >= a.refresh || now.Before(a.at) {
		a.read(now)
	}
	for role := range a.seen {
		ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, float64(a.byRole[role]), role)
	}
	ch <- prometheus.MustNewConstMetric(a.errDesc, prometheus.CounterValue, float64(a.errors))
}

// read counts from the store; a failed count keeps the last good one
// until the next refresh. The caller holds mu.
func (a *activeElevations) read(now time.Time) {
	a.at, a.tried = now, true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	byRole, err := a.count(ctx)
	if err != nil {
		a.errors++
		return
	}
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	for role := range byRole {
		a.seen[role] = true
	}
	a.byRole = byRole
}
