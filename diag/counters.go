package diag

import (
	"math"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
)

// Counters are the monitor's cumulative counts since [Monitor.Start], for
// exporters that want counters rather than the signals' current values
// (package promdiag turns them into Prometheus counters). They only grow
// while the monitor lives; a new Start does not reset them.
type Counters struct {
	// Start is when the counts began: the monitor's first Start.
	Start time.Time

	// MutexWaitSeconds is the runtime's cumulative lock wait,
	// /sync/mutex/wait/total:seconds, read now: seconds goroutines spent
	// blocked on sync.Mutex, sync.RWMutex and runtime-internal locks since
	// the program started (not since Start). Its rate is the mutex_wait
	// signal. NaN if the runtime does not have the metric.
	MutexWaitSeconds float64

	// Breaches counts the breaches of each rule, by the rule's text as
	// [Monitor.Status]'s Rules write it (rules with the same text share a
	// count); every rule has a key, zero until it breaches.
	Breaches map[string]uint64

	// Snapshots counts the stored snapshots by trigger kind
	// (bundle.TriggerManual, bundle.TriggerRule).
	Snapshots map[bundle.TriggerKind]uint64

	// Skipped counts the breaches that got no snapshot, by reason:
	// "cooldown" (the rule's cooldown), "budget" (the hourly budget),
	// "in_flight" (another snapshot was being taken; the breach shares
	// it), "not_running" (the monitor was stopping) and "runtime_locks"
	// (a mutex_wait breach whose wait the mutex profile puts on the Go
	// runtime's own locks, not the program's).
	Skipped map[string]uint64

	// Failed counts the snapshots that could not be taken.
	Failed uint64
}

// The reasons of [Counters.Skipped].
const (
	SkipCooldown     = "cooldown"
	SkipBudget       = "budget"
	SkipInFlight     = "in_flight"
	SkipNotRunning   = "not_running"
	SkipRuntimeLocks = "runtime_locks"
)

// SkipReasons lists the keys of [Counters.Skipped].
func SkipReasons() []string {
	return []string{SkipCooldown, SkipBudget, SkipInFlight, SkipNotRunning, SkipRuntimeLocks}
}

// counters are the atomics behind [Counters]; the hooks that count are
// one line each where the events happen (rules.go, snapshot.go).
type counters struct {
	startOnce sync.Once
	start     time.Time
	breaches  []atomic.Uint64 // by rule index
	manual    atomic.Uint64
	rule      atomic.Uint64
	skipped   [5]atomic.Uint64 // by index in SkipReasons
	failed    atomic.Uint64
}

func (c *counters) started(now time.Time) {
	c.startOnce.Do(func() { c.start = now })
}

// breach counts a breach of rule i.
func (c *counters) breach(i int) {
	if i >= 0 && i < len(c.breaches) {
		c.breaches[i].Add(1)
	}
}

// snapshot counts a stored snapshot, or a failed one when err is not nil.
func (c *counters) snapshot(kind bundle.TriggerKind, err error) {
	switch {
	case err != nil:
		c.failed.Add(1)
	case kind == bundle.TriggerRule:
		c.rule.Add(1)
	default:
		c.manual.Add(1)
	}
}

// skip counts a breach without a snapshot; reason is a class of
// SkipReasons or a rule engine's reason ("cooldown: 41s left").
func (c *counters) skip(reason string) {
	class, _, _ := strings.Cut(reason, ":")
	for i, r := range SkipReasons() {
		if r == class {
			c.skipped[i].Add(1)
			return
		}
	}
	c.skipped[slices.Index(SkipReasons(), SkipNotRunning)].Add(1) // anything else: the monitor could not start one
}

// Counters returns the monitor's cumulative counts. It is cheap (a few
// atomic loads and one runtime/metrics read) and safe for concurrent use.
func (m *Monitor) Counters() Counters {
	c := &m.counts
	out := Counters{
		Start:            c.start,
		MutexWaitSeconds: math.NaN(),
		Snapshots: map[bundle.TriggerKind]uint64{
			bundle.TriggerManual: c.manual.Load(),
			bundle.TriggerRule:   c.rule.Load(),
		},
		Skipped: make(map[string]uint64, len(c.skipped)),
		Failed:  c.failed.Load(),
	}
	s := []metrics.Sample{{Name: "/sync/mutex/wait/total:seconds"}}
	metrics.Read(s)
	if v, ok := floatValue(s[0]); ok {
		out.MutexWaitSeconds = v
	}
	out.Breaches = make(map[string]uint64, len(m.rules.rules))
	for i, r := range m.rules.rules {
		out.Breaches[r.String()] += c.breaches[i].Load()
	}
	for i, r := range SkipReasons() {
		out.Skipped[r] = c.skipped[i].Load()
	}
	return out
}
