// Package lockreport explains lock contention: from a Go execution trace
// (a flight-recorder window, runtime/trace.Start output, `go test -trace`,
// /debug/pprof/trace), the mutex and block profiles of the same window and
// what was parked on locks when it ended, it reports which locks goroutines
// waited on, for how long, which critical sections made them wait and what
// those did meanwhile, in plain words first and with the evidence after.
//
//	rep, err := lockreport.Analyze(ctx, traceFile, lockreport.Options{})
//	...
//	rep.WriteText(os.Stdout)
//
// It reads any Go trace and needs nothing else of lockdiag.
//
// # Cost
//
// Parsing with golang.org/x/exp/trace is most of the cost: it reads a
// dense trace at about 40-50 MB/s on one core of a 2-vCPU VM. With
// GOMAXPROCS above 1 the parse runs in a goroutine of its own, and when a
// second CPU is free Analyze runs at about 0.85-0.9 times the speed of the
// bare parse, for about 1.7 times its CPU; on one CPU, at about 0.6 times
// its speed. Memory: the parser holds a whole trace generation (about
// twice its bytes); the analysis adds the events handed from the parser
// (at most 2.6 MiB, and half the trace's bytes), about 112 bytes per
// goroutine, and its tables of distinct stacks and call sites; it does
// not grow with the number of events. `go test -bench
// 'AnalyzeVsRead|AnalyzeMemory' ./lockreport` measures these.
package lockreport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"

	"golang.org/x/exp/trace"
)

// Options configures [Analyze]. The zero value analyzes a trace alone with
// the defaults.
type Options struct {
	// MutexProfile and BlockProfile are the mutex and block profiles
	// over the same window as the trace, encoded as runtime/pprof writes
	// them (gzipped or not): deltas, for a window. Either may be nil (not
	// collected).
	MutexProfile, BlockProfile []byte

	// MutexFraction is the [runtime.SetMutexProfileFraction] in effect
	// while MutexProfile was collected (0: unknown or off); BlockRate the
	// [runtime.SetBlockProfileRate] (0: unknown or off). They are printed
	// in the report and decide what it says is missing.
	MutexFraction int
	BlockRate     int
	// MutexFractions are the fractions in force while MutexProfile was
	// collected, oldest first, when the fraction changed meanwhile (two or
	// more; MutexFraction is then the latest): the report then says the
	// counts mix scales, and gives no sample counts.
	MutexFractions []int

	// TraceUnavailable, when there is no trace, says why (for example
	// "the host program owns the flight recorder"). It is printed in the
	// report.
	TraceUnavailable string

	// Parked are the places where goroutines were parked on locks when
	// the window ended, from a goroutine scan: a lock still held shows
	// here and not in the trace's wait totals. Nil if not scanned.
	Parked []ParkedSite

	// Threads is the OS view of the process's threads when the window
	// ended (Linux /proc). Nil if not scanned.
	Threads *Threads

	// Goroutines is a goroutine dump taken when the window ended, as
	// runtime/pprof's goroutine profile writes it at debug=2 (every
	// goroutine with its id, state and frame arguments: the holders of
	// the locks others wait for, and deadlocks, can be named) or debug=1
	// (stacks with counts: holders by function only). Nil if not taken.
	Goroutines []byte

	// MainModule is the module path of the traced program (from
	// [runtime/debug.ReadBuildInfo]'s Main.Path): its packages and
	// package main are "the program's own code", which the report names
	// as the place each lock was entered from ("called from
	// main.handleRequest"). If empty, package main is, or else the
	// outermost module outside the standard library that the waiters'
	// stacks share.
	MainModule string

	// NamedLocks are the named locks of package locks when the window
	// ended, as a monitor read them (diag converts locks.Read's states):
	// their names, exact holders and hold times. A stuck one leads the
	// report by its name, with its holder's stack from Goroutines (found
	// by goroutine id) or, when the dump lacks it, the stack the lock
	// sampled at acquisition. Nil if there are none.
	NamedLocks []NamedLock

	// Inversions are the lock-order inversions between named locks found
	// so far (package locks' lock-order check, when it is on): each is a
	// finding, a potential deadlock. Nil if none.
	Inversions []LockInversion

	// Top is how many sites to list. If zero, 10.
	Top int

	// KeepWaits is how many individual waits to keep in the report (the
	// longest lock waits, and as many other synchronization waits). If
	// zero, 20.
	KeepWaits int
}

func (o Options) withDefaults() Options {
	if o.Top <= 0 {
		o.Top = 10
	}
	if o.KeepWaits <= 0 {
		o.KeepWaits = 20
	}
	return o
}

// ErrUnreadableTrace is wrapped by the error [Analyze] returns when the
// trace cannot be read at all (bad header, unsupported Go version, nothing
// but garbage). The report is then built from the other inputs alone.
var ErrUnreadableTrace = errors.New("lockreport: unreadable trace")

//go:generate go run ./internal/gentraces -out testdata

// Analyze reads a Go execution trace and the inputs in opts, and explains
// the lock contention they show.
//
// trace may be nil: the report is then built from the profiles and scans
// alone and says why the trace is missing (opts.TraceUnavailable). A trace
// that cannot be read at all gives an error wrapping [ErrUnreadableTrace]
// together with a non-nil report built from the other inputs, which
// states the error. A trace that breaks part way gives a Partial report and
// a nil error.
//
// When ctx is canceled or its deadline passes, the analysis stops where it
// is and returns a Partial report that says so and how far it got; the
// deadline is the analysis' time budget. It is checked between events:
// the parser reads a whole trace generation (about a second of trace) at
// once, which it cannot interrupt.
//
// # How waits are counted
//
// A wait is a goroutine's block interval (Running to Waiting, then woken),
// classified by the runtime's reason and, for "sync", by the frames: the
// outermost of sync.(*Mutex).Lock, (*RWMutex).RLock, (*RWMutex).Lock,
// (*WaitGroup).Wait, (*Cond).Wait. Its site is the first frame outside the
// runtime, sync and internal packages, and past the lock wrappers: the
// functions whose work is to call Lock (a library's (*mutexWrap).Lock, a
// program's lock() helper or withLock(f)), which are learned from the
// stacks of the trace and the profiles. The goroutine that woke it, and
// the stack of the wake-up call (Unlock, RUnlock, send, ...), come from the
// wake-up event, which the runtime emits on the waking goroutine. Every
// function is named with its package, and each site with the program's
// own function that entered it ([Options.MainModule]).
//
// A woken sync.Mutex waiter can find the semaphore taken and park again
// inside the same runtime call. When a goroutine parks again at the
// identical stack within 5µs of running, the parks are merged into one
// wait (Wait.Parks counts them), as the block profile counts them; the
// wait then lasts from the first park to the last wake-up. RWMutex readers
// and writers are granted the lock when woken, so their waits are never
// merged.
//
// Goroutines already blocked when the window begins appear only through
// status events: their wait is taken to start at the window's start and
// is marked "at least"; the site comes from the status event's stack, or,
// when the runtime gave none, from the site that the same critical
// section woke, and the kind from the call that woke the goroutine. Waits
// still going at the window's end are cut there and marked "at least" too.
//
// Lock wait is blamed on critical sections by time: at each wake-up at a
// site, the time every goroutine waiting there has waited since the
// previous wake-up at that site is blamed on the waker's critical section
// (the function that called Unlock, past the unlock wrappers). A holder
// that blocked (network, syscall, channel, select, sleep) in the call of
// the function that both locked and unlocked, after it acquired the lock
// and while goroutines waited, is reported as holding the lock across
// that call, which is named with the function that made it. A waiter that
// is woken holds the lock until the wake-up its own Unlock issues: those
// holds, and what the holder did in them (running, waiting for a CPU, in
// a system or cgo call, blocked; where it was preempted), tell a
// saturated lock and a long critical section.
//
// The headline and the findings come from ranked candidates: lock sites
// (what was still going on when the window ended first), locks outside Go
// (OS threads on one futex word, [Options.Threads]; cgo calls whose
// threads sleep), runtime-internal locks, stuck named locks and lock-order
// inversions ([Options.NamedLocks], [Options.Inversions]), the goroutines
// parked when the window ended, and the profiles. lockdiag's own
// goroutines are left out.
//
// Package locks' frames count as sync's: a wait in locks.(*Mutex).Lock is
// a Mutex.Lock wait at its caller's site, and a site whose waiters waited
// for named locks is marked so (Site.Named). For named locks the report
// uses the locks' own record instead of inferring: no holder is guessed
// for them from the dump, and a deadlock the dump's analysis infers is
// left out when it has a goroutine hold a named lock that, by that record,
// it does not hold.
//
// Analyze is safe for concurrent use. With GOMAXPROCS above 1 it parses
// in a second goroutine while it analyzes, and waits for it to exit before
// it returns.
func Analyze(ctx context.Context, trace io.Reader, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	rep := &Report{TraceUnavailable: opts.TraceUnavailable, Findings: []Finding{}, Sites: []Site{}}
	var err error
	var a *analyzer
	if trace != nil {
		a = newAnalyzer(opts)
		if err = a.run(ctx, trace); err != nil {
			rep.TraceError = err.Error()
			a = nil
		}
	}
	prof := readProfiles(opts)
	if a != nil {
		a.fill(rep, prof)
	}
	var wk *wrapKnowledge
	if a != nil {
		wk = &a.stacks.wraps
	}
	rep.Profiles = joinProfiles(rep, prof, opts, wk)
	rep.Parked = parkedSites(opts.Parked)
	rep.OSThreads = osThreads(opts.Threads, rep.Threads)
	dump := parseDump(opts.Goroutines)
	rep.Locks = lockGraph(dump, rep, opts.NamedLocks)
	rep.NamedLocks, rep.Inversions = namedLocks(opts, dump), inversions(opts)
	explain(rep, a, prof, opts)
	rep.Caveats = caveats(rep, a, opts)
	return rep, err
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
	// budgetEvery is how often (in events) the context is checked.
	budgetEvery = 1024
	// maxSeconds bounds the per-second counts of a site.
	maxSeconds = 3600
)

// analyzer is the state of one analysis. Each part has one job: stacks
// interns stacks and classifies them once; gs and threads track the
// goroutines' and threads' states; sites aggregates waits by call site and
// blames them on critical sections; waits keeps the longest individual
// waits; win describes the window read so far.
type analyzer struct {
	opts    Options
	stacks  stackTable
	gs      goroutineTable
	threads threadTable
	sites   siteTable
	waits   waitKeeper
	win     window
	// owners memoizes ownerIndex by pair of stacks (stackInfo.id).
	owners map[uint64][2]int16
	// the last lookup of owners
	lastOwner   [2]*stackInfo
	lastOwnerAt [2]int16
	// prog tells the program's code from the libraries' (set by fill).
	prog program
	// cgo sums the cgo calls.
	cgo cgoTable
	// reported maps the report's lock sites to their aggregates.
	reported map[string]*siteAgg

	// partial says why the analysis stopped early, "" if it did not.
	partial string
}

// window is what is known of the trace window read so far.
type window struct {
	started     bool
	start, last int64 // trace clock of the first and last event
	clock       *trace.ClockSnapshot
	events      int64
	syncs       int
	eof         bool
	bytes       int64
}

func newAnalyzer(opts Options) *analyzer {
	return &analyzer{
		opts:    opts,
		stacks:  newStackTable(),
		gs:      goroutineTable{big: make(map[trace.GoID]*gstate)},
		threads: threadTable{byID: make(map[trace.ThreadID]*threadRec)},
		sites:   newSiteTable(),
		waits:   waitKeeper{keep: opts.KeepWaits},
		owners:  make(map[uint64][2]int16),
	}
}

// event analyzes one event.
func (a *analyzer) event(ev *trace.Event) {
	w := &a.win
	w.events++
	t := int64(ev.Time())
	if !w.started {
		w.started = true
		w.start = t
	}
	if t > w.last {
		w.last = t
	}
	switch ev.Kind() {
	case trace.EventStateTransition:
		st := ev.StateTransition()
		if st.Resource.Kind == trace.ResourceGoroutine {
			a.goTransition(ev, &st, t)
		}
	case trace.EventSync:
		w.syncs++
		// Stack handles are per generation: forget them so that the
		// generation's tables can be freed. The table keeps the work.
		a.endGeneration()
		if w.clock == nil {
			if cs := ev.Sync().ClockSnapshot; cs != nil {
				c := *cs
				w.clock = &c
			}
		}
	}
}

// endGeneration does the stack work that was put off: the stacks of
// preempted goroutines are only needed for ThreadActivity, so only the
// last one of each goroutine in a generation is looked at, before the
// generation's stack handles go.
func (a *analyzer) endGeneration() {
	a.gs.each(func(g *gstate) { a.resolveLastStack(g) })
	a.stacks.endGeneration()
}

func (a *analyzer) resolveLastStack(g *gstate) {
	if g.rawStack != trace.NoStack {
		if si := a.stacks.get(g.rawStack); si != nil {
			g.lastStack = si
		}
		g.rawStack = trace.NoStack
	}
}

// finish closes what is still open at the end of the window.
func (a *analyzer) finish() {
	end := a.win.last
	a.sites.finish(end)
	a.gs.each(func(g *gstate) {
		if g.pending() {
			a.flushPending(g)
		}
		if g.state == trace.GoSyscall && g.sysStart != 0 && g.sysStack != nil && g.sysStack.cgo && !g.own {
			a.cgo.add(g.sysStack, g.id, end-g.sysStart, true)
		}
		if g.waiting {
			if g.inSet {
				g.site.leave(end)
				g.inSet = false
			}
			g.waiting = false
			if g.site != nil && !g.own {
				g.site.openAtEnd++
			}
			a.finishWait(waitRec{kind: g.kind, site: g.site, g: g.id, start: g.start, dur: end - g.start, atLeast: true, open: true,
				parks: int(g.parks), stack: g.stack, unblocker: trace.NoGoroutine, own: g.own})
		}
	})
}

// stopReason says why ctx ended an analysis after the given progress.
func stopReason(ctx context.Context, began time.Time, read string) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		limit := "its time limit"
		if d, ok := ctx.Deadline(); ok {
			limit = "its time limit of " + textfmt.Dur(d.Sub(began).Round(time.Millisecond))
		}
		return fmt.Sprintf("the analysis ran out of %s after %s; the rest of the window was not read", limit, read)
	}
	return fmt.Sprintf("the analysis was canceled after %s", read)
}
