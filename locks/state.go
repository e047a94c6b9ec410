package locks

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Sampling rates. See the package doc, section Cost.
var (
	// holdMask selects the uncontended acquisitions whose hold is timed:
	// 1 in 64, those whose number u among the uncontended acquisitions has
	// u&holdMask == 0. Each stands for holdMask+1 holds in the hold
	// histogram, itself and the untimed ones before it, so that the
	// histogram's count is exact up to the last 63 acquisitions. Tests set
	// it to 0 to time every hold.
	holdMask uint64 = 63
	// stackEvery is the least time between two holder stacks of one lock.
	stackEvery int64 = int64(time.Millisecond)
)

// stackDepth is how many frames a recorded stack keeps.
const stackDepth = 32

// epoch is the origin of nanotime. Reading a clock is the main cost of
// timing, so the hot paths use time.Since on a monotonic origin, which reads
// only the runtime's monotonic clock.
var epoch = time.Now()

// nanotime returns monotonic nanoseconds since epoch, plus one so that it is
// never 0 (0 means "not timed").
func nanotime() int64 { return int64(time.Since(epoch)) + 1 }

func fromNanotime(t int64) time.Time { return epoch.Add(time.Duration(t - 1)) }

const (
	kindMutex uint8 = iota
	kindRWMutex
)

// state is what a named lock records. Unnamed locks have none. Fields marked
// "guarded" are written and read only by the goroutine holding the lock (for
// writes); the others are atomic because Read reads them concurrently.
type state struct {
	// Written on every (write) acquisition.
	holder    atomic.Uint64 // goroutine id of the write holder, unknownG, or 0 if not held
	acq       atomic.Uint64 // write acquisitions (all acquisitions for Mutex)
	heldSince atomic.Int64  // nanotime when the current hold began, if it is timed; else 0

	holdWeight uint64 // guarded: how many holds the current timed hold stands for
	waited     int64  // guarded: the current hold's wait in ns, +1; 0 if it did not wait
	contendedW uint64 // guarded: contended write acquisitions

	waiters atomic.Int64 // goroutines in a slow path now

	// RWMutex read side.
	rlocks     atomic.Uint64 // read acquisitions
	runlocks   atomic.Uint64 // RUnlock calls
	rcontended atomic.Uint64 // contended read acquisitions
	// One read hold at a time is timed: reader is its goroutine.
	reader        atomic.Uint64
	readSince     atomic.Int64
	readWeight    atomic.Uint64
	readUntimed   atomic.Uint64 // weight of read holds that were due but not timed
	readerMissing atomic.Bool   // goroutine ids unavailable: read holds are not timed

	wait hist
	hold hist

	// Holder stacks, sampled on contended acquisitions.
	lastStack atomic.Int64 // nanotime of the last stack
	stackMu   sync.Mutex
	stackSeq  uint64 // acq of the hold the stack belongs to
	stackN    int
	stack     [stackDepth]uintptr

	// Identity.
	name atomic.Pointer[string]
	kind uint8
	id   uint64 // registration number (registry.mu)

	// The first time Read saw the current hold (registry.mu).
	seenSeq uint64
	seenAt  int64
}

func newState(name string, kind uint8) *state {
	initGoid()
	orderFromEnv()
	s := &state{kind: kind}
	s.name.Store(&name)
	s.readerMissing.Store(goidOffset == 0)
	return s
}

func (s *state) setName(name string) { s.name.Store(&name) }

// acquired records an uncontended write acquisition by goroutine g. Lock
// does the same, written out.
func (s *state) acquired(g uint64) {
	n := s.acq.Add(1)
	s.holder.Store(g)
	if (n-s.contendedW)&holdMask == 0 {
		s.timeHold()
	}
}

// timeHold times the current hold, an uncontended one that stands for
// holdMask+1 holds.
func (s *state) timeHold() {
	s.holdWeight = holdMask + 1
	s.heldSince.Store(nanotime())
}

// waitBegin is called when the fast path failed; it returns the start of the
// wait.
func (s *state) waitBegin() int64 {
	s.waiters.Add(1)
	return nanotime()
}

// waited records a contended write acquisition by goroutine g that began to
// wait at start. It reports the acquisition number and whether a holder stack
// is due.
func (s *state) waitedW(g uint64, start int64) (uint64, bool) {
	now := nanotime()
	s.waiters.Add(-1)
	n := s.acq.Add(1)
	s.holder.Store(g)
	s.contendedW++
	s.holdWeight = 1
	s.waited = now - start + 1
	s.heldSince.Store(now)
	return n, s.stackDue(now)
}

// releasing is called by Unlock before the lock is released, if the hold is
// timed. It returns the hold to record after the release.
func (s *state) releasing() (hold, wait int64, w uint64) {
	hold, wait, w = nanotime()-s.heldSince.Load(), s.waited-1, s.holdWeight
	s.waited = 0
	s.heldSince.Store(0)
	s.holder.Store(0)
	return hold, wait, w
}

// released records what releasing returned, after the lock was released so
// that the recording does not lengthen the critical section.
func (s *state) released(hold, wait int64, w uint64) {
	s.hold.record(hold, w)
	if wait >= 0 {
		s.wait.record(wait, 1)
	}
}

// stackDue reports whether the goroutine acquiring at now should record its
// stack, and claims the slot if so.
func (s *state) stackDue(now int64) bool {
	last := s.lastStack.Load()
	return now-last >= stackEvery && s.lastStack.CompareAndSwap(last, now)
}

// recordStack records the calling goroutine's stack as that of hold n,
// skipping skip frames above its caller.
func (s *state) recordStack(n uint64, skip int) {
	var pcs [stackDepth]uintptr
	k := runtime.Callers(skip+2, pcs[:])
	s.stackMu.Lock()
	s.stack, s.stackN, s.stackSeq = pcs, k, n
	s.stackMu.Unlock()
}

// Read side of RWMutex.

// rAcquired records a read acquisition; start is the start of its wait, or 0
// if it did not wait.
func (s *state) rAcquired(start int64) {
	n := s.rlocks.Add(1)
	w := uint64(0)
	var now int64
	if start != 0 {
		now = nanotime()
		s.waiters.Add(-1)
		s.rcontended.Add(1)
		s.wait.record(now-start, 1)
		w = 1
	} else if (n-s.rcontended.Load())&holdMask == 0 {
		w = holdMask + 1
	}
	if w == 0 || s.readerMissing.Load() {
		return
	}
	g := goid()
	if s.reader.Load() != 0 || !s.reader.CompareAndSwap(0, g) {
		s.readUntimed.Add(w)
		return
	}
	if now == 0 {
		now = nanotime()
	}
	s.readWeight.Store(w + s.readUntimed.Swap(0))
	s.readSince.Store(now)
}

// rReleasing is called by RUnlock before the read lock is released. It
// returns a read hold to record after the release (hold < 0: none).
func (s *state) rReleasing() (hold int64, w uint64) {
	r := s.reader.Load()
	if r == 0 {
		s.runlocks.Add(1)
		return -1, 0
	}
	if r == goid() {
		hold, w = nanotime()-s.readSince.Load(), s.readWeight.Load()
		s.reader.Store(0)
		s.runlocks.Add(1)
		return hold, w
	}
	// The timed reader may have released its hold from another goroutine
	// (sync allows it); if no reader holds the lock now, give up on it and
	// carry its weight over to the next timed read hold.
	if u := s.runlocks.Add(1); s.rlocks.Load() == u && s.reader.CompareAndSwap(r, 0) {
		s.readUntimed.Add(s.readWeight.Load())
	}
	return -1, 0
}
