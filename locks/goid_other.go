//go:build !(gc && (amd64 || arm64))

package locks

import "unsafe"

// getg is not available on this platform: named locks record no holder
// goroutine ids and the lock-order check is unsupported.
func getg() unsafe.Pointer { return nil }

const haveGetg = false
