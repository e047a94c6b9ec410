package locks

import (
	"runtime"
	"testing"
)

func nameAndDrop(name string) {
	m := new(Mutex)
	m.SetName(name)
	m.Lock()
	m.Unlock()
}

func TestRegistryDropsCollectedLocks(t *testing.T) {
	nameAndDrop("ephemeral")
	kept := new(RWMutex)
	kept.SetName("kept")
	runtime.GC()
	var sawKept bool
	for _, s := range Read(nil) {
		switch s.Name {
		case "ephemeral":
			t.Error("Read still returns a lock that was dropped and collected")
		case "kept":
			sawKept = true
		}
	}
	if !sawKept {
		t.Error("Read lost a lock that is still reachable")
	}
	runtime.KeepAlive(kept)
}

// TestRegistryBounded: naming and dropping many locks without ever calling
// Read keeps the list proportional to the live locks.
func TestRegistryBounded(t *testing.T) {
	for i := range 10000 {
		nameAndDrop("churn")
		if i%1000 == 0 {
			runtime.GC()
		}
	}
	registry.mu.Lock()
	n := len(registry.locks)
	registry.mu.Unlock()
	if n > 3000 {
		t.Errorf("registry holds %d entries after 10000 dropped locks", n)
	}
}

func TestNoAllocs(t *testing.T) {
	setHoldMask(t, 0) // every hold timed: the most work
	old := stackEvery
	stackEvery = 0 // every contended acquisition records its stack
	t.Cleanup(func() { stackEvery = old })

	var unnamed Mutex
	var named Mutex
	named.SetName("allocs")
	var rwu RWMutex
	var rw RWMutex
	rw.SetName("allocs_rw")
	s := named.s.Load()
	g := goid()
	dst := Read(nil)
	cases := []struct {
		name string
		f    func()
	}{
		{"unnamed", func() { unnamed.Lock(); unnamed.Unlock(); unnamed.TryLock(); unnamed.Unlock() }},
		{"unnamed rw", func() { rwu.Lock(); rwu.Unlock(); rwu.RLock(); rwu.RUnlock() }},
		{"named", func() { named.Lock(); named.Unlock(); named.TryLock(); named.Unlock() }},
		{"named rw", func() {
			rw.Lock()
			rw.Unlock()
			rw.RLock()
			rw.RUnlock()
			rw.TryRLock()
			rw.RUnlock()
		}},
		{"named, contended path", func() {
			// The steps of a contended Lock, in one goroutine.
			start := s.waitBegin()
			named.mu.Lock()
			if n := s.waitedW(g, start); n != 0 {
				s.recordStack(n, 0)
			}
			named.Unlock()
		}},
		{"Read", func() { dst = Read(dst[:0]) }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(1000, c.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", c.name, n)
		}
	}
}

func TestAcquisitionsDecode(t *testing.T) {
	// Walk the count across two periods of the holder word, as Lock
	// stores it, and check the decoding at every step, and that a read
	// between the holder word's store and acqHigh's increment comes out
	// low, never high.
	var high uint64
	for count := uint64(1); count < 3<<seqBits; count++ {
		n := count & seqMask
		if n == 1<<(seqBits-1) {
			if got := acquisitions(high, n); got > count {
				t.Fatalf("count %d: mid-update read %d, higher than the count", count, got)
			}
			high++
		}
		if got := acquisitions(high, n); got != count {
			t.Fatalf("count %d (high %d, n %#x): decoded %d", count, high, n, got)
		}
	}
}

// TestAcquisitionsWrap: a Mutex locked 3×2^16+5 times counts them all.
func TestAcquisitionsWrap(t *testing.T) {
	var m Mutex
	m.SetName("wrap")
	const n = 3<<seqBits + 5
	for range n {
		m.Lock()
		m.Unlock()
	}
	if s := find(t, "wrap"); s.Acquisitions != n {
		t.Errorf("Acquisitions %d, want %d", s.Acquisitions, n)
	}
	runtime.KeepAlive(&m)
}

// TestHeldWithoutLockWord: where sync.Mutex's lock bit cannot be read,
// Unlock clears the holder itself.
func TestHeldWithoutLockWord(t *testing.T) {
	var m Mutex
	m.SetName("no_lock_word")
	st := m.s.Load()
	st.lockWord = nil // as if checkLockWord had failed
	m.hw.Store(m.hw.Load() | clearBit | slowBit)
	for i, want := range []bool{true, false} {
		if want {
			m.Lock()
		} else {
			m.Unlock()
		}
		s := find(t, "no_lock_word")
		if s.Held != want || (s.Holder != 0) != (want && goidOffset != 0) {
			t.Errorf("step %d: Held %v, Holder %d; want Held %v", i, s.Held, s.Holder, want)
		}
	}
	if !lockWordOK && runtime.GOARCH == "amd64" {
		t.Error("the lock bit of sync.Mutex was not found on amd64")
	}
	runtime.KeepAlive(&m)
}
