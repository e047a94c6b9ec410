// Package contention makes lock contention on purpose, for tests,
// benchmarks and demos. Every workload runs in named functions so that
// stacks, profiles and reports can be checked for those names.
package contention

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Mutex runs n goroutines that take turns on one sync.Mutex, each holding
// it for about hold (busy, on the CPU) per turn, until ctx ends. The
// returned function waits for them to exit.
func Mutex(ctx context.Context, n int, hold time.Duration) (wait func()) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				HotLockWorker(&mu, hold)
			}
		}()
	}
	return wg.Wait
}

// HotLockWorker locks mu, spins for hold and unlocks: the waiters' site
// and the holders' critical section are both this function.
//
//go:noinline
func HotLockWorker(mu *sync.Mutex, hold time.Duration) {
	mu.Lock()
	Spin(hold)
	mu.Unlock()
}

// Spin keeps the CPU busy for about d.
//
//go:noinline
func Spin(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
	}
}

// Stuck holds a sync.Mutex and parks n goroutines on it in StuckWaiter
// until release is called; release waits for the waiters to finish.
// ready is closed once every waiter has been started (they may still be on
// their way to park).
func Stuck(n int) (ready <-chan struct{}, release func()) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	mu.Lock()
	started := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			StuckWaiter(&mu)
		}()
	}
	close(started)
	var once sync.Once
	return started, func() {
		once.Do(func() {
			mu.Unlock()
			wg.Wait()
		})
	}
}

// StuckWaiter waits for mu and lets it go at once.
//
//go:noinline
func StuckWaiter(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

// RWReaders parks n goroutines in RLock (RWReader) and one in Lock
// (RWWriter) behind a writer that holds the lock until release is called.
func RWReaders(n int) (release func()) {
	var rw sync.RWMutex
	var wg sync.WaitGroup
	rw.Lock()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			RWReader(&rw)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		RWWriter(&rw)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			rw.Unlock()
			wg.Wait()
		})
	}
}

// RWReader takes and releases a read lock.
//
//go:noinline
func RWReader(rw *sync.RWMutex) {
	rw.RLock()
	rw.RUnlock()
}

// RWWriter takes and releases the write lock.
//
//go:noinline
func RWWriter(rw *sync.RWMutex) {
	rw.Lock()
	rw.Unlock()
}

// Yielding runs n goroutines that take turns on one sync.Mutex and yield
// the CPU inside the critical section, until ctx ends: every waiter parks,
// which makes the densest lock trace there is. The returned function waits
// for them to exit.
func Yielding(ctx context.Context, n int) (wait func()) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				YieldingWorker(&mu)
			}
		}()
	}
	return wg.Wait
}

// YieldingWorker locks mu, yields the CPU and unlocks.
//
//go:noinline
func YieldingWorker(mu *sync.Mutex) {
	mu.Lock()
	runtime.Gosched()
	mu.Unlock()
}
