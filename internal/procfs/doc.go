// Package procfs reads the operating system's view of the process's
// threads from /proc/self/task without privileges: what each thread is doing
// right now (running, parked, blocked in a futex and on which word, in
// epoll, sleeping, in another system call), its context switches and how
// long it waited on a CPU run queue.
//
// It is the source of the futex_waiters, run_delay and ctx_switches signals
// and of threads.json in incident snapshots. Only Linux is supported; on
// other systems [NewScanner] returns an error matching
// [errors.ErrUnsupported]. The result types build everywhere.
//
// # What it can and cannot see
//
// Contended [sync.Mutex] and [sync.RWMutex] waits never show up here: a
// goroutine that waits for a lock parks in the Go scheduler and its OS
// thread goes on running other goroutines (or parks as an idle M). This view
// explains the other kinds of trouble:
//   - runtime-internal lock contention: an M blocked in lock2 sleeps in
//     FUTEX_WAIT with value 0xffffffff on its own per-M word;
//   - cgo/pthread locks: C threads waiting on the same futex word (the
//     address of the pthread_mutex_t);
//   - CPU starvation: the run-queue wait from schedstat (run delay);
//   - idle Ms (FUTEX_WAIT with value 0), the netpoller, sysmon sleeping.
//
// The per-M word of a runtime lock wait is never shared, so the address of
// the contended runtime lock cannot be recovered from /proc; the mutex
// profile has its stack.
//
// # Cost
//
// A [Scanner] keeps five file descriptors open per thread (stat, status,
// syscall, wchan, schedstat) and re-reads them with pread at offset 0, which
// returns fresh values; the task directory is listed on every scan so that
// new threads get descriptors and exited threads' descriptors are closed.
// Measured on a 2-vCPU VM with 50 threads: about 15 µs per thread per scan
// (0.75 ms), against about 30 µs when every file is opened and closed each
// time. Most of it is the kernel formatting the files: status alone is about
// 6 µs, and it is the only source of the voluntary/involuntary split.
// syscall and wchan are not read for runnable threads, and wchan not for
// futex, epoll and nanosleep waits, where it says nothing new.
package procfs
