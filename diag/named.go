package diag

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"
	"github.com/lockdiag/lockdiag/lockreport"
	"github.com/lockdiag/lockdiag/locks"
)

// Named locks (package locks) are read on the sampling goroutine every
// Interval, or less often when reading them would cost more than ScanCPU
// (locks.Read takes about 0.7µs per lock): their state, summarized, is what
// Status, the stream and the stuck-lock detector use, and it is exact. A
// named lock with waiters is stuck when its current hold has lasted
// StuckAfter, or when no goroutine has acquired it for that long (a read
// hold of an RWMutex that never ends): its waiters count in stuck_waiters,
// and the goroutine scans leave them out of the site-based detector.
// Lock-order inversions (locks.Inversions) are read at the same time; each
// new one is logged once and published.

// namedSummary is what the sampler keeps of one named lock: the report's
// view of it without frames (resolved only when Status or a snapshot asks)
// and the holder's sampled stack.
type namedSummary struct {
	lockreport.NamedLock
	named time.Time // when it was named, with Name its key
	pcs   [32]uintptr
	npc   int
}

// namedKey identifies a named lock across reads: its name and when it was
// named.
type namedKey struct {
	name  string
	named time.Time
}

// namedRun is a named lock's unbroken run of reads with waiters and no
// acquisition.
type namedRun struct {
	since time.Time
	acq   uint64
	gen   uint64
}

// namedReader reads the named locks. It is used by the sampling goroutine
// only; what it publishes goes through Monitor.stateMu.
type namedReader struct {
	bound  time.Duration // Config.StuckAfter
	budget float64       // Config.ScanCPU
	every  time.Duration // Config.Interval

	states []locks.State     // locks.Read's buffer, reused
	invs   []locks.Inversion // locks.Inversions' buffer, reused
	back   []namedSummary    // the summaries being filled; Monitor.named is the front
	runs   map[namedKey]*namedRun
	gen    uint64
	seen   int // inversions already published

	cost time.Duration // of the last read, smoothed
	next time.Time
	// published is when named locks were last published to subscribers.
	published time.Time
}

func newNamedReader(cfg Config) *namedReader {
	return &namedReader{bound: cfg.StuckAfter, budget: cfg.ScanCPU, every: cfg.Interval, runs: make(map[namedKey]*namedRun)}
}

// namedState is what the monitor shows of the named locks, written by the
// sampler under stateMu.
type namedState struct {
	locks      []namedSummary // the front buffer: replaced, never written in place
	time       time.Time
	stuck      int // goroutines waiting for stuck named locks
	inversions []lockreport.LockInversion
	lost       int // inversions package locks found but did not keep
}

// namedPublishEvery is how often the named locks are published to
// subscribers (the stream), when there are any.
const namedPublishEvery = time.Second

// readNamed reads the named locks and the lock-order inversions, if due.
func (m *Monitor) readNamed(now time.Time) {
	nr := m.namedRd
	if now.Before(nr.next) {
		return
	}
	t0 := time.Now()
	nr.states = locks.Read(nr.states[:0])
	var lost int
	nr.invs, lost = locks.Inversions(nr.invs[:0])
	nr.gen++
	stuck, waitingStuck := 0, false
	back := nr.back[:0]
	for i := range nr.states {
		st := &nr.states[i]
		back = append(back, namedSummary{})
		s := &back[len(back)-1]
		s.NamedLock = summarize(st, now)
		s.named = st.Named
		s.npc = copy(s.pcs[:], st.HolderStack())
		if st.Waiters > 0 {
			k := namedKey{st.Name, st.Named}
			r := nr.runs[k]
			if r == nil {
				r = &namedRun{since: now, acq: st.Acquisitions}
				nr.runs[k] = r
			}
			if r.acq != st.Acquisitions {
				r.since, r.acq = now, st.Acquisitions
			}
			r.gen = nr.gen
			s.NoProgress = now.Sub(r.since)
		}
		s.Stuck = stuckNamed(&s.NamedLock, nr.bound)
		if s.Stuck {
			stuck += s.Waiters
			waitingStuck = true
		}
	}
	for k, r := range nr.runs {
		if r.gen != nr.gen {
			delete(nr.runs, k)
		}
	}
	cost := time.Since(t0)
	nr.cost = (3*nr.cost + cost) / 4
	nr.next = now.Add(max(nr.every, time.Duration(float64(nr.cost)/nr.budget)))

	// New inversions: resolved, logged once and published.
	if len(nr.invs) < nr.seen {
		nr.seen = 0 // the check's findings were reset
	}
	var fresh []lockreport.LockInversion
	for _, inv := range nr.invs[nr.seen:] {
		li := inversion(inv)
		fresh = append(fresh, li)
		m.log.Warn("diag: lock order inversion: a potential deadlock between two named locks",
			"a", li.A, "b", li.B, "goroutine_ab", li.GoroutineAB, "at_ab", frameAt(li.StackAB),
			"goroutine_ba", li.GoroutineBA, "at_ba", frameAt(li.StackBA))
	}
	nr.seen = len(nr.invs)

	m.stateMu.Lock()
	old := m.named.locks
	m.named.locks, m.named.time, m.named.stuck = back, now, stuck
	m.named.inversions = append(m.named.inversions, fresh...)
	m.named.lost = lost
	m.stateMu.Unlock()
	nr.back = old // the old front is free: Status copies what it shows

	m.namedStuck = math.NaN()
	if len(back) > 0 {
		m.namedStuck = float64(stuck)
	}
	m.carried[StuckWaiters] = nanSum(m.siteStuck, m.namedStuck)

	for i := range fresh {
		m.events.publish(Event{Type: EventInversion, Time: now, Inversion: &fresh[i]})
	}
	if len(back) > 0 && m.events.active() && (now.Sub(nr.published) >= namedPublishEvery || waitingStuck && nr.published.IsZero()) {
		nr.published = now
		m.events.publish(Event{Type: EventNamedLocks, Time: now, NamedLocks: topNamed(back, maxNamedInEvent, false)})
	}
}

// maxNamedInEvent and maxNamedInStatus bound the named locks an event and
// the status carry (the busiest first); NamedLocksTotal says how many there
// are.
const (
	maxNamedInEvent  = 20
	maxNamedInStatus = 100
)

// summarize turns a lock's state into the report's view, without frames.
func summarize(st *locks.State, now time.Time) lockreport.NamedLock {
	nl := lockreport.NamedLock{
		Name: st.Name, Type: st.Type, Age: now.Sub(st.Named),
		Waiters: st.Waiters, Readers: st.Readers, Held: st.Held, Holder: int64(st.Holder),
		Acquisitions: st.Acquisitions, Contended: st.Contended,
		Wait: durations(&st.Wait), Hold: durations(&st.Hold),
	}
	if st.Held && !st.HeldSince.IsZero() {
		nl.HeldFor, nl.HeldForExact = max(now.Sub(st.HeldSince), 0), st.HeldSinceExact
	}
	return nl
}

func durations(h *locks.Histogram) lockreport.Durations {
	return lockreport.Durations{Count: h.Count, Sum: h.Sum, P50: h.Quantile(0.5), P99: h.Quantile(0.99), Max: h.Max}
}

// stuckNamed reports whether a named lock is stuck: it has waiters, and
// its current hold has lasted bound, or nobody acquired it for that long.
func stuckNamed(nl *lockreport.NamedLock, bound time.Duration) bool {
	return nl.Waiters > 0 && (nl.Held && nl.HeldFor >= bound || nl.NoProgress >= bound)
}

// nanSum adds what is measured: NaN only if neither is.
func nanSum(a, b float64) float64 {
	switch {
	case a != a:
		return b
	case b != b:
		return a
	}
	return a + b
}

// topNamed returns up to n of the summaries, the busiest first (stuck,
// then waiters, then wait), as the report's view; with frames, the
// holders' sampled stacks resolved.
func topNamed(all []namedSummary, n int, frames bool) []lockreport.NamedLock {
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(x, y int) int {
		return lockreport.BusiestFirst(&all[x].NamedLock, &all[y].NamedLock)
	})
	out := make([]lockreport.NamedLock, 0, min(n, len(all)))
	for _, i := range idx[:min(n, len(idx))] {
		nl := all[i].NamedLock
		if frames {
			nl.AcquiredAt = framesOf(all[i].pcs[:all[i].npc])
		}
		out = append(out, nl)
	}
	return out
}

// namedNow reads the named locks afresh for a snapshot, taken next to its
// goroutine dump so that the holders' ids match it: the no-progress spans
// come from the sampler's last read.
func (m *Monitor) namedNow() []lockreport.NamedLock {
	now := time.Now()
	states := locks.Read(nil)
	if len(states) == 0 {
		return nil
	}
	type seen struct {
		waiters    int
		acq        uint64
		noProgress time.Duration
	}
	m.stateMu.Lock()
	prev, at := m.named.locks, m.named.time
	byKey := make(map[namedKey]seen, len(prev))
	for i := range prev {
		if p := &prev[i]; p.Waiters > 0 {
			byKey[namedKey{p.Name, p.named}] = seen{p.Waiters, p.Acquisitions, p.NoProgress}
		}
	}
	m.stateMu.Unlock()
	out := make([]lockreport.NamedLock, len(states))
	for i := range states {
		st := &states[i]
		nl := summarize(st, now)
		nl.AcquiredAt = framesOf(st.HolderStack())
		if p, ok := byKey[namedKey{st.Name, st.Named}]; ok && st.Waiters > 0 && p.acq == st.Acquisitions {
			nl.NoProgress = p.noProgress + now.Sub(at)
		}
		nl.Stuck = stuckNamed(&nl, m.cfg.StuckAfter)
		out[i] = nl
	}
	return out
}

// inversionsNow reads the lock-order inversions afresh for a snapshot.
func inversionsNow() ([]lockreport.LockInversion, int) {
	invs, lost := locks.Inversions(nil)
	var out []lockreport.LockInversion
	for _, inv := range invs {
		out = append(out, inversion(inv))
	}
	return out, lost
}

// inversion resolves a lock-order inversion's stacks.
func inversion(inv locks.Inversion) lockreport.LockInversion {
	return lockreport.LockInversion{A: inv.A, B: inv.B, Time: inv.Time,
		GoroutineAB: int64(inv.GoroutineAB), StackAB: framesOf(inv.StackAB),
		GoroutineBA: int64(inv.GoroutineBA), StackBA: framesOf(inv.StackBA)}
}

// framesOf resolves program counters (from runtime.Callers) to frames.
func framesOf(pcs []uintptr) []lockreport.Frame {
	if len(pcs) == 0 {
		return nil
	}
	var out []lockreport.Frame
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function != "" && f.Function != "runtime.goexit" {
			out = append(out, lockreport.Frame{Func: f.Function, File: f.File, Line: f.Line})
		}
		if !more {
			return out
		}
	}
}

// frameAt is "main.transfer (bank.go:30)" for a log line: the first frame.
func frameAt(fs []lockreport.Frame) string {
	if len(fs) == 0 {
		return "?"
	}
	return lockreport.ParkedSite{Func: fs[0].Func, File: fs[0].File, Line: fs[0].Line}.Where()
}

// namedWarning names a named lock whose waiters have waited behind one
// hold for half of StuckAfter: an early warning for the trace controller.
func (m *Monitor) namedWarning() string {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	for i := range m.named.locks {
		s := &m.named.locks[i]
		if s.Waiters > 0 && (s.Held && s.HeldFor >= m.cfg.StuckAfter/2 || s.NoProgress >= m.cfg.StuckAfter/2) {
			return fmt.Sprintf("named lock %q: %s behind a hold of %s", s.Name, textfmt.Plural(s.Waiters, "waiter", "waiters"),
				textfmt.Dur(max(s.HeldFor, s.NoProgress).Round(time.Millisecond)))
		}
	}
	return ""
}
