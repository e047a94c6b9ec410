package locks

import (
	"sync"
	"sync/atomic"
)

// A Mutex is a mutual exclusion lock with the API and semantics of
// [sync.Mutex]; a named one also records its waits, holds and holder (see
// the package doc). The zero value is an unlocked, unnamed Mutex.
//
// A Mutex must not be copied after first use.
type Mutex struct {
	mu sync.Mutex
	hw atomic.Uint64         // the holder word (see state.hw); 0 if unnamed
	s  atomic.Pointer[state] // nil: unnamed
}

// SetName names m, registers it with the process-wide registry read by
// [Read], and starts recording. The name is the lock's id: give each lock its
// own (for example "inventory_shard_127").
//
// Call SetName before m is first used; a hold or wait in progress when it is
// called is not recorded. Calling it again renames m and keeps what was
// recorded. SetName is safe for concurrent use.
func (m *Mutex) SetName(name string) {
	if s := m.s.Load(); s != nil {
		s.setName(name)
		return
	}
	s := newState(name, kindMutex, &m.hw, &m.mu)
	if m.s.CompareAndSwap(nil, s) {
		register(s)
	} else {
		m.s.Load().setName(name)
	}
}

// Lock locks m, waiting until it is available.
func (m *Mutex) Lock() {
	s := m.s.Load()
	if s == nil {
		m.mu.Lock()
		return
	}
	g := goid()
	if !order.on.Load() && m.mu.TryLock() { // the hot path, written out
		if n := s.acquired(&m.hw, g); n&holdMask == 0 {
			s.timeHold(n, nanotime())
		}
		return
	}
	m.lockSlow(s, g)
}

func (m *Mutex) lockSlow(s *state, g uint64) {
	if order.on.Load() {
		s.orderLock(g, true)
		if m.mu.TryLock() {
			if n := s.acquired(&m.hw, g); n&holdMask == 0 {
				s.timeHold(n, nanotime())
			}
			return
		}
	}
	start := s.waitBegin()
	m.mu.Lock()
	if n := s.waitedW(g, start); n != 0 {
		s.recordStack(n, 2) // skip lockSlow, Lock
	}
}

// TryLock tries to lock m and reports whether it succeeded. It never waits,
// so a failed TryLock is not a contended acquisition.
//
// As with [sync.Mutex.TryLock], correct uses are rare.
func (m *Mutex) TryLock() bool {
	s := m.s.Load()
	if s == nil {
		return m.mu.TryLock()
	}
	if !m.mu.TryLock() {
		return false
	}
	g := goid()
	if n := s.acquired(&m.hw, g); n&holdMask == 0 {
		s.timeHold(n, nanotime())
	}
	if order.on.Load() {
		s.orderLock(g, false)
	}
	return true
}

// Unlock unlocks m. As with [sync.Mutex], it is a run-time error if m is not
// locked, and m may be unlocked by a goroutine other than the one that locked
// it.
func (m *Mutex) Unlock() {
	s := m.s.Load()
	if s == nil {
		m.mu.Unlock()
		return
	}
	if !order.on.Load() && m.hw.Load()&slowBit == 0 {
		m.mu.Unlock() // the hot path: nothing to record or clear
		return
	}
	m.unlockSlow(s)
}

func (m *Mutex) unlockSlow(s *state) {
	if order.on.Load() {
		s.orderUnlock(s.holderG())
	}
	h := m.hw.Load()
	r := s.releasing(h)
	if h&clearBit != 0 {
		s.clearHolder()
	}
	m.mu.Unlock()
	s.released(r)
}
