package locks

import (
	"fmt"
	"sync"
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
		{"sync.Mutex", new(sync.Mutex)},
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
		{"sync.RWMutex", new(sync.RWMutex)},
		{"unnamed", new(RWMutex)},
		{"named", named},
	}
}

// BenchmarkUncontended is one goroutine's Lock+Unlock. The calls go through
// concrete types, as in real code (an interface call would add its own cost).
func BenchmarkUncontended(b *testing.B) {
	b.Run("sync.Mutex", func(b *testing.B) {
		var mu sync.Mutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("unnamed", func(b *testing.B) {
		var mu Mutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("named", func(b *testing.B) {
		var mu Mutex
		mu.SetName("bench_uncontended")
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("sync.RWMutex", func(b *testing.B) {
		var mu sync.RWMutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("rw-unnamed", func(b *testing.B) {
		var mu RWMutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
	b.Run("rw-named", func(b *testing.B) {
		var mu RWMutex
		mu.SetName("bench_uncontended_rw")
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			mu.Unlock()
		}
	})
}

// BenchmarkUncontendedRead is one goroutine's RLock+RUnlock.
func BenchmarkUncontendedRead(b *testing.B) {
	b.Run("sync.RWMutex", func(b *testing.B) {
		var mu sync.RWMutex
		b.ReportAllocs()
		for b.Loop() {
			mu.RLock()
			mu.RUnlock()
		}
	})
	b.Run("unnamed", func(b *testing.B) {
		var mu RWMutex
		b.ReportAllocs()
		for b.Loop() {
			mu.RLock()
			mu.RUnlock()
		}
	})
	b.Run("named", func(b *testing.B) {
		var mu RWMutex
		mu.SetName("bench_uncontended_read")
		b.ReportAllocs()
		for b.Loop() {
			mu.RLock()
			mu.RUnlock()
		}
	})
}

// BenchmarkContended is the throughput of g goroutines that do nothing but
// lock, increment a shared counter and unlock; ns/op is per Lock+Unlock.
func BenchmarkContended(b *testing.B) {
	for _, g := range []int{8, 64} {
		for _, m := range mutexes() {
			b.Run(fmt.Sprintf("g=%d/%s", g, m.name), func(b *testing.B) {
				b.ReportAllocs()
				contend(b, g, m.l)
			})
		}
	}
}

func contend(b *testing.B, g int, l locker) {
	var counter int
	var wg sync.WaitGroup
	per := b.N / g
	b.ResetTimer()
	for i := range g {
		n := per
		if i == 0 {
			n += b.N % g
		}
		wg.Go(func() {
			for range n {
				l.Lock()
				counter++
				l.Unlock()
			}
		})
	}
	wg.Wait()
	if counter != b.N {
		b.Fatalf("counter = %d, want %d", counter, b.N)
	}
}

// BenchmarkReadHeavy is an RWMutex read by all goroutines (RunParallel: one
// per P) and written by 1 operation in 100, with a short critical section.
func BenchmarkReadHeavy(b *testing.B) {
	for _, m := range rwmutexes() {
		b.Run(m.name, func(b *testing.B) {
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
