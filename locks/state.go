package locks

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Sampling rates. See the package doc, section Cost.
var (
	// holdMask selects the acquisitions whose hold is timed: 1 in 64,
	// those whose number n has n&holdMask == 0. A contended acquisition's
	// hold is also timed if no hold of the lock was timed for holdEvery.
	// A timed hold stands for itself and the untimed ones since the last
	// timed one, so that the hold histogram's count is exact but for the
	// acquisitions since the last timed hold. Tests set holdMask to 0 to
	// time every hold. holdMask+1 must divide 1<<seqBits.
	holdMask  uint64 = 63
	holdEvery int64  = int64(100 * time.Microsecond)
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

// The holder word. Every write acquisition stores, in one atomic word, the
// holder's goroutine id and the acquisition's number modulo 2^seqBits: one
// atomic store per Lock is all the hot path pays for both (an atomic add for
// the count and a store for the holder cost about 2 ns each on a 2023 x86
// server). acqHigh carries the count's high bits; see acquisitions.
const (
	seqBits = 16
	seqMask = 1<<seqBits - 1
	// maxG is the largest goroutine id the word holds; it also stands for
	// "unknown". Ids grow by one per goroutine created, so 2^48 is
	// centuries away.
	maxG = 1<<(64-seqBits) - 1
)

// packG returns goroutine id g (or unknownG) as stored in the holder word.
func packG(g uint64) uint64 { return min(g, maxG) << seqBits }

// acquisitions rebuilds the full count of write acquisitions from acqHigh
// (high) and the number in the holder word (n). acqHigh is incremented when
// the number becomes 1<<(seqBits-1), after the holder word is stored, so
// high = (count + 1<<(seqBits-1)) >> seqBits. Read loads acqHigh before the
// holder word; if an increment falls between the two loads, the count comes
// out 2^seqBits low, never high, and Read keeps the largest count it has
// seen.
func acquisitions(high, n uint64) uint64 {
	if n < 1<<(seqBits-1) {
		return high<<seqBits | n
	}
	if high == 0 {
		return n
	}
	return (high-1)<<seqBits | n
}

// lockWordOK reports whether a sync.Mutex's first 32-bit word is its state
// with bit 0 set while it is locked (internal/sync/mutex.go), checked once
// by checkLockWord. Then a named Mutex's Unlock need not clear the holder:
// Read tells whether the Mutex is held from that bit.
var lockWordOK bool

func checkLockWord() bool {
	var m sync.Mutex
	if unsafe.Sizeof(m) != 8 {
		return false
	}
	w := (*int32)(unsafe.Pointer(&m))
	ok := atomic.LoadInt32(w) == 0
	m.Lock()
	ok = ok && atomic.LoadInt32(w) == 1
	m.Unlock()
	return ok && atomic.LoadInt32(w) == 0
}

// state is what a named lock records. Unnamed locks have none. Fields marked
// "guarded" are written and read only while holding the lock (for writing);
// the others are atomic because Read reads them concurrently.
type state struct {
	// Written on every write acquisition.
	hw        atomic.Uint64 // holder word: packG(goroutine id) | acquisition number mod 2^seqBits; id 0: not held
	acqHigh   atomic.Uint64 // see acquisitions
	heldSince atomic.Int64  // nanotime when the current hold began, if it is timed; else 0

	holdWeight   uint64 // guarded: how many holds the current timed hold stands for
	waited       int64  // guarded: the current hold's wait in ns, +1; 0 if it did not wait
	lastTimedSeq uint64 // guarded: number (mod 2^seqBits) of the last timed hold
	lastTimedAt  int64  // guarded: nanotime when it began

	// lockWord is the state word of a Mutex's sync.Mutex if lockWordOK,
	// else nil: Unlock then clears the holder in hw.
	lockWord *int32

	waiters atomic.Int64 // goroutines in a slow path now

	// RWMutex read side: counters sharded (see shard), so that readers on
	// different processors do not write one more shared cache line
	// (sync.RWMutex already makes them share one).
	reads [readShards]readShard
	// One read hold at a time is timed: reader is its goroutine.
	reader        atomic.Uint64
	readSince     atomic.Int64
	readWeight    atomic.Uint64
	readUntimed   atomic.Uint64 // weight of read holds that were due but not timed
	readerMissing bool          // goroutine ids unavailable: read holds are not timed

	wait hist
	hold hist

	// Holder stacks, sampled on contended acquisitions.
	lastStack atomic.Int64 // nanotime of the last stack
	stackMu   sync.Mutex
	stackSeq  uint64 // the acquisition the stack belongs to
	stackN    int
	stack     [stackDepth]uintptr

	// Identity.
	name  atomic.Pointer[string]
	kind  uint8
	named int64  // nanotime of the first SetName
	id    uint64 // unique, for the lock-order check

	// Read's memory (registry.mu): the largest count seen, and the first
	// time it saw the current hold.
	seenAcq uint64
	seenSeq uint64
	seenAt  int64
}

const readShards = 8 // a power of 2: see shard

// readShard is 128 bytes so that no 64-byte cache line holds the counters
// of two shards, wherever the state starts.
type readShard struct {
	rlocks   atomic.Uint64 // read acquisitions
	runlocks atomic.Uint64 // RUnlock calls
	_        [128 - 16]byte
}

var lastID atomic.Uint64 // the last state id given

// shard returns the read counters of the calling goroutine: the shard is
// chosen by the address of its stack, which differs between goroutines and
// costs nothing to find (a goroutine whose stack moves just changes shard;
// any shard is correct, the counters are summed).
func (s *state) shard() *readShard {
	var here byte
	p := uint64(uintptr(unsafe.Pointer(&here)))
	return &s.reads[(p>>10*0x9E3779B97F4A7C15)>>(64-3)]
}

// newState returns the state of a lock named name; mu is the Mutex's
// sync.Mutex, or nil for an RWMutex.
func newState(name string, kind uint8, mu *sync.Mutex) *state {
	probeRuntime()
	orderFromEnv()
	s := &state{kind: kind, named: nanotime(), id: lastID.Add(1)}
	s.name.Store(&name)
	s.readerMissing = goidOffset == 0
	if mu != nil && lockWordOK {
		s.lockWord = (*int32)(unsafe.Pointer(mu))
	}
	return s
}

func (s *state) setName(name string) { s.name.Store(&name) }

// acquired records a write acquisition by goroutine g and returns its number
// modulo 2^seqBits. It is the hot path, inlined.
func (s *state) acquired(g uint64) uint64 {
	n := (s.hw.Load() + 1) & seqMask
	s.hw.Store(packG(g) | n)
	if n == 1<<(seqBits-1) {
		s.acqHigh.Add(1)
	}
	return n
}

// holderG returns the goroutine id in the holder word.
func (s *state) holderG() uint64 { return s.hw.Load() >> seqBits }

// clearHolder marks the lock as not held, keeping the acquisition number.
func (s *state) clearHolder() { s.hw.Store(s.hw.Load() & seqMask) }

// timeHold times the current hold, acquisition n (mod 2^seqBits), which
// began at now.
func (s *state) timeHold(n uint64, now int64) {
	s.holdWeight = (n - s.lastTimedSeq) & seqMask
	s.lastTimedSeq, s.lastTimedAt = n, now
	s.heldSince.Store(now)
}

// waitBegin is called when the fast path failed; it returns the start of the
// wait.
func (s *state) waitBegin() int64 {
	s.waiters.Add(1)
	return nanotime()
}

// waitedW records a contended write acquisition by goroutine g that began to
// wait at start. Its wait is recorded after Unlock has released the lock. It
// returns the full acquisition count if a holder stack is due, else 0.
func (s *state) waitedW(g uint64, start int64) uint64 {
	now := nanotime()
	s.waiters.Add(-1)
	n := s.acquired(g)
	s.waited = now - start + 1
	if n&holdMask == 0 || now-s.lastTimedAt >= holdEvery {
		s.timeHold(n, now)
	}
	if !s.stackDue(now) {
		return 0
	}
	return acquisitions(s.acqHigh.Load(), n)
}

// releasing is called by Unlock before the lock is released, if the hold is
// timed or waited. It returns what to record after the release (hold or wait
// < 0: none).
func (s *state) releasing() (hold, wait int64, w uint64) {
	hold, wait = -1, s.waited-1
	if t := s.heldSince.Load(); t != 0 {
		hold, w = nanotime()-t, s.holdWeight
		s.heldSince.Store(0)
	}
	s.waited = 0
	return hold, wait, w
}

// released records what releasing returned, after the lock was released so
// that the recording does not lengthen the critical section.
func (s *state) released(hold, wait int64, w uint64) {
	if hold >= 0 {
		s.hold.record(hold, w)
	}
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

// recordStack records the calling goroutine's stack as that of acquisition
// n (a full count), skipping skip frames above its caller.
func (s *state) recordStack(n uint64, skip int) {
	var pcs [stackDepth]uintptr
	k := runtime.Callers(skip+2, pcs[:])
	s.stackMu.Lock()
	s.stack, s.stackN, s.stackSeq = pcs, k, n
	s.stackMu.Unlock()
}

// Read side of RWMutex.

// rWaited records a read acquisition by goroutine g that began to wait at
// start.
func (s *state) rWaited(g uint64, start int64) {
	now := nanotime()
	s.waiters.Add(-1)
	s.wait.record(now-start, 1)
	if n := s.shard().rlocks.Add(1); n&holdMask == 0 {
		s.timeRead(g, holdMask+1, now)
	}
}

// timeRead times the read hold of goroutine g that began at now (0: not
// read yet) and stands for w holds, unless a read hold is timed already.
func (s *state) timeRead(g, w uint64, now int64) {
	if s.readerMissing {
		return
	}
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

// rReleasing is called by RUnlock by goroutine g before the read lock is
// released, unless it took the hot path. It returns a read hold to record
// after the release (hold < 0: none).
func (s *state) rReleasing(g uint64) (hold int64, w uint64) {
	r := s.reader.Load()
	if r == g {
		hold, w = nanotime()-s.readSince.Load(), s.readWeight.Load()
		s.reader.Store(0)
		s.shard().runlocks.Add(1)
		return hold, w
	}
	u := s.shard().runlocks.Add(1)
	// The timed reader may have released its hold from another goroutine
	// (sync allows it). Now and then (this is a sum over the shards), if
	// no reader holds the lock, give up on it and carry its weight over to
	// the next timed read hold.
	if r != 0 && u&holdMask == 0 && s.readers() == 0 && s.reader.CompareAndSwap(r, 0) {
		s.readUntimed.Add(s.readWeight.Load())
	}
	return -1, 0
}

// readers returns the number of read holds now, and the read acquisitions.
func (s *state) readers() int64 {
	n, _ := s.readCounts()
	return n
}

func (s *state) readCounts() (readers int64, rlocks uint64) {
	var runlocks uint64
	for i := range s.reads {
		runlocks += s.reads[i].runlocks.Load()
	}
	for i := range s.reads {
		rlocks += s.reads[i].rlocks.Load()
	}
	return max(int64(rlocks-runlocks), 0), rlocks
}
