package locks

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
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

func mutexes() []struct {
	name string
	l    locker
} {
	named := new(Mutex)
	named.SetName("bench_mutex")
	return []struct {
		name string
		l    locker
	}{
		{"sync", new(sync.Mutex)},
		{"unnamed", new(Mutex)},
		{"named", named},
	}
}

func rwmutexes() []struct {
	name string
	l    rwlocker
} {
	named := new(RWMutex)
	named.SetName("bench_rwmutex")
	return []struct {
		name string
		l    rwlocker
	}{
		{"sync", new(sync.RWMutex)},
		{"unnamed", new(RWMutex)},
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
// shared table for about 20 ns, unlock, and compute for about as long on
// their own; ns/op is per Lock+Unlock. With GOMAXPROCS goroutines running
// at once, the lock is held about half the time, so that a good share of
// acquisitions find it held (contended/op, for the named lock).
func BenchmarkContended(b *testing.B) {
	for _, g := range []int{8, 64} {
		for _, m := range mutexes() {
			b.Run(fmt.Sprintf("g=%d/impl=%s", g, m.name), func(b *testing.B) {
				b.ReportAllocs()
				var before State
				if n, ok := m.l.(*Mutex); ok && n.s.Load() != nil {
					before = find(b, "bench_mutex")
				}
				contend(b, g, m.l)
				if before.Name != "" {
					after := find(b, "bench_mutex")
					// How many acquisitions took the slow path.
					b.ReportMetric(float64(after.Contended-before.Contended)/float64(b.N), "contended/op")
				}
			})
		}
	}
}

var sink uint64

func contend(b *testing.B, g int, l locker) {
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
