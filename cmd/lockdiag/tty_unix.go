//go:build linux || darwin

package main

import (
	"os"
	"syscall"
	"unsafe"
)

// ttyWidth asks the terminal on f for its width; 0 if f is not one.
func ttyWidth(f *os.File) int {
	var ws struct{ row, col, x, y uint16 }
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws)))
	if errno != 0 {
		return 0
	}
	return int(ws.col)
}
