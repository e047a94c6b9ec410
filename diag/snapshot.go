package diag

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/felixge/fgprof"
	"github.com/google/pprof/profile"

	"github.com/lockdiag/lockdiag/flightrec"
	"github.com/lockdiag/lockdiag/internal/procfs"
	"github.com/lockdiag/lockdiag/internal/profdelta"
)

// SnapshotInfo describes a stored snapshot.
type SnapshotInfo struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Trigger  Trigger   `json:"trigger"`
	Headline string    `json:"headline"`
	// Partial says the analysis ran out of its budget.
	Partial bool `json:"partial,omitempty"`
	// Took is how long the collection took, wall profile included.
	Took time.Duration `json:"took"`
	// Files are the bundle's files.
	Files []FileInfo `json:"files"`
	// Bytes is the size of the bundle (zip).
	Bytes     int64  `json:"bytes"`
	InMemory  bool   `json:"in_memory"`
	OnDisk    bool   `json:"on_disk"`
	DiskError string `json:"disk_error,omitempty"`
}

// FileInfo is one file of a bundle.
type FileInfo struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// A Trigger says why a snapshot was taken.
type Trigger struct {
	// Kind is "manual" or "rule".
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	// Reason says who asked, for manual snapshots.
	Reason string `json:"reason,omitempty"`
	// Breach is the rule breach, for rule snapshots.
	Breach *Breach `json:"breach,omitempty"`
}

// String describes the trigger in a line.
func (t Trigger) String() string {
	if t.Breach != nil {
		b := t.Breach
		s := fmt.Sprintf("rule %q: %s = %s > %s", b.Rule, b.Signal, formatValue(b.Value), formatValue(b.Threshold))
		if b.Baseline != 0 {
			s += fmt.Sprintf(" (baseline %s)", formatValue(b.Baseline))
		}
		return s
	}
	if t.Reason != "" {
		return t.Kind + ": " + t.Reason
	}
	return t.Kind
}

// SnapshotOptions configures a snapshot taken with [Monitor.Snapshot].
type SnapshotOptions struct {
	// Reason is recorded in the snapshot, e.g. who asked for it.
	Reason string
	// Wall, if positive, adds a wall-clock profile over this long after
	// the call (subject to the goroutine guard).
	Wall time.Duration
}

// Meta is the content of a bundle's meta.json.
type Meta struct {
	SnapshotInfo
	Program    string `json:"program"`
	Host       string `json:"host"`
	PID        int    `json:"pid"`
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	Goroutines int    `json:"goroutines"`
	Window     Window `json:"window"`
	Trace      string `json:"trace"`
	// MutexProfileFraction and BlockProfileRate are the rates the
	// profiles were recorded at (0 = off).
	MutexProfileFraction int           `json:"mutex_profile_fraction"`
	BlockProfileRate     int           `json:"block_profile_rate"`
	Collection           []CollectNote `json:"collection"`
	Config               Config        `json:"config"`
}

// Window is the span of time a snapshot's trace and profile deltas cover.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// A CollectNote says what happened to one part of a snapshot.
type CollectNote struct {
	Part   string        `json:"part"`
	Status string        `json:"status"` // "ok", "skipped", "off" or "failed"
	Detail string        `json:"detail,omitempty"`
	Took   time.Duration `json:"took"`
}

// snapshotCall is the one snapshot in flight, shared by every request
// that arrives meanwhile.
type snapshotCall struct {
	done chan struct{}
	info SnapshotInfo
	err  error
}

// Snapshot takes a snapshot now and returns its description once it is
// stored. If a snapshot is already being taken, Snapshot waits for that one
// and returns it. If ctx ends first, Snapshot returns ctx's error and the
// snapshot is still stored.
func (m *Monitor) Snapshot(ctx context.Context, opts SnapshotOptions) (SnapshotInfo, error) {
	c, _, err := m.startSnapshot(Trigger{Kind: "manual", Time: time.Now(), Reason: opts.Reason}, opts.Wall)
	if err != nil {
		return SnapshotInfo{}, err
	}
	select {
	case <-c.done:
		return c.info, c.err
	case <-ctx.Done():
		return SnapshotInfo{}, ctx.Err()
	}
}

// startSnapshot starts a collection, or returns the one in flight with
// joined set.
func (m *Monitor) startSnapshot(trig Trigger, wall time.Duration) (c *snapshotCall, joined bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return nil, false, ErrNotRunning
	}
	if m.snap != nil {
		return m.snap, true, nil
	}
	c = &snapshotCall{done: make(chan struct{})}
	m.snap = c
	m.wg.Add(1)
	go m.collect(m.ctx, c, trig, wall)
	return c, false, nil
}

// Snapshots lists the stored snapshots, newest first, from memory and disk.
func (m *Monitor) Snapshots() []SnapshotInfo { return m.store.list() }

// SnapshotFile returns one file of a stored snapshot. id may be "latest".
// It returns an error wrapping [ErrNotFound] for an unknown id or file.
func (m *Monitor) SnapshotFile(id, name string) ([]byte, error) {
	return m.store.file(id, name)
}

// SnapshotZip returns a stored snapshot's bundle. id may be "latest".
func (m *Monitor) SnapshotZip(id string) ([]byte, error) {
	return m.store.zipBytes(id)
}

// ResolveID maps "latest" to the newest snapshot's id and checks that other
// ids are well formed.
func (m *Monitor) ResolveID(id string) (string, error) {
	return m.store.resolve(id)
}

func (m *Monitor) collect(ctx context.Context, c *snapshotCall, trig Trigger, wall time.Duration) {
	defer m.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			c.err = fmt.Errorf("diag: snapshot panicked: %v", r)
			m.log.Error("diag: snapshot panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		m.mu.Lock()
		m.snap = nil
		m.mu.Unlock()
		close(c.done)
		if c.err != nil {
			m.events.publish(Event{Type: EventSnapshotFailed, Time: time.Now(), Reason: c.err.Error()})
		}
	}()
	c.info, c.err = m.takeSnapshot(ctx, trig, wall)
	if c.err == nil {
		info := c.info
		m.events.publish(Event{Type: EventSnapshot, Time: time.Now(), Snapshot: &info})
		m.log.Info("diag: snapshot stored", "id", info.ID, "trigger", trig.String(), "headline", info.Headline)
	}
}

// collector gathers a bundle's files and notes.
type collector struct {
	files []bundleFile
	notes []CollectNote
}

type bundleFile struct {
	name string
	data []byte
}

func (c *collector) add(name string, data []byte) {
	c.files = append(c.files, bundleFile{name, data})
}

func (c *collector) note(part, status, detail string, start time.Time) {
	c.notes = append(c.notes, CollectNote{Part: part, Status: status, Detail: detail, Took: time.Since(start).Round(time.Microsecond)})
}

func (m *Monitor) takeSnapshot(ctx context.Context, trig Trigger, wall time.Duration) (SnapshotInfo, error) {
	if m.hooks.snapshot != nil {
		m.hooks.snapshot()
	}
	start := time.Now()
	id := m.store.nextID(start)
	var col collector
	m.mu.Lock()
	traceErr, mutexRate, blockRate := m.traceErr, m.mutexRate, m.blockRate
	m.mu.Unlock()

	// The trace first: it is the window before the trigger.
	var traceData []byte
	windowStart := start.Add(-m.cfg.TraceWindow)
	t0 := time.Now()
	traceStatus := ""
	if traceErr == nil {
		var err error
		traceData, err = m.rec.Snapshot(ctx)
		if err != nil {
			traceErr = err
			col.note("trace.out", "failed", err.Error(), t0)
		} else {
			col.add("trace.out", traceData)
			col.note("trace.out", "ok", fmt.Sprintf("%d bytes", len(traceData)), t0)
		}
	} else {
		col.note("trace.out", "off", traceErr.Error(), t0)
	}
	if traceErr != nil {
		traceStatus = "unavailable: " + traceErr.Error()
	} else {
		traceStatus = fmt.Sprintf("%d bytes, window up to %v", len(traceData), m.cfg.TraceWindow)
	}

	// Profile deltas over the same window.
	mutexDelta, blockDelta, profStart := m.profileDeltas(&col, start, windowStart, mutexRate, blockRate)
	if !profStart.IsZero() {
		windowStart = profStart
	}

	// What is parked on locks right now, and the goroutine dump.
	goroutines := runtime.NumGoroutine()
	var waitSites []WaitSite
	if goroutines <= m.cfg.GoroutineGuard {
		_, waitSites = newWaiterScanner().scan()
	}
	m.goroutineDumps(&col, goroutines)

	// Threads, at the trigger.
	t0 = time.Now()
	var threadScan *procfs.Scan
	if m.cfg.ThreadsInterval < 0 {
		col.note("threads.json", "off", "thread sampling is off", t0)
	} else {
		scan, err := scanNow()
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			col.note("threads.json", "off", "no /proc on "+runtime.GOOS, t0)
		case err != nil:
			col.note("threads.json", "failed", err.Error(), t0)
		default:
			threadScan = scan
			if data, err := threadsJSON(scan, m.threads.series(windowStart)); err == nil {
				col.add("threads.json", data)
				col.note("threads.json", "ok", fmt.Sprintf("%d threads", len(scan.Threads)), t0)
			}
		}
	}

	// The wall-clock profile runs after the trigger.
	m.wallProfile(ctx, &col, wall, goroutines)

	end := time.Now()
	tl := m.tl.since(windowStart, 0)
	if data, err := timelineJSON(m.cfg.Interval, trig.Time, tl); err == nil {
		col.add("timeline.json", data)
	}

	// The analysis, off the sampling goroutine, with a budget.
	t0 = time.Now()
	opts := flightrec.AnalyzeOptions{
		Mutex:         mutexDelta,
		Block:         blockDelta,
		MutexFraction: mutexRate,
		BlockRate:     blockRate,
		Budget:        m.cfg.AnalysisBudget,
		Cancel:        ctx.Done(), // Stop does not wait for a long analysis
	}
	var traceReader io.Reader
	if traceData != nil {
		traceReader = bytes.NewReader(traceData)
	} else {
		opts.TraceUnavailable = traceErr.Error()
	}
	analysis, err := flightrec.Analyze(traceReader, opts)
	if err != nil {
		col.note("analysis", "failed", err.Error(), t0)
	} else {
		col.note("analysis", "ok", "", t0)
	}
	if analysis == nil {
		analysis = &flightrec.Report{}
	}

	rep := &Report{
		ID:          id,
		Time:        start,
		Trigger:     trig,
		Analysis:    analysis,
		WaitSites:   waitSites,
		Collection:  col.notes,
		Trace:       traceStatus,
		WindowStart: windowStart,
		WindowEnd:   start,
	}
	if threadScan != nil {
		rep.Threads = newThreadsSection(threadScan, analysis)
	}
	rep.Headline = rep.headline()
	var txt bytes.Buffer
	if err := rep.WriteText(&txt); err != nil {
		return SnapshotInfo{}, fmt.Errorf("diag: writing report: %w", err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("diag: encoding report: %w", err)
	}
	col.add("report.txt", txt.Bytes())
	col.add("report.json", js)

	info := SnapshotInfo{
		ID:       id,
		Time:     start,
		Trigger:  trig,
		Headline: rep.Headline,
		Partial:  analysis.Partial,
		Took:     end.Sub(start).Round(time.Millisecond),
	}
	for _, f := range col.files {
		info.Files = append(info.Files, FileInfo{Name: f.name, Bytes: int64(len(f.data))})
	}
	info.Files = append(info.Files, FileInfo{Name: "meta.json"})
	meta := m.meta(info, col.notes, traceStatus, Window{windowStart, start}, mutexRate, blockRate, goroutines)
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("diag: encoding meta: %w", err)
	}
	info.Files[len(info.Files)-1].Bytes = int64(len(metaJSON))
	col.files = append([]bundleFile{{"meta.json", metaJSON}}, col.files...)

	zipData, err := zipFiles(col.files)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("diag: building bundle: %w", err)
	}
	return m.store.add(info, zipData), nil
}

// profileDeltas adds mutex.pb.gz and block.pb.gz: the contention recorded
// between the profile read closest to windowStart and now. It returns the
// deltas and the start of the window they cover.
func (m *Monitor) profileDeltas(col *collector, now, windowStart time.Time, mutexRate, blockRate int) (mutex, block *profile.Profile, from time.Time) {
	base, haveBase := m.baselineAt(windowStart)
	if haveBase {
		from = base.time
	}
	one := func(name string, rate int, old profdelta.Capture) *profile.Profile {
		t0 := time.Now()
		file := name + ".pb.gz"
		if rate <= 0 {
			detail := "mutex profile fraction is 0"
			if name == "block" {
				detail = "block profiling is off (set LOCKDIAG_BLOCK_RATE, e.g. 10us)"
			}
			col.note(file, "off", detail, t0)
			return nil
		}
		cur, err := profdelta.Read(name)
		if err != nil {
			col.note(file, "failed", err.Error(), t0)
			return nil
		}
		d, err := profdelta.Delta(old, cur)
		if err != nil {
			col.note(file, "failed", err.Error(), t0)
			return nil
		}
		var buf bytes.Buffer
		if err := d.Write(&buf); err != nil {
			col.note(file, "failed", err.Error(), t0)
			return nil
		}
		col.add(file, buf.Bytes())
		detail := fmt.Sprintf("delta over %v, rate %d", now.Sub(from).Round(time.Millisecond), rate)
		if old.Data == nil {
			detail = fmt.Sprintf("cumulative since the program started (no earlier read), rate %d", rate)
		}
		col.note(file, "ok", detail, t0)
		return d
	}
	mutex = one("mutex", mutexRate, base.mutex)
	block = one("block", blockRate, base.block)
	return mutex, block, from
}

// fullDumpMax is the most goroutines for which goroutines-full.txt (the
// debug=2 form, with wait reasons and durations) is written: it stops the
// world for the whole dump.
const fullDumpMax = 1000

func (m *Monitor) goroutineDumps(col *collector, goroutines int) {
	t0 := time.Now()
	if goroutines > m.cfg.GoroutineGuard {
		// About 10µs per goroutine: a second of CPU at 100k.
		col.note("goroutines.txt", "skipped", fmt.Sprintf("%d goroutines is above the guard of %d (LOCKDIAG_GOROUTINE_GUARD)", goroutines, m.cfg.GoroutineGuard), t0)
		col.note("goroutines-full.txt", "skipped", "above the guard", t0)
		return
	}
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		col.note("goroutines.txt", "failed", err.Error(), t0)
	} else {
		col.add("goroutines.txt", buf.Bytes())
		col.note("goroutines.txt", "ok", fmt.Sprintf("%d goroutines", goroutines), t0)
	}
	t0 = time.Now()
	limit := min(fullDumpMax, m.cfg.GoroutineGuard)
	if goroutines > limit {
		col.note("goroutines-full.txt", "skipped", fmt.Sprintf("%d goroutines is above %d; the full dump stops the world", goroutines, limit), t0)
		return
	}
	var full bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&full, 2); err != nil {
		col.note("goroutines-full.txt", "failed", err.Error(), t0)
		return
	}
	col.add("goroutines-full.txt", full.Bytes())
	col.note("goroutines-full.txt", "ok", "", t0)
}

func (m *Monitor) wallProfile(ctx context.Context, col *collector, wall time.Duration, goroutines int) {
	t0 := time.Now()
	switch {
	case wall <= 0:
		col.note("wall.pb.gz", "off", "not requested", t0)
		return
	case goroutines > m.cfg.GoroutineGuard:
		col.note("wall.pb.gz", "skipped", fmt.Sprintf("%d goroutines is above the guard of %d", goroutines, m.cfg.GoroutineGuard), t0)
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
		col.note("wall.pb.gz", "failed", err.Error(), t0)
		return
	}
	col.add("wall.pb.gz", buf.Bytes())
	col.note("wall.pb.gz", "ok", fmt.Sprintf("fgprof over %v after the trigger", time.Since(t0).Round(time.Millisecond)), t0)
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

func (m *Monitor) meta(info SnapshotInfo, notes []CollectNote, trace string, w Window, mutexRate, blockRate, goroutines int) Meta {
	host, _ := os.Hostname()
	prog := ""
	if len(os.Args) > 0 {
		prog = os.Args[0]
	}
	return Meta{
		SnapshotInfo:         info,
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
		Collection:           notes,
		Config:               m.cfg,
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

// zipFiles builds the bundle. Compressed files are stored as they are;
// the rest is deflated at the fastest level: the bundle is built on the
// host's CPU.
func zipFiles(files []bundleFile) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	now := time.Now()
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: now}
		if isCompressed(f.name) {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	// A right-sized copy: the buffer's array can be twice as long, and the
	// memory ring counts lengths.
	return bytes.Clone(buf.Bytes()), nil
}

func isCompressed(name string) bool {
	n := len(name)
	return n > 3 && name[n-3:] == ".gz"
}
