package diag

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/lockreport"
	"github.com/lockdiag/lockdiag/locks"
)

func parkOnLocksMutex(mu *locks.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	mu.Lock()
	mu.Unlock()
}

func parkOnLocksRLock(rw *locks.RWMutex, wg *sync.WaitGroup) {
	defer wg.Done()
	rw.RLock()
	rw.RUnlock()
}

// TestScanLocksPackage: the waiter scan sees goroutines parked in package
// locks' Lock at their caller's site, and marks those of named locks.
func TestScanLocksPackage(t *testing.T) {
	var plain, named locks.Mutex
	var rw locks.RWMutex
	named.SetName("diag_test_scan")
	rw.SetName("diag_test_scan_rw")
	plain.Lock()
	named.Lock()
	rw.Lock()
	var wg sync.WaitGroup
	for _, mu := range []*locks.Mutex{&plain, &named, &named} {
		wg.Add(1)
		go parkOnLocksMutex(mu, &wg)
	}
	wg.Add(1)
	go parkOnLocksRLock(&rw, &wg)
	defer func() {
		plain.Unlock()
		named.Unlock()
		rw.Unlock()
		wg.Wait()
	}()
	w := newWaiterScanner()
	var sites []lockreport.ParkedSite
	find := func(fn string, isNamed bool) *lockreport.ParkedSite {
		for i := range sites {
			if strings.HasSuffix(sites[i].Func, fn) && sites[i].Named == isNamed {
				return &sites[i]
			}
		}
		return nil
	}
	testkit.WaitFor(t, 10*time.Second, "4 goroutines parked", func() bool {
		_, sites = w.scan()
		a, b, c := find("parkOnLocksMutex", false), find("parkOnLocksMutex", true), find("parkOnLocksRLock", true)
		return a != nil && a.Waiters == 1 && b != nil && b.Waiters == 2 && c != nil && c.Waiters == 1
	})
	if s := find("parkOnLocksRLock", true); s.Kind != "RWMutex.RLock" {
		t.Errorf("reader's kind = %q, want RWMutex.RLock", s.Kind)
	}
	for _, s := range sites {
		if strings.Contains(s.Func, "lockdiag/locks.") {
			t.Errorf("site %+v is a frame of package locks", s)
		}
	}
}
