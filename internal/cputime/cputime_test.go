package cputime

import (
	"runtime"
	"testing"
	"time"
)

// TestThread: a thread's CPU time grows with work on it and not with
// sleep.
func TestThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok := Thread()
	if !ok {
		if runtime.GOOS == "linux" {
			t.Fatal("no thread CPU time on linux")
		}
		t.Skip("no thread CPU time on " + runtime.GOOS)
	}
	x := 1.0
	for start := time.Now(); time.Since(start) < 20*time.Millisecond; {
		x = x*1.0000001 + 1e-9
	}
	t1, _ := Thread()
	time.Sleep(20 * time.Millisecond)
	t2, _ := Thread()
	if busy := t1 - t0; busy <= 0 {
		t.Errorf("20ms of work on the thread: CPU time grew by %v (x=%v)", busy, x)
	}
	if idle := t2 - t1; idle > 10*time.Millisecond {
		t.Errorf("20ms of sleep on the thread: CPU time grew by %v", idle)
	}
}
