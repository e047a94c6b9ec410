package procfs

import "strconv"

// sysTable maps system call numbers to names for one architecture. Only
// the calls a Go service's threads commonly block in are listed; others are
// reported as "syscall N". Classification only needs futex, epoll_* and
// *nanosleep.
type sysTable struct {
	arch  string
	names map[int]string
}

// From arch/x86/entry/syscalls/syscall_64.tbl.
var amd64Syscalls = sysTable{arch: "amd64", names: map[int]string{
	0: "read", 1: "write", 2: "open", 3: "close", 5: "fstat", 7: "poll",
	8: "lseek", 9: "mmap", 10: "mprotect", 11: "munmap", 13: "rt_sigaction",
	14: "rt_sigprocmask", 15: "rt_sigreturn", 16: "ioctl", 17: "pread64",
	18: "pwrite64", 19: "readv", 20: "writev", 23: "select", 24: "sched_yield",
	25: "mremap", 28: "madvise", 34: "pause", 35: "nanosleep", 39: "getpid",
	40: "sendfile", 41: "socket", 42: "connect", 43: "accept", 44: "sendto",
	45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 48: "shutdown", 49: "bind",
	50: "listen", 54: "setsockopt", 55: "getsockopt", 56: "clone",
	59: "execve", 60: "exit", 61: "wait4", 62: "kill", 72: "fcntl",
	73: "flock", 74: "fsync", 75: "fdatasync", 131: "sigaltstack",
	186: "gettid", 202: "futex", 217: "getdents64", 230: "clock_nanosleep",
	231: "exit_group", 232: "epoll_wait", 233: "epoll_ctl", 234: "tgkill",
	247: "waitid", 257: "openat", 262: "newfstatat", 270: "pselect6",
	271: "ppoll", 281: "epoll_pwait", 288: "accept4", 293: "pipe2",
	299: "recvmmsg", 307: "sendmmsg", 318: "getrandom", 332: "statx",
	426: "io_uring_enter", 435: "clone3", 441: "epoll_pwait2",
	449: "futex_waitv",
}}

// From include/uapi/asm-generic/unistd.h, used by arm64, riscv64 and
// loong64.
var genericSyscalls = sysTable{arch: "generic", names: map[int]string{
	21: "epoll_ctl", 22: "epoll_pwait", 23: "dup", 25: "fcntl", 29: "ioctl",
	32: "flock", 56: "openat", 57: "close", 59: "pipe2", 61: "getdents64",
	62: "lseek", 63: "read", 64: "write", 65: "readv", 66: "writev",
	67: "pread64", 68: "pwrite64", 71: "sendfile", 72: "pselect6",
	73: "ppoll", 79: "newfstatat", 80: "fstat", 82: "fsync",
	83: "fdatasync", 93: "exit", 94: "exit_group", 95: "waitid", 98: "futex",
	101: "nanosleep", 115: "clock_nanosleep", 124: "sched_yield",
	129: "kill", 131: "tgkill", 132: "sigaltstack", 134: "rt_sigaction",
	135: "rt_sigprocmask", 139: "rt_sigreturn", 172: "getpid", 178: "gettid",
	198: "socket", 200: "bind", 201: "listen", 202: "accept", 203: "connect",
	206: "sendto", 207: "recvfrom", 208: "setsockopt", 209: "getsockopt",
	210: "shutdown", 211: "sendmsg", 212: "recvmsg", 215: "munmap",
	216: "mremap", 220: "clone", 221: "execve", 222: "mmap", 226: "mprotect",
	233: "madvise", 242: "accept4", 243: "recvmmsg", 260: "wait4",
	269: "sendmmsg", 278: "getrandom", 291: "statx", 426: "io_uring_enter",
	435: "clone3", 441: "epoll_pwait2", 449: "futex_waitv",
}}

// tableFor returns the system call table for GOARCH, or nil when the
// numbers are not known; classification then falls back to wchan.
func tableFor(goarch string) *sysTable {
	switch goarch {
	case "amd64":
		return &amd64Syscalls
	case "arm64", "riscv64", "loong64":
		return &genericSyscalls
	}
	return nil
}

// name returns the name of system call nr.
func (t *sysTable) name(nr int) string {
	if t != nil {
		if n, ok := t.names[nr]; ok {
			return n
		}
	}
	return "syscall " + strconv.Itoa(nr)
}

// Futex operations (include/uapi/linux/futex.h). The command is the op
// without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
const (
	futexPrivateFlag   = 0x80
	futexClockRealtime = 0x100
	futexCmdMask       = ^uint32(futexPrivateFlag | futexClockRealtime)

	futexWait          = 0
	futexLockPI        = 6
	futexWaitBitset    = 9
	futexWaitRequeuePI = 11
	futexLockPI2       = 13
)

var futexCmds = [...]string{
	0: "wait", 1: "wake", 2: "fd", 3: "requeue", 4: "cmp_requeue",
	5: "wake_op", 6: "lock_pi", 7: "unlock_pi", 8: "trylock_pi",
	9: "wait_bitset", 10: "wake_bitset", 11: "wait_requeue_pi",
	12: "cmp_requeue_pi", 13: "lock_pi2",
}

// runtimeLockVal is the value a Go M waits with in semasleep when blocked
// on a contended runtime lock: its per-M waitsema decremented from 0
// (runtime/lock_futex.go).
const runtimeLockVal = 0xffffffff

func futexCmdName(op uint32) string {
	if c := op & futexCmdMask; int(c) < len(futexCmds) {
		return futexCmds[c]
	}
	return "op " + strconv.FormatUint(uint64(op), 10)
}

// futexValueWait reports whether op blocks until the word changes.
func futexValueWait(op uint32) bool {
	c := op & futexCmdMask
	return c == futexWait || c == futexWaitBitset
}

// futexPIWait reports whether op blocks on a priority-inheritance mutex
// (only pthread PI mutexes use these; val is not an expected value).
func futexPIWait(op uint32) bool {
	c := op & futexCmdMask
	return c == futexLockPI || c == futexLockPI2 || c == futexWaitRequeuePI
}
