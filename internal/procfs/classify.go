package procfs

import (
	"cmp"
	"slices"
	"strings"
)

// decodeSyscall fills the system call fields of t from a parsed syscall
// file. From a malformed file, whatever was parsed is used: the number
// names the call, and a futex call is decoded only if its first four
// arguments were there.
func decodeSyscall(t *Thread, sc syscallFields, tab *sysTable) {
	t.SyscallNr = -1
	switch {
	case sc.running:
		t.Syscall = "running"
		t.have |= haveSyscall
		return
	case sc.nr < 0:
		// Blocked but not in a system call (page fault, stopped), or the
		// number could not be parsed.
		t.SP, t.PC = sc.sp, sc.pc
		if sc.sp != 0 || sc.pc != 0 {
			t.have |= haveSyscall
		}
		return
	}
	t.SyscallNr = sc.nr
	t.Args = sc.args
	t.SP, t.PC = sc.sp, sc.pc
	if tab == nil {
		t.Syscall = tab.name(sc.nr)
		return // numbers unknown: classify from wchan
	}
	t.have |= haveSyscall
	t.Syscall = tab.name(sc.nr)
	if t.Syscall == "futex" && sc.nargs >= 4 {
		op := uint32(sc.args[1])
		t.Futex = Futex{
			Op:      op,
			Cmd:     futexCmdName(op),
			Uaddr:   sc.args[0],
			Val:     uint32(sc.args[2]),
			Timeout: sc.args[3] != 0,
		}
	}
}

// waitExplained reports whether t's system call alone says what it waits
// for (a decoded futex call, epoll, nanosleep), so that wchan adds nothing.
func waitExplained(t *Thread) bool {
	if t.have&haveSyscall == 0 {
		return false
	}
	if t.Syscall == "futex" {
		return t.Futex.Cmd != ""
	}
	switch t.Syscall {
	case "epoll_wait", "epoll_pwait", "epoll_pwait2", "nanosleep", "clock_nanosleep":
		return true
	}
	return false
}

// isFutexWait reports whether t is blocked waiting on a futex word.
func isFutexWait(t *Thread) bool {
	return t.Syscall == "futex" && t.Futex.Cmd != "" &&
		(futexValueWait(t.Futex.Op) || futexPIWait(t.Futex.Op))
}

// classify decides t's class. t.Futex.Waiters must already hold the number
// of threads waiting on the same word.
//
// Futex waits are decided in this order:
//  1. a PI-mutex wait (lock_pi, lock_pi2, wait_requeue_pi): only pthread
//     PI mutexes use these: pthread-mutex;
//  2. a word waited on by two or more threads: pthread-mutex. The Go
//     runtime's futex words are per M (m.park.key, m.waitsema), so a
//     shared word is proof of a lock outside the runtime, whatever its
//     value (sem_wait waits with 0, a contended glibc mutex with 2). This
//     rule comes first so that such waits are never taken for idle Ms or
//     runtime locks;
//  3. value 0xffffffff: runtime-lock (semasleep; the runtime uses it for
//     nothing else on Linux);
//  4. value 0: idle M (notesleep). A lone C thread waiting with 0 looks
//     the same and is counted idle;
//  5. any other value: pthread-mutex, probably (a single waiter on a glibc
//     mutex waits with 2; robust mutexes with TID|0x80000000).
func classify(t *Thread) Class {
	if t.State == "R" || t.Syscall == "running" {
		return ClassRunning
	}
	if t.have&haveSyscall == 0 {
		return classifyWchan(t.Wchan)
	}
	if t.SyscallNr < 0 {
		return ClassOther
	}
	switch t.Syscall {
	case "futex":
		switch {
		case t.Futex.Cmd == "":
			return classifyWchan(t.Wchan) // arguments missing
		case futexPIWait(t.Futex.Op):
			return ClassPthreadMutex
		case !futexValueWait(t.Futex.Op):
			return ClassSyscall // wake, requeue, ...
		case t.Futex.Waiters >= 2:
			return ClassPthreadMutex
		case t.Futex.Val == runtimeLockVal:
			return ClassRuntimeLock
		case t.Futex.Val == 0:
			return ClassIdle
		default:
			return ClassPthreadMutex
		}
	case "epoll_wait", "epoll_pwait", "epoll_pwait2":
		return ClassNetpoller
	case "nanosleep", "clock_nanosleep":
		return ClassSleeping
	}
	return ClassSyscall
}

// classifyWchan is the fallback when the syscall file gave nothing usable
// (unknown architecture, unreadable or malformed file). A futex wait cannot
// be told apart without its value, so it stays "other".
func classifyWchan(w string) Class {
	switch {
	case strings.Contains(w, "epoll") || w == "ep_poll":
		return ClassNetpoller
	case strings.Contains(w, "nanosleep"):
		return ClassSleeping
	}
	return ClassOther
}

// finish classifies the rows of s, fills Counts, SharedFutexes and Summary.
// The per-thread rates must already be set; ratesValid says whether this is
// not the first scan.
func finish(s *Scan, ratesValid bool, interval float64) {
	waiters := make(map[uint64][]int)
	for i := range s.Threads {
		t := &s.Threads[i]
		if isFutexWait(t) {
			waiters[t.Futex.Uaddr] = append(waiters[t.Futex.Uaddr], t.TID)
		}
	}
	s.Counts = make(map[Class]int, numClasses)
	for c := range numClasses {
		s.Counts[c] = 0
	}
	sum := Summary{Threads: len(s.Threads), RatesValid: ratesValid}
	if ratesValid {
		sum.IntervalSeconds = interval
	}
	for i := range s.Threads {
		t := &s.Threads[i]
		if isFutexWait(t) {
			t.Futex.Waiters = len(waiters[t.Futex.Uaddr])
		}
		t.Class = classify(t)
		s.Counts[t.Class]++
		if t.Class == ClassRuntimeLock || t.Class == ClassPthreadMutex {
			sum.FutexWaiters++
		}
		if ratesValid && t.RatesValid {
			sum.RunDelay += t.RunDelayPerSec
			sum.CtxSwitches += t.VoluntaryPerSec + t.InvoluntaryPerSec
		}
	}
	s.Summary = sum
	s.SharedFutexes = []SharedFutex{} // [] rather than null in JSON
	for addr, tids := range waiters {
		if len(tids) >= 2 {
			s.SharedFutexes = append(s.SharedFutexes, SharedFutex{Uaddr: addr, Threads: len(tids), TIDs: tids})
		}
	}
	slices.SortFunc(s.SharedFutexes, func(a, b SharedFutex) int {
		if c := cmp.Compare(b.Threads, a.Threads); c != 0 {
			return c
		}
		return cmp.Compare(a.Uaddr, b.Uaddr)
	})
}

// prevCounters is what a Scanner keeps of a thread between scans to compute
// rates.
type prevCounters struct {
	start            uint64
	voluntary, invol uint64
	runDelay         uint64
	have             uint8
}

func countersOf(t *Thread) prevCounters {
	return prevCounters{
		start:     t.startTicks,
		voluntary: t.VoluntaryCtxtSwitches,
		invol:     t.InvoluntaryCtxtSwitches,
		runDelay:  t.RunDelayNanos,
		have:      t.have,
	}
}

// setRates sets t's per-second rates from the counters of the previous scan
// taken interval seconds earlier. Rates stay invalid when a counter is
// missing in either scan, when the TID was reused by a new thread (another
// start time), or when a counter went backwards.
func setRates(t *Thread, prev prevCounters, interval float64) {
	const need = haveStat | haveStatus | haveSchedstat
	if interval <= 0 || t.have&need != need || prev.have&need != need ||
		prev.start != t.startTicks ||
		t.VoluntaryCtxtSwitches < prev.voluntary ||
		t.InvoluntaryCtxtSwitches < prev.invol ||
		t.RunDelayNanos < prev.runDelay {
		return
	}
	t.RatesValid = true
	t.VoluntaryPerSec = float64(t.VoluntaryCtxtSwitches-prev.voluntary) / interval
	t.InvoluntaryPerSec = float64(t.InvoluntaryCtxtSwitches-prev.invol) / interval
	t.RunDelayPerSec = float64(t.RunDelayNanos-prev.runDelay) / 1e9 / interval
}
