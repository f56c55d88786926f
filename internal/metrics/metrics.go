// Package metrics is Stepgate's Prometheus instrumentation: how often
// access is allowed, challenged and blocked, how often users are asked to
// step up and how often they finish — the trigger frequency an
// administrator tunes policies by — and what the risk engine detects.
//
// Labels are bounded: apps, methods, outcomes and detection types come
// from configuration and code, never from request data, so a client
// cannot grow the series without limit.
package metrics

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds Stepgate's collectors on their own registry.
type Metrics struct {
	reg         *prometheus.Registry
	decisions   *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	prompts     *prometheus.CounterVec
	completions *prometheus.CounterVec
	signIns     *prometheus.CounterVec
	detections  *prometheus.CounterVec
	logFull     *prometheus.CounterVec
	triggers    *prometheus.CounterVec
	friction    *friction
	elevation   elevationMeters
	// decided keeps the decision counter and latency histogram of each
	// label set once looked up: every proxied request counts one, and a
	// label lookup in the vectors (hashing, validating, locking) cost
	// more than the count itself. The map is never changed once stored
	// (a new label set stores a copy, under decidedMu), so the lookup on
	// every request takes no lock, which every core would contend for.
	decided   atomic.Pointer[map[decisionLabels]decisionMeters]
	decidedMu sync.Mutex
}

// decisionLabels are the labels of one decision series.
type decisionLabels struct{ source, outcome, app string }

// decisionMeters are the collectors one decision updates.
type decisionMeters struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// New registers the collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_decisions_total",
			Help: "Access decisions by where they were made (gateway, oidc), their outcome (allow, challenge, block) and app.",
		}, []string{"source", "outcome", "app"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stepgate_decision_seconds",
			Help:    "Time to decide, from the request to the decision (not the upstream's answer).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}, []string{"source"}),
		prompts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_stepup_prompts_total",
			Help: "Step-up prompts shown, by method.",
		}, []string{"method"}),
		completions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_stepup_completions_total",
			Help: "Step-ups completed, by method (prompts minus completions is what users abandoned or failed).",
		}, []string{"method"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_sign_ins_total",
			Help: "Password sign-ins by result (success, failure, throttled).",
		}, []string{"result"}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_risk_detections_total",
			Help: "Risk detections by reason and level.",
		}, []string{"reason", "level"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_policy_triggers_total",
			Help: "Decisions a policy asked more of (challenge) or refused (block), by policy and mode: enforced, or report-only (what it would have done).",
		}, []string{"policy", "mode", "effect"}),
		friction:  newFriction(time.Now),
		elevation: newElevationMeters(),
		logFull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_signin_log_full_total",
			Help: "Writes that found the sign-in log buffer full, by what they did (block: waited; fail-closed: refused the request).",
		}, []string{"overflow"}),
	}
	m.reg.MustRegister(m.decisions, m.latency, m.prompts, m.completions, m.signIns, m.detections, m.logFull, m.triggers, m.friction,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(m.elevation.collectors()...)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Decision counts one decision and how long it took.
func (m *Metrics) Decision(source, outcome, app string, took time.Duration) {
	if m == nil {
		return
	}
	d := m.decisionMeters(decisionLabels{source, outcome, app})
	d.count.Inc()
	d.latency.Observe(took.Seconds())
}

// decisionMeters returns the collectors of one label set, looking them
// up in the vectors the first time only. The label values are a bounded
// set (the enforcement points, three outcomes, the configured apps and
// clients), as the vectors' own series are.
func (m *Metrics) decisionMeters(l decisionLabels) decisionMeters {
	if known := m.decided.Load(); known != nil {
		if d, ok := (*known)[l]; ok {
			return d
		}
	}
	m.decidedMu.Lock()
	defer m.decidedMu.Unlock()
	known := m.decided.Load()
	if known != nil {
		if d, ok := (*known)[l]; ok {
			return d
		}
	}
	d := decisionMeters{count: m.decisions.WithLabelValues(l.source, l.outcome, l.app), latency: m.latency.WithLabelValues(l.source)}
	next := map[decisionLabels]decisionMeters{l: d}
	if known != nil {
		maps.Copy(next, *known)
	}
	m.decided.Store(&next)
	return d
}

// Prompt counts a step-up prompt for method, shown to the user userID.
func (m *Metrics) Prompt(method, userID string) {
	if m != nil {
		m.prompts.WithLabelValues(method).Inc()
		m.friction.prompted(userID)
	}
}

// Trigger counts a decision that policy challenged or blocked (effect),
// enforced or in report-only mode.
func (m *Metrics) Trigger(policy, mode, effect string) {
	if m != nil {
		m.triggers.WithLabelValues(policy, mode, effect).Inc()
	}
}

// Completed counts a completed step-up with method.
func (m *Metrics) Completed(method string) {
	if m != nil {
		m.completions.WithLabelValues(method).Inc()
	}
}

// SignIn counts a password sign-in by result.
func (m *Metrics) SignIn(result string) {
	if m != nil {
		m.signIns.WithLabelValues(result).Inc()
	}
}

// Detection counts a risk detection.
func (m *Metrics) Detection(reason, level string) {
	if m != nil {
		m.detections.WithLabelValues(reason, level).Inc()
	}
}

// SignInLogFull counts a write that found the sign-in log buffer full.
func (m *Metrics) SignInLogFull(overflow string) {
	if m != nil {
		m.logFull.WithLabelValues(overflow).Inc()
	}
}

// WatchSignInLog publishes the sign-in log's buffer depth.
func (m *Metrics) WatchSignInLog(depth func() int) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stepgate_signin_log_buffer_depth",
		Help: "Sign-in log entries waiting to be written.",
	}, func() float64 { return float64(depth()) }))
}
