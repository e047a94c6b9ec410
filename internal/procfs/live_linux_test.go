//go:build linux

package procfs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedThreads starts n goroutines locked to their own OS threads and
// parked on a channel, so that n idle Ms exist, and returns their TIDs. The
// goroutines exit (and unlock) at the end of the test.
func lockedThreads(t testing.TB, n int) []int {
	t.Helper()
	stop := make(chan struct{})
	tids := make(chan int)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tids <- syscall.Gettid()
			<-stop
		})
	}
	out := make([]int, 0, n)
	for range n {
		out = append(out, <-tids)
	}
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	return out
}

// statusThreads returns the Threads line of /proc/self/status.
func statusThreads(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("Threads:")); ok {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// pollScans scans every 10 ms until done returns true or the deadline
// passes; it returns the last scan and whether done was reached.
func pollScans(t *testing.T, s *Scanner, limit time.Duration, done func(*Scan) bool) (*Scan, bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		sc, err := s.Scan()
		if err != nil {
			t.Fatal(err)
		}
		if done(sc) {
			return sc, true
		}
		if time.Now().After(deadline) {
			return sc, false
		}
		<-tick.C
	}
}

func TestLiveSelf(t *testing.T) {
	idle := lockedThreads(t, 3)
	s, err := NewScanner("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var before, after int
	sc, ok := pollScans(t, s, 10*time.Second, func(sc *Scan) bool {
		rows := rowsByTID(sc)
		for _, tid := range idle {
			if rows[tid].Class != ClassIdle {
				return false
			}
		}
		before = statusThreads(t)
		after = statusThreads(t)
		return sc.Counts[ClassRunning] >= 1 && before == after && len(sc.Threads) == before
	})
	if !ok {
		buf, _ := json.MarshalIndent(sc, "", " ")
		t.Fatalf("locked idle threads %v, >= 1 running thread and the thread count (status says %d) were not all seen:\n%s",
			idle, before, string(buf))
	}
	// The scanning thread is running (or runnable) itself.
	if r, ok := rowsByTID(sc)[syscall.Gettid()]; ok && r.Class != ClassRunning {
		t.Logf("scanning thread %d classified %v (it may have moved to another thread)", r.TID, r.Class)
	}
	for _, r := range sc.Threads {
		if r.Err != "" {
			t.Errorf("tid %d: %s", r.TID, r.Err)
		}
	}
	t.Logf("%d threads, counts %v, summary %+v", len(sc.Threads), sc.Counts, sc.Summary)
}

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestLiveNoFDLeak(t *testing.T) {
	countFDs(t) // let the runtime set up its poller descriptors first
	before := countFDs(t)
	s, err := NewScanner("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Scan(); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	during := countFDs(t)
	if during < before+5*len(sc.Threads)-5 { // a thread may have exited since
		t.Errorf("%d descriptors during scans, want about %d + 5 per thread (%d threads)", during, before, len(sc.Threads))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after := countFDs(t); after != before {
		t.Errorf("%d descriptors before NewScanner, %d after Close", before, after)
	}
}

// A thread that exits after the listing and before its kept-open files are
// read (ESRCH from pread) is dropped without an error.
func TestLiveThreadExitsMidScan(t *testing.T) {
	// A goroutine that exits while locked takes its thread with it, except
	// on the main thread, which the runtime keeps. If the goroutine lands on
	// the main thread, it stays there, locked, until the test ends, so that
	// the next one cannot.
	release := make(chan struct{})
	var holders sync.WaitGroup
	defer func() {
		close(release)
		holders.Wait()
	}()
	var tid int
	var exit, done chan struct{}
	for range 3 {
		tids := make(chan int)
		exit, done = make(chan struct{}), make(chan struct{})
		holders.Add(1)
		go func(exit, done chan struct{}) {
			defer close(done)
			runtime.LockOSThread()
			id := syscall.Gettid()
			tids <- id
			if id == syscall.Getpid() {
				defer holders.Done()
				<-release
				runtime.UnlockOSThread()
				return
			}
			holders.Done()
			<-exit // never unlocked: the thread exits with the goroutine
		}(exit, done)
		if tid = <-tids; tid != syscall.Getpid() {
			break
		}
	}
	if tid == syscall.Getpid() {
		t.Fatal("could not get a goroutine off the main thread")
	}
	s, err := NewScanner("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sc, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rowsByTID(sc)[tid]; !ok {
		t.Fatalf("thread %d not in the first scan", tid)
	}
	dir := filepath.Join("/proc/self/task", strconv.Itoa(tid))
	s.afterList = func() {
		s.afterList = nil
		close(exit)
		<-done
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("thread %d did not exit", tid)
				return
			}
			runtime.Gosched()
		}
	}
	sc, err = s.Scan()
	if err != nil {
		t.Fatalf("scan failed on an exiting thread: %v", err)
	}
	if _, ok := rowsByTID(sc)[tid]; ok {
		t.Errorf("exited thread %d is in the scan", tid)
	}
	if sc.Vanished < 1 {
		t.Errorf("vanished = %d, want >= 1", sc.Vanished)
	}
	if _, ok := s.fds.tasks[tid]; ok {
		t.Errorf("exited thread %d still has descriptors", tid)
	}
}

// With GOMAXPROCS above the number of CPUs and many goroutines on one
// channel, Ms block on the channel's runtime lock (RUNTIME-FACTS §4: about
// 3 threads per scan at GOMAXPROCS=8 on 2 cores). How many are caught
// depends on the machine, so the test only checks what each observation
// looks like and skips when there was none.
func TestLiveRuntimeLock(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a few seconds of CPU")
	}
	prev := runtime.GOMAXPROCS(8)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	ch := make(chan int, 1)
	for i := range 64 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case ch <- i:
				case <-ch:
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	s, err := NewScanner("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var scans, obs, maxPerScan int
	var runDelay float64
	pollScans(t, s, 3*time.Second, func(sc *Scan) bool {
		scans++
		n := 0
		for _, r := range sc.Threads {
			if r.Class != ClassRuntimeLock {
				continue
			}
			n++
			if r.Futex.Val != 0xffffffff || !futexValueWait(r.Futex.Op) || r.Futex.Waiters != 1 {
				t.Errorf("runtime-lock row with futex %+v: want a lone wait with val 0xffffffff", r.Futex)
			}
		}
		obs += n
		maxPerScan = max(maxPerScan, n)
		runDelay = max(runDelay, sc.Summary.RunDelay)
		return obs >= 20
	})
	t.Logf("%d scans: %d runtime-lock observations (max %d in one scan); highest run delay %.2f s/s", scans, obs, maxPerScan, runDelay)
	if obs == 0 {
		t.Skipf("no M was caught blocked on a runtime lock in %d scans; the classification is covered by TestScanClasses", scans)
	}
}
