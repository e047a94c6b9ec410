package locks

import (
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// The registry is the package's one piece of process-wide state. It has to
// be: a named lock lives inside its owner's structs, wherever they are, and
// the monitor must find every one of them without the owner passing them
// around. It holds weak pointers, so it never keeps a lock (or its state)
// alive: when the owner drops a lock, the garbage collector frees it and the
// registry forgets it at its next sweep.
var registry struct {
	mu    sync.Mutex // guards the fields below, and each state's seenAcq, seenSeq, seenAt
	locks []weak.Pointer[state]
	live  int // live locks found by the last sweep
}

// register adds a newly named lock. It sweeps out collected locks whenever the
// list has doubled since the last sweep, so that a program that names and
// drops locks without ever calling Read does not grow the list without bound.
func register(s *state) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if len(registry.locks) >= 2*registry.live+64 {
		sweep(func(*state) {})
	}
	registry.locks = append(registry.locks, weak.Make(s))
}

// sweep calls f for each live lock, in the order they were named, and drops
// the collected ones. registry.mu must be held.
func sweep(f func(*state)) {
	live := registry.locks[:0]
	for _, p := range registry.locks {
		if s := p.Value(); s != nil {
			live = append(live, p)
			f(s)
		}
	}
	clear(registry.locks[len(live):])
	registry.locks = live
	registry.live = len(live)
}

// State is the state of one named lock, as read by [Read]. Its JSON form
// uses the names of the schema (lock.id, lock.type, lock.wait.duration,
// lock.held.duration) and snake_case for the rest; see
// [Histogram.MarshalJSON].
type State struct {
	// Name is the lock's id, given by SetName.
	Name string `json:"lock.id"`
	// Type is TypeMutex or TypeRWMutex.
	Type string `json:"lock.type"`
	// Named is when the lock was first named: the start of its counts and
	// histograms.
	Named time.Time `json:"named"`

	// Acquisitions counts the acquisitions since the lock was named: Lock
	// and successful TryLock calls, and for RWMutex RLock and successful
	// TryRLock calls too.
	Acquisitions uint64 `json:"acquisitions"`
	// Contended counts the acquisitions that had to wait (those whose fast
	// path failed); it equals Wait.Count, exact but for the waits since
	// the last timed one (see the package doc, Cost).
	Contended uint64 `json:"contended"`

	// Waiters is the number of goroutines waiting to acquire the lock now.
	// For a Mutex it is the count sync.Mutex keeps itself: the goroutines
	// parked in it (a goroutine spinning before it parks, a few hundred
	// nanoseconds at most, is not counted, nor is one just woken that has
	// not yet taken the lock). For an RWMutex it counts the goroutines in
	// its slow paths.
	Waiters int `json:"waiters"`
	// Readers is the number of read holds now (RWMutex only).
	Readers int `json:"readers"`

	// Held reports whether the lock is locked (for RWMutex: for writing)
	// now.
	Held bool `json:"held"`
	// Holder is the id of the goroutine that holds the lock, as printed
	// in its runtime.Stack header ("goroutine 18 [running]:"); 0 if the
	// lock is not held or ids are unavailable (see the package doc). For
	// RWMutex, it is the writer. It is read without stopping the lock, so
	// the lock may have changed hands since; and right after an
	// acquisition, before the new holder has stored its id (a few
	// nanoseconds, unless it is preempted just then), a Mutex shows its
	// previous holder.
	Holder uint64 `json:"holder_goroutine,omitzero"`
	// HeldSince is when the current hold began, if Held. It is exact if
	// HeldSinceExact (the hold was timed: see the package doc, section
	// Cost); otherwise it is the first time Read saw this hold, and the
	// lock has been held at least since then.
	HeldSince      time.Time `json:"held_since,omitzero"`
	HeldSinceExact bool      `json:"held_since_exact,omitzero"`

	// Wait is the distribution of wait durations of contended
	// acquisitions: from the failed fast path to acquisition. Every
	// contended acquisition is counted (but for those since the last
	// timed one); on a lock whose waits are short 1 in 8 is timed and
	// stands for the others, so Sum and the buckets are estimates there:
	// see the package doc, section Cost.
	Wait Histogram `json:"lock.wait.duration"`
	// Hold is the distribution of hold durations, from acquisition to
	// release. It is sampled and its Count and Sum are estimates: see the
	// package doc, section Cost.
	Hold Histogram `json:"lock.held.duration"`

	stack  [stackDepth]uintptr
	stackN int
}

// HolderStack returns the program counters (as from [runtime.Callers]) of the
// call that acquired the current hold, starting at the caller of Lock, if
// that acquisition's stack was recorded (see the package doc, section Cost),
// or nil. Pass it to [runtime.CallersFrames]. The slice shares s's memory.
func (s *State) HolderStack() []uintptr {
	return s.stack[:s.stackN:s.stackN]
}

// Read appends the state of every named lock that is still reachable to dst
// and returns the extended slice, in the order the locks were named.
//
// Read does not allocate if dst has room: a monitor that polls should pass
// the previous result, truncated (states = Read(states[:0])). Each State is
// about 5 KiB, mostly its two histograms; Read fills it under a process-wide
// mutex that [Mutex.SetName] also takes, in about 0.4 µs per lock (BenchmarkRead:
// 35 µs for 100 locks on a 2-vCPU VM). Read is
// safe for concurrent use, and reading does not stop or slow the locks.
func Read(dst []State) []State {
	now := nanotime()
	registry.mu.Lock()
	defer registry.mu.Unlock()
	sweep(func(s *state) {
		if len(dst) < cap(dst) {
			dst = dst[:len(dst)+1]
		} else {
			dst = append(dst, State{})
		}
		s.read(&dst[len(dst)-1], now)
	})
	return dst
}

// read fills every field of st. registry.mu must be held.
func (s *state) read(st *State, now int64) {
	st.Name = *s.name.Load()
	st.Named = fromNanotime(s.named)
	st.Type = TypeMutex
	if s.kind == kindRWMutex {
		st.Type = TypeRWMutex
	}
	high := s.acqHigh.Load() // before hw: see acquisitions
	hw := s.hw.Load()
	since := s.heldSince.Load()
	acq := max(acquisitions(high, hw&seqMask), s.seenAcq)
	s.seenAcq = acq
	g := hw >> gShift
	st.Held = g != 0
	if s.lockWord != nil {
		st.Held = atomic.LoadInt32(s.lockWord)&1 != 0
	}
	st.Holder = 0
	if st.Held && g != maxG {
		st.Holder = g
	}
	st.HeldSince, st.HeldSinceExact = time.Time{}, false
	switch {
	case !st.Held:
	case since != 0:
		st.HeldSince, st.HeldSinceExact = fromNanotime(since), true
	default:
		if s.seenSeq != acq || s.seenAt == 0 {
			s.seenSeq, s.seenAt = acq, now
		}
		st.HeldSince = fromNanotime(s.seenAt)
	}

	st.stackN = 0
	s.stackMu.Lock()
	if st.Held && s.stackSeq == acq {
		st.stack, st.stackN = s.stack, s.stackN
	}
	s.stackMu.Unlock()

	readers, rlocks := s.readCounts()
	st.Readers = int(readers)
	st.Waiters = s.waiters(hw, st.Held)
	s.wait.read(&st.Wait)
	s.hold.read(&st.Hold)
	st.Contended = st.Wait.Count
	st.Acquisitions = acq + rlocks
}
