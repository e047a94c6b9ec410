//go:build linux

package procfs

import (
	"syscall"
	"testing"
)

// The table's numbers agree with the syscall package's for the calls it
// has (it lacks the newer ones, e.g. getrandom and epoll_pwait2).
func TestSyscallTableAMD64(t *testing.T) {
	checkTable(t, &amd64Syscalls, map[string]int{
		"read": syscall.SYS_READ, "futex": syscall.SYS_FUTEX, "epoll_wait": syscall.SYS_EPOLL_WAIT,
		"epoll_pwait": syscall.SYS_EPOLL_PWAIT, "nanosleep": syscall.SYS_NANOSLEEP,
		"clock_nanosleep": syscall.SYS_CLOCK_NANOSLEEP, "openat": syscall.SYS_OPENAT,
		"wait4": syscall.SYS_WAIT4, "pread64": syscall.SYS_PREAD64, "accept4": syscall.SYS_ACCEPT4,
		"recvfrom": syscall.SYS_RECVFROM, "sched_yield": syscall.SYS_SCHED_YIELD, "ppoll": syscall.SYS_PPOLL,
		"newfstatat": syscall.SYS_NEWFSTATAT, "tgkill": syscall.SYS_TGKILL, "waitid": syscall.SYS_WAITID,
	})
}
