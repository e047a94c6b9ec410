package diag

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime/metrics"
	"time"
)

// A Signal is one of the values the monitor samples.
type Signal int

const (
	// MutexWait is seconds of lock wait per second: the average number of
	// goroutines blocked on sync.Mutex, sync.RWMutex and runtime-internal
	// locks, from /sync/mutex/wait/total:seconds. The runtime adds a wait
	// when the waiter wakes up and samples 1 in 8 of them, so a lock that
	// is still held is invisible here and values come in lumps.
	MutexWait Signal = iota
	// SchedLatencyP99 is the 99th percentile of the time goroutines spent
	// runnable before running, over the last interval, in seconds.
	SchedLatencyP99
	// Goroutines is the number of live goroutines.
	Goroutines
	// GoroutinesWaiting is the number of goroutines blocked on anything
	// (locks, channels, I/O, timers).
	GoroutinesWaiting
	// GoroutinesRunnable is the number of goroutines ready to run but not
	// running.
	GoroutinesRunnable
	// LockWaiters is the number of goroutines parked right now in
	// sync.Mutex or sync.RWMutex acquire, from a goroutine scan. It sees
	// a lock that is still held; it is sampled less often (see
	// [Config.ScanCPU]).
	LockWaiters
	// StuckWaiters is the number of goroutines parked at lock sites that
	// made no progress for [Config.StuckAfter]: in every goroutine scan
	// for that long, with no lock wait ending that could have been
	// theirs; plus the goroutines waiting for named locks (package locks)
	// whose current hold has lasted StuckAfter (or that nobody acquired
	// for that long), known exactly from the locks' own state. It depends
	// on no baseline: a stuck lock, a deadlock.
	StuckWaiters
	// FutexWaiters is the number of OS threads blocked in a futex on a
	// lock word (runtime-internal or cgo/pthread locks; Linux only).
	FutexWaiters
	// RunDelay is seconds per second the process's threads waited for a
	// CPU (Linux only).
	RunDelay
	// CtxSwitches is context switches per second of the process's threads
	// (Linux only).
	CtxSwitches

	numSignals
)

var signalInfo = [numSignals]struct{ name, unit, help string }{
	MutexWait:          {"mutex_wait", "s/s", "seconds of lock wait per second (≈ goroutines blocked on locks)"},
	SchedLatencyP99:    {"sched_latency_p99", "s", "p99 time runnable before running"},
	Goroutines:         {"goroutines", "", "live goroutines"},
	GoroutinesWaiting:  {"goroutines_waiting", "", "goroutines blocked on anything"},
	GoroutinesRunnable: {"goroutines_runnable", "", "goroutines waiting for a CPU"},
	LockWaiters:        {"lock_waiters", "", "goroutines parked in Mutex/RWMutex acquire now"},
	StuckWaiters:       {"stuck_waiters", "", "goroutines parked at lock sites (or named locks) that made no progress"},
	FutexWaiters:       {"futex_waiters", "", "OS threads blocked on a lock word (runtime or cgo locks)"},
	RunDelay:           {"run_delay", "s/s", "seconds per second threads waited for a CPU"},
	CtxSwitches:        {"ctx_switches", "1/s", "context switches per second"},
}

// Signals returns every signal in display order.
func Signals() []Signal {
	s := make([]Signal, numSignals)
	for i := range s {
		s[i] = Signal(i)
	}
	return s
}

// SignalNames returns the names of every signal, as rules spell them.
func SignalNames() []string {
	names := make([]string, numSignals)
	for i := range names {
		names[i] = signalInfo[i].name
	}
	return names
}

// ParseSignal returns the signal with the given name.
func ParseSignal(name string) (Signal, bool) {
	for i, info := range signalInfo {
		if info.name == name {
			return Signal(i), true
		}
	}
	return 0, false
}

// String returns the signal's name, e.g. "mutex_wait".
func (s Signal) String() string {
	if s < 0 || s >= numSignals {
		return fmt.Sprintf("signal(%d)", int(s))
	}
	return signalInfo[s].name
}

// Unit returns the signal's unit: "s/s", "s", "1/s" or "" for counts.
func (s Signal) Unit() string {
	if s < 0 || s >= numSignals {
		return ""
	}
	return signalInfo[s].unit
}

// Help returns a short description of the signal.
func (s Signal) Help() string {
	if s < 0 || s >= numSignals {
		return ""
	}
	return signalInfo[s].help
}

// A Sample is the value of every signal at one time. A signal that was
// not measured (unsupported, skipped by a guard, not yet due) is NaN.
type Sample struct {
	Time   time.Time
	Values [numSignals]float64
}

// Get returns the value of s, and false if it was not measured.
func (x *Sample) Get(s Signal) (float64, bool) {
	if s < 0 || s >= numSignals {
		return 0, false
	}
	v := x.Values[s]
	return v, !math.IsNaN(v)
}

// MarshalJSON writes {"t": time, "<signal>": value, ...}, leaving out
// signals that were not measured.
func (x Sample) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"t":`...)
	b = x.Time.UTC().AppendFormat(append(b, '"'), time.RFC3339Nano)
	b = append(b, '"')
	for i, v := range x.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, signalInfo[i].name...)
		b = append(b, '"', ':')
		b = appendFloat(b, v)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (x *Sample) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	*x = Sample{}
	for i := range x.Values {
		x.Values[i] = math.NaN()
	}
	for k, raw := range m {
		if k == "t" {
			if err := json.Unmarshal(raw, &x.Time); err != nil {
				return fmt.Errorf("diag: sample time: %w", err)
			}
			continue
		}
		s, ok := ParseSignal(k)
		if !ok {
			continue // a newer writer's signal
		}
		if err := json.Unmarshal(raw, &x.Values[s]); err != nil {
			return fmt.Errorf("diag: sample %s: %w", k, err)
		}
	}
	return nil
}

func appendFloat(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Appendf(b, "%d", int64(v))
	}
	return fmt.Appendf(b, "%.6g", v)
}

func emptySample(t time.Time) Sample {
	s := Sample{Time: t}
	for i := range s.Values {
		s.Values[i] = math.NaN()
	}
	return s
}

// metricsReader reads the runtime/metrics behind the cheap signals. It
// reuses its buffers: one read costs well under a microsecond.
type metricsReader struct {
	samples []metrics.Sample

	// Cumulative mutex wait readings within the smoothing window.
	waits []waitPoint
	// cumWait is the latest cumulative lock wait in seconds (NaN if the
	// runtime does not have the metric).
	cumWait float64
	// Previous cumulative scheduling latency histogram.
	prevLat []uint64
}

type waitPoint struct {
	t time.Time
	v float64
}

const (
	mWait = iota
	mLat
	mGoroutines
	mWaiting
	mRunnable
	numMetrics
)

// mutexWaitWindow is the shortest window over which mutex_wait is
// computed: the runtime samples 1 in 8 wake-ups, so shorter windows are
// mostly noise.
const mutexWaitWindow = 100 * time.Millisecond

func newMetricsReader() *metricsReader {
	r := &metricsReader{samples: make([]metrics.Sample, numMetrics)}
	r.samples[mWait].Name = "/sync/mutex/wait/total:seconds"
	r.samples[mLat].Name = "/sched/latencies:seconds"
	r.samples[mGoroutines].Name = "/sched/goroutines:goroutines"
	r.samples[mWaiting].Name = "/sched/goroutines/waiting:goroutines"
	r.samples[mRunnable].Name = "/sched/goroutines/runnable:goroutines"
	return r
}

// read fills the cheap signals of s from runtime/metrics. Metrics the
// running Go does not know are left NaN.
func (r *metricsReader) read(s *Sample) {
	metrics.Read(r.samples)
	now := s.Time

	r.cumWait = math.NaN()
	if v, ok := floatValue(r.samples[mWait]); ok {
		s.Values[MutexWait] = r.waitRate(now, v)
		r.cumWait = v
	}
	if r.samples[mLat].Value.Kind() == metrics.KindFloat64Histogram {
		s.Values[SchedLatencyP99] = r.latencyP99(r.samples[mLat].Value.Float64Histogram())
	}
	if v, ok := uintValue(r.samples[mGoroutines]); ok {
		s.Values[Goroutines] = v
	}
	if v, ok := uintValue(r.samples[mWaiting]); ok {
		s.Values[GoroutinesWaiting] = v
	}
	if v, ok := uintValue(r.samples[mRunnable]); ok {
		s.Values[GoroutinesRunnable] = v
	}
}

// waitRate returns the rate of the cumulative wait counter over at least
// mutexWaitWindow, or NaN until a window's worth of readings exists.
func (r *metricsReader) waitRate(now time.Time, v float64) float64 {
	r.waits = append(r.waits, waitPoint{now, v})
	// Drop points older than needed: keep the newest point that is at
	// least a window old as the base.
	base := -1
	for i := len(r.waits) - 1; i >= 0; i-- {
		if now.Sub(r.waits[i].t) >= mutexWaitWindow {
			base = i
			break
		}
	}
	if base < 0 {
		if len(r.waits) > 64 { // a clock that does not advance
			r.waits = append(r.waits[:0], r.waits[len(r.waits)-1])
		}
		return math.NaN()
	}
	b := r.waits[base]
	r.waits = append(r.waits[:0], r.waits[base:]...)
	dt := now.Sub(b.t).Seconds()
	rate := (v - b.v) / dt
	if rate < 0 {
		rate = 0
	}
	return rate
}

// latencyP99 returns the 99th percentile of the histogram's growth since
// the last call, 0 when nothing was scheduled, NaN on the first call.
func (r *metricsReader) latencyP99(h *metrics.Float64Histogram) float64 {
	first := r.prevLat == nil
	if len(r.prevLat) != len(h.Counts) {
		r.prevLat = make([]uint64, len(h.Counts))
		first = true
	}
	var total uint64
	for i, c := range h.Counts {
		total += c - min(c, r.prevLat[i])
	}
	p := 0.0
	if total > 0 {
		rank := uint64(math.Ceil(float64(total) * 0.99))
		var acc uint64
		for i, c := range h.Counts {
			acc += c - min(c, r.prevLat[i])
			if acc >= rank {
				// Buckets[i+1] is the bucket's upper bound; the last one
				// may be +Inf, then report its lower bound.
				p = h.Buckets[i+1]
				if math.IsInf(p, 1) {
					p = h.Buckets[i]
				}
				break
			}
		}
	}
	copy(r.prevLat, h.Counts)
	if first {
		return math.NaN()
	}
	return p
}

func floatValue(s metrics.Sample) (float64, bool) {
	if s.Value.Kind() != metrics.KindFloat64 {
		return 0, false
	}
	return s.Value.Float64(), true
}

func uintValue(s metrics.Sample) (float64, bool) {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return float64(s.Value.Uint64()), true
}
