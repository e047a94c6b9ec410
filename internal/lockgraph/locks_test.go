package lockgraph

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/gdump"
	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/locks"
)

// The waiters of package locks' lock types, named and unnamed: their site
// is where they call Lock, never a frame of package locks.

func locksMutexWaiter(mu *locks.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	mu.Lock()
	mu.Unlock()
}

func locksRLockWaiter(rw *locks.RWMutex, wg *sync.WaitGroup) {
	defer wg.Done()
	rw.RLock()
	rw.RUnlock()
}

func locksWLockWaiter(rw *locks.RWMutex, wg *sync.WaitGroup) {
	defer wg.Done()
	rw.Lock()
	rw.Unlock()
}

// dumpNow parses a debug=2 dump of this process.
func dumpNow(t *testing.T) *gdump.Dump {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		t.Fatal(err)
	}
	d, err := gdump.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// lockBySite returns the lock whose waiters' site is in fn.
func lockBySite(res *Result, fn string) *Lock {
	for _, l := range res.Locks {
		if strings.HasSuffix(l.Site.Func, fn) {
			return l
		}
	}
	return nil
}

func TestLocksPackageWaiters(t *testing.T) {
	for _, named := range []bool{false, true} {
		name := "unnamed"
		if named {
			name = "named"
		}
		t.Run(name, func(t *testing.T) {
			var mu locks.Mutex
			var rw, rw2 locks.RWMutex
			if named {
				mu.SetName("lockgraph_test_mutex")
				rw.SetName("lockgraph_test_rw")
				rw2.SetName("lockgraph_test_rw2")
			}
			mu.Lock()   // held: Mutex waiters
			rw.Lock()   // held for writing: readers wait
			rw2.RLock() // held for reading: a writer waits
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(2)
				go locksMutexWaiter(&mu, &wg)
				go locksRLockWaiter(&rw, &wg)
			}
			wg.Add(1)
			go locksWLockWaiter(&rw2, &wg)
			defer func() {
				mu.Unlock()
				rw.Unlock()
				rw2.RUnlock()
				wg.Wait()
			}()

			var res *Result
			testkit.WaitFor(t, 10*time.Second, "7 goroutines parked on the locks", func() bool {
				res = Analyze(dumpNow(t), Options{})
				m, r, w := lockBySite(res, "locksMutexWaiter"), lockBySite(res, "locksRLockWaiter"), lockBySite(res, "locksWLockWaiter")
				return m != nil && len(m.Waiters) == 3 && r != nil && len(r.Waiters) == 3 && w != nil && len(w.Waiters) == 1
			})
			for _, c := range []struct {
				fn   string
				kind LockKind
				wait WaitKind
			}{
				{"locksMutexWaiter", Mutex, WaitLock},
				{"locksRLockWaiter", RWMutex, WaitRLock},
				{"locksWLockWaiter", RWMutex, WaitWriteBehindReaders},
			} {
				l := lockBySite(res, c.fn)
				if l.Kind != c.kind || l.Waiters[0].Kind != c.wait {
					t.Errorf("%s: lock kind %v, wait %v; want %v, %v", c.fn, l.Kind, l.Waiters[0].Kind, c.kind, c.wait)
				}
			}
			for _, l := range res.Locks {
				if strings.Contains(l.Site.Func, "lockdiag/locks.") {
					t.Errorf("a lock's site is package locks' frame %s", l.Site.Func)
				}
			}
		})
	}
}
