package diag

import (
	"errors"
	"fmt"
	"math"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/flightrec"
	"github.com/lockdiag/lockdiag/internal/cputime"
	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// The trace modes of [Config.Trace].
const (
	// TraceAuto records always when that costs this process less than
	// Config.TraceBudget of its CPU, and arms the recorder otherwise. It
	// re-checks as the load changes.
	TraceAuto = "auto"
	// TraceOn records always: a snapshot's trace reaches back before the
	// trigger.
	TraceOn = "on"
	// TraceArmed keeps the recorder off until an early warning (a rule's
	// signal at half its threshold, goroutines parked at one lock site
	// in consecutive scans, a breach) and stops it again after a quiet
	// while: a snapshot's trace then holds the incident as it goes on.
	TraceArmed = "armed"
	// TraceOff never records.
	TraceOff = "off"
)

// Tuning of the trace controller.
const (
	// costPerSchedule is what the execution tracer costs the process's
	// throughput per goroutine scheduling (run, then block, preempt or
	// exit). Its CPU cost is about 385 ns: about 3.5 trace events of about
	// 110 ns each (RUNTIME-FACTS §6), and about 17.5 bytes of trace,
	// measured on channel ping-pong and parking mutexes alike. Throughput
	// pays more where the schedulings are lock hand-offs, because the
	// events are written on the hand-off's path, which the other waiters
	// wait for: with 385 ns, auto estimated 3 % for the bench's
	// parking-heavy workload and 11 % for its HTTP service, whose recorder
	// cost them 8 to 12 % and 12 to 17 % of their throughput (BENCHMARKS.md,
	// overhead). 1 µs fits the hand-offs and overstates the rest, on the
	// side of the host: the recorder is armed sooner, and records less of
	// an incident that never ends.
	costPerSchedule = time.Microsecond
	// costWindow is the span over which the cost is estimated.
	costWindow = 10 * time.Second
	// armAfter and onAfter are how long auto waits before it arms the
	// recorder (estimate over budget) or records always again (under half
	// the budget): changes in load come and go.
	armAfter = 10 * time.Second
	onAfter  = time.Minute
	// disarmAfter is how long an armed recorder keeps recording after the
	// last warning.
	disarmAfter = 30 * time.Second
	// warnShare is the share of a rule's threshold that counts as an
	// early warning.
	warnShare = 0.5
	// dutyHorizon is the span over which an armed recorder's recording
	// on early warnings is kept within the budget: it may record about
	// budget/cost of that span (decayed exponentially), so that a process
	// whose warnings never end (contention that is its normal state)
	// pays on average no more than the budget. A fresh monitor has the
	// whole allowance, for an incident soon after start.
	dutyHorizon = 10 * time.Minute
	// defaultDuty is the share of the horizon an armed recorder may
	// record when there is no cost estimate yet.
	defaultDuty = 0.1
)

// traceCost estimates what the flight recorder costs this process, from
// the scheduler's activity (runtime/metrics) and the process's CPU time.
type traceCost struct {
	sample    []metrics.Sample
	prevT     time.Time
	prevSched float64
	prevCPU   float64
	// schedRate (schedulings per second) and cpuRate (CPU seconds per
	// second) are smoothed over costWindow.
	schedRate, cpuRate float64
	ready              bool
	fixed              bool // tests: update keeps the rates they set
}

func newTraceCost() *traceCost {
	return &traceCost{sample: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
}

// update reads the counters at now; call it about once a second.
func (c *traceCost) update(now time.Time) {
	if c.fixed {
		return
	}
	metrics.Read(c.sample)
	if c.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return
	}
	var n uint64
	for _, x := range c.sample[0].Value.Float64Histogram().Counts {
		n += x
	}
	// The runtime records 1 in 8 schedulings in /sched/latencies.
	sched := float64(n) * 8
	cpu, ok := cputime.Self()
	if !ok {
		return
	}
	if !c.prevT.IsZero() {
		dt := now.Sub(c.prevT).Seconds()
		if dt > 0 {
			w := math.Min(1, dt/costWindow.Seconds())
			sr, cr := (sched-c.prevSched)/dt, (cpu-c.prevCPU)/dt
			if !c.ready {
				c.schedRate, c.cpuRate, c.ready = sr, cr, true
			} else {
				c.schedRate += w * (sr - c.schedRate)
				c.cpuRate += w * (cr - c.cpuRate)
			}
		}
	}
	c.prevT, c.prevSched, c.prevCPU = now, sched, cpu
}

// minCPU is the least CPU rate a share is taken of: a process that idles
// at a few milliseconds of CPU a second pays a few microseconds for the
// recorder, which is no reason to arm it.
const minCPU = 0.1

// share returns the estimated cost of recording as a share of the
// process's CPU (at least minCPU of a core), and false until there is an
// estimate.
func (c *traceCost) share() (float64, bool) {
	if !c.ready {
		return 0, false
	}
	return c.schedRate * costPerSchedule.Seconds() / max(c.cpuRate, minCPU), true
}

// traceControl starts and stops the flight recorder by the trace mode.
// It runs on the sampling goroutine; what Status shows it publishes under
// the monitor's mu.
type traceControl struct {
	mu     sync.Mutex // guards everything below: the snapshot arms it too
	mode   string
	budget float64
	rec    *flightrec.Recorder
	cost   *traceCost

	armed     bool      // auto: decided to arm (or mode armed)
	decided   bool      // auto: has decided once (the first decision is at once)
	overSince time.Time // auto: estimate over budget since
	underFor  time.Time // auto: estimate under half the budget since
	lastWarn  time.Time // armed: the last early warning
	startedAt time.Time // when the recorder last started
	warning   string    // what armed it last
	retryAt   time.Time // when to try again a recorder that would not start
	nextCost  time.Time

	// dutyUsed is the time the armed recorder recorded, decayed over
	// dutyHorizon, as of dutyAt; paused says the last warning found it
	// spent.
	dutyUsed time.Duration
	dutyAt   time.Time
	paused   bool
}

func newTraceControl(mode string, budget float64, rec *flightrec.Recorder, now time.Time) *traceControl {
	tc := &traceControl{mode: mode, budget: budget, rec: rec, cost: newTraceCost(), armed: mode == TraceArmed}
	if rec != nil && rec.Enabled() {
		tc.startedAt = now
	}
	return tc
}

// tick runs the controller at now; warning names an early warning ("" if
// none). It returns the recorder's error if it could not start.
func (tc *traceControl) tick(now time.Time, warning string, snapshotting bool) (started, stopped bool, err error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.rec == nil {
		return false, false, nil
	}
	if tc.mode != TraceOn && !now.Before(tc.nextCost) {
		tc.nextCost = now.Add(time.Second)
		tc.cost.update(now)
		if tc.mode == TraceAuto {
			tc.decide(now)
		}
	}
	tc.accountDuty(now)
	want := !tc.armed
	if tc.armed && warning != "" {
		tc.lastWarn, tc.warning = now, warning
	}
	if tc.armed && !tc.lastWarn.IsZero() && (now.Sub(tc.lastWarn) < disarmAfter || snapshotting) {
		// Within the duty: stop when it is spent, start again once half
		// of it is free (no start and stop at every tick at the edge).
		allowed := time.Duration(tc.dutyShare() * float64(dutyHorizon))
		switch {
		case snapshotting:
			want = true
		case tc.rec.Enabled():
			want = tc.dutyUsed < allowed
		default:
			want = tc.dutyUsed < allowed/2
		}
		tc.paused = !want
	} else {
		tc.paused = false
	}
	switch on := tc.rec.Enabled(); {
	case want && !on && !now.Before(tc.retryAt):
		if err := tc.rec.Start(); err != nil {
			tc.retryAt = now.Add(time.Minute)
			return false, false, err
		}
		tc.startedAt = now
		return true, false, nil
	case !want && on && !snapshotting:
		tc.rec.Stop()
		return false, true, nil
	}
	return false, false, nil
}

// accountDuty decays the armed recorder's recording time to now and adds
// the time it recorded since the last call.
func (tc *traceControl) accountDuty(now time.Time) {
	if !tc.dutyAt.IsZero() && now.After(tc.dutyAt) {
		dt := now.Sub(tc.dutyAt)
		tc.dutyUsed = time.Duration(float64(tc.dutyUsed) * math.Exp(-dt.Seconds()/dutyHorizon.Seconds()))
		if tc.armed && tc.rec.Enabled() {
			tc.dutyUsed += dt
		}
	}
	tc.dutyAt = now
}

// dutyShare is the share of dutyHorizon the armed recorder may record:
// the budget over the recorder's estimated cost, so that its average cost
// stays within the budget.
func (tc *traceControl) dutyShare() float64 {
	share, ok := tc.cost.share()
	if !ok || share <= 0 {
		return defaultDuty
	}
	return min(1, max(0.01, tc.budget/share))
}

// decide switches auto between recording always and armed.
func (tc *traceControl) decide(now time.Time) {
	share, ok := tc.cost.share()
	if !ok {
		return
	}
	// At start auto records until the first estimate, which decides at
	// once (a second of trace costs little, and a snapshot taken meanwhile
	// gets the window before it); later changes must last.
	first := !tc.decided
	tc.decided = true
	switch {
	case share > tc.budget:
		tc.underFor = time.Time{}
		if tc.overSince.IsZero() {
			tc.overSince = now
		}
		if !tc.armed && (first || now.Sub(tc.overSince) >= armAfter) {
			tc.armed = true
		}
	case share < tc.budget/2 || first && share <= tc.budget:
		tc.overSince = time.Time{}
		if tc.underFor.IsZero() {
			tc.underFor = now
		}
		if tc.armed && (first || now.Sub(tc.underFor) >= onAfter) {
			tc.armed = false
		}
	default:
		tc.overSince, tc.underFor = time.Time{}, time.Time{}
	}
}

// arm starts the recorder now, for a snapshot that finds it off, and
// returns when it started recording (zero if it cannot).
func (tc *traceControl) arm(now time.Time, why string) time.Time {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.rec == nil {
		return time.Time{}
	}
	tc.lastWarn, tc.warning = now, why
	if !tc.rec.Enabled() {
		if tc.rec.Start() != nil {
			return time.Time{}
		}
		tc.startedAt = now
	}
	return tc.startedAt
}

// describe says what the controller does, for the status and the reports:
// the mode, whether it records, and why.
func (tc *traceControl) describe(now time.Time) string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.rec == nil {
		return "off (LOCKDIAG_TRACE=off)"
	}
	var why string
	if share, ok := tc.cost.share(); ok && tc.mode == TraceAuto {
		why = fmt.Sprintf("the recorder would cost about %s of this process's CPU, budget %s",
			textfmt.Pct(share), textfmt.Pct(tc.budget))
	}
	rec := tc.rec.Enabled()
	switch {
	case tc.mode == TraceOn:
		return "on: recording always"
	case !tc.armed && rec:
		return "auto: recording always (" + why + ")"
	case !tc.armed:
		return "auto: recording while it estimates the recorder's cost"
	case rec:
		s := fmt.Sprintf("%s, armed: recording since %s ago, on an early warning: %s", tc.mode,
			textfmt.Dur(now.Sub(tc.startedAt).Round(time.Millisecond)), tc.warning)
		if why != "" {
			s += " (" + why + ")"
		}
		return s
	}
	s := tc.mode + ", armed: the recorder is off until an early warning"
	if tc.paused {
		s = fmt.Sprintf("%s, armed: the recorder is off despite an early warning (%s): it recorded %s of the last %s on warnings, "+
			"its share of the budget; a snapshot still starts it", tc.mode, tc.warning, textfmt.Dur(tc.dutyUsed.Round(time.Second)),
			textfmt.Dur(dutyHorizon))
	}
	if why != "" {
		s += " (" + why + ")"
	}
	return s
}

// recordingSince returns when the recorder started, or zero if it is
// not recording.
func (tc *traceControl) recordingSince() time.Time {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.rec == nil || !tc.rec.Enabled() {
		return time.Time{}
	}
	return tc.startedAt
}

// parseTraceMode checks a trace mode.
func parseTraceMode(v string) (string, error) {
	switch v {
	case TraceAuto, TraceOn, TraceArmed, TraceOff:
		return v, nil
	}
	return "", errors.New("must be auto, on, armed or off")
}
