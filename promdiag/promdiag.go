// Package promdiag exports a [diag.Monitor] to Prometheus through
// github.com/prometheus/client_golang. It is the only lockdiag package that
// links client_golang: diag and httpdiag do not import it.
//
// A host registers the collector on its own registry:
//
//	reg.MustRegister(promdiag.NewCollector(m))
//
// or serves a registry of its own with [Handler], which is what diag/auto
// mounts at /debug/locks/metrics.
//
// # Metrics
//
// Cumulative counters (use rate() or increase() on them):
//
//	lockdiag_mutex_wait_seconds_total        lock wait of the whole program (runtime/metrics
//	                                         /sync/mutex/wait/total:seconds); rate() is the mutex_wait signal
//	lockdiag_rule_breaches_total{rule}       breaches of each lock-wait rule
//	lockdiag_snapshots_total{trigger}        snapshots stored, trigger "rule" (automatic) or "manual"
//	lockdiag_snapshots_skipped_total{reason} breaches without a snapshot: cooldown, budget, in_flight, not_running
//	lockdiag_snapshots_failed_total          snapshots that could not be taken
//
// Gauges of the newest sample (every 100ms by default; a scrape sees one
// sample, so prefer the counters for rates):
//
//	lockdiag_mutex_wait_ratio                seconds of lock wait per second over the last interval
//	lockdiag_sched_latency_p99_seconds       p99 time runnable before running
//	lockdiag_goroutines                      live goroutines
//	lockdiag_goroutines_waiting              goroutines blocked on anything
//	lockdiag_goroutines_runnable             goroutines waiting for a CPU
//	lockdiag_lock_waiters                    goroutines parked in Mutex/RWMutex acquire now
//	lockdiag_futex_waiters                   OS threads blocked on a lock word (Linux)
//	lockdiag_run_delay_ratio                 seconds per second threads waited for a CPU (Linux)
//	lockdiag_context_switches_per_second     context switches per second (Linux)
//	lockdiag_rule_breached{rule}             1 while the rule is breached or clearing
//	lockdiag_snapshots_stored                snapshots kept (memory and disk)
//	lockdiag_info{version,go_version,trace}  1; trace is the recorder's mode as the status says it
//
// A signal that is not measured (not on this OS, skipped by a guard) is
// left out of the scrape. No family is named go_*: hosts that enable
// client_golang's runtime metrics (which include
// go_sync_mutex_wait_total_seconds_total) see no collision.
//
// # Cost
//
// A scrape reads the monitor's atomics, its newest sample and status, and
// one runtime metric: tens of microseconds. Nothing is sampled for
// Prometheus in between scrapes.
package promdiag

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/diag"
)

// A Collector is a [prometheus.Collector] of one monitor's metrics. It is
// safe for concurrent use.
type Collector struct {
	m *diag.Monitor

	mutexWait, breaches, snapshots, skipped, failed *prometheus.Desc
	signals                                         map[diag.Signal]*prometheus.Desc
	breached, stored, info, recording               *prometheus.Desc
}

// signalNames are the metric names of the signals, by the signal's name,
// with their units for OpenMetrics ("" for none).
var signalNames = map[string]struct{ name, unit string }{
	"mutex_wait":          {"lockdiag_mutex_wait_ratio", "ratio"},
	"sched_latency_p99":   {"lockdiag_sched_latency_p99_seconds", "seconds"},
	"goroutines":          {"lockdiag_goroutines", ""},
	"goroutines_waiting":  {"lockdiag_goroutines_waiting", ""},
	"goroutines_runnable": {"lockdiag_goroutines_runnable", ""},
	"lock_waiters":        {"lockdiag_lock_waiters", ""},
	"stuck_waiters":       {"lockdiag_stuck_waiters", ""},
	"futex_waiters":       {"lockdiag_futex_waiters", ""},
	"run_delay":           {"lockdiag_run_delay_ratio", "ratio"},
	"ctx_switches":        {"lockdiag_context_switches_per_second", ""},
}

// NewCollector returns a collector of m's metrics. Register it on a
// registry of the host's: reg.MustRegister(promdiag.NewCollector(m)).
func NewCollector(m *diag.Monitor) *Collector {
	d := func(name, help, unit string, labels ...string) *prometheus.Desc {
		var opts []prometheus.DescOpt
		if unit != "" {
			opts = append(opts, prometheus.WithUnit(unit))
		}
		return prometheus.V2.NewDesc(name, help, prometheus.UnconstrainedLabels(labels), nil, opts...)
	}
	c := &Collector{
		m: m,
		mutexWait: d("lockdiag_mutex_wait_seconds_total",
			"Seconds goroutines spent blocked on sync.Mutex, sync.RWMutex and runtime-internal locks since the program started (runtime/metrics /sync/mutex/wait/total:seconds: counted when a waiter wakes, sampled 1 in 8). rate() of it is the mutex_wait signal.", "seconds"),
		breaches: d("lockdiag_rule_breaches_total",
			"Breaches of each lock-wait rule since the monitor started.", "", "rule"),
		snapshots: d("lockdiag_snapshots_total",
			"Snapshots stored since the monitor started, by trigger: rule (taken automatically at a breach) or manual (HTTP, CLI or code).", "", "trigger"),
		skipped: d("lockdiag_snapshots_skipped_total",
			"Breaches that got no snapshot of their own, by reason: cooldown (the rule's), budget (the hourly one), in_flight (another snapshot was being taken and the breach shares it), not_running (the monitor was stopping).", "", "reason"),
		failed: d("lockdiag_snapshots_failed_total",
			"Snapshots that could not be taken.", ""),
		breached: d("lockdiag_rule_breached",
			"1 while the lock-wait rule is breached (or clearing), else 0.", "", "rule"),
		stored: d("lockdiag_snapshots_stored",
			"Snapshots kept in memory and on disk.", ""),
		info: d("lockdiag_info",
			"Always 1: lockdiag's version, the Go version and the trace mode (trace: auto, on, armed, off, or unavailable when the program owns the flight recorder).", "",
			"version", "go_version", "trace"),
		recording: d("lockdiag_trace_recording",
			"1 while the flight recorder records (always with trace mode on; in armed mode from an early warning until 30s after the last one).", ""),
	}
	c.signals = make(map[diag.Signal]*prometheus.Desc)
	for _, sig := range diag.Signals() {
		n, ok := signalNames[sig.String()]
		if !ok {
			continue // a newer diag's signal: not exported until named here
		}
		help := sig.Help()
		if u := sig.Unit(); u != "" {
			help += " (" + u + ")"
		}
		help += ", newest sample."
		c.signals[sig] = d(n.name, strings.ToUpper(help[:1])+help[1:], n.unit)
	}
	return c
}

// Describe sends the descriptors of every metric of the collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.mutexWait, c.breaches, c.snapshots, c.skipped, c.failed, c.breached, c.stored, c.info, c.recording} {
		ch <- d
	}
	for _, d := range c.signals {
		ch <- d
	}
}

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	cnt := c.m.Counters()
	created := cnt.Start
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		if created.IsZero() {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
			return
		}
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, v, created, labels...)
	}
	if v := cnt.MutexWaitSeconds; v == v { // not NaN
		ch <- prometheus.MustNewConstMetric(c.mutexWait, prometheus.CounterValue, v)
	}
	for rule, n := range cnt.Breaches {
		counter(c.breaches, float64(n), rule)
	}
	for _, k := range []bundle.TriggerKind{bundle.TriggerRule, bundle.TriggerManual} {
		counter(c.snapshots, float64(cnt.Snapshots[k]), string(k))
	}
	for _, r := range diag.SkipReasons() {
		counter(c.skipped, float64(cnt.Skipped[r]), r)
	}
	counter(c.failed, float64(cnt.Failed))

	if s, ok := c.m.Latest(); ok {
		for sig, d := range c.signals {
			if v, ok := s.Get(sig); ok {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
			}
		}
	}
	st := c.m.Status()
	for _, r := range st.Rules {
		v := 0.0
		if r.State == diag.RuleBreached || r.State == diag.RuleClearing {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.breached, prometheus.GaugeValue, v, r.Rule)
	}
	ch <- prometheus.MustNewConstMetric(c.stored, prometheus.GaugeValue, float64(len(c.m.Snapshots())))
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, version(), runtime.Version(), st.TraceMode)
	recording := 0.0
	if st.TraceRecording {
		recording = 1
	}
	ch <- prometheus.MustNewConstMetric(c.recording, prometheus.GaugeValue, recording)
}

// version returns the version of the lockdiag module linked into the
// program, "(devel)" when it is the main module built from a work tree.
func version() string {
	versionOnce.Do(func() {
		modVersion = "unknown"
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		const mod = "github.com/lockdiag/lockdiag"
		if bi.Main.Path == mod {
			modVersion = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == mod {
				modVersion = d.Version
				if d.Replace != nil {
					modVersion = d.Replace.Version
				}
			}
		}
		if modVersion == "" {
			modVersion = "(devel)"
		}
	})
	return modVersion
}

var (
	versionOnce sync.Once
	modVersion  string
)

// Handler returns a handler that serves m's metrics (only those: no Go
// runtime or process collectors) in the Prometheus text format, or in
// OpenMetrics when the scraper asks for it. Errors are answered with 500.
// It is what diag/auto passes as httpdiag.Options.Metrics.
func Handler(m *diag.Monitor) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(m))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.HTTPErrorOnError,
		EnableOpenMetrics: true,
		// _created lines for the counters (OpenMetrics only), so that rate()
		// knows when they started.
		EnableOpenMetricsTextCreatedSamples: true,
	})
}
