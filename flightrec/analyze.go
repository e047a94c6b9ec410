package flightrec

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"golang.org/x/exp/trace"
)

// AnalyzeOptions configures [Analyze]. The zero value analyzes a trace
// alone with the defaults.
type AnalyzeOptions struct {
	// Mutex and Block are the mutex and block profile deltas over the same
	// window as the trace. Either may be nil (not collected).
	Mutex, Block *profile.Profile

	// MutexFraction is the [runtime.SetMutexProfileFraction] in effect
	// while Mutex was collected (0: the mutex profile was off).
	// BlockRate is the [runtime.SetBlockProfileRate] in effect (0: off).
	// They are printed in the report and decide what it says is missing.
	MutexFraction int
	BlockRate     int

	// TraceUnavailable, when there is no trace, says why (for example
	// "the host program owns the flight recorder"). It is printed in the
	// report.
	TraceUnavailable string

	// Top is how many sites to list. If zero, 10.
	Top int

	// KeepWaits is how many individual waits to keep in the report (the
	// longest lock waits, and as many other synchronization waits). If
	// zero, 20.
	KeepWaits int

	// Budget bounds the wall time spent reading the trace. When it runs
	// out the analysis stops where it is and the report is marked
	// Partial. It is checked between events: the parser reads a whole
	// trace generation (about a second of trace) at once, which it cannot
	// interrupt. If zero, 5s.
	Budget time.Duration

	// Cancel, if not nil, stops the analysis when it is closed, as the
	// end of the budget does (for a program that is shutting down).
	Cancel <-chan struct{}
}

func (o AnalyzeOptions) withDefaults() AnalyzeOptions {
	if o.Top <= 0 {
		o.Top = 10
	}
	if o.KeepWaits <= 0 {
		o.KeepWaits = 20
	}
	if o.Budget <= 0 {
		o.Budget = 5 * time.Second
	}
	return o
}

// Tuning of the analysis. The values are explained where they are used.
const (
	// A woken Mutex waiter that finds the semaphore taken parks again at
	// once inside the same runtime semacquire call (well under a
	// microsecond of running); the block profile counts that as one wait,
	// and so do we when the goroutine parks again within mergeWindow of
	// running. A waiter that gets through the semaphore but loses the lock
	// spins and calls semacquire anew (a few µs): a new wait for the block
	// profile, and for us. Against the block profile of the stdlib sync
	// Mutex benchmarks (cmd/lockdiag TestAgreesWithBlockProfile, -cpu=4 on
	// 2 CPUs) the trace's total was 0.90-0.96 with 2µs, 1.00-1.05 with
	// 5µs, and 1.05-1.41 with 20µs (which merged the retries too).
	mergeWindow = 5 * time.Microsecond
	// Consecutive wake-ups by one RWMutex.Unlock are this close together.
	burstGap = 100 * time.Microsecond
	// maxThreads bounds the threads tracked for ThreadActivity.
	maxThreads = 4096
	// maxBlocks is how many recent non-lock blocks are kept per goroutine
	// to find a lock held across a blocking call.
	maxBlocks = 4
	// budgetEvery is how often (in events) the time budget is checked.
	budgetEvery = 1024
)

//go:generate go run ./internal/gentraces -out testdata

// ErrUnreadableTrace is wrapped by the error [Analyze] returns when the
// trace cannot be read at all (bad header, unsupported Go version, nothing
// but garbage). The report is then built from the profiles alone.
var ErrUnreadableTrace = errors.New("flightrec: unreadable trace")

// Analyze reads a Go execution trace (a flight-recorder window,
// runtime/trace.Start output, `go test -trace`, /debug/pprof/trace) and the
// profile deltas in opts, and explains the lock contention they show.
//
// trace may be nil: the report is then built from the profiles alone and
// says why the trace is missing (opts.TraceUnavailable). A trace that
// cannot be read at all gives an error wrapping [ErrUnreadableTrace]
// together with a non-nil report built from the profiles, which states the
// error. A trace that breaks part way, or a Budget that runs out, gives a
// Partial report and a nil error.
//
// Memory is bounded by the window's distinct stacks, call sites and
// goroutines, not by its number of events: waits are aggregated as they
// are read, and only the longest ones are kept individually.
//
// # How waits are counted
//
// A wait is a goroutine's block interval (Running to Waiting, then woken),
// classified by the runtime's reason and, for "sync", by the frames: the
// outermost of sync.(*Mutex).Lock, (*RWMutex).RLock, (*RWMutex).Lock,
// (*WaitGroup).Wait, (*Cond).Wait. Its site is the first frame outside the
// runtime, sync and internal packages. The goroutine that woke it, and the
// stack of the wake-up call (Unlock, RUnlock, send, ...), come from the
// wake-up event, which the runtime emits on the waking goroutine.
//
// A woken sync.Mutex waiter can find the semaphore taken and park again
// inside the same runtime call. When a goroutine parks again at the
// identical stack within 5µs of running, the parks are merged into one
// wait (Wait.Parks counts them), as the block profile counts them; the
// wait then lasts from the first park to the last wake-up. RWMutex readers and writers are granted the
// lock when woken, so their waits are never merged.
//
// Goroutines already blocked when the window begins appear only through
// status events: their wait is taken to start at the window's start and
// is marked "at least"; the site comes from the status event's stack, or
// is unknown ("?") when the runtime gave none, and the kind is then
// inferred from the call that woke the goroutine. Waits still going at the
// window's end are cut there and marked "at least" too.
//
// Lock wait is blamed on critical sections by time: at each wake-up at a
// site, the time every goroutine waiting there has waited since the
// previous wake-up at that site is blamed on the waker's critical section
// (the first frame of the Unlock stack outside sync). A holder that
// blocked (network, syscall, channel, select, sleep) inside that function
// after it last acquired a contended lock, while goroutines waited, is
// reported as holding the lock across that call.
//
// Analyze is safe for concurrent use. With GOMAXPROCS above 1 it parses
// in a second goroutine while it analyzes, and waits for it to exit before
// it returns.
func Analyze(trace io.Reader, opts AnalyzeOptions) (*Report, error) {
	opts = opts.withDefaults()
	rep := &Report{TraceUnavailable: opts.TraceUnavailable, Findings: []Finding{}, Sites: []Site{}}
	var err error
	var a *analyzer
	if trace != nil {
		a = newAnalyzer(opts)
		if err = a.run(trace); err != nil {
			rep.TraceError = err.Error()
			a = nil
		}
	}
	if a != nil {
		a.fill(rep)
	}
	rep.Profiles = joinProfiles(rep, opts)
	addFindings(rep, a, opts)
	rep.Headline = headline(rep)
	rep.Caveats = caveats(rep, a, opts)
	return rep, err
}

// siteKey identifies a call site of one kind of wait.
type siteKey struct {
	kind waitKind
	fn   string
	file string
	line int
}

// holderKey identifies a critical section (or waker) by its wake-up call
// and the first frame outside the runtime and sync.
type holderKey struct {
	op   string
	fn   string
	file string
	line int
}

// Pseudo-holders.
const (
	holderNone     = -1 // woken by a timer or the runtime, or the waker has no stack
	holderNotFreed = -2 // the wait was still going at the end of the window
)

// siteAgg aggregates the waits at one call site.
type siteAgg struct {
	kind    waitKind
	frame   Frame
	stack   *stackInfo
	waits   int
	atLeast int
	total   int64
	max     int64
	hist    hist
	waiters map[trace.GoID]struct{}

	// Blame accounting (locks): n goroutines are waiting here and the sum
	// of the times from which each is still to be blamed is sumStart. At
	// each wake-up at the site, the waiters' time since the previous one,
	// n*t - sumStart, is blamed on the waker's critical section.
	n        int64
	sumStart int64
	epoch    uint64
	lastWake int64
	blamed   int64
	holders  map[int]*holderAgg

	// Reader convoys: wake-ups of RLock waiters by one RWMutex.Unlock.
	burstG       trace.GoID
	burstT       int64
	burstN       int
	bursts       int // bursts of at least 3 readers
	burstReaders int
	burstMax     int
}

type holderAgg struct {
	id         int
	blame      int64
	wakeups    int
	goroutines map[trace.GoID]struct{}
	stack      *stackInfo
	inside     *insideAgg
}

type insideAgg struct {
	times     int // critical sections with blocking
	blocked   int64
	wait      int64
	maxQueued int
	stack     *stackInfo // of the longest block
	kind      waitKind   // of the longest block
	longest   int64
}

// kindAgg sums waits that are not aggregated by site.
type kindAgg struct {
	waits, atLeast int
	total, max     int64
}

type blockRec struct {
	kind       waitKind
	stack      *stackInfo
	start, end int64
	counted    bool
}

// pendingWait is a finished lock wait that may still merge with the next
// park of the same goroutine (see mergeWindow).
type pendingWait struct {
	valid     bool
	kind      waitKind
	stack     *stackInfo
	site      *siteAgg
	start     int64
	end       int64
	atLeast   bool
	parks     int
	unblocker trace.GoID
	ustack    *stackInfo
}

type gstate struct {
	id    trace.GoID
	state trace.GoState

	waiting  bool
	kind     waitKind
	stack    *stackInfo
	site     *siteAgg
	start    int64
	atLeast  bool
	parks    int
	inSet    bool
	setAdded int64
	setEpoch uint64

	pend     pendingWait
	runStart int64

	blocks       [maxBlocks]blockRec
	nblocks      int
	lastLockWake int64

	sysStart  int64
	sysStack  *stackInfo
	lastStack *stackInfo
	rawStack  trace.Stack // a later stack than lastStack, not looked at yet
	thread    *threadRec
}

type threadRec struct {
	id      trace.ThreadID
	g       *gstate
	gid     trace.GoID
	lastRun int64
	// set when the goroutine exited
	exited    bool
	exitStack *stackInfo
}

// waitRec is one wait kept for the report.
type waitRec struct {
	kind      waitKind
	site      *siteAgg
	g         trace.GoID
	start     int64
	dur       int64
	atLeast   bool
	parks     int
	stack     *stackInfo
	unblocker trace.GoID
	ustack    *stackInfo
}

// waitHeap keeps the longest waits: a min-heap on duration.
type waitHeap []waitRec

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].dur < h[j].dur }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(waitRec)) }
func (h *waitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *waitHeap) offer(w waitRec, keep int) {
	if len(*h) < keep {
		heap.Push(h, w)
	} else if w.dur > (*h)[0].dur {
		(*h)[0] = w
		heap.Fix(h, 0)
	}
}

type analyzer struct {
	opts AnalyzeOptions

	stacks     map[trace.Stack]*stackInfo // this generation's stacks
	stackCache [2]stackCacheEntry
	byPCs      map[string]*stackInfo // all stacks, by content
	keyBuf     []byte
	frameCh    []Frame

	holderIDs map[holderKey]int
	holders   []holderKey

	sites    map[siteKey]*siteAgg
	siteList []*siteAgg
	other    [numKinds]kindAgg

	gs         map[trace.GoID]*gstate // goroutines with IDs >= smallGoIDs
	gsmall     []*gstate              // goroutines with small IDs, by ID
	ngs        int                    // non-nil entries of gsmall
	threads    map[trace.ThreadID]*threadRec
	threadList []*threadRec

	lockWaits, syncWaits waitHeap
	lockTotal            int64
	lockCount            int
	merged               int
	atLeast              int

	started     bool
	start, last int64
	clock       *trace.ClockSnapshot
	events      int64
	syncs       int
	eof         bool
	bytes       int64

	partial       bool
	partialReason string
}

func newAnalyzer(opts AnalyzeOptions) *analyzer {
	return &analyzer{
		opts:      opts,
		stacks:    make(map[trace.Stack]*stackInfo),
		byPCs:     make(map[string]*stackInfo),
		holderIDs: make(map[holderKey]int),
		sites:     make(map[siteKey]*siteAgg),
		gs:        make(map[trace.GoID]*gstate),
		threads:   make(map[trace.ThreadID]*threadRec),
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// evBatch carries events from the parser to the analysis.
type evBatch struct {
	evs   []trace.Event
	bytes int64 // trace bytes read when the batch was filled
	err   error // on the last batch: io.EOF, a read error, or a parser panic
}

const (
	batchEvents = 1024 // about 130 KB of events
	batches     = 3
)

// run reads the trace. It returns an error only when nothing of the trace
// could be read.
//
// With GOMAXPROCS above 1, parsing (x/exp/trace, about two thirds of the
// cost) runs in a goroutine of its own, one batch of events ahead of the
// analysis, so that the two overlap when a second CPU is free. Measured on
// a busy 2-vCPU VM, it costs the same CPU as doing both in one goroutine
// (about 1.5x bare parsing). run waits for that goroutine before it
// returns.
func (a *analyzer) run(src io.Reader) error {
	began := time.Now()
	cr := &countingReader{r: src}
	r, err := newReader(cr)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadableTrace, err)
	}

	var last error
	stopped := false
	// consume analyzes one batch; it returns false when the budget ran
	// out, or when x/exp/trace panicked on an event it had let through
	// (a corrupt trace).
	consume := func(b *evBatch) (ok bool) {
		defer func() {
			if p := recover(); p != nil {
				if !parserPanic() {
					panic(p)
				}
				a.partial = true
				a.partialReason = fmt.Sprintf("the trace is corrupt after %s (%d events): trace parser panic: %v", fmtBytes(b.bytes), a.events, p)
				ok = false
			}
		}()
		for i := range b.evs {
			if a.events%budgetEvery == 0 && a.events > 0 {
				if time.Since(began) > a.opts.Budget {
					a.partial = true
					a.partialReason = fmt.Sprintf("the analysis budget of %s ran out after %s of trace (%d events); the rest of the window was not read",
						fmtDur(a.opts.Budget), fmtBytes(b.bytes), a.events)
					return false
				}
				select {
				case <-a.opts.Cancel:
					a.partial = true
					a.partialReason = fmt.Sprintf("the analysis was canceled after %s of trace (%d events)", fmtBytes(b.bytes), a.events)
					return false
				default:
				}
			}
			a.event(&b.evs[i])
		}
		a.bytes = b.bytes
		last = b.err
		b.evs = b.evs[:0]
		return true
	}

	if runtime.GOMAXPROCS(0) < 2 {
		b := &evBatch{evs: make([]trace.Event, 0, batchEvents)}
		for last == nil && !stopped {
			fill(r, cr, b)
			stopped = !consume(b)
		}
	} else {
		full := make(chan *evBatch, batches)
		free := make(chan *evBatch, batches)
		stop := make(chan struct{})
		for range batches {
			free <- &evBatch{evs: make([]trace.Event, 0, batchEvents)}
		}
		go produce(r, cr, full, free, stop)
		for b := range full {
			if stopped {
				continue // drain until the parser has exited
			}
			if !consume(b) {
				stopped = true
				close(stop)
			}
			free <- b
		}
	}

	switch {
	case stopped || last == nil:
	case last == io.EOF:
		a.eof = true
	case a.events == 0:
		return fmt.Errorf("%w: %v", ErrUnreadableTrace, last)
	default:
		a.partial = true
		a.partialReason = fmt.Sprintf("the trace is cut short or corrupt after %s (%d events): %v", fmtBytes(a.bytes), a.events, last)
	}
	if a.events <= 1 && !a.partial {
		// Only the opening Sync: a header without a generation.
		return fmt.Errorf("%w: the trace has no events", ErrUnreadableTrace)
	}
	a.resolveStacks()
	a.finish()
	return nil
}

// newReader turns a panic in the trace parser into an error: a corrupt
// trace must not take the host process down.
func newReader(r io.Reader) (tr *trace.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("trace parser panic: %v", p)
		}
	}()
	return trace.NewReader(r)
}

// parserPanic reports, from a deferred function, whether the panic going
// on was raised in golang.org/x/exp/trace: its accessors (StateTransition,
// Sync, ...) can panic on a corrupt trace that the reader let through.
func parserPanic() bool {
	st := string(debug.Stack())
	i := strings.Index(st, "\npanic(")
	if i < 0 {
		return false
	}
	// After panic( come its file line, then the frames that panicked:
	// skip the runtime's own (goPanicIndex and such).
	lines := strings.Split(st[i+1:], "\n")
	for j := 2; j < len(lines); j += 2 {
		fn := lines[j]
		if strings.HasPrefix(fn, "runtime.") {
			continue
		}
		return strings.HasPrefix(fn, "golang.org/x/exp/trace.")
	}
	return false
}

// fill reads events into b until it is full or the trace ends (b.err is
// then set). A panic in the parser ends the trace with an error.
func fill(r *trace.Reader, cr *countingReader, b *evBatch) {
	defer func() {
		if p := recover(); p != nil {
			b.err = fmt.Errorf("trace parser panic: %v", p)
		}
		b.bytes = cr.n
	}()
	for len(b.evs) < batchEvents {
		ev, err := r.ReadEvent()
		if err != nil {
			b.err = err
			return
		}
		b.evs = append(b.evs, ev)
	}
}

// produce fills batches until the trace ends or stop is closed, and
// closes full when it returns.
func produce(r *trace.Reader, cr *countingReader, full, free chan *evBatch, stop chan struct{}) {
	defer close(full)
	for {
		var b *evBatch
		select {
		case b = <-free:
		case <-stop:
			return
		}
		fill(r, cr, b)
		select {
		case full <- b:
		case <-stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// event analyzes one event.
func (a *analyzer) event(ev *trace.Event) {
	a.events++
	t := int64(ev.Time())
	if !a.started {
		a.started = true
		a.start = t
	}
	if t > a.last {
		a.last = t
	}
	switch ev.Kind() {
	case trace.EventStateTransition:
		st := ev.StateTransition()
		if st.Resource.Kind == trace.ResourceGoroutine {
			a.goTransition(ev, &st, t)
		}
	case trace.EventSync:
		a.syncs++
		// Stack handles are per generation: forget them so that the
		// generation's tables can be freed. byPCs keeps the work.
		a.resolveStacks()
		if a.clock == nil {
			if cs := ev.Sync().ClockSnapshot; cs != nil {
				c := *cs
				a.clock = &c
			}
		}
	}
}

// resolveStacks does the stack work that was put off: the stacks of
// preempted goroutines are only needed for ThreadActivity, so only the
// last one of each goroutine in a generation is looked at, before the
// generation's stack handles go.
func (a *analyzer) resolveStacks() {
	a.allGoroutines(func(g *gstate) {
		if g.rawStack != trace.NoStack {
			if si := a.stack(g.rawStack); si != nil {
				g.lastStack = si
			}
			g.rawStack = trace.NoStack
		}
	})
	clear(a.stacks)
	a.stackCache = [len(a.stackCache)]stackCacheEntry{}
}

// stack returns the per-stack work for s, doing it on first sight.
func (a *analyzer) stack(s trace.Stack) *stackInfo {
	if s == trace.NoStack {
		return nil
	}
	// Most stacks come back soon (the same Lock and Unlock calls): two
	// entries in front of the map save most of its lookups.
	if c := &a.stackCache; c[0].s == s && c[0].si != nil {
		return c[0].si
	} else if c[1].s == s && c[1].si != nil {
		c[0], c[1] = c[1], c[0]
		return c[0].si
	}
	if si, ok := a.stacks[s]; ok {
		a.stackCache[1], a.stackCache[0] = a.stackCache[0], stackCacheEntry{s, si}
		return si
	}
	frames := a.frameCh[:0]
	key := a.keyBuf[:0]
	for f := range s.Frames() {
		key = binary.LittleEndian.AppendUint64(key, f.PC)
		key = binary.LittleEndian.AppendUint32(key, uint32(f.Line))
		if len(frames) < maxFrames {
			frames = append(frames, Frame{Func: f.Func, File: f.File, Line: int(f.Line)})
		}
	}
	a.keyBuf, a.frameCh = key, frames
	si, ok := a.byPCs[string(key)]
	if !ok {
		si = &stackInfo{frames: append([]Frame(nil), frames...)}
		classifyFrames(si)
		if si.site >= 0 || si.op != "" {
			f := si.siteFrame()
			hk := holderKey{op: si.op, fn: f.Func, file: f.File, line: f.Line}
			id, ok := a.holderIDs[hk]
			if !ok {
				id = len(a.holders)
				a.holders = append(a.holders, hk)
				a.holderIDs[hk] = id
			}
			si.holder = id
		}
		a.byPCs[string(key)] = si
	}
	a.stacks[s] = si
	a.stackCache[1], a.stackCache[0] = a.stackCache[0], stackCacheEntry{s, si}
	return si
}

type stackCacheEntry struct {
	s  trace.Stack
	si *stackInfo
}

// siteFor returns the aggregate for waits of kind k with waiter stack si
// (nil: unknown site).
func (a *analyzer) siteFor(k waitKind, si *stackInfo) *siteAgg {
	if si != nil && si.siteKind == k && si.siteAgg != nil {
		return si.siteAgg
	}
	f := si.siteFrame()
	key := siteKey{kind: k, fn: f.Func, file: f.File, line: f.Line}
	s, ok := a.sites[key]
	if !ok {
		s = &siteAgg{kind: k, frame: f, stack: si, waiters: make(map[trace.GoID]struct{}), holders: make(map[int]*holderAgg), burstG: trace.NoGoroutine}
		a.sites[key] = s
		a.siteList = append(a.siteList, s)
	}
	if s.stack == nil {
		s.stack = si
	}
	if si != nil {
		si.siteKind, si.siteAgg = k, s
	}
	return s
}

func (a *analyzer) goTransition(ev *trace.Event, st *trace.StateTransition, t int64) {
	id := st.Resource.Goroutine()
	from, to := st.Goroutine()
	g := a.goroutine(id)
	fresh := false
	if g == nil {
		if to == trace.GoNotExist {
			return
		}
		g = &gstate{id: id, state: trace.GoUndetermined}
		a.setGoroutine(id, g)
		fresh = true
	}
	if g.pend.valid && !(from == trace.GoRunnable && to == trace.GoRunning && g.runStart == 0) &&
		!(from == trace.GoRunning && to == trace.GoWaiting) {
		a.flushPending(g)
	}

	switch {
	case to == trace.GoWaiting:
		switch from {
		case trace.GoRunning:
			a.block(g, t, st.Reason, a.stack(st.Stack))
		case trace.GoWaiting, trace.GoUndetermined:
			if !g.waiting {
				// A status event: the goroutine was already waiting. If we
				// have not seen it before, it has been waiting since
				// before the window began.
				start := t
				if fresh {
					start = a.start
				}
				si := a.stack(st.Stack)
				a.beginWait(g, start, t, a.waitKind("", si), si, true, 1)
			}
		default: // created blocked
			si := a.stack(st.Stack)
			a.beginWait(g, t, t, a.waitKind("", si), si, false, 1)
		}
	case from == trace.GoWaiting:
		a.wake(g, t, ev)
	}

	switch {
	case to == trace.GoRunning:
		if g.pend.valid && g.runStart == 0 {
			g.runStart = t
		}
		a.ranOn(g, ev.Thread(), t)
	case to == trace.GoSyscall && from == trace.GoRunning:
		g.sysStart = t
		g.sysStack = a.stack(st.Stack)
		g.lastStack, g.rawStack = g.sysStack, trace.NoStack
	case to == trace.GoRunnable && from == trace.GoRunning:
		g.rawStack = st.Stack
	}
	if from == trace.GoSyscall && g.sysStart != 0 {
		if g.sysStack != nil {
			a.other[kindSyscall].add(t-g.sysStart, false)
			g.addBlock(kindSyscall, g.sysStack, g.sysStart, t)
		}
		g.sysStart = 0
	}
	g.state = to
	if to == trace.GoNotExist {
		a.exit(g)
	}
}

// smallGoIDs is the goroutine IDs kept in a slice rather than the map:
// a map lookup per event is a good part of the analysis' cost.
const smallGoIDs = 1 << 16

func (a *analyzer) goroutine(id trace.GoID) *gstate {
	if id >= 0 && id < smallGoIDs {
		if int(id) < len(a.gsmall) {
			return a.gsmall[id]
		}
		return nil
	}
	return a.gs[id]
}

func (a *analyzer) setGoroutine(id trace.GoID, g *gstate) {
	if id >= 0 && id < smallGoIDs {
		if int(id) >= len(a.gsmall) {
			n := max(int(id)+1, 2*len(a.gsmall), 1024)
			a.gsmall = append(a.gsmall, make([]*gstate, min(n, smallGoIDs)-len(a.gsmall))...)
		}
		if a.gsmall[id] == nil && g != nil {
			a.ngs++
		} else if a.gsmall[id] != nil && g == nil {
			a.ngs--
		}
		a.gsmall[id] = g
		return
	}
	if g == nil {
		delete(a.gs, id)
	} else {
		a.gs[id] = g
	}
}

// allGoroutines calls f for every goroutine alive.
func (a *analyzer) allGoroutines(f func(*gstate)) {
	if a.ngs > 0 {
		for _, g := range a.gsmall {
			if g != nil {
				f(g)
			}
		}
	}
	for _, g := range a.gs {
		f(g)
	}
}

func (k *kindAgg) add(d int64, atLeast bool) {
	k.waits++
	k.total += d
	if d > k.max {
		k.max = d
	}
	if atLeast {
		k.atLeast++
	}
}

// waitKind classifies a block from its reason and stack.
func (a *analyzer) waitKind(reason string, si *stackInfo) waitKind {
	if si != nil && si.site < 0 {
		return kindRuntime // nothing of the program's on the stack
	}
	if k, ok := kindFromReason(reason); ok {
		if k == kindOther && si != nil && si.waitKind != kindUnknown {
			return si.waitKind
		}
		return k
	}
	if si == nil {
		return kindUnknown
	}
	if si.waitKind != kindUnknown {
		return si.waitKind
	}
	if reason == "sync" {
		return kindSyncOther
	}
	return kindOther
}

func (a *analyzer) block(g *gstate, t int64, reason string, si *stackInfo) {
	k := a.waitKind(reason, si)
	if si != nil {
		g.lastStack, g.rawStack = si, trace.NoStack
	}
	if g.waiting {
		// Lost track (should not happen): close what we had.
		a.endWait(g, t, trace.NoGoroutine, nil, true)
	}
	if g.pend.valid {
		p := &g.pend
		if k.isLock() && si != nil && si.mutexPark && p.kind == k && p.stack == si && g.runStart != 0 && t-g.runStart <= int64(mergeWindow) {
			// The same Lock call parking again after losing the race.
			p.valid = false
			a.merged++
			a.beginWait(g, p.start, t, k, si, p.atLeast, p.parks+1)
			return
		}
		a.flushPending(g)
	}
	a.beginWait(g, t, t, k, si, false, 1)
}

// beginWait records that g waits from start (the current park began at
// park; they differ for merged and pre-window waits).
func (a *analyzer) beginWait(g *gstate, start, park int64, k waitKind, si *stackInfo, atLeast bool, parks int) {
	g.waiting = true
	g.kind = k
	g.stack = si
	g.start = start
	g.atLeast = atLeast
	g.parks = parks
	g.site = nil
	g.inSet = false
	if k.hasSite() {
		s := a.siteFor(k, si)
		g.site = s
		if k.isLock() {
			from := park
			if atLeast {
				from = start
			}
			s.n++
			s.sumStart += from
			g.inSet = true
			g.setAdded = from
			g.setEpoch = s.epoch
		}
	}
}

// kindFromOp infers what a goroutine blocked before the window waited on
// from the call that woke it.
func kindFromOp(op string) waitKind {
	switch op {
	case "Mutex.Unlock":
		return kindMutex
	case "RWMutex.Unlock":
		return kindRLock
	case "RWMutex.RUnlock":
		return kindWLock
	case "Cond.Signal", "Cond.Broadcast":
		return kindCond
	case "WaitGroup.Done":
		return kindWaitGroup
	case "chan send":
		return kindChanRecv
	case "chan receive":
		return kindChanSend
	case "close":
		return kindChanRecv
	}
	return kindOther
}

func (a *analyzer) wake(g *gstate, t int64, ev *trace.Event) {
	unb := ev.Goroutine()
	us := a.stack(ev.Stack())
	if !g.waiting {
		// Blocked before the window, announced without a stack.
		a.beginWait(g, a.start, a.start, kindUnknown, nil, true, 1)
	}
	if g.kind == kindUnknown || (g.kind == kindOther && g.stack == nil) {
		k := kindOther
		if us != nil {
			k = kindFromOp(us.op)
		}
		g.kind = k
		if k.hasSite() {
			g.site = a.siteFor(k, g.stack)
		}
	}
	a.endWait(g, t, unb, us, false)
}

// endWait ends g's park at t, woken by unb (stack us).
func (a *analyzer) endWait(g *gstate, t int64, unb trace.GoID, us *stackInfo, lost bool) {
	g.waiting = false
	k := g.kind
	s := g.site
	if !k.isLock() || s == nil {
		a.finishWait(waitRec{kind: k, site: s, g: g.id, start: g.start, dur: t - g.start, atLeast: g.atLeast || lost,
			parks: g.parks, stack: g.stack, unblocker: unb, ustack: us})
		if s != nil {
			h := a.holder(s, us)
			h.blame += t - g.start
			h.wakeups++
			if unb != trace.NoGoroutine {
				h.goroutines[unb] = struct{}{}
			}
			s.blamed += t - g.start
		}
		if k != kindRuntime {
			g.addBlock(k, g.stack, g.start, t)
		}
		return
	}

	// A lock wait: blame the time since the previous wake-up at the site
	// on this waker's critical section.
	var blame int64
	queued := int(s.n)
	if g.inSet {
		blame = s.n*t - s.sumStart
		s.sumStart = s.n * t
		s.lastWake = t
		s.epoch++
		s.n--
		s.sumStart -= t
		g.inSet = false
	} else {
		blame = t - g.start
	}
	if lost {
		unb, us = trace.NoGoroutine, nil
	}
	h := a.holder(s, us)
	h.blame += blame
	h.wakeups++
	if unb != trace.NoGoroutine {
		h.goroutines[unb] = struct{}{}
	}
	s.blamed += blame
	if unb != trace.NoGoroutine && us != nil {
		if hs := a.goroutine(unb); hs != nil {
			a.checkInside(hs, h, us, g.start, t, blame, queued)
			// hs released a lock: what it blocked on before is not inside
			// its next critical section.
			hs.nblocks = 0
		}
	}
	if k == kindRLock && us != nil && us.op == "RWMutex.Unlock" {
		if s.burstG == unb && t-s.burstT <= int64(burstGap) {
			s.burstN++
		} else {
			s.flushBurst()
			s.burstG, s.burstN = unb, 1
		}
		s.burstT = t
	}
	g.lastLockWake = t
	g.nblocks = 0
	g.pend = pendingWait{valid: true, kind: k, stack: g.stack, site: s, start: g.start, end: t,
		atLeast: g.atLeast || lost, parks: g.parks, unblocker: unb, ustack: us}
	g.runStart = 0
	if lost {
		a.flushPending(g)
	}
}

func (s *siteAgg) flushBurst() {
	if s.burstN >= 3 {
		s.bursts++
		s.burstReaders += s.burstN
		s.burstMax = max(s.burstMax, s.burstN)
	}
	s.burstN = 0
	s.burstG = trace.NoGoroutine
}

func (a *analyzer) holder(s *siteAgg, us *stackInfo) *holderAgg {
	id := holderNone
	if us != nil && us.holder >= 0 {
		id = us.holder
	}
	return s.holderByID(id, us)
}

func (s *siteAgg) holderByID(id int, us *stackInfo) *holderAgg {
	h := s.holders[id]
	if h == nil {
		h = &holderAgg{id: id, goroutines: make(map[trace.GoID]struct{}), stack: us}
		s.holders[id] = h
	}
	return h
}

func (g *gstate) addBlock(k waitKind, si *stackInfo, start, end int64) {
	if si == nil || k.isLock() {
		return
	}
	b := blockRec{kind: k, stack: si, start: start, end: end}
	if g.nblocks < maxBlocks {
		g.blocks[g.nblocks] = b
		g.nblocks++
		return
	}
	// Replace the shortest.
	j := 0
	for i := 1; i < maxBlocks; i++ {
		if g.blocks[i].end-g.blocks[i].start < g.blocks[j].end-g.blocks[j].start {
			j = i
		}
	}
	if end-start > g.blocks[j].end-g.blocks[j].start {
		g.blocks[j] = b
	}
}

// checkInside looks for evidence that the holder hs blocked inside the
// critical section that its wake-up call us ended: one of its recent
// non-lock blocks has the critical section's function on its stack, ended
// after the waiter began waiting, and came after hs last acquired a
// contended lock.
func (a *analyzer) checkInside(hs *gstate, h *holderAgg, us *stackInfo, waitStart, t, blame int64, queued int) {
	if hs.nblocks == 0 || us.site < 0 {
		return
	}
	fn := us.frames[us.site].Func
	best := -1
	for i := 0; i < hs.nblocks; i++ {
		b := &hs.blocks[i]
		if b.end > t || b.end <= waitStart || b.end < hs.lastLockWake || !b.stack.contains(fn) {
			continue
		}
		if best < 0 || b.end-b.start > hs.blocks[best].end-hs.blocks[best].start {
			best = i
		}
	}
	if best < 0 {
		return
	}
	in := h.inside
	if in == nil {
		in = &insideAgg{}
		h.inside = in
	}
	in.wait += blame
	in.maxQueued = max(in.maxQueued, queued)
	counted := false
	for i := 0; i < hs.nblocks; i++ {
		b := &hs.blocks[i]
		if b.counted || b.end > t || b.end <= waitStart || b.end < hs.lastLockWake || !b.stack.contains(fn) {
			continue
		}
		b.counted, counted = true, true
		d := b.end - b.start
		in.blocked += d
		if d > in.longest {
			in.longest, in.stack, in.kind = d, b.stack, b.kind
		}
	}
	if counted {
		in.times++
	}
}

func (a *analyzer) flushPending(g *gstate) {
	p := &g.pend
	if !p.valid {
		return
	}
	p.valid = false
	a.finishWait(waitRec{kind: p.kind, site: p.site, g: g.id, start: p.start, dur: p.end - p.start, atLeast: p.atLeast,
		parks: p.parks, stack: p.stack, unblocker: p.unblocker, ustack: p.ustack})
}

// finishWait aggregates one finished wait.
func (a *analyzer) finishWait(w waitRec) {
	if w.kind == kindRuntime {
		return
	}
	if w.dur < 0 {
		w.dur = 0
	}
	if w.atLeast {
		a.atLeast++
	}
	s := w.site
	if s == nil {
		a.other[w.kind].add(w.dur, w.atLeast)
		return
	}
	s.waits++
	s.total += w.dur
	if w.dur > s.max {
		s.max = w.dur
	}
	s.hist.add(w.dur)
	s.waiters[w.g] = struct{}{}
	if w.atLeast {
		s.atLeast++
	}
	if w.kind.isLock() {
		a.lockTotal += w.dur
		a.lockCount++
		a.lockWaits.offer(w, a.opts.KeepWaits)
	} else {
		a.syncWaits.offer(w, a.opts.KeepWaits)
	}
}

func (a *analyzer) ranOn(g *gstate, tid trace.ThreadID, t int64) {
	if tid == trace.NoThread {
		return
	}
	tr := g.thread
	if tr == nil || tr.id != tid {
		tr = a.thread(tid)
		if tr == nil {
			return
		}
		g.thread = tr
	}
	tr.g, tr.gid, tr.lastRun, tr.exited, tr.exitStack = g, g.id, t, false, nil
}

// thread returns the record of thread tid, nil past maxThreads. Most
// programs have a few dozen threads: a linear scan beats the map there.
func (a *analyzer) thread(tid trace.ThreadID) *threadRec {
	if len(a.threadList) <= 32 {
		for _, tr := range a.threadList {
			if tr.id == tid {
				return tr
			}
		}
	} else if tr := a.threads[tid]; tr != nil {
		return tr
	}
	if len(a.threadList) >= maxThreads {
		return nil
	}
	tr := &threadRec{id: tid}
	a.threads[tid] = tr
	a.threadList = append(a.threadList, tr)
	return tr
}

func (a *analyzer) exit(g *gstate) {
	if g.rawStack != trace.NoStack {
		if si := a.stack(g.rawStack); si != nil {
			g.lastStack = si
		}
		g.rawStack = trace.NoStack
	}
	if g.pend.valid {
		a.flushPending(g)
	}
	if g.waiting {
		a.endWait(g, a.last, trace.NoGoroutine, nil, true)
	}
	if tr := g.thread; tr != nil && tr.g == g {
		tr.exited = true
		tr.exitStack = g.lastStack
	}
	a.setGoroutine(g.id, nil)
}

// finish closes what is still open at the end of the window.
func (a *analyzer) finish() {
	end := a.last
	// Waiters still queued at the end: their time since the last wake-up
	// is blamed on a pseudo-holder, "not released in the window".
	for _, s := range a.siteList {
		if s.kind.isLock() && s.n > 0 {
			blame := s.n*end - s.sumStart
			h := s.holderByID(holderNotFreed, nil)
			h.blame += blame
			s.blamed += blame
			s.sumStart = s.n * end
			s.lastWake = end
			s.epoch++
		}
		s.flushBurst()
	}
	a.allGoroutines(func(g *gstate) {
		if g.pend.valid {
			a.flushPending(g)
		}
		if g.waiting {
			if g.inSet {
				g.site.n--
				g.site.sumStart -= end
				g.inSet = false
			}
			g.waiting = false
			a.finishWait(waitRec{kind: g.kind, site: g.site, g: g.id, start: g.start, dur: end - g.start, atLeast: true,
				parks: g.parks, stack: g.stack, unblocker: trace.NoGoroutine})
		}
	})
}
