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
	// holdMask selects the acquisitions whose hold is timed: 1 in 256,
	// those whose number n has n&holdMask == 0. A contended acquisition's
	// hold is also timed if no hold of the lock was timed for holdEvery.
	// A timed hold stands for itself and the untimed ones since the last
	// timed one, so that the hold histogram's count is exact but for the
	// acquisitions since the last timed hold. Tests set holdMask to 0 to
	// time every hold. holdMask+1 must divide 1<<seqBits. (A timed hold
	// costs two clock reads, a histogram record and Unlock's slow path,
	// about 80 ns on a VM: 1 in 64 to 1 in 256 took an uncontended
	// Lock+Unlock from 13.7 to 12.8 ns in one test binary.)
	holdMask  uint64 = 255
	holdEvery int64  = int64(100 * time.Microsecond)
	// waitMask selects the contended write acquisitions whose wait is
	// timed: 1 in 8, those that begin while the holder word's wait number
	// is a multiple of 8 (the waiter reads the word, which is on the line
	// it is about to wait on, and writes nothing shared to choose; waiters
	// that arrive together are timed together, and the weights stay exact,
	// since they are counted when the waits end). Every wait is timed while the
	// lock's latest timed wait lasted waitLong or more and came waitLong
	// or more after the one before it: a slow lock, whose waits are long
	// and whose hand-overs are rare, so that two clock reads are nothing
	// beside them. A timed wait stands for itself and the untimed ones
	// before it. On a lock handed over every few tens of nanoseconds
	// (waits there are long too when many goroutines queue), the clock
	// reads inside the critical section were most of a contended
	// acquisition's cost.
	waitMask uint64 = 7
	waitLong int64  = int64(10 * time.Microsecond)
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
// holder's goroutine id, the acquisition's number modulo 2^seqBits and, if
// it waited, the number of write waits modulo 2^waitBits: one atomic store
// per Lock is all the hot path pays for all three (an atomic add for a count
// and a store for the holder cost about 2 ns each on a 2023 x86 server, and
// an atomic add on a word that all waiters write costs far more when they
// are on several processors). acqHigh carries the acquisition count's high
// bits; see acquisitions.
//
// The word lives in the lock, beside its sync word, not in the state: the
// acquisition that just took the sync word's cache line writes the holder
// into the same line, where a store to the state's line would wait for that
// line to come from the previous holder's processor, inside the critical
// section (on a lock handed between processors, that doubled the hold).
// For the same reason the word's slowBit tells Unlock whether it has
// anything to record, so that its fast path reads nothing else.
const (
	seqBits = 16
	seqMask = 1<<seqBits - 1
	// slowBit is set in the holder word when Unlock has work: the hold is
	// timed, the acquisition's wait is, the waiter must be uncounted, or
	// the holder must be cleared.
	slowBit = 1 << seqBits
	// clearBit, kept by every acquisition, says that Unlock must clear the
	// holder (a Mutex whose lock bit cannot be read); it implies slowBit.
	clearBit = slowBit << 1
	// waitedBit marks a hold whose holder waited for it and is still
	// counted in state.waiting: its Unlock uncounts it after releasing
	// the lock (always with slowBit). A Mutex whose sync word can be read
	// counts no waiters (see state.waiters) and never sets it.
	waitedBit = slowBit << 2
	// timedBit marks a hold that is timed or whose wait was timed: Unlock
	// reads the state's timing fields (always with slowBit).
	timedBit = slowBit << 3
	// The number of write waits, mod 2^waitBits, above the flags: a timed
	// wait stands for the waits since the last timed one, and they are
	// counted here, by the waiter once it holds the lock, so that no
	// counter is written while waiting. 1 in 8 waits is timed (waitMask),
	// far more than 1 in 2^waitBits.
	waitBits  = 8
	waitShift = seqBits + 4
	waitField = (1<<waitBits - 1) << waitShift
	oneWait   = 1 << waitShift
	gShift    = waitShift + waitBits
	// maxG is the largest goroutine id the word holds; it also stands for
	// "unknown". Ids grow by one per goroutine created: 2^36 is 68
	// billion goroutines.
	maxG = 1<<(64-gShift) - 1
)

// packG returns goroutine id g (or unknownG) as stored in the holder word.
func packG(g uint64) uint64 { return min(g, maxG) << gShift }

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
// Read tells whether the Mutex is held from that bit. The same word counts
// the goroutines parked waiting for the Mutex above its three flag bits
// (lockWaiterShift), so such a Mutex counts no waiters of its own.
var lockWordOK bool

// lockWaiterShift is mutexWaiterShift of internal/sync: the sync word's
// waiter count starts at this bit (TestStuckHolderNamed counts on it).
const lockWaiterShift = 3

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
//
// The fields are grouped by who writes them, each group on cache lines of
// its own (the pads): the lock's hot paths read the first group, which is
// written once; holders write the second on timed and waited holds;
// waiters write the third. A waiter arriving must not take from the
// holder, inside its critical section, the line the holder writes next.
type state struct {
	// Written when the lock is named.
	hw *atomic.Uint64 // holder word, in the lock: packG(goroutine id) | timedBit | waitedBit | clearBit | slowBit | acquisition number mod 2^seqBits; id 0: not held
	// lockWord is the state word of a Mutex's sync.Mutex if lockWordOK,
	// else nil: Unlock then clears the holder in hw.
	lockWord *int32
	// waitsLong: the lock is slow (see waitMask), so every write wait is
	// timed. Written when it changes.
	waitsLong atomic.Bool
	_         [cacheLine]byte

	// Written by holders.
	acqHigh   atomic.Uint64 // see acquisitions
	heldSince atomic.Int64  // nanotime when the current hold began, if it is timed; else 0

	holdWeight   uint64 // guarded: how many holds the current timed hold stands for
	waited       int64  // guarded: the current hold's wait in ns, +1; 0 if it did not wait
	lastTimedSeq uint64 // guarded: number (mod 2^seqBits) of the last timed hold
	lastTimedAt  int64  // guarded: nanotime when it began
	waitWeight   uint64 // guarded: how many waits the current hold's timed wait stands for
	lastWaitN    uint64 // guarded: number (the holder word's wait bits) of the last timed write wait
	lastWaitEnd  int64  // guarded: nanotime when it ended
	_            [cacheLine]byte

	// Written by waiters, unless lockWord counts them: the goroutines in
	// a slow path now.
	waiting atomic.Int64
	_       [cacheLine]byte

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

const cacheLine = 64

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

// newState returns the state of a lock named name, whose holder word is hw;
// mu is the Mutex's sync.Mutex, or nil for an RWMutex.
func newState(name string, kind uint8, hw *atomic.Uint64, mu *sync.Mutex) *state {
	probeRuntime()
	orderFromEnv()
	s := &state{kind: kind, hw: hw, named: nanotime(), id: lastID.Add(1)}
	s.name.Store(&name)
	s.readerMissing = goidOffset == 0
	if mu != nil && lockWordOK {
		s.lockWord = (*int32)(unsafe.Pointer(mu))
	}
	if mu != nil && s.lockWord == nil {
		hw.Store(hw.Load() | clearBit | slowBit)
	}
	return s
}

func (s *state) setName(name string) { s.name.Store(&name) }

// acquired records a write acquisition by goroutine g and returns its number
// modulo 2^seqBits. It is the hot path, inlined.
// hw is the lock's holder word (s.hw, passed by the lock's hot path, which
// has it at hand).
func (s *state) acquired(hw *atomic.Uint64, g uint64) uint64 {
	old := hw.Load()
	n := (old + 1) & seqMask
	c := old & clearBit
	hw.Store(packG(g) | old&waitField | c | c>>1 | n) // clearBit implies slowBit
	if n == 1<<(seqBits-1) {
		s.acqHigh.Add(1)
	}
	return n
}

// acquiredWaited is acquired for an acquisition that waited: it also counts
// the wait and sets bits. It returns the acquisition's number and the
// wait's (mod 2^waitBits).
func (s *state) acquiredWaited(g, bits uint64) (n, w uint64) {
	old := s.hw.Load()
	n = (old + 1) & seqMask
	w = (old + oneWait) & waitField
	c := old & clearBit
	s.hw.Store(packG(g) | w | c | c>>1 | bits | n)
	if n == 1<<(seqBits-1) {
		s.acqHigh.Add(1)
	}
	return n, w >> waitShift
}

// holderG returns the goroutine id in the holder word.
func (s *state) holderG() uint64 { return s.hw.Load() >> gShift }

// timed marks the current hold as one whose Unlock has timing to record.
// Only the holder calls it.
func (s *state) timed() { s.hw.Store(s.hw.Load() | slowBit | timedBit) }

// clearHolder marks the lock as not held, keeping the acquisition number.
func (s *state) clearHolder() { s.hw.Store(s.hw.Load() & (seqMask | waitField | clearBit)) }

// timeHold times the current hold, acquisition n (mod 2^seqBits), which
// began at now.
func (s *state) timeHold(n uint64, now int64) {
	s.holdWeight = (n - s.lastTimedSeq) & seqMask
	s.lastTimedSeq, s.lastTimedAt = n, now
	s.heldSince.Store(now)
	s.timed()
}

// waiters returns the number of goroutines waiting for the lock now, given
// the holder word hw and whether the lock is held. A Mutex whose sync word
// can be read counts the goroutines parked in it, as sync.Mutex does (a
// goroutine spinning before it parks, for a few hundred nanoseconds at
// most, is not counted). Other locks count the goroutines in their slow
// paths, and a holder that waited is counted until its Unlock.
func (s *state) waiters(hw uint64, held bool) int {
	if s.lockWord != nil {
		return int(atomic.LoadInt32(s.lockWord) >> lockWaiterShift)
	}
	w := int(s.waiting.Load())
	if held && hw&waitedBit != 0 && w > 0 {
		w--
	}
	return w
}

// waitBegin is called when a write acquisition's fast path failed. It
// returns the wait's start if the wait is to be timed (see waitMask), else
// 0.
func (s *state) waitBegin() (start int64) {
	if s.lockWord == nil {
		s.waiting.Add(1)
	}
	if (s.hw.Load()>>waitShift)&waitMask == 0 || s.waitsLong.Load() {
		start = nanotime()
	}
	return start
}

// waitedW records a contended write acquisition by goroutine g that began
// to wait at start (0: not timed). A timed wait is recorded after Unlock has
// released the lock. It returns the full acquisition count if a holder
// stack is due, else 0.
func (s *state) waitedW(g uint64, start int64) uint64 {
	var bits uint64
	if s.lockWord == nil {
		// The waiter stays counted until Unlock: uncounting it here
		// would write, inside the critical section, the line that
		// arriving waiters write.
		bits = waitedBit | slowBit
	}
	if start != 0 {
		bits |= timedBit | slowBit
	}
	n, w := s.acquiredWaited(g, bits)
	if start == 0 {
		// Not timed: the next timed wait stands for this one.
		if n&holdMask == 0 {
			s.timeHold(n, nanotime())
		}
		return 0
	}
	now := nanotime()
	s.waited = now - start + 1
	// Weight: this wait and the untimed ones since the last timed one.
	s.waitWeight = (w - s.lastWaitN) & (1<<waitBits - 1)
	if s.waitWeight == 0 {
		s.waitWeight = 1 << waitBits
	}
	s.lastWaitN = w
	long := now-start >= waitLong && now-s.lastWaitEnd >= waitLong
	if long != s.waitsLong.Load() {
		s.waitsLong.Store(long)
	}
	s.lastWaitEnd = now
	if n&holdMask == 0 || now-s.lastTimedAt >= holdEvery {
		s.timeHold(n, now)
	}
	if !s.stackDue(now) {
		return 0
	}
	return acquisitions(s.acqHigh.Load(), n)
}

// A release is what Unlock records after releasing the lock.
type release struct {
	hold, wait   int64  // < 0: none
	holdW, waitW uint64 // their weights
	waiter       bool   // the holder waited: uncount it from the waiters
}

// releasing is called by Unlock before the lock is released, if its holder
// word h has slowBit. It reads the state only if the hold or its wait is
// timed (timedBit): a hold that waited untimed writes nothing in the
// critical section.
func (s *state) releasing(h uint64) release {
	r := release{hold: -1, wait: -1, waiter: h&waitedBit != 0}
	if h&timedBit == 0 {
		return r
	}
	if s.waited != 0 {
		r.wait, r.waitW = s.waited-1, s.waitWeight
		s.waited = 0
	}
	if t := s.heldSince.Load(); t != 0 {
		r.hold, r.holdW = nanotime()-t, s.holdWeight
		s.heldSince.Store(0)
	}
	return r
}

// released records r, after the lock was released so that the recording
// does not lengthen the critical section.
func (s *state) released(r release) {
	if r.waiter {
		s.waiting.Add(-1)
	}
	if r.hold >= 0 {
		s.hold.record(r.hold, r.holdW)
	}
	if r.wait >= 0 {
		s.wait.record(r.wait, r.waitW)
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
	s.waiting.Add(-1)
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
