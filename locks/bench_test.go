package locks

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// The benchmarks run the same loop over sync's locks and ours, side by side
// in one run: compare sync.Mutex with unnamed and named.

type locker interface {
	Lock()
	Unlock()
}

type rwlocker interface {
	locker
	RLock()
	RUnlock()
}

// Each lock in a benchmark starts a block of its own, cellSize bytes and
// as aligned (Go's allocator aligns an object of a size class that is a
// multiple of 128 bytes to 128), so that where the allocator happened to put
// a lock does not decide a comparison: a bare 24-byte allocation can
// straddle two cache lines, or share one with data another goroutine
// writes, and either costs more than the lock's own code (see
// BenchmarkContended).
const cellSize = 128

type (
	syncMutexCell struct {
		l sync.Mutex
		_ [cellSize - unsafe.Sizeof(sync.Mutex{})]byte
	}
	mutexCell struct {
		l Mutex
		_ [cellSize - unsafe.Sizeof(Mutex{})]byte
	}
	syncRWMutexCell struct {
		l sync.RWMutex
		_ [cellSize - unsafe.Sizeof(sync.RWMutex{})]byte
	}
	rwMutexCell struct {
		l RWMutex
		_ [cellSize - unsafe.Sizeof(RWMutex{})]byte
	}
)

func mutexes() []struct {
	name string
	l    locker
} {
	named := &new(mutexCell).l
	named.SetName("bench_mutex")
	return []struct {
		name string
		l    locker
	}{
		{"sync", &new(syncMutexCell).l},
		{"unnamed", &new(mutexCell).l},
		{"named", named},
	}
}

func rwmutexes() []struct {
	name string
	l    rwlocker
} {
	named := &new(rwMutexCell).l
	named.SetName("bench_rwmutex")
	return []struct {
		name string
		l    rwlocker
	}{
		{"sync", &new(syncRWMutexCell).l},
		{"unnamed", &new(rwMutexCell).l},
		{"named", named},
	}
}

// BenchmarkUncontended is one goroutine's Lock+Unlock (RLock+RUnlock for
// lock=RWMutex.RLock). The calls go through concrete types, as in real code
// (an interface call would add its own cost). Compare the impl column with
// benchstat -col /impl.
func BenchmarkUncontended(b *testing.B) {
	b.Run("lock=Mutex/impl=sync", func(b *testing.B) {
		var mu sync.Mutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("lock=Mutex/impl=unnamed", func(b *testing.B) {
		var mu Mutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("lock=Mutex/impl=named", func(b *testing.B) {
		var mu Mutex
		mu.SetName("bench_uncontended")
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("lock=RWMutex/impl=sync", func(b *testing.B) {
		var mu sync.RWMutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("lock=RWMutex/impl=unnamed", func(b *testing.B) {
		var mu RWMutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("lock=RWMutex/impl=named", func(b *testing.B) {
		var mu RWMutex
		mu.SetName("bench_uncontended_rw")
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("lock=RWMutex.RLock/impl=sync", func(b *testing.B) {
		var mu sync.RWMutex
		b.ReportAllocs()
		for b.Loop() {
			mu.RLock()
			mu.RUnlock()
		}
	})
	b.Run("lock=RWMutex.RLock/impl=unnamed", func(b *testing.B) {
		var mu RWMutex
		b.ReportAllocs()
		for b.Loop() {
			mu.RLock()
			mu.RUnlock()
		}
	})
	b.Run("lock=RWMutex.RLock/impl=named", func(b *testing.B) {
		var mu RWMutex
		mu.SetName("bench_uncontended_read")
		b.ReportAllocs()
		for b.Loop() {
			mu.RLock()
			mu.RUnlock()
		}
	})
}

// BenchmarkContended is the throughput of g goroutines that lock, update a
// shared table, unlock, and compute for about as long on their own; ns/op is
// per Lock+Unlock, and contended/op (named lock only) the share of
// acquisitions that found the lock held. In cs=short the goroutines only
// contend when two run at once, so contention depends on free processors; in
// cs=yield each yields the processor (runtime.Gosched) while holding the
// lock, so that nearly every acquisition waits, parks and is handed the lock.
func BenchmarkContended(b *testing.B) {
	for _, cs := range []string{"short", "yield"} {
		for _, g := range []int{8, 64} {
			for _, m := range mutexes() {
				b.Run(fmt.Sprintf("cs=%s/g=%d/impl=%s", cs, g, m.name), func(b *testing.B) {
					b.ReportAllocs()
					var before State
					if n, ok := m.l.(*Mutex); ok && n.s.Load() != nil {
						before = find(b, "bench_mutex")
					}
					contend(b, g, m.l, cs == "yield")
					if before.Name != "" {
						after := find(b, "bench_mutex")
						b.ReportMetric(float64(after.Contended-before.Contended)/float64(b.N), "contended/op")
					}
				})
			}
		}
	}
}

var sink uint64

func contend(b *testing.B, g int, l locker, yield bool) {
	var table [16]uint64
	var wg sync.WaitGroup
	per := b.N / g
	start := make(chan struct{})
	for i := range g {
		n := per
		if i == 0 {
			n += b.N % g
		}
		wg.Go(func() {
			<-start
			x := uint64(i)
			for range n {
				l.Lock()
				for j := range table {
					table[j] += x
				}
				if yield {
					runtime.Gosched()
				}
				l.Unlock()
				for range 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			atomic.AddUint64(&sink, x)
		})
	}
	b.ResetTimer() // not the goroutines' creation
	close(start)
	wg.Wait()
}

// BenchmarkReadHeavy is an RWMutex read by all goroutines (RunParallel: one
// per P) and written by 1 operation in 100, with a short critical section.
func BenchmarkReadHeavy(b *testing.B) {
	for _, m := range rwmutexes() {
		b.Run("impl="+m.name, func(b *testing.B) {
			b.ReportAllocs()
			var shared [16]int
			b.RunParallel(func(pb *testing.PB) {
				i, sum := 0, 0
				for pb.Next() {
					i++
					if i%100 == 0 {
						m.l.Lock()
						shared[i%16]++
						m.l.Unlock()
						continue
					}
					m.l.RLock()
					sum += shared[i%16]
					m.l.RUnlock()
				}
				_ = sum
			})
		})
	}
}

// BenchmarkRead is one Read of 100 named locks into a reused slice, as a
// monitor polls.
func BenchmarkRead(b *testing.B) {
	ms := make([]Mutex, 100)
	for i := range ms {
		ms[i].SetName(fmt.Sprint("bench_read_", i))
		ms[i].Lock()
		ms[i].Unlock()
	}
	states := Read(nil)
	b.ReportAllocs()
	for b.Loop() {
		states = Read(states[:0])
	}
	if len(states) < 100 {
		b.Fatalf("Read returned %d locks", len(states))
	}
}

// BenchmarkSlowPathSteps runs the steps a named Mutex adds to a contended
// acquisition (without the waiting itself) in one goroutine: the cost a
// contended acquisition adds through Lock and Unlock (all), and (critical)
// the named steps alone around sync's Lock and Unlock, without Unlock's
// own fast-path checks. Short waits are timed 1 in 8 (waitMask), so both
// are averages over timed and untimed waits.
func BenchmarkSlowPathSteps(b *testing.B) {
	var m Mutex
	m.SetName("bench_slow_path")
	s := m.s.Load()
	g := goid()
	b.Run("part=all", func(b *testing.B) {
		for b.Loop() {
			start := s.waitBegin()
			m.mu.Lock()
			if n := s.waitedW(g, start); n != 0 {
				s.recordStack(n, 0)
			}
			m.Unlock()
		}
	})
	b.Run("part=critical", func(b *testing.B) {
		for b.Loop() {
			start := s.waitBegin()
			m.mu.Lock()
			s.waitedW(g, start)
			r := s.releasing(m.hw.Load())
			m.mu.Unlock()
			s.released(r)
		}
	})
	b.Run("part=none", func(b *testing.B) { // sync.Mutex alone, for reference
		for b.Loop() {
			m.mu.Lock()
			m.mu.Unlock()
		}
	})
}
