package diag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/felixge/fgprof"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/internal/coalesce"
	"github.com/lockdiag/lockdiag/internal/memlimit"
	"github.com/lockdiag/lockdiag/internal/profdelta"
	"github.com/lockdiag/lockdiag/internal/textfmt"
	"github.com/lockdiag/lockdiag/lockreport"
)

// SnapshotInfo describes a stored snapshot. The store writes it; it is
// what /debug/locks/snapshots lists.
type SnapshotInfo struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Trigger  bundle.Trigger `json:"trigger"`
	Headline string         `json:"headline"`
	// Partial says the analysis did not read the whole window.
	Partial bool `json:"partial,omitempty"`
	// Took is how long the collection took, wall profile included.
	Took time.Duration `json:"took"`
	// Files are the bundle's files.
	Files []bundle.File `json:"files"`
	// Bytes is the size of the bundle (zip).
	Bytes     int64  `json:"bytes"`
	InMemory  bool   `json:"in_memory"`
	OnDisk    bool   `json:"on_disk"`
	DiskError string `json:"disk_error,omitempty"`
}

// SnapshotOptions configures a snapshot taken with [Monitor.Snapshot].
type SnapshotOptions struct {
	// Reason is recorded in the snapshot, e.g. who asked for it.
	Reason string
	// Wall, if positive, adds a wall-clock profile over this long after
	// the call (subject to the goroutine guard).
	Wall time.Duration
}

// Snapshot takes a snapshot now and returns its description once it is
// stored. If a snapshot is already being taken, Snapshot waits for that one
// and returns it. If ctx ends first, Snapshot returns ctx's error and the
// snapshot is still stored.
func (m *Monitor) Snapshot(ctx context.Context, opts SnapshotOptions) (SnapshotInfo, error) {
	trig := bundle.Trigger{Kind: bundle.TriggerManual, Time: time.Now(), Reason: opts.Reason}
	c, _, err := m.startSnapshot(trig, opts.Wall)
	if err != nil {
		return SnapshotInfo{}, err
	}
	return c.Wait(ctx)
}

// startSnapshot starts a collection, or returns the one in flight with
// joined set.
func (m *Monitor) startSnapshot(trig bundle.Trigger, wall time.Duration) (c snapshotCall, joined bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return nil, false, ErrNotRunning
	}
	ctx := m.ctx
	c, joined = m.snaps.Do(func() (SnapshotInfo, error) { return m.collect(ctx, trig, wall) })
	return c, joined, nil
}

// Snapshots lists the stored snapshots, newest first, from memory and disk.
func (m *Monitor) Snapshots() []SnapshotInfo { return m.store.list() }

// Bundle returns a stored snapshot's bundle; id may be "latest". It
// returns an error wrapping [ErrNotFound] for an unknown or malformed id.
func (m *Monitor) Bundle(id string) (*bundle.Bundle, error) { return m.store.get(id) }

// Report returns a stored snapshot's analysis; id may be "latest".
func (m *Monitor) Report(id string) (*lockreport.Report, error) {
	b, err := m.store.get(id)
	if err != nil {
		return nil, err
	}
	return b.Report()
}

// collect takes a snapshot and stores it; it runs in the snapshot group's
// goroutine. A panic in it is logged and becomes the snapshot's error.
func (m *Monitor) collect(ctx context.Context, trig bundle.Trigger, wall time.Duration) (info SnapshotInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("diag: snapshot panicked: %v", r)
			m.log.Error("diag: snapshot panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		m.counts.snapshot(trig.Kind, err)
		if err != nil {
			m.events.publish(Event{Type: EventSnapshotFailed, Time: time.Now(), Reason: err.Error()})
			return
		}
		m.events.publish(Event{Type: EventSnapshot, Time: time.Now(), Snapshot: &info})
		m.log.Info("diag: snapshot stored", "id", info.ID, "trigger", trig.String(), "headline", info.Headline)
	}()
	return m.takeSnapshot(ctx, trig, wall)
}

func (m *Monitor) takeSnapshot(ctx context.Context, trig bundle.Trigger, wall time.Duration) (SnapshotInfo, error) {
	if m.hooks.snapshot != nil {
		m.hooks.snapshot()
	}
	start := time.Now()
	var b bundle.Builder
	m.mu.Lock()
	traceErr, mutexRate, blockRate := m.traceErr, m.mutexRate, m.blockRate
	m.mu.Unlock()
	// The snapshot's garbage (the window's copy, its parse, the zip) is
	// collected as it goes: the runtime's soft memory limit is lowered to
	// what the process holds now plus snapshotMemory windows until the
	// snapshot is done (unless the host's limit is lower), instead of
	// letting the heap double over the recorder's ring first.
	window := m.lastTraceSize.Load()
	if window == 0 {
		window = m.cfg.TraceMaxBytes
	}
	defer memlimit.Guard(snapshotMemory * window)()

	// The trace: when the recorder has recorded for a window already, the
	// window before the trigger, taken first; else (armed, or just started)
	// the incident as it goes on, taken last, after at least minArmed of
	// recording.
	opts := lockreport.Options{MutexFraction: mutexRate, BlockRate: blockRate, MainModule: mainModule()}
	windowStart := start.Add(-m.cfg.TraceWindow)
	var since time.Time
	traceLater := false
	if traceErr == nil {
		since = m.trace.recordingSince()
		if since.IsZero() {
			since = m.trace.arm(start, "a snapshot ("+string(trig.Kind)+")")
		}
		traceLater = m.cfg.Trace != TraceOn && start.Sub(since) < m.cfg.TraceWindow
		if since.IsZero() {
			traceErr = errors.New("the flight recorder could not start")
		}
	}
	// The window, deflated as soon as it is taken: the snapshot keeps only
	// the compressed bytes (about a third), which the analysis reads back,
	// so that the window's own bytes are garbage before the parse.
	var traceZ *bundle.Deflated
	var traceStatus string
	var span traceSpan // set with the trace
	takeTrace := func() {
		t0 := time.Now()
		if traceErr != nil {
			b.Note(bundle.TraceFile, "off", traceErr.Error(), t0)
			traceStatus = "unavailable: " + traceErr.Error()
			opts.TraceUnavailable = traceErr.Error()
			return
		}
		if d := minArmed - time.Since(since); traceLater && d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
			}
		}
		// The window is copied out of the recorder, then into the zip:
		// near the memory limit, it is left out.
		expect := m.lastTraceSize.Load()
		if expect == 0 {
			expect = m.cfg.TraceMaxBytes
		}
		if h, ok := memlimit.Tightest(); ok && h.Left() < 2*expect+expect/4 {
			why := fmt.Sprintf("left out: the process has %s left under its memory limit (%s), and a window of about %s needs twice that for a moment",
				textfmt.Bytes(h.Left()), h, textfmt.Bytes(expect))
			b.Note(bundle.TraceFile, "skipped", why, t0)
			traceStatus, opts.TraceUnavailable = why, why
			return
		}
		data, err := m.rec.Window(ctx)
		if err == nil {
			traceZ, err = bundle.Deflate(data)
		}
		if err != nil {
			traceErr = err
			b.Note(bundle.TraceFile, "failed", err.Error(), t0)
			traceStatus = "unavailable: " + err.Error()
			opts.TraceUnavailable = err.Error()
			return
		}
		m.lastTraceSize.Store(int64(len(data)))
		b.AddDeflated(bundle.TraceFile, traceZ)
		b.Note(bundle.TraceFile, "ok", fmt.Sprintf("%d bytes (%s deflated)", len(data), textfmt.Bytes(traceZ.Compressed())), t0)
		taken := time.Now()
		span = traceSpan{size: len(data), from: taken.Add(-m.cfg.TraceWindow), to: taken, since: since, trigger: trig.Time,
			window: m.cfg.TraceWindow, maxBytes: m.cfg.TraceMaxBytes, mode: m.trace.describe(taken)}
		if since.After(span.from) {
			span.from = since
		}
		traceStatus = span.coverage()
	}
	if !traceLater {
		takeTrace()
	}

	// Profile deltas over the same window.
	var profStart time.Time
	opts.MutexProfile, opts.BlockProfile, opts.MutexFractions, profStart = m.profileDeltas(&b, start, windowStart, mutexRate, blockRate)
	if !profStart.IsZero() {
		windowStart = profStart
	}

	// What is parked on locks right now (with what the sampler knows of
	// their progress), and the goroutine dumps.
	goroutines := runtime.NumGoroutine()
	opts.Parked = m.parkedNow()
	// The named locks are read next to the dump, so that their holders'
	// ids are found in it.
	t0 := time.Now()
	opts.NamedLocks = m.namedNow()
	// Naming the holder of a stuck lock, or a deadlock, needs the full
	// dump: for those it is worth a longer pause.
	fullLimit := m.cfg.GoroutineGuard
	if trig.Breach != nil && trig.Breach.Signal == StuckWaiters.String() {
		fullLimit *= stuckDumpFactor
	}
	opts.Goroutines = m.goroutineDumps(&b, goroutines, fullLimit)
	var lost int
	opts.Inversions, lost = inversionsNow()
	if len(opts.NamedLocks) > 0 || len(opts.Inversions) > 0 {
		nl := bundle.NamedLocks{Time: t0, StuckAfter: m.cfg.StuckAfter.String(), Locks: opts.NamedLocks,
			Inversions: opts.Inversions, InversionsLost: lost}
		if data, err := json.MarshalIndent(nl, "", "  "); err != nil {
			b.Note(bundle.NamedLocksFile, "failed", err.Error(), t0)
		} else {
			b.Add(bundle.NamedLocksFile, data)
			b.Note(bundle.NamedLocksFile, "ok", fmt.Sprintf("%s, %s", textfmt.Plural(len(nl.Locks), "named lock", "named locks"),
				textfmt.Plural(len(nl.Inversions), "lock-order inversion", "lock-order inversions")), t0)
		}
	}
	m.goroutineLeakProfile(&b, goroutines)

	// Threads, at the trigger.
	t0 = time.Now()
	if m.cfg.ThreadsInterval < 0 {
		b.Note(bundle.ThreadsFile, "off", "thread sampling is off", t0)
	} else {
		scan, err := scanNow()
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			b.Note(bundle.ThreadsFile, "off", "no /proc on "+runtime.GOOS, t0)
		case err != nil:
			b.Note(bundle.ThreadsFile, "failed", err.Error(), t0)
		default:
			opts.Threads = threadsForReport(scan)
			if data, err := threadsJSON(scan, m.threads.series(windowStart)); err == nil {
				b.Add(bundle.ThreadsFile, data)
				b.Note(bundle.ThreadsFile, "ok", fmt.Sprintf("%d threads", len(scan.Threads)), t0)
			}
		}
	}

	// The wall-clock profile runs after the trigger.
	m.wallProfile(ctx, &b, wall, goroutines)
	if traceLater {
		takeTrace()
	}

	end := time.Now()
	if data, err := timelineJSON(m.cfg.Interval, trig.Time, m.tl.since(windowStart, 0)); err == nil {
		b.Add(bundle.TimelineFile, data)
	}

	// The analysis, off the sampling goroutine, with a time limit; Stop
	// cancels ctx, so it does not wait for a long analysis either.
	t0 = time.Now()
	actx, cancel := context.WithTimeout(ctx, m.cfg.AnalysisBudget)
	var traceReader io.Reader
	if traceZ != nil {
		traceReader = traceZ.Open()
	}
	// Parsing a window takes up to three times its size for a moment:
	// near the process's memory limit, the trace is kept for an offline
	// analysis instead.
	skipped := ""
	if h, ok := memlimit.Tightest(); ok && traceZ != nil && h.Left() < analysisFactor*traceZ.Size() {
		skipped = fmt.Sprintf("the trace was not analyzed here: the process has %s left under its memory limit (%s), and parsing this %s window needs about %s; `lockdiag analyze` reads the bundle's trace.out elsewhere",
			textfmt.Bytes(h.Left()), h, textfmt.Bytes(traceZ.Size()), textfmt.Bytes(analysisFactor*traceZ.Size()))
		traceReader, opts.TraceUnavailable = nil, skipped
	}
	rep, err := lockreport.Analyze(actx, traceReader, opts)
	cancel()
	switch {
	case skipped != "":
		b.Note("analysis", "skipped", skipped, t0)
	case err != nil:
		b.Note("analysis", "failed", err.Error(), t0)
	default:
		b.Note("analysis", "ok", "", t0)
	}
	if rep != nil && span.size > 0 && rep.Window != nil && rep.Window.Events > 0 && !rep.Partial {
		traceStatus = exactSpan(span, *rep.Window).coverage()
	}

	meta := m.meta(start, trig, traceStatus, bundle.Window{Start: windowStart, End: start}, mutexRate, blockRate, goroutines)
	meta.Took = end.Sub(start).Round(time.Millisecond)
	meta.MutexProfileFractions = opts.MutexFractions
	zipData, meta, err := b.Build(meta, rep)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("diag: %w", err)
	}
	return m.store.add(meta, zipData), nil
}

// profileDeltas adds mutex.pb.gz and block.pb.gz: the contention recorded
// between the profile read closest to windowStart and now. It returns the
// encoded deltas, the mutex profile fractions in force over the window if
// the fraction changed within it (see [Monitor.mutexFractions]), and the
// start of the window they cover.
func (m *Monitor) profileDeltas(b *bundle.Builder, now, windowStart time.Time, mutexRate, blockRate int) (mutex, block []byte, fractions []int, from time.Time) {
	base, haveBase := m.baselineAt(windowStart)
	if haveBase {
		from = base.time
	}
	one := func(name, file string, rate int, old profdelta.Capture) []byte {
		t0 := time.Now()
		if rate <= 0 {
			detail := "mutex profile fraction is 0"
			if name == "block" {
				detail = "block profiling is off (set LOCKDIAG_BLOCK_RATE, e.g. 10us)"
			}
			b.Note(file, "off", detail, t0)
			return nil
		}
		if name == "mutex" && old.Data != nil {
			fractions = m.mutexFractions(from, runtime.SetMutexProfileFraction(-1))
		}
		cur, err := profdelta.Read(name)
		if err != nil {
			b.Note(file, "failed", err.Error(), t0)
			return nil
		}
		d, err := profdelta.Delta(old, cur)
		if err != nil {
			b.Note(file, "failed", err.Error(), t0)
			return nil
		}
		var buf bytes.Buffer
		if err := d.Write(&buf); err != nil {
			b.Note(file, "failed", err.Error(), t0)
			return nil
		}
		b.Add(file, buf.Bytes())
		rates := strconv.Itoa(rate)
		if len(fractions) > 1 && name == "mutex" {
			rates = fractionsText(fractions, rate) + " (the fraction changed within the window)"
		}
		detail := fmt.Sprintf("delta over %v, rate %s", now.Sub(from).Round(time.Millisecond), rates)
		if old.Data == nil {
			detail = fmt.Sprintf("cumulative since the program started (no earlier read), rate %d", rate)
		}
		b.Note(file, "ok", detail, t0)
		return buf.Bytes()
	}
	mutex = one("mutex", bundle.MutexFile, mutexRate, base.mutex)
	block = one("block", bundle.BlockFile, blockRate, base.block)
	if mutex == nil {
		fractions = nil
	}
	return mutex, block, fractions, from
}

// parkedNow scans the goroutines parked on locks now and marks the sites
// the sampler has seen make no progress.
func (m *Monitor) parkedNow() []lockreport.ParkedSite {
	_, sites := newWaiterScanner().scan()
	m.stateMu.Lock()
	known := m.waitSites
	since := time.Since(m.lastWaiters)
	m.stateMu.Unlock()
	for i := range sites {
		for _, k := range known {
			if k.NoProgress > 0 && k.Kind == sites[i].Kind && k.Func == sites[i].Func && k.File == sites[i].File && k.Line == sites[i].Line && k.Named == sites[i].Named {
				sites[i].NoProgress = k.NoProgress + since
			}
		}
	}
	return sites
}

// goroutineDumps adds goroutines.txt (debug=1: stacks with counts, from a
// goroutine profile, about 1µs per goroutine without a long pause) and,
// up to the goroutine guard, goroutines-full.txt (debug=2: every goroutine
// with its id, wait reason and arguments, which stops the world for about
// 6µs per goroutine). It returns the fuller of the two, for the analysis
// to name the holders of the locks goroutines wait for.
func (m *Monitor) goroutineDumps(b *bundle.Builder, goroutines, fullLimit int) []byte {
	t0 := time.Now()
	var buf bytes.Buffer
	var best []byte
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		b.Note(bundle.GoroutinesFile, "failed", err.Error(), t0)
	} else {
		best = buf.Bytes()
		b.Add(bundle.GoroutinesFile, best)
		b.Note(bundle.GoroutinesFile, "ok", fmt.Sprintf("%d goroutines", goroutines), t0)
	}
	t0 = time.Now()
	if goroutines > fullLimit {
		b.Note(bundle.GoroutinesFullFile, "skipped", fmt.Sprintf("%d goroutines is above the limit of %d (LOCKDIAG_GOROUTINE_GUARD, times %d for a stuck lock); the full dump stops the world", goroutines, fullLimit, stuckDumpFactor), t0)
		return best
	}
	var full bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&full, 2); err != nil {
		b.Note(bundle.GoroutinesFullFile, "failed", err.Error(), t0)
		return best
	}
	b.Add(bundle.GoroutinesFullFile, full.Bytes())
	b.Note(bundle.GoroutinesFullFile, "ok", "", t0)
	return full.Bytes()
}

func (m *Monitor) wallProfile(ctx context.Context, b *bundle.Builder, wall time.Duration, goroutines int) {
	t0 := time.Now()
	switch {
	case wall <= 0:
		b.Note(bundle.WallFile, "off", "not requested", t0)
		return
	case goroutines > m.cfg.GoroutineGuard:
		b.Note(bundle.WallFile, "skipped", fmt.Sprintf("%d goroutines is above the guard of %d", goroutines, m.cfg.GoroutineGuard), t0)
		return
	}
	var buf bytes.Buffer
	stop := fgprof.Start(&buf, fgprof.FormatPprof)
	timer := time.NewTimer(max(wall, minWall))
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
		// fgprof samples at 99 Hz and cannot export a profile without a
		// sample (it divides by their count): give it its first one.
		first := time.NewTimer(max(0, minWall-time.Since(t0)))
		<-first.C
	}
	if err := stopWall(stop); err != nil {
		b.Note(bundle.WallFile, "failed", err.Error(), t0)
		return
	}
	b.Add(bundle.WallFile, buf.Bytes())
	b.Note(bundle.WallFile, "ok", fmt.Sprintf("fgprof over %v after the trigger", time.Since(t0).Round(time.Millisecond)), t0)
}

// minWall is the shortest wall-clock profile: two of fgprof's samples.
const minWall = 25 * time.Millisecond

// stopWall stops fgprof and turns a panic in its export into an error.
func stopWall(stop func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fgprof: %v", r)
		}
	}()
	return stop()
}

// meta describes the snapshot being taken, for meta.json.
func (m *Monitor) meta(start time.Time, trig bundle.Trigger, trace string, w bundle.Window, mutexRate, blockRate, goroutines int) bundle.Meta {
	host, _ := os.Hostname()
	prog := ""
	if len(os.Args) > 0 {
		prog = os.Args[0]
	}
	cfg, _ := m.cfg.MarshalJSON()
	return bundle.Meta{
		ID:                   m.store.nextID(start),
		Time:                 start,
		Trigger:              trig,
		Program:              prog,
		Host:                 host,
		PID:                  os.Getpid(),
		GoVersion:            runtime.Version(),
		GOOS:                 runtime.GOOS,
		GOARCH:               runtime.GOARCH,
		GOMAXPROCS:           runtime.GOMAXPROCS(0),
		NumCPU:               runtime.NumCPU(),
		Goroutines:           goroutines,
		Window:               w,
		Trace:                trace,
		MutexProfileFraction: mutexRate,
		BlockProfileRate:     blockRate,
		Config:               cfg,
	}
}

// timelineJSON encodes the samples of a snapshot with the signals' names
// and units.
func timelineJSON(interval time.Duration, trigger time.Time, samples []Sample) ([]byte, error) {
	type signal struct {
		Name string `json:"name"`
		Unit string `json:"unit,omitempty"`
		Help string `json:"help"`
	}
	out := struct {
		Interval string    `json:"interval"`
		Trigger  time.Time `json:"trigger"`
		Signals  []signal  `json:"signals"`
		Samples  []Sample  `json:"samples"`
	}{Interval: interval.String(), Trigger: trigger, Samples: samples}
	for _, s := range Signals() {
		out.Signals = append(out.Signals, signal{s.String(), s.Unit(), s.Help()})
	}
	return json.Marshal(out)
}

// analysisFactor is how many times a trace window's size its analysis
// needs for a moment (the parser's working set for a dense window,
// measured at about 2.5 times).
const analysisFactor = 3

// snapshotMemory is how many trace windows of memory a snapshot may add
// to the process, by the soft limit it sets while it runs.
const snapshotMemory = 3

// stuckDumpFactor raises the goroutine guard for the full dump of a
// snapshot taken for a stuck lock: its holder, or the deadlock, can only be
// named from it, which is worth up to about 0.3s of stopped world at the
// default guard (50k goroutines) once per incident.
const stuckDumpFactor = 10

// minArmed is the least trace an armed recorder gives a snapshot: the
// incident as it goes on, after the trigger.
const minArmed = time.Second

// A traceSpan is what a snapshot's trace covers, for its meta's trace
// line.
type traceSpan struct {
	size     int
	from, to time.Time // the span the recorder's window reaches at most, or (exact) its first and last events
	exact    bool
	since    time.Time // when the recorder started
	trigger  time.Time
	window   time.Duration // the recorder's age limit
	maxBytes int64         // its byte limit
	mode     string
}

// traceCoverage says what a snapshot's trace covers, around its trigger,
// and in which trace mode it was recorded. Before the analysis the span is
// the recorder's (its age limit, or since it started), which its byte limit
// can cut short on a busy process: it is said as "up to". The analysis
// reads the first and last events' times, and then the line gives those,
// and says when the byte limit is what cut the window short.
func (t traceSpan) coverage() string {
	before, after := t.trigger.Sub(t.from), t.to.Sub(t.trigger)
	upTo := "up to "
	if t.exact {
		upTo = ""
	}
	cover := fmt.Sprintf("%s covering %s%s before the trigger and %s after", textfmt.Bytes(int64(t.size)), upTo,
		textfmt.Dur(max(before, 0).Round(time.Millisecond)), textfmt.Dur(max(after, 0).Round(time.Millisecond)))
	if before <= 0 {
		cover = fmt.Sprintf("%s covering only the %s after the trigger (the recorder was armed, and started %s after it)",
			textfmt.Bytes(int64(t.size)), textfmt.Dur(t.to.Sub(t.from).Round(time.Millisecond)), textfmt.Dur(-t.trigger.Sub(t.since).Round(time.Millisecond)))
	}
	// The recorder started well before the first event it kept, which is
	// well within its age limit: its byte limit dropped the older ones.
	if t.exact && t.maxBytes > 0 && t.from.Sub(t.since) > time.Second && t.to.Sub(t.from) < t.window*9/10 {
		cover += fmt.Sprintf(" (older events were dropped for the window's size limit, %s)", textfmt.Bytes(t.maxBytes))
	}
	return cover + "; mode " + t.mode
}

// exactSpan returns span with the first and last events' times of the
// analyzed window w, when the trace had a clock snapshot (Go 1.25 on).
func exactSpan(span traceSpan, w lockreport.Window) traceSpan {
	if w.Start.IsZero() || w.End.IsZero() || w.End.Before(w.Start) {
		return span
	}
	span.from, span.to, span.exact = w.Start, w.End, true
	return span
}

// snapshotCall is a snapshot being taken, shared by every request that
// arrives meanwhile.
type snapshotCall = *coalesce.Call[SnapshotInfo]

// mainModule is the program's module path, for the report to tell the
// program's own functions from its libraries'.
func mainModule() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Path
	}
	return ""
}
