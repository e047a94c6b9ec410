package diag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockdiag/lockdiag/flightrec"
	"github.com/lockdiag/lockdiag/internal/coalesce"
	"github.com/lockdiag/lockdiag/internal/cputime"
	"github.com/lockdiag/lockdiag/internal/profdelta"
	"github.com/lockdiag/lockdiag/internal/rules"
	"github.com/lockdiag/lockdiag/internal/textfmt"
	"github.com/lockdiag/lockdiag/lockreport"
)

// ErrNotRunning is returned by [Monitor.Snapshot] when the monitor is not
// started.
var ErrNotRunning = errors.New("diag: monitor not running")

// A Monitor samples lock-contention signals, evaluates rules, and takes and
// stores snapshots. Its methods are safe for concurrent use.
type Monitor struct {
	cfg    Config
	log    *slog.Logger
	rec    *flightrec.Recorder
	tl     *timeline
	store  *store
	events *broadcaster
	rules  *ruleSet
	counts counters // cumulative counts, for Counters

	mu            sync.Mutex // guards the lifecycle fields below
	running       bool
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	started       time.Time
	traceErr      error  // why there is no trace at all, nil when there can be one
	traceMode     string // what the trace controller does, for Status
	mutexRate     int    // the mutex profile fraction in effect
	prevMutexRate int    // the host's fraction before Start
	setMutexRate  bool   // whether Start changed the fraction
	blockRate     int    // the block profile rate in effect (0 = off/unknown)
	snaps         coalesce.Group[SnapshotInfo]
	lastTraceSize atomic.Int64 // of the last snapshot's trace window

	// State written by the sampling goroutine, read by Status.
	stateMu     sync.Mutex
	waitSites   []lockreport.ParkedSite
	lastWaiters time.Time
	scanCost    time.Duration // of the last goroutine scan
	scans       int           // goroutine scans since Start
	scanTotal   time.Duration // what they took
	baselines   []rawProfiles // oldest first
	// mutexReads are the mutex profile reads of the last holdersSpan and
	// the one before it, oldest first: what the status's holders rest on
	// (13 or 14 gzipped profiles, a few kilobytes each for most programs).
	mutexReads []profdelta.Capture
	// The holders computed from mutexReads, for Status, and the newest
	// read they were computed at.
	holders     holderView
	holdersAt   time.Time
	collectErrs map[string]string
	named       namedState // the named locks at the last read (named.go)

	// hooks inject faults in tests; all nil in production.
	hooks struct {
		tick     func() // at the start of every tick
		snapshot func() // at the start of every snapshot collection
	}

	// Used by the sampling goroutine only.
	trace    *traceControl
	metrics  *metricsReader
	waiters  *waiterScanner
	schedule *scanSchedule
	stuck    *stuckTracker
	namedRd  *namedReader
	threads  *threadSampler
	next     struct{ threads, profiles time.Time }
	carried  [numSignals]float64 // slow signals, carried between their scans
	// stuck_waiters is the sum of the site tracker's count (at the last
	// goroutine scan) and the named locks' (at the last read); NaN for a
	// part not measured.
	siteStuck, namedStuck float64
	// waitingAtTick is goroutines_waiting at the last tick, for the scan
	// that follows it.
	waitingAtTick float64
}

// rawProfiles is one read of the cumulative mutex and block profiles, kept
// compressed until a snapshot needs it.
type rawProfiles struct {
	time  time.Time
	mutex profdelta.Capture // zero when the mutex profile is off
	block profdelta.Capture // zero when the block profile is off
	wait  float64           // cumulative lock wait (s) at time; NaN if unknown
}

// New returns a Monitor for cfg, with defaults filled in. It checks the
// configuration and the rules, and starts nothing.
func New(cfg Config) (*Monitor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rs, err := newRuleSet(cfg)
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		cfg:    cfg,
		log:    log,
		tl:     newTimeline(int(cfg.History / cfg.Interval)),
		store:  newStore(cfg, log),
		events: newBroadcaster(),
		rules:  rs,
	}
	m.counts.breaches = make([]atomic.Uint64, len(rs.rules))
	rs.cfg.Veto = m.vetoBreach
	rs.reset()
	if cfg.Trace != TraceOff {
		m.rec = flightrec.New(flightrec.Config{MinAge: cfg.TraceWindow, MaxBytes: uint64(cfg.TraceMaxBytes)})
	}
	return m, nil
}

// Config returns the configuration in effect, defaults filled in.
func (m *Monitor) Config() Config { return m.cfg }

// Start starts sampling and, unless disabled, the flight recorder. If the
// process's flight recorder is owned by someone else, Start logs it and
// runs without a trace; every report then says so. Start returns an error
// if the monitor is already running.
func (m *Monitor) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		return errors.New("diag: monitor already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.ctx, m.cancel = ctx, cancel
	m.started = time.Now()
	m.counts.started(m.started)

	m.prevMutexRate = runtime.SetMutexProfileFraction(-1)
	m.mutexRate, m.setMutexRate = m.prevMutexRate, false
	switch want := m.cfg.MutexProfileFraction; {
	case want > 0 && want != m.prevMutexRate,
		want == 0 && m.prevMutexRate == 0:
		if want == 0 {
			want = defaultMutexRate
		}
		runtime.SetMutexProfileFraction(want)
		m.mutexRate, m.setMutexRate = want, true
	}
	m.blockRate = 0
	if m.cfg.BlockProfileRate > 0 {
		runtime.SetBlockProfileRate(m.cfg.BlockProfileRate)
		m.blockRate = m.cfg.BlockProfileRate
	}

	// The recorder starts at once, in every mode: whether the host owns
	// the process's one flight recorder is known from the start. Armed
	// mode stops it again until it wants it; auto records until its first
	// estimate of the cost.
	m.traceErr = nil
	switch {
	case m.rec == nil:
		m.traceErr = errors.New("trace disabled by configuration (LOCKDIAG_TRACE=off)")
	default:
		if err := m.rec.Start(); err != nil {
			m.traceErr = err
			m.log.Warn("diag: running without an execution trace", "err", err)
		} else if m.cfg.Trace == TraceArmed {
			m.rec.Stop()
		}
	}
	rec := m.rec
	if m.traceErr != nil {
		rec = nil
	}
	m.trace = newTraceControl(m.cfg.Trace, m.cfg.TraceBudget, rec, m.started)
	m.traceMode = m.trace.describe(m.started)

	m.resetSampler()

	m.running = true
	m.wg.Add(1)
	go m.loop(ctx)
	return nil
}

// resetSampler gives the sampling goroutine fresh state: readers, scanners,
// schedules, profile reads and rules.
func (m *Monitor) resetSampler() {
	m.metrics = newMetricsReader()
	m.waiters = newWaiterScanner()
	m.schedule = newScanSchedule(m.cfg.LockWaitersInterval, m.cfg.ScanCPU, uint64(time.Now().UnixNano()))
	m.stuck = newStuckTracker(m.cfg.StuckAfter)
	guard := m.cfg.GoroutineGuard
	m.stuck.confirm = func() (map[siteKey]siteCount, bool) { return blockedAtSites(guard) }
	m.stuck.witness = m.wokenRecently
	seen := 0 // inversions are logged and published once for the monitor's life
	if m.namedRd != nil {
		seen = m.namedRd.seen
	}
	m.namedRd = newNamedReader(m.cfg)
	m.namedRd.seen = seen
	m.siteStuck, m.namedStuck = math.NaN(), math.NaN()
	m.threads = newThreadSampler(m.cfg.ThreadsInterval > 0)
	m.next.threads, m.next.profiles = time.Time{}, time.Time{}
	for i := range m.carried {
		m.carried[i] = math.NaN()
	}
	m.stateMu.Lock()
	m.scans, m.scanTotal = 0, 0
	m.baselines, m.mutexReads = nil, nil
	m.collectErrs = make(map[string]string)
	m.stateMu.Unlock()
	m.rules.reset()
}

// Stop stops sampling and recording and waits for every goroutine of the
// monitor, including a snapshot in flight, to exit. It restores the
// profile rates Start changed, unless the program changed them since.
// Subscriptions are closed. Stop is idempotent.
func (m *Monitor) Stop() {
	m.mu.Lock()
	if !m.running {
		m.mu.Unlock()
		return
	}
	m.running = false
	m.cancel()
	m.mu.Unlock()

	m.wg.Wait()
	m.snaps.Wait()
	if m.rec != nil {
		m.rec.Stop()
	}
	m.threads.close()

	m.mu.Lock()
	if m.setMutexRate && runtime.SetMutexProfileFraction(-1) == m.mutexRate {
		runtime.SetMutexProfileFraction(m.prevMutexRate)
	}
	if m.blockRate > 0 {
		runtime.SetBlockProfileRate(0)
	}
	m.mu.Unlock()
	m.events.closeAll()
}

// Enabled reports whether the monitor is running.
func (m *Monitor) Enabled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running
}

// Subscribe returns a subscription to the monitor's events with room for
// buffer events. Close it when done.
func (m *Monitor) Subscribe(buffer int) *Subscription {
	return m.events.subscribe(buffer)
}

// Timeline returns the samples taken at or after since, oldest first.
func (m *Monitor) Timeline(since time.Time) []Sample {
	return m.tl.since(since, 0)
}

// Latest returns the newest sample, and false before the first one.
func (m *Monitor) Latest() (Sample, bool) {
	return m.tl.latest()
}

func (m *Monitor) loop(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	// The goroutine scans run off the tick's grid: at a random moment
	// between one tick and the next, so that a program's own ticker (a
	// refresher that takes a lock every 50ms, say) cannot stay in phase
	// with them and hide its waiters.
	scanT := time.NewTimer(time.Hour)
	scanT.Stop()
	defer scanT.Stop()
	var scanC <-chan time.Time
	tick := func() {
		if m.safeTick(time.Now()) && scanC == nil {
			scanT.Reset(m.schedule.offset(m.cfg.Interval))
			scanC = scanT.C
		}
	}
	tick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tick()
		case <-scanC:
			scanC = nil
			m.safeScan(time.Now())
		}
	}
}

// safeTick runs one tick; a panic in it is logged and the loop goes on.
// It reports whether a goroutine scan is due.
func (m *Monitor) safeTick(now time.Time) (scan bool) {
	defer m.recoverSampler()
	return m.tick(now)
}

// safeScan runs one goroutine scan, recovering as safeTick does.
func (m *Monitor) safeScan(now time.Time) {
	defer m.recoverSampler()
	m.scanWaiters(now, m.waitingAtTick)
}

func (m *Monitor) recoverSampler() {
	if r := recover(); r != nil {
		m.log.Error("diag: sampler panicked; continuing", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		m.noteCollectErr("sampler", fmt.Sprintf("panic: %v", r))
	}
}

// tick samples the cheap signals, evaluates the rules and runs the trace
// controller. It reports whether a goroutine scan is due; the caller runs
// it (scanWaiters) before the next tick, and its counts are published
// with that tick's sample.
func (m *Monitor) tick(now time.Time) (scan bool) {
	if m.hooks.tick != nil {
		m.hooks.tick()
	}
	s := emptySample(now)
	m.metrics.read(&s)

	m.waitingAtTick = s.Values[GoroutinesWaiting]
	scan = m.cfg.LockWaitersInterval > 0 && m.schedule.due(now, s.Values[GoroutinesWaiting], m.stuck.confirmAt())
	m.readNamed(now)
	if m.cfg.ThreadsInterval > 0 && !now.Before(m.next.threads) {
		m.next.threads = now.Add(m.cfg.ThreadsInterval)
		if err := m.threads.sample(now, &m.carried); err != nil {
			m.noteCollectErr("threads", err.Error())
		}
	}
	if !now.Before(m.next.profiles) {
		m.next.profiles = now.Add(profileEvery)
		m.captureProfiles(now)
	}
	for _, sig := range []Signal{LockWaiters, StuckWaiters, FutexWaiters, RunDelay, CtxSwitches} {
		s.Values[sig] = m.carried[sig]
	}

	m.tl.add(s)
	if m.events.active() {
		sc := s
		m.events.publish(Event{Type: EventSample, Time: now, Sample: &sc})
	}
	m.evaluate(s)
	m.controlTrace(now, s)
	return scan
}

// controlTrace runs the trace controller: it arms the recorder on an
// early warning, or by the cost estimate in auto mode.
func (m *Monitor) controlTrace(now time.Time, s Sample) {
	tc := m.trace
	tc.mu.Lock()
	active, armed := tc.rec != nil, tc.armed
	tc.mu.Unlock()
	if !active {
		return
	}
	warning := ""
	if armed {
		warning = m.earlyWarning()
	}
	started, stopped, err := tc.tick(now, warning, m.snaps.InFlight())
	switch {
	case err != nil:
		m.noteCollectErr("trace", err.Error())
	case started:
		m.log.Info("diag: flight recorder started", "mode", tc.describe(now))
	case stopped:
		m.log.Info("diag: flight recorder stopped", "mode", tc.describe(now))
	}
	desc := tc.describe(now)
	m.mu.Lock()
	m.traceMode = desc
	m.mu.Unlock()
}

// earlyWarning names what makes an incident likely soon, or returns "":
// a rule pending, breached or at half its threshold, or goroutines parked
// at one lock site in consecutive scans.
func (m *Monitor) earlyWarning() string {
	for _, r := range m.rules.engine().States() {
		switch {
		case r.Phase == rules.Pending || r.Phase == rules.Breached || r.Phase == rules.Clearing:
			return fmt.Sprintf("rule %q %s", r.Text, r.Phase)
		case r.Phase == rules.OK && r.Threshold > 0 && r.Value >= warnShare*r.Threshold:
			return fmt.Sprintf("%s at %s, over half its threshold %s", m.rules.rules[r.Rule].Signal,
				textfmt.Value(r.Value), textfmt.Value(r.Threshold))
		}
	}
	for _, r := range m.stuck.runs {
		if r.scans >= 2 || r.minCount >= 4 {
			return fmt.Sprintf("%d goroutines parked at %s in %d scans in a row", r.site.Waiters, r.site.Where(), r.scans)
		}
	}
	return m.namedWarning()
}

// timedScan scans the goroutines and returns what the scan cost: the CPU
// time of the thread it ran on where the system says (Linux), else its
// wall time. On a machine whose CPUs other processes hold, the wall time
// of a scan grows with the time its thread waits for a CPU, and the
// budget would space the scans for a cost lockdiag did not have (a stuck
// lock among 20k goroutines went unseen for 40s on a loaded CI
// machine).
func (m *Monitor) timedScan() (int, []lockreport.ParkedSite, time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := time.Now()
	c0, ok := cputime.Thread()
	n, sites := m.waiters.scan()
	cost := time.Since(t0)
	if c1, ok1 := cputime.Thread(); ok && ok1 && c1 >= c0 {
		cost = min(cost, c1-c0)
	}
	return n, sites, cost
}

// scanWaiters counts the goroutines parked on locks, and which sites make
// no progress.
func (m *Monitor) scanWaiters(now time.Time, waiting float64) {
	ready := m.waiters.ready()
	n, sites, cost := m.timedScan()
	m.schedule.done(now, cost, waiting)
	stuck, sites := m.stuck.update(now, sites, m.metrics.cumWait, ready)
	m.carried[LockWaiters] = float64(n)
	m.siteStuck = float64(stuck)
	m.carried[StuckWaiters] = nanSum(m.siteStuck, m.namedStuck)
	m.stateMu.Lock()
	m.waitSites = sites
	m.lastWaiters = now
	m.scanCost = cost
	m.scans++
	m.scanTotal += cost
	m.stateMu.Unlock()
}

// profileEvery is how often the cumulative mutex and block profiles are
// read, so that a snapshot can subtract the read closest to its window's
// start. One read costs about a millisecond and a megabyte of garbage (the
// runtime's encoder), so not more often.
const profileEvery = 5 * time.Second

func (m *Monitor) captureProfiles(now time.Time) {
	p := rawProfiles{time: now, wait: m.metrics.cumWait}
	if m.mutexRate > 0 {
		// The fraction in force since the previous read: adaptMutexRate
		// changes it only after this read.
		rate := runtime.SetMutexProfileFraction(-1)
		c, err := profdelta.Read("mutex")
		if err != nil {
			m.noteCollectErr("mutex profile", err.Error())
			return
		}
		c.Rate = rate
		p.mutex = c
	}
	if m.blockRate > 0 {
		c, err := profdelta.Read("block")
		if err != nil {
			m.noteCollectErr("block profile", err.Error())
			return
		}
		p.block = c
	}
	// Keep reads back to one window before the oldest a snapshot needs.
	keepFrom := now.Add(-m.cfg.TraceWindow - 2*profileEvery)
	m.adaptMutexRate(m.latestProfiles(), p)
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	i := 0
	for i < len(m.baselines)-1 && m.baselines[i+1].time.Before(keepFrom) {
		i++
	}
	m.baselines = append(m.baselines[i:], p)
	if p.mutex.Data != nil {
		m.mutexReads = keepReads(m.mutexReads, p.mutex)
	}
}

// latestProfiles returns the latest profile read (zero if none).
func (m *Monitor) latestProfiles() rawProfiles {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	if n := len(m.baselines); n > 0 {
		return m.baselines[n-1]
	}
	return rawProfiles{}
}

// baselineAt returns the profile read closest to t.
func (m *Monitor) baselineAt(t time.Time) (rawProfiles, bool) {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	if len(m.baselines) == 0 {
		return rawProfiles{}, false
	}
	best := m.baselines[0]
	for _, b := range m.baselines[1:] {
		if b.time.Sub(t).Abs() < best.time.Sub(t).Abs() {
			best = b
		}
	}
	return best, true
}

// mutexFractions returns the mutex profile fractions in force from the
// read at from until now, oldest first, if the fraction changed meanwhile;
// else nil. now is the fraction in force since the latest read.
func (m *Monitor) mutexFractions(from time.Time, now int) []int {
	m.stateMu.Lock()
	var rates []int
	for _, b := range m.baselines {
		if b.time.After(from) {
			rates = append(rates, b.mutex.Rate)
		}
	}
	m.stateMu.Unlock()
	return fractionChanges(append(rates, now))
}

// fractionChanges returns rates, oldest first, with repeats and unknown
// (0) rates dropped, if that leaves two or more; else nil.
func fractionChanges(rates []int) []int {
	var out []int
	for _, r := range rates {
		if r > 0 && (len(out) == 0 || out[len(out)-1] != r) {
			out = append(out, r)
		}
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

func (m *Monitor) noteCollectErr(what, msg string) {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	if m.collectErrs[what] != msg {
		m.log.Warn("diag: collection failed", "what", what, "err", msg)
	}
	m.collectErrs[what] = msg
}

// WriteTrace writes the flight recorder's current window to w, as a trace
// file that `go tool trace` opens: a program that wants the recent
// execution trace (to dump it on overload, say) writes it through the
// monitor, which owns the process's one flight recorder, and shares the
// write with the monitor's own snapshots. It returns an error if the
// monitor records no trace ([Status].Trace says why), or none now (trace
// mode armed, until an early warning).
func (m *Monitor) WriteTrace(ctx context.Context, w io.Writer) (int64, error) {
	m.mu.Lock()
	rec, traceErr, running := m.rec, m.traceErr, m.running
	m.mu.Unlock()
	switch {
	case !running:
		return 0, ErrNotRunning
	case traceErr != nil:
		return 0, fmt.Errorf("diag: no trace: %w", traceErr)
	}
	data, err := rec.Window(ctx)
	if errors.Is(err, flightrec.ErrNotRecording) {
		return 0, fmt.Errorf("diag: no trace now: the flight recorder is armed (%s); LOCKDIAG_TRACE=on keeps a window always", m.trace.describe(time.Now()))
	}
	if err != nil {
		return 0, err
	}
	n, err := w.Write(data)
	return int64(n), err
}
