//go:build linux && cgo

package procfs

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/procfs/internal/pthreadtest"
)

// C threads blocked in pthread_mutex_lock on one mutex wait on the same
// futex word, the mutex's address: the scan must classify them as
// pthread-mutex and list the word as shared.
func TestLivePthreadMutex(t *testing.T) {
	const waiters = 4
	c, err := pthreadtest.Start(waiters)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	addr := uint64(c.MutexAddr)

	s, err := NewScanner("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sc, ok := pollScans(t, s, 10*time.Second, func(sc *Scan) bool {
		rows := rowsByTID(sc)
		for _, tid := range c.WaiterTIDs {
			if r := rows[tid]; r.Class != ClassPthreadMutex || r.Futex.Uaddr != addr {
				return false
			}
		}
		return true
	})
	if !ok {
		buf, _ := json.MarshalIndent(sc, "", " ")
		t.Fatalf("waiters %v not all seen in a futex wait on the mutex at %#x:\n%s", c.WaiterTIDs, addr, string(buf))
	}
	rows := rowsByTID(sc)
	for _, tid := range c.WaiterTIDs {
		r := rows[tid]
		if r.Futex.Waiters != waiters || !futexValueWait(r.Futex.Op) || r.Name != "lockwaiter" {
			t.Errorf("waiter %d: name %q futex %+v, want %d waiters on a wait op", tid, r.Name, r.Futex, waiters)
		}
	}
	i := slices.IndexFunc(sc.SharedFutexes, func(f SharedFutex) bool { return f.Uaddr == addr })
	if i < 0 {
		t.Fatalf("mutex %#x not in shared futexes %+v", addr, sc.SharedFutexes)
	}
	got := slices.Sorted(slices.Values(sc.SharedFutexes[i].TIDs))
	want := slices.Sorted(slices.Values(c.WaiterTIDs))
	if !slices.Equal(got, want) {
		t.Errorf("shared futex TIDs %v, want the waiters %v", got, want)
	}
	if h := rows[c.HolderTID]; h.Syscall != "read" || h.Class != ClassSyscall {
		t.Errorf("holder %d: class %v syscall %q, want syscall read", c.HolderTID, h.Class, h.Syscall)
	}
	if sc.Summary.FutexWaiters < waiters {
		t.Errorf("futex waiters %d, want >= %d", sc.Summary.FutexWaiters, waiters)
	}
}
