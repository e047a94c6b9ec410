package locks

import (
	"sync"
	"sync/atomic"
)

// An RWMutex is a reader/writer mutual exclusion lock with the API and
// semantics of [sync.RWMutex]; a named one also records its waits, holds,
// writer and readers (see the package doc). The zero value is an unlocked,
// unnamed RWMutex.
//
// An RWMutex must not be copied after first use.
type RWMutex struct {
	rw sync.RWMutex
	hw atomic.Uint64         // the holder word (see state.hw); 0 if unnamed
	s  atomic.Pointer[state] // nil: unnamed
}

// SetName names rw; see [Mutex.SetName].
func (rw *RWMutex) SetName(name string) {
	if s := rw.s.Load(); s != nil {
		s.setName(name)
		return
	}
	s := newState(name, kindRWMutex, &rw.hw, nil)
	if rw.s.CompareAndSwap(nil, s) {
		register(s)
	} else {
		rw.s.Load().setName(name)
	}
}

// Lock locks rw for writing, waiting until no reader or writer holds it.
func (rw *RWMutex) Lock() {
	s := rw.s.Load()
	if s == nil {
		rw.rw.Lock()
		return
	}
	g := goid()
	if !order.on.Load() && rw.rw.TryLock() { // the hot path, written out
		if n := s.acquired(&rw.hw, g); n&holdMask == 0 {
			s.timeHold(n, nanotime())
		}
		return
	}
	rw.lockSlow(s, g)
}

func (rw *RWMutex) lockSlow(s *state, g uint64) {
	if order.on.Load() {
		s.orderLock(g, true)
		if rw.rw.TryLock() {
			if n := s.acquired(&rw.hw, g); n&holdMask == 0 {
				s.timeHold(n, nanotime())
			}
			return
		}
	}
	start := s.waitBegin()
	rw.rw.Lock()
	if n := s.waitedW(g, start); n != 0 {
		s.recordStack(n, 2) // skip lockSlow, Lock
	}
}

// TryLock tries to lock rw for writing and reports whether it succeeded.
func (rw *RWMutex) TryLock() bool {
	s := rw.s.Load()
	if s == nil {
		return rw.rw.TryLock()
	}
	if !rw.rw.TryLock() {
		return false
	}
	g := goid()
	if n := s.acquired(&rw.hw, g); n&holdMask == 0 {
		s.timeHold(n, nanotime())
	}
	if order.on.Load() {
		s.orderLock(g, false)
	}
	return true
}

// Unlock unlocks rw for writing. As with [sync.RWMutex], it is a run-time
// error if rw is not locked for writing.
func (rw *RWMutex) Unlock() {
	s := rw.s.Load()
	if s == nil {
		rw.rw.Unlock()
		return
	}
	if !order.on.Load() && rw.hw.Load()&slowBit == 0 {
		s.clearHolder() // the hot path, written out
		rw.rw.Unlock()
		return
	}
	rw.unlockSlow(s)
}

func (rw *RWMutex) unlockSlow(s *state) {
	if order.on.Load() {
		s.orderUnlock(s.holderG())
	}
	r := s.releasing(rw.hw.Load())
	s.clearHolder()
	rw.rw.Unlock()
	s.released(r)
}

// RLock locks rw for reading. As with [sync.RWMutex.RLock], it waits while a
// writer holds rw or waits for it, and it must not be used for recursive read
// locking.
func (rw *RWMutex) RLock() {
	s := rw.s.Load()
	if s == nil {
		rw.rw.RLock()
		return
	}
	if !order.on.Load() && rw.rw.TryRLock() { // the hot path, written out
		if n := s.shard().rlocks.Add(1); n&holdMask == 0 {
			s.timeRead(goid(), holdMask+1, 0)
		}
		return
	}
	rw.rlockSlow(s)
}

func (rw *RWMutex) rlockSlow(s *state) {
	g := goid()
	if order.on.Load() {
		s.orderLock(g, true)
		if rw.rw.TryRLock() {
			if n := s.shard().rlocks.Add(1); n&holdMask == 0 {
				s.timeRead(g, holdMask+1, 0)
			}
			return
		}
	}
	s.waiting.Add(1)
	start := nanotime()
	rw.rw.RLock()
	s.rWaited(g, start)
}

// TryRLock tries to lock rw for reading and reports whether it succeeded.
func (rw *RWMutex) TryRLock() bool {
	s := rw.s.Load()
	if s == nil {
		return rw.rw.TryRLock()
	}
	if !rw.rw.TryRLock() {
		return false
	}
	g := goid()
	if n := s.shard().rlocks.Add(1); n&holdMask == 0 {
		s.timeRead(g, holdMask+1, 0)
	}
	if order.on.Load() {
		s.orderLock(g, false)
	}
	return true
}

// RUnlock undoes a single RLock. It is a run-time error if rw is not locked
// for reading.
func (rw *RWMutex) RUnlock() {
	s := rw.s.Load()
	if s == nil {
		rw.rw.RUnlock()
		return
	}
	if !order.on.Load() && s.reader.Load() == 0 { // no read hold is timed: the hot path
		s.shard().runlocks.Add(1)
		rw.rw.RUnlock()
		return
	}
	rw.runlockSlow(s)
}

func (rw *RWMutex) runlockSlow(s *state) {
	g := goid()
	if order.on.Load() {
		s.orderUnlock(g)
	}
	hold, w := s.rReleasing(g)
	rw.rw.RUnlock()
	if hold >= 0 {
		s.hold.record(hold, w)
	}
}

// RLocker returns a [sync.Locker] that calls rw.RLock and rw.RUnlock.
func (rw *RWMutex) RLocker() sync.Locker {
	return (*rlocker)(rw)
}

type rlocker RWMutex

func (r *rlocker) Lock()   { (*RWMutex)(r).RLock() }
func (r *rlocker) Unlock() { (*RWMutex)(r).RUnlock() }
