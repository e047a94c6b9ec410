//go:build linux

package procfs

import (
	"syscall"
	"testing"
)

func TestSyscallTableGeneric(t *testing.T) {
	checkTable(t, &genericSyscalls, map[string]int{
		"read": syscall.SYS_READ, "futex": syscall.SYS_FUTEX, "epoll_pwait": syscall.SYS_EPOLL_PWAIT,
		"nanosleep": syscall.SYS_NANOSLEEP, "clock_nanosleep": syscall.SYS_CLOCK_NANOSLEEP,
		"openat": syscall.SYS_OPENAT, "wait4": syscall.SYS_WAIT4, "pread64": syscall.SYS_PREAD64,
		"accept4": syscall.SYS_ACCEPT4, "recvfrom": syscall.SYS_RECVFROM, "ppoll": syscall.SYS_PPOLL,
		"getrandom": syscall.SYS_GETRANDOM, "tgkill": syscall.SYS_TGKILL, "waitid": syscall.SYS_WAITID,
	})
}
