package main

// A pthread mutex in C, held across a long C sleep by one cgo call while
// 15 other cgo calls block on it. Adapted from
// internal/procfs/internal/pthreadtest.

/*
#cgo LDFLAGS: -lpthread
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t native_mu = PTHREAD_MUTEX_INITIALIZER;
static int native_table[64];
static volatile int native_holder_tid;

// native_hold takes the mutex and keeps it for ms milliseconds, asleep in
// nanosleep(2): a native library's maintenance pass.
static void native_hold(int ms) {
	pthread_mutex_lock(&native_mu);
	native_holder_tid = (int)syscall(SYS_gettid);
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0) {
	}
	native_holder_tid = 0;
	pthread_mutex_unlock(&native_mu);
}

// native_lookup reads the table under the mutex.
static int native_lookup(int k) {
	pthread_mutex_lock(&native_mu);
	int v = native_table[k & 63]++;
	pthread_mutex_unlock(&native_mu);
	return v;
}

static int native_holder(void) { return native_holder_tid; }
static uintptr_t native_mu_addr(void) { return (uintptr_t)&native_mu; }
*/
import "C"

import (
	"fmt"
	"time"
)

func init() {
	register(&scenario{name: "cgo", run: runCgo,
		what: "15 main.callNative goroutines make cgo calls that block in pthread_mutex_lock on one C mutex, held for 20s by a cgo call (main.nativeMaintenance) asleep in nanosleep; snapshot 3s after onset"})
}

//go:noinline
func callNative(k int) int { return int(C.native_lookup(C.int(k))) }

//go:noinline
func nativeMaintenance(ms int) { C.native_hold(C.int(ms)) }

func runCgo(h *H) error {
	if err := h.startMonitor(); err != nil {
		return err
	}
	st := newStopper()
	var callers ids
	for i := 0; i < 15; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			callers.add(goid())
			for n := 0; !st.stopped(); n++ {
				callNative(n)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	hid := make(chan int64, 1)
	go func() {
		hid <- goid()
		nativeMaintenance(20_000)
	}()
	holderG := <-hid
	var tid int
	for tid == 0 {
		tid = int(C.native_holder())
		time.Sleep(100 * time.Microsecond)
	}
	h.markOnset()
	time.Sleep(3 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "cgo-lock"
	e.AlsoTrue = []string{"stuck-lock (a pthread mutex held 20s)", "held-across-blocking (nanosleep in C)"}
	e.Lock = &Lock{Kind: "pthread_mutex_t", Type: "C native_mu (static pthread_mutex_t in scen_cgo.go's preamble)", Module: "main (cgo)",
		Site: "C native_lookup (pthread_mutex_lock), called by main.callNative through main._Cfunc_native_lookup", Address: fmt.Sprintf("%#x", uintptr(C.native_mu_addr()))}
	e.Caller = "main.callNative"
	e.Waiters = &Waiters{Function: "main.callNative", Count: 15, GoroutineIDs: callers.list(),
		State: "each goroutine in a cgo call (trace: syscall); its thread in futex wait (FUTEX_WAIT_PRIVATE, val 2) on the mutex address"}
	e.Holder = &Holder{Function: "C native_hold", Caller: "main.nativeMaintenance", Did: "c-sleep",
		Inside: "nanosleep(2) in C native_hold, inside the cgo call main.nativeMaintenance -> main._Cfunc_native_hold", Hold: "20s (3s in at the snapshot)",
		GoroutineIDs: []int64{holderG}, Thread: tid}
	e.Sleeps = "the C holder sleeps 20s in nanosleep while holding the mutex (the incident)"
	e.Notes = []string{"Nothing in Go's sync package is involved: the trace shows 16 goroutines in syscall (cgo) state; threads.json shows 15 threads in futex wait on one address (lock.address) and the holder thread (holder.thread) in nanosleep."}
	return nil
}
