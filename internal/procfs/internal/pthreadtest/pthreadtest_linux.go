//go:build linux && cgo

package pthreadtest

/*
#cgo LDFLAGS: -lpthread
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_WAITERS 64

static pthread_mutex_t lockdiag_mu = PTHREAD_MUTEX_INITIALIZER;
static sem_t lockdiag_ready;
static int lockdiag_pipe[2];
static pthread_t lockdiag_holder;
static pthread_t lockdiag_waiters[MAX_WAITERS];
static int lockdiag_nwaiters;
static int lockdiag_holder_tid;
static int lockdiag_waiter_tids[MAX_WAITERS];

// Holds the mutex until a byte arrives on the pipe, blocked in read(2).
static void *lockdiag_hold(void *arg) {
	char c;
	pthread_setname_np(pthread_self(), "lockholder");
	pthread_mutex_lock(&lockdiag_mu);
	lockdiag_holder_tid = (int)syscall(SYS_gettid);
	sem_post(&lockdiag_ready);
	while (read(lockdiag_pipe[0], &c, 1) < 0 && errno == EINTR) {
	}
	pthread_mutex_unlock(&lockdiag_mu);
	return NULL;
}

// Blocks in pthread_mutex_lock until the holder lets go.
static void *lockdiag_wait(void *arg) {
	int i = (int)(intptr_t)arg;
	pthread_setname_np(pthread_self(), "lockwaiter");
	lockdiag_waiter_tids[i] = (int)syscall(SYS_gettid);
	sem_post(&lockdiag_ready);
	pthread_mutex_lock(&lockdiag_mu);
	pthread_mutex_unlock(&lockdiag_mu);
	return NULL;
}

// Returns 0, a negative errno when nothing was started, or a positive errno
// when the holder runs and lockdiag_stop must be called.
static int lockdiag_start(int n) {
	if (n < 0 || n > MAX_WAITERS) {
		return -EINVAL;
	}
	if (pipe(lockdiag_pipe) != 0) {
		return -errno;
	}
	sem_init(&lockdiag_ready, 0, 0);
	int err = pthread_create(&lockdiag_holder, NULL, lockdiag_hold, NULL);
	if (err != 0) {
		close(lockdiag_pipe[0]);
		close(lockdiag_pipe[1]);
		sem_destroy(&lockdiag_ready);
		return -err; // nothing to stop
	}
	while (sem_wait(&lockdiag_ready) != 0) {
	}
	lockdiag_nwaiters = 0;
	for (int i = 0; i < n; i++) {
		err = pthread_create(&lockdiag_waiters[i], NULL, lockdiag_wait, (void *)(intptr_t)i);
		if (err != 0) {
			break;
		}
		lockdiag_nwaiters++;
		while (sem_wait(&lockdiag_ready) != 0) {
		}
	}
	return err;
}

static void lockdiag_stop(void) {
	char c = 1;
	while (write(lockdiag_pipe[1], &c, 1) < 0 && errno == EINTR) {
	}
	pthread_join(lockdiag_holder, NULL);
	for (int i = 0; i < lockdiag_nwaiters; i++) {
		pthread_join(lockdiag_waiters[i], NULL);
	}
	close(lockdiag_pipe[0]);
	close(lockdiag_pipe[1]);
	sem_destroy(&lockdiag_ready);
}

static uintptr_t lockdiag_mutex_addr(void) { return (uintptr_t)&lockdiag_mu; }
static int lockdiag_holder_tid_get(void) { return lockdiag_holder_tid; }
static int lockdiag_waiter_tid(int i) { return lockdiag_waiter_tids[i]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// Contention is a running set of contending C threads. Only one can run at
// a time: the mutex is a C global.
type Contention struct {
	// MutexAddr is the address of the pthread_mutex_t, which is also the
	// futex word its waiters sleep on.
	MutexAddr uintptr
	// HolderTID is the thread holding the mutex (blocked in read(2)).
	HolderTID int
	// WaiterTIDs are the threads that block in pthread_mutex_lock. They
	// have recorded their TIDs but may not have reached the futex wait yet.
	WaiterTIDs []int
	stopped    bool
}

var (
	mu      sync.Mutex
	running bool
)

// Start starts one holder and n waiter threads (1 <= n <= 64) and returns
// once the holder owns the mutex and every waiter has started.
func Start(n int) (*Contention, error) {
	if n < 1 || n > 64 {
		return nil, fmt.Errorf("pthreadtest: %d waiters, want 1..64", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if running {
		return nil, errors.New("pthreadtest: already running")
	}
	if e := C.lockdiag_start(C.int(n)); e < 0 {
		return nil, fmt.Errorf("pthreadtest: start: %w", syscall.Errno(-e))
	} else if e > 0 {
		C.lockdiag_stop() // the holder and some waiters run
		return nil, fmt.Errorf("pthreadtest: start: %w", syscall.Errno(e))
	}
	running = true
	c := &Contention{
		MutexAddr: uintptr(C.lockdiag_mutex_addr()),
		HolderTID: int(C.lockdiag_holder_tid_get()),
	}
	for i := range n {
		c.WaiterTIDs = append(c.WaiterTIDs, int(C.lockdiag_waiter_tid(C.int(i))))
	}
	return c, nil
}

// Stop releases the mutex and waits for every thread to exit. It is
// idempotent.
func (c *Contention) Stop() {
	mu.Lock()
	defer mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	C.lockdiag_stop()
	running = false
}
