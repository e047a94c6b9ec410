package locks

import (
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestZeroValue(t *testing.T) {
	var m Mutex
	m.Lock()
	if m.TryLock() {
		t.Error("TryLock succeeded on a locked Mutex")
	}
	m.Unlock()
	if !m.TryLock() {
		t.Error("TryLock failed on an unlocked Mutex")
	}
	m.Unlock()

	var rw RWMutex
	rw.RLock()
	rw.RLock()
	rw.RUnlock()
	rw.RUnlock()
	rw.Lock()
	rw.Unlock()
	l := rw.RLocker()
	l.Lock()
	l.Unlock()

	if m.s.Load() != nil || rw.s.Load() != nil {
		t.Error("zero-value locks have state; they should stay unnamed")
	}
}

func TestTryLock(t *testing.T) {
	for _, named := range []bool{false, true} {
		var m Mutex
		if named {
			m.SetName("trylock")
		}
		if !m.TryLock() {
			t.Fatalf("named=%v: TryLock on an unlocked Mutex failed", named)
		}
		if m.TryLock() {
			t.Fatalf("named=%v: TryLock on a locked Mutex succeeded", named)
		}
		// A goroutine other than the holder fails too.
		got := make(chan bool)
		go func() { got <- m.TryLock() }()
		if <-got {
			t.Fatalf("named=%v: TryLock from another goroutine succeeded", named)
		}
		m.Unlock()
		// A failed TryLock is not an acquisition, nor a contended one.
		if named {
			s := find(t, "trylock")
			if s.Acquisitions != 1 || s.Contended != 0 || s.Held {
				t.Errorf("after one TryLock and two failed ones: Acquisitions %d, Contended %d, Held %v; want 1, 0, false",
					s.Acquisitions, s.Contended, s.Held)
			}
		}
		runtime.KeepAlive(&m) // else the registry may forget it before find

	}
}

// rwOps are the non-blocking RWMutex operations, applied alike to
// sync.RWMutex and ours to compare their semantics.
type rwOps interface {
	TryLock() bool
	TryRLock() bool
	Unlock()
	RUnlock()
}

func TestRWMutexTrySemanticsMatchSync(t *testing.T) {
	// Each script is a sequence of operations: L TryLock, R TryRLock, U
	// Unlock, u RUnlock (U and u only when they are legal).
	scripts := []string{"RRLuuL", "LRLURL", "RLRuuLU", "LULRu", "RRRuuuLU"}
	for _, script := range scripts {
		var want []bool
		var srw sync.RWMutex
		var unnamed RWMutex
		var named RWMutex
		named.SetName("rw_semantics_" + script)
		for i, l := range []rwOps{&srw, &unnamed, &named} {
			var got []bool
			held, readers := false, 0
			for _, op := range script {
				switch op {
				case 'L':
					ok := l.TryLock()
					got = append(got, ok)
					held = held || ok
				case 'R':
					ok := l.TryRLock()
					got = append(got, ok)
					if ok {
						readers++
					}
				case 'U':
					if held {
						l.Unlock()
						held = false
					}
				case 'u':
					if readers > 0 {
						l.RUnlock()
						readers--
					}
				}
			}
			for ; readers > 0; readers-- {
				l.RUnlock()
			}
			if held {
				l.Unlock()
			}
			if i == 0 {
				want = got
			} else if !equal(got, want) {
				t.Errorf("script %s on %T #%d: results %v, sync.RWMutex gives %v", script, l, i, got, want)
			}
		}
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRWMutexWriterPreference checks the blocking rule sync.RWMutex documents:
// once a writer waits, new readers wait too (TryRLock fails), and the writer
// gets the lock when the readers leave.
func TestRWMutexWriterPreference(t *testing.T) {
	var named RWMutex
	named.SetName("rw_writer_preference")
	for _, rw := range []interface {
		rwOps
		Lock()
		RLock()
	}{new(sync.RWMutex), new(RWMutex), &named} {
		rw.RLock()
		locked := make(chan struct{})
		go func() {
			rw.Lock()
			close(locked)
		}()
		waitFor(t, "the writer to wait", func() bool {
			if rw.TryRLock() {
				rw.RUnlock()
				return false
			}
			return true
		})
		select {
		case <-locked:
			t.Fatalf("%T: the writer got the lock while a reader held it", rw)
		default:
		}
		rw.RUnlock()
		<-locked
		if rw.TryRLock() {
			t.Fatalf("%T: TryRLock succeeded while the writer holds the lock", rw)
		}
		rw.Unlock()
	}
}

// TestExclusion hammers each lock from many goroutines and checks the
// invariants: one writer and no reader, or only readers.
func TestExclusion(t *testing.T) {
	var m Mutex
	m.SetName("exclusion_mutex")
	var rw RWMutex
	rw.SetName("exclusion_rwmutex")
	setHoldMask(t, 3) // time many holds, to exercise those paths too

	var (
		wg      sync.WaitGroup
		inside  int // guarded by m
		writers int // guarded by rw (write)
		readers sync.Map
		errs    = make(chan string, 10)
	)
	report := func(s string) {
		select {
		case errs <- s:
		default:
		}
	}
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				m.Lock()
				inside++
				if inside != 1 {
					report("two goroutines inside the Mutex")
				}
				inside--
				m.Unlock()

				if (g+i)%10 == 0 {
					rw.Lock()
					writers++
					n := 0
					readers.Range(func(any, any) bool { n++; return true })
					if writers != 1 || n != 0 {
						report("writer not alone in the RWMutex")
					}
					writers--
					rw.Unlock()
				} else {
					rw.RLock()
					readers.Store(g, true)
					if writers != 0 {
						report("reader with a writer in the RWMutex")
					}
					readers.Delete(g)
					rw.RUnlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	ms := find(t, "exclusion_mutex")
	if ms.Acquisitions != 16*2000 || ms.Held || ms.Waiters != 0 {
		t.Errorf("mutex: Acquisitions %d, Held %v, Waiters %d; want %d, false, 0", ms.Acquisitions, ms.Held, ms.Waiters, 16*2000)
	}
	rs := find(t, "exclusion_rwmutex")
	runtime.KeepAlive(&m)
	runtime.KeepAlive(&rw)
	if rs.Acquisitions != 16*2000 || rs.Held || rs.Waiters != 0 || rs.Readers != 0 {
		t.Errorf("rwmutex: Acquisitions %d, Held %v, Waiters %d, Readers %d; want %d, false, 0, 0",
			rs.Acquisitions, rs.Held, rs.Waiters, rs.Readers, 16*2000)
	}
	if rs.Type != TypeRWMutex || ms.Type != TypeMutex {
		t.Errorf("types %q, %q", ms.Type, rs.Type)
	}
	// Every hold was counted: a timed hold stands for the untimed ones
	// before it (holdMask 3), so the weights add up to the acquisitions, but
	// for up to 3 untimed ones at the end.
	if ms.Hold.Count > ms.Acquisitions || ms.Hold.Count+3 < ms.Acquisitions {
		t.Errorf("mutex: Hold.Count %d, want Acquisitions %d (or up to 3 fewer)", ms.Hold.Count, ms.Acquisitions)
	}
	if ms.Contended != ms.Wait.Count {
		t.Errorf("mutex: Contended %d != Wait.Count %d", ms.Contended, ms.Wait.Count)
	}
}

// lockHogA locks m and holds it until release is closed.
func lockHogA(m *Mutex, id chan<- uint64, release <-chan struct{}) {
	m.Lock()
	id <- myID()
	<-release
	m.Unlock()
}

// lockHogB is lockHogA under another name, for a second lock.
func lockHogB(m *Mutex, id chan<- uint64, release <-chan struct{}) {
	m.Lock()
	id <- myID()
	<-release
	m.Unlock()
}

// TestStuckHolderNamed: while a goroutine holds a named lock, Read names it
// exactly (its id from its own stack header), its stack can be found by that
// id, and the goroutines waiting for the lock are counted.
func TestStuckHolderNamed(t *testing.T) {
	needGoid(t)
	var m Mutex
	m.SetName("stuck")
	release := make(chan struct{})
	ids := make(chan uint64)
	go lockHogA(&m, ids, release)
	hog := <-ids

	var waiters sync.WaitGroup
	for range 3 {
		waiters.Go(func() {
			m.Lock()
			m.Unlock()
		})
	}
	waitFor(t, "3 waiters", func() bool { return find(t, "stuck").Waiters == 3 })

	s := find(t, "stuck")
	if !s.Held || s.Holder != hog {
		t.Errorf("Held %v, Holder %d; want true, %d (the goroutine that locked it)", s.Held, s.Holder, hog)
	}
	if s.HeldSince.IsZero() {
		t.Error("HeldSince is zero while the lock is held")
	}
	if st := goroutineStack(s.Holder); !strings.Contains(st, "locks.lockHogA") {
		t.Errorf("the holder's stack does not show lockHogA:\n%s", st)
	}
	close(release)
	waiters.Wait()
	if s := find(t, "stuck"); s.Held || s.Holder != 0 || s.Waiters != 0 {
		t.Errorf("after release: Held %v, Holder %d, Waiters %d; want false, 0, 0", s.Held, s.Holder, s.Waiters)
	}
	runtime.KeepAlive(&m)
}

// TestTwoLocksApart: two named locks locked at one call site (lockHogA) by
// two goroutines are told apart, each with its own holder.
func TestTwoLocksApart(t *testing.T) {
	needGoid(t)
	var a, b Mutex
	a.SetName("inventory_shard_1")
	b.SetName("inventory_shard_2")
	release := make(chan struct{})
	ids := make(chan uint64)
	go lockHogA(&a, ids, release)
	ga := <-ids
	go lockHogA(&b, ids, release)
	gb := <-ids
	defer close(release)

	sa, sb := find(t, "inventory_shard_1"), find(t, "inventory_shard_2")
	if sa.Holder != ga || sb.Holder != gb || ga == gb {
		t.Errorf("holders %d, %d; want %d, %d", sa.Holder, sb.Holder, ga, gb)
	}
}

// TestHolderStack: a contended acquisition records the new holder's stack,
// which Read returns while that hold lasts.
func TestHolderStack(t *testing.T) {
	var m Mutex
	m.SetName("holder_stack")
	m.Lock()
	release := make(chan struct{})
	ids := make(chan uint64)
	go lockHogB(&m, ids, release)
	waitFor(t, "lockHogB to wait", func() bool { return find(t, "holder_stack").Waiters == 1 })
	m.Unlock()
	<-ids
	s := find(t, "holder_stack")
	close(release)
	names := funcNames(s.HolderStack())
	if len(names) == 0 || !strings.HasSuffix(names[0], "locks.lockHogB") {
		t.Errorf("HolderStack starts %v, want lockHogB first", names)
	}
}

func TestRename(t *testing.T) {
	var m Mutex
	m.SetName("before_rename")
	m.Lock()
	m.Unlock()
	m.SetName("after_rename")
	for _, s := range Read(nil) {
		if s.Name == "before_rename" {
			t.Error("the old name is still read")
		}
	}
	if s := find(t, "after_rename"); s.Acquisitions != 1 {
		t.Errorf("Acquisitions %d after rename, want 1 (kept)", s.Acquisitions)
	}
	runtime.KeepAlive(&m)
}

// TestConcurrentSetName: goroutines that name and use one lock at once
// leave one named lock, race-free (run with -race).
func TestConcurrentSetName(t *testing.T) {
	needGoid(t)
	runtime.GC() // forget the locks of earlier runs (go test -count)
	if err := SetOrderCheck(true); err != nil {
		t.Fatal(err)
	}
	defer SetOrderCheck(false)
	var m Mutex
	var rw RWMutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			m.SetName("concurrent_name")
			rw.SetName("concurrent_name_rw")
			for range 100 {
				m.Lock()
				rw.RLock()
				rw.RUnlock()
				m.Unlock()
			}
		})
	}
	wg.Wait()
	n := 0
	for _, s := range Read(nil) {
		if s.Name == "concurrent_name" {
			n++
			if s.Acquisitions != 800 {
				t.Errorf("Acquisitions %d, want 800", s.Acquisitions)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d named locks called concurrent_name, want 1", n)
	}
	runtime.KeepAlive(&m)
	runtime.KeepAlive(&rw)
}

// TestWaiterCountedUntilUnlock: Waiters counts the goroutines still waiting,
// not one that waited and now holds the lock. (An RWMutex keeps such a
// holder in its own waiter count until its Unlock, so that uncounting it
// costs the critical section nothing; a Mutex reads sync.Mutex's count,
// which drops the waiter when it is woken.) Its wait is counted once.
func TestWaiterCountedUntilUnlock(t *testing.T) {
	for _, kind := range []string{"mutex", "rwmutex"} {
		t.Run(kind, func(t *testing.T) {
			var m Mutex
			var rw RWMutex
			var l sync.Locker = &m
			name := "waited_" + kind
			if kind == "rwmutex" {
				l = &rw
				rw.SetName(name)
			} else {
				m.SetName(name)
			}
			l.Lock()
			acquired, release := make(chan struct{}), make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				l.Lock()
				close(acquired)
				<-release
				l.Unlock()
			}()
			waitFor(t, "the waiter", func() bool { return find(t, name).Waiters == 1 })
			l.Unlock()
			<-acquired
			if s := find(t, name); !s.Held || s.Waiters != 0 {
				t.Errorf("held by the waiter: Held %v, Waiters %d; want true, 0", s.Held, s.Waiters)
			}
			close(release)
			<-done
			// The wait is recorded once the waiter's Unlock released the lock.
			if s := find(t, name); s.Held || s.Waiters != 0 || s.Contended != 1 {
				t.Errorf("after its Unlock: Held %v, Waiters %d, Contended %d; want false, 0, 1", s.Held, s.Waiters, s.Contended)
			}
			runtime.KeepAlive(&m)
			runtime.KeepAlive(&rw)
		})
	}
}

// TestShortWaitsSampled: on a lock whose waits are short, 1 in 8 waits is
// timed, and each timed wait stands for the untimed ones before it: the
// wait histogram's count is the number of waits up to the last timed one.
// A long wait makes every wait timed until a timed one is short again.
func TestShortWaitsSampled(t *testing.T) {
	var m Mutex
	m.SetName("short_waits")
	s := m.s.Load()
	g := goid()
	contended := func(n int) {
		for range n {
			// The steps of a contended Lock, without the wait.
			start := s.waitBegin()
			m.mu.Lock()
			s.waitedW(g, start)
			m.Unlock()
		}
	}
	contended(20)
	// Timed: waits 1, 9 and 17; 17 stands for waits 10 to 17.
	if st := find(t, "short_waits"); st.Wait.Count != 17 || st.Contended != 17 || st.Waiters != 0 {
		t.Errorf("after 20 short waits: Wait.Count %d, Contended %d, Waiters %d; want 17, 17, 0", st.Wait.Count, st.Contended, st.Waiters)
	}
	// Waits 21 to 24 are not timed; 25 is, and it is long.
	contended(4)
	start := s.waitBegin()
	m.mu.Lock()
	for nanotime()-start < 2*waitLong {
		runtime.Gosched()
	}
	s.waitedW(g, start)
	m.Unlock()
	if !s.waitsLong.Load() {
		t.Fatal("a long timed wait did not make every wait timed")
	}
	st := find(t, "short_waits")
	if st.Wait.Count != 25 || int64(st.Wait.Max) < 2*waitLong {
		t.Errorf("after a long wait: Wait.Count %d, Max %v; want 25, at least %dns", st.Wait.Count, st.Wait.Max, 2*waitLong)
	}
	// Now every wait is timed, until one is short: wait 26.
	contended(3)
	if st := find(t, "short_waits"); st.Wait.Count != 26 || s.waitsLong.Load() {
		t.Errorf("after 3 more short waits: Wait.Count %d, every wait timed: %v; want 26, false", st.Wait.Count, s.waitsLong.Load())
	}
	runtime.KeepAlive(&m)
}
