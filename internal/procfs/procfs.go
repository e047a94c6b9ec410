package procfs

import (
	"fmt"
	"time"
)

// Class says what an OS thread is doing at the moment of a scan, as far as
// /proc can tell. The zero value is [ClassOther].
type Class uint8

// The classes. Reports list them starting with running and the two lock
// classes, ClassOther last.
const (
	// ClassOther is a thread whose activity could not be told: not in a
	// system call (for example a page fault), or /proc did not say.
	ClassOther Class = iota
	// ClassRunning is a thread on a CPU or waiting for one (state R, or
	// its syscall file says "running").
	ClassRunning
	// ClassRuntimeLock is an M blocked on a contended runtime-internal
	// lock: FUTEX_WAIT with value 0xffffffff on its own per-M word
	// (runtime lock2 -> semasleep).
	ClassRuntimeLock
	// ClassPthreadMutex is a thread waiting on a lock word outside the Go
	// runtime: a futex word waited on by two or more threads (proof: the
	// runtime's words are per-M and never shared), a PI-mutex wait, or a
	// single FUTEX_WAIT whose value is neither 0 nor 0xffffffff (probable:
	// glibc waits with 2 on a contended pthread_mutex_t).
	ClassPthreadMutex
	// ClassIdle is an idle M: FUTEX_WAIT with value 0 on its per-M note
	// (runtime mPark/notesleep, or sysmon's timed note sleep).
	ClassIdle
	// ClassNetpoller is a thread in epoll_wait, epoll_pwait or
	// epoll_pwait2: the Go netpoller waiting for I/O.
	ClassNetpoller
	// ClassSleeping is a thread in nanosleep or clock_nanosleep, usually
	// sysmon.
	ClassSleeping
	// ClassSyscall is a thread blocked in another system call, named in
	// [Thread.Syscall].
	ClassSyscall

	numClasses
)

var classNames = [numClasses]string{
	ClassOther:        "other",
	ClassRunning:      "running",
	ClassRuntimeLock:  "runtime-lock",
	ClassPthreadMutex: "pthread-mutex",
	ClassIdle:         "idle",
	ClassNetpoller:    "netpoller",
	ClassSleeping:     "sleeping",
	ClassSyscall:      "syscall",
}

// String returns the class's short name, such as "runtime-lock".
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// MarshalText encodes the class as its name, so JSON shows "idle", not 4.
func (c Class) MarshalText() ([]byte, error) {
	if c >= numClasses {
		return nil, fmt.Errorf("procfs: invalid class %d", uint8(c))
	}
	return []byte(classNames[c]), nil
}

// UnmarshalText decodes a class name written by [Class.MarshalText].
func (c *Class) UnmarshalText(b []byte) error {
	for i, n := range classNames {
		if n == string(b) {
			*c = Class(i)
			return nil
		}
	}
	return fmt.Errorf("procfs: unknown class %q", b)
}

// Futex describes a futex system call a thread is blocked in, from the
// arguments in /proc/<tid>/syscall.
type Futex struct {
	// Op is the raw operation argument, flags included (0x80 is
	// FUTEX_PRIVATE_FLAG, 0x100 FUTEX_CLOCK_REALTIME).
	Op uint32 `json:"op"`
	// Cmd names the operation without its flags: "wait", "wait_bitset",
	// "lock_pi", "wake", ...
	Cmd string `json:"cmd"`
	// Uaddr is the address of the futex word (argument 0). For a pthread
	// mutex it is the address of the pthread_mutex_t; for Go runtime waits
	// it is a per-M word.
	Uaddr uint64 `json:"uaddr"`
	// Val is the value the waiter expected the word to hold (argument 2):
	// 0 for an idle M, 0xffffffff for a runtime lock wait, 2 for a
	// contended glibc mutex.
	Val uint32 `json:"val"`
	// Timeout is true when the wait has a timeout (argument 3 non-nil).
	Timeout bool `json:"timeout,omitempty"`
	// Waiters is the number of threads in this scan waiting on Uaddr, this
	// one included. Zero when the call is not a wait.
	Waiters int `json:"waiters,omitempty"`
}

// Thread is one OS thread of the process at the time of a scan. Counters
// are cumulative since the thread started; the *PerSec fields are rates over
// the interval since the previous scan of the same [Scanner] and are valid
// only when RatesValid is true.
type Thread struct {
	TID int `json:"tid"`
	// Name is the thread's comm (at most 15 bytes on Linux).
	Name string `json:"name"`
	// State is the one-letter scheduler state: R running or runnable,
	// S sleeping, D uninterruptible, T stopped, Z zombie, ... Empty if
	// unknown.
	State string `json:"state"`
	Class Class  `json:"class"`

	// Syscall names the system call the thread is blocked in: "futex",
	// "epoll_pwait", "syscall 999" when the number is not in our table,
	// "running" when the kernel says the thread is running, "" when it is
	// not in a system call or /proc did not say.
	Syscall string `json:"syscall,omitempty"`
	// SyscallNr is the system call number, -1 when none is known.
	SyscallNr int `json:"syscall_nr"`
	// Args are the six system call arguments, SP and PC the user stack
	// pointer and program counter at the call.
	Args  [6]uint64 `json:"args,omitzero"`
	SP    uint64    `json:"sp,omitzero"`
	PC    uint64    `json:"pc,omitzero"`
	Futex Futex     `json:"futex,omitzero"`
	// Wchan is the kernel function the thread sleeps in, "" if none. It
	// is not read for runnable threads and for futex, epoll and nanosleep
	// waits, where the system call says all it would (futex_do_wait,
	// do_epoll_wait, hrtimer_nanosleep); that saves about 1.5 µs per
	// thread.
	Wchan string `json:"wchan,omitempty"`

	// UserSeconds and SystemSeconds are the CPU time from stat (clock
	// ticks of 1/100 s, the USER_HZ of every Linux architecture Go runs on).
	UserSeconds   float64 `json:"user_seconds"`
	SystemSeconds float64 `json:"system_seconds"`
	// Context switches from status.
	VoluntaryCtxtSwitches   uint64 `json:"voluntary_ctxt_switches"`
	InvoluntaryCtxtSwitches uint64 `json:"involuntary_ctxt_switches"`
	// From schedstat: time on a CPU, time waiting on a run queue (run
	// delay), and the number of timeslices run.
	CPUNanos      uint64 `json:"cpu_ns"`
	RunDelayNanos uint64 `json:"run_delay_ns"`
	Timeslices    uint64 `json:"timeslices"`

	// RatesValid is false on the first scan, for a thread first seen in
	// this scan, and when a counter could not be read.
	RatesValid        bool    `json:"rates_valid"`
	VoluntaryPerSec   float64 `json:"voluntary_per_sec"`
	InvoluntaryPerSec float64 `json:"involuntary_per_sec"`
	// RunDelayPerSec is seconds waited on a run queue per second.
	RunDelayPerSec float64 `json:"run_delay_per_sec"`

	// Err lists what could not be read or parsed for this thread; the
	// other fields hold what could.
	Err string `json:"error,omitempty"`

	startTicks uint64 // stat field 22, to notice a reused TID
	have       uint8  // haveStat | haveStatus | ...
}

// Bits of Thread.have: which files parsed well enough for their counters
// to be used.
const (
	haveStat uint8 = 1 << iota
	haveStatus
	haveSchedstat
	haveSyscall
)

// SharedFutex is a futex word that two or more threads wait on: proof of a
// lock, condition variable or semaphore outside the Go runtime.
type SharedFutex struct {
	Uaddr uint64 `json:"uaddr"`
	// Threads is the number of waiters, len(TIDs).
	Threads int   `json:"threads"`
	TIDs    []int `json:"tids"`
}

// Summary holds the signals the sampler records, computed from one scan and
// the previous scan of the same [Scanner].
type Summary struct {
	// Threads is the number of threads in the scan.
	Threads int `json:"threads"`
	// FutexWaiters is the number of threads blocked on a lock word right
	// now: the runtime-lock and pthread-mutex classes (futex waits that are
	// not idle Ms). Valid on every scan.
	FutexWaiters int `json:"futex_waiters"`
	// RatesValid is false on a Scanner's first scan; RunDelay and
	// CtxSwitches are then 0.
	RatesValid bool `json:"rates_valid"`
	// IntervalSeconds is the time since the previous scan.
	IntervalSeconds float64 `json:"interval_seconds"`
	// RunDelay is seconds per second that threads waited on a CPU run
	// queue, summed over threads: 0.5 means that on average half a thread
	// was runnable but not running. Threads that started or exited
	// between the scans are not counted.
	RunDelay float64 `json:"run_delay"`
	// CtxSwitches is voluntary plus involuntary context switches per
	// second, all threads (same caveat as RunDelay).
	CtxSwitches float64 `json:"ctx_switches"`
}

// Scan is the state of the process's threads at one moment.
type Scan struct {
	Time time.Time `json:"time"`
	// Threads are ordered by TID.
	Threads []Thread `json:"threads"`
	// Counts has an entry for every class, zero included.
	Counts  map[Class]int `json:"counts"`
	Summary Summary       `json:"summary"`
	// SharedFutexes are the futex words waited on by two or more threads,
	// most waiters first.
	SharedFutexes []SharedFutex `json:"shared_futexes"`
	// Vanished counts threads that were listed but exited before they
	// could be read; they are not in Threads.
	Vanished int `json:"vanished,omitempty"`
	// Notes say what limited this scan, e.g. an architecture whose system
	// call numbers are not known.
	Notes []string `json:"notes,omitempty"`
}
