//go:build gc && (amd64 || arm64)

package locks

import "unsafe"

// getg returns the runtime's g of the calling goroutine (goid_amd64.s,
// goid_arm64.s).
func getg() unsafe.Pointer

const haveGetg = true
