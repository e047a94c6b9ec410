package locks

import (
	"runtime"
	"sync"
	"unsafe"
)

// Goroutine ids.
//
// The runtime does not export goroutine ids; runtime.Stack prints them
// ("goroutine 18 [running]:") but costs about a microsecond. Named locks need
// the id on every acquisition, so they read it from the runtime's g, the
// per-goroutine struct the runtime keeps in a register or thread-local slot:
// getg (goid_amd64.s, goid_arm64.s) returns it, and goid loads the field at
// goidOffset, which costs about a nanosecond.
//
// goidOffset is not hard-coded. findGoidOffset scans the first goidScan bytes
// of the g of several live goroutines for the one 8-byte word that equals
// each goroutine's id as printed by runtime.Stack, and accepts it only if
// exactly one offset matches in all of them (Go 1.23 to 1.26 put goid at
// byte 152 on 64-bit platforms: runtime/runtime2.go). If getg is not
// available (other architectures, gccgo) or no unique offset is found, goid
// returns 0 and named locks record no holder ids.

// goidScan is how many bytes of a g are scanned. A g is several hundred
// bytes long (runtime/runtime2.go), so the scan stays inside it.
const goidScan = 256

// goidSamples is how many goroutines, besides the caller, must agree on the
// offset.
const goidSamples = 8

var (
	probeOnce  sync.Once
	goidOffset uintptr // 0: goroutine ids unavailable
)

// probeRuntime finds goidOffset and checks lockWordOK (state.go), once. It
// runs when the first lock is named, so that unnamed locks and programs that
// never name one pay nothing.
func probeRuntime() {
	probeOnce.Do(func() {
		goidOffset = findGoidOffset()
		lockWordOK = checkLockWord()
	})
}

// goid returns the calling goroutine's id, or unknownG if ids are
// unavailable.
func goid() uint64 {
	off := goidOffset
	if off == 0 {
		return unknownG
	}
	return *(*uint64)(unsafe.Add(getg(), off))
}

// unknownG stands for the id of a goroutine when ids are unavailable.
const unknownG = ^uint64(0)

// findGoidOffset returns the offset of goid in the runtime's g, or 0.
func findGoidOffset() uintptr {
	if !haveGetg {
		return 0
	}
	masks := make([]uint32, goidSamples)
	var wg sync.WaitGroup
	for i := range masks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			masks[i] = goidCandidates()
		}()
	}
	wg.Wait()
	m := goidCandidates()
	for _, x := range masks {
		m &= x
	}
	if m == 0 || m&(m-1) != 0 { // none, or ambiguous
		return 0
	}
	off := uintptr(0)
	for m > 1 {
		m >>= 1
		off += 8
	}
	return off
}

// goidCandidates returns a bit mask of the 8-byte words of the calling
// goroutine's g (bit i: byte offset 8*i) that hold its id. It reads the g of
// the calling goroutine only, while that goroutine runs.
func goidCandidates() uint32 {
	var buf [64]byte
	id := parseGoroutineID(buf[:runtime.Stack(buf[:], false)])
	g := getg()
	if id == 0 || g == nil {
		return 0
	}
	var m uint32
	for i := 1; i < goidScan/8; i++ {
		if *(*uint64)(unsafe.Add(g, i*8)) == id {
			m |= 1 << i
		}
	}
	return m
}

// parseGoroutineID parses the id in a runtime.Stack header
// ("goroutine 18 [running]:"), or returns 0.
func parseGoroutineID(b []byte) uint64 {
	const prefix = "goroutine "
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0
	}
	var id uint64
	n := 0
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
		n++
	}
	if n == 0 || n > 19 || len(b) < len(prefix)+n+2 || b[len(prefix)+n] != ' ' || b[len(prefix)+n+1] != '[' {
		return 0
	}
	return id
}
