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
//	lockdiag_snapshots_skipped_total{reason} breaches without a snapshot: cooldown, budget, in_flight, not_running, runtime_locks
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
// Named locks (package locks), one series per lock, labeled lock_id (its
// name) and lock_type ("mutex" or "rwmutex"), counted since the lock was
// named (the _created time):
//
//	lockdiag_lock_wait_duration_seconds        histogram of contended waits (every one counted)
//	lockdiag_lock_held_duration_seconds        histogram of holds (sampled: see package locks)
//	lockdiag_lock_acquisitions_total           acquisitions (Lock, RLock and successful TryLocks)
//	lockdiag_named_lock_waiters                goroutines waiting for the lock now
//	lockdiag_named_lock_held_seconds           how long the current (write) hold has lasted; 0 when free
//
// The histograms' buckets are the locks' own, merged: the locks keep 8
// buckets per doubling (an OpenTelemetry exponential histogram of scale 3,
// which package oteldiag exports as it is); the bounds here are every
// fourth power of two from 2^-20 s (0.95µs) to 2^6 s (64s), each the sum
// of whole fine buckets, so the counts are exact. They are classic
// histograms, which every scraper reads in the text format; a const native
// histogram would be seen only by protobuf scrapes. Each named lock adds
// about 40 series: name the locks that matter (tens, a few hundred), not
// every lock.
//
// A signal that is not measured (not on this OS, skipped by a guard) is
// left out of the scrape. No family is named go_*: hosts that enable
// client_golang's runtime metrics (which include
// go_sync_mutex_wait_total_seconds_total) see no collision.
//
// # Cost
//
// A scrape reads the monitor's atomics, its newest sample and status, and
// one runtime metric: tens of microseconds; and the named locks, with
// locks.Read, about 0.7µs per lock (into a buffer the collector keeps,
// about 5 KiB per lock). Nothing is sampled for Prometheus in between
// scrapes.
package promdiag

import (
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/locks"
)

// A Collector is a [prometheus.Collector] of one monitor's metrics. It is
// safe for concurrent use.
type Collector struct {
	m *diag.Monitor

	mutexWait, breaches, snapshots, skipped, failed *prometheus.Desc
	signals                                         map[diag.Signal]*prometheus.Desc
	breached, stored, info, recording               *prometheus.Desc

	lockWait, lockHeld, lockAcq, lockWaiters, lockHeldNow *prometheus.Desc
	// states is locks.Read's buffer, reused between scrapes under mu.
	mu     sync.Mutex
	states []locks.State
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
			"Breaches that got no snapshot of their own, by reason: cooldown (the rule's), budget (the hourly one), in_flight (another snapshot was being taken and the breach shares it), not_running (the monitor was stopping), runtime_locks (a mutex_wait breach whose wait the mutex profile puts on the Go runtime's own locks).", "", "reason"),
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
		lockWait: d("lockdiag_lock_wait_duration_seconds",
			"Wait of the contended acquisitions of each named lock (package locks; lock.wait.duration), since it was named.", "seconds", "lock_id", "lock_type"),
		lockHeld: d("lockdiag_lock_held_duration_seconds",
			"Hold durations of each named lock (package locks; lock.held.duration), since it was named: sampled, count exact but for the holds since the last timed one.", "seconds", "lock_id", "lock_type"),
		lockAcq: d("lockdiag_lock_acquisitions_total",
			"Acquisitions of each named lock (Lock, RLock, successful TryLock and TryRLock) since it was named.", "", "lock_id", "lock_type"),
		lockWaiters: d("lockdiag_named_lock_waiters",
			"Goroutines waiting to acquire each named lock now.", "", "lock_id", "lock_type"),
		lockHeldNow: d("lockdiag_named_lock_held_seconds",
			"How long the current hold of each named lock (for an RWMutex, its write hold) has lasted, at least; 0 when it is not held.", "seconds", "lock_id", "lock_type"),
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
	for _, d := range []*prometheus.Desc{c.mutexWait, c.breaches, c.snapshots, c.skipped, c.failed, c.breached, c.stored, c.info, c.recording,
		c.lockWait, c.lockHeld, c.lockAcq, c.lockWaiters, c.lockHeldNow} {
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
	c.collectNamed(ch)
}

// The bounds of the named locks' histograms: 2^-20 s to 2^6 s, every
// fourth power of two. Each is the upper bound of one of the locks' fine
// buckets (bucket i ends at 2^(i/8-24) s), so merging is exact.
const (
	boundMinExp = -20
	boundMaxExp = 6
	boundStep   = 2
	// locks' layout: 8 buckets per doubling, bucket 0 ends at 2^-24 s.
	fineScale  = 8
	fineMinExp = -24
)

// collectNamed sends the named locks' histograms and gauges. Locks that
// share a name and type are one series: their counts add up (a lock's name
// is its id; two locks given one name are one id to a dashboard).
func (c *Collector) collectNamed(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states = locks.Read(c.states[:0])
	if len(c.states) == 0 {
		return
	}
	now := time.Now()
	type series struct {
		name, typ  string
		created    time.Time
		wait, held coarse
		acq        uint64
		waiters    int
		heldFor    float64
	}
	var list []*series
	byKey := make(map[[2]string]*series, len(c.states))
	for i := range c.states {
		st := &c.states[i]
		k := [2]string{st.Name, st.Type}
		sr := byKey[k]
		if sr == nil {
			sr = &series{name: st.Name, typ: st.Type, created: st.Named}
			byKey[k] = sr
			list = append(list, sr)
		}
		sr.created = minTime(sr.created, st.Named)
		sr.wait.add(&st.Wait)
		sr.held.add(&st.Hold)
		sr.acq += st.Acquisitions
		sr.waiters += st.Waiters
		if st.Held && !st.HeldSince.IsZero() {
			sr.heldFor = max(sr.heldFor, now.Sub(st.HeldSince).Seconds())
		}
	}
	for _, sr := range list {
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(c.lockWait, sr.wait.count, sr.wait.sum.Seconds(), sr.wait.buckets(), sr.created, sr.name, sr.typ)
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(c.lockHeld, sr.held.count, sr.held.sum.Seconds(), sr.held.buckets(), sr.created, sr.name, sr.typ)
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(c.lockAcq, prometheus.CounterValue, float64(sr.acq), sr.created, sr.name, sr.typ)
		ch <- prometheus.MustNewConstMetric(c.lockWaiters, prometheus.GaugeValue, float64(sr.waiters), sr.name, sr.typ)
		ch <- prometheus.MustNewConstMetric(c.lockHeldNow, prometheus.GaugeValue, sr.heldFor, sr.name, sr.typ)
	}
}

// numBounds is how many bounds the named locks' histograms have.
const numBounds = (boundMaxExp-boundMinExp)/boundStep + 1

// coarse is a named lock's histogram on the exported bounds: cum[j] counts
// the durations up to 2^(boundMinExp + j*boundStep) seconds.
type coarse struct {
	count uint64
	sum   time.Duration
	cum   [numBounds]uint64
}

// add merges a lock's fine histogram in: the fine buckets up to the one
// that ends at each bound.
func (c *coarse) add(h *locks.Histogram) {
	c.count += h.Count
	c.sum += h.Sum
	var cum uint64
	next := 0 // the next fine bucket to add
	for j := range c.cum {
		last := (boundMinExp + j*boundStep - fineMinExp) * fineScale // the fine bucket that ends at the bound
		for ; next <= last && next < len(h.Buckets); next++ {
			cum += h.Buckets[next]
		}
		c.cum[j] += cum
	}
}

// buckets returns the cumulative counts by upper bound, for client_golang.
func (c *coarse) buckets() map[float64]uint64 {
	m := make(map[float64]uint64, numBounds)
	for j, n := range c.cum {
		m[math.Ldexp(1, boundMinExp+j*boundStep)] = n
	}
	return m
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
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
