package lockgraph

import (
	"strings"

	"github.com/lockdiag/lockdiag/internal/stacks"
)

// The frames a goroutine parked on a sync.Mutex or sync.RWMutex shows,
// innermost first. Measured with Go 1.23, 1.24, 1.26 and 1.27 dumps
// (testdata of internal/gdump); this table is the only place that knows
// them, so that it can be merged into a shared stack vocabulary later.
//
//	Mutex.Lock, Go ≤ 1.23:   sync.runtime_SemacquireMutex   < sync.(*Mutex).lockSlow(m) < sync.(*Mutex).Lock(...)
//	Mutex.Lock, Go ≥ 1.24:   internal/sync.runtime_SemacquireMutex < internal/sync.(*Mutex).lockSlow(m)
//	                         < internal/sync.(*Mutex).Lock(...) < sync.(*Mutex).Lock(...)
//	RWMutex.Lock behind a writer: the Mutex frames above < sync.(*RWMutex).Lock(rw)   (wait reason sync.Mutex.Lock)
//	RWMutex.Lock behind readers:  sync.runtime_SemacquireRWMutex  < sync.(*RWMutex).Lock(rw)
//	RWMutex.RLock:                sync.runtime_SemacquireRWMutexR < sync.(*RWMutex).RLock(...)
//
// Arguments: lockSlow's is the Mutex's address and is always accurate
// (lockSlow uses it after the semaphore returns). The Lock/RLock methods
// are inlined ("(...)") in normal builds and printed with the address under
// -race; sync.(*RWMutex).Lock's argument is dead after the semaphore in
// normal builds ("0x0?"). The semaphore functions' arguments are stale. The
// RWMutex's writer Mutex is its first field, so the address lockSlow shows
// for a writer behind a writer is the RWMutex's own.
//
// lockdiag's package locks wraps these: its Mutex and RWMutex hold a
// sync.Mutex and a sync.RWMutex as their first field (so the addresses
// above are the locks.Mutex's and locks.RWMutex's own), and their frames
// sit between sync's and the caller:
//
//	locks.Mutex.Lock:     the Mutex frames above < locks.(*Mutex).lockSlow (named only) < locks.(*Mutex).Lock
//	locks.RWMutex.Lock:   the RWMutex.Lock frames < locks.(*RWMutex).lockSlow (named only) < locks.(*RWMutex).Lock
//	locks.RWMutex.RLock:  the RLock frames < locks.(*RWMutex).rlockSlow (named only) < locks.(*RWMutex).RLock
//	                      [< locks.(*rlocker).Lock]

// semaFuncs park the goroutine on a lock's semaphore.
var semaFuncs = map[string]bool{
	"sync.runtime_SemacquireMutex":          true, // Go ≤ 1.23: Mutex
	"internal/sync.runtime_SemacquireMutex": true, // Go ≥ 1.24: Mutex, RWMutex's writer Mutex
	"sync.runtime_SemacquireRWMutexR":       true, // Go ≥ 1.20: RLock behind a writer
	"sync.runtime_SemacquireRWMutex":        true, // Go ≥ 1.20: Lock behind readers
}

// lockFrame is what a sync frame above the semaphore tells.
type lockFrame uint8

const (
	notLockFrame lockFrame = iota
	lockSlowFrame
	mutexLockFrame // internal/sync or sync (*Mutex).Lock
	rwLockFrame    // sync.(*RWMutex).Lock
	rwRLockFrame   // sync.(*RWMutex).RLock
)

var lockFrames = map[string]lockFrame{
	"sync.(*Mutex).lockSlow":          lockSlowFrame,
	"internal/sync.(*Mutex).lockSlow": lockSlowFrame,
	"sync.(*Mutex).Lock":              mutexLockFrame,
	"internal/sync.(*Mutex).Lock":     mutexLockFrame,
	"sync.(*RWMutex).Lock":            rwLockFrame,
	"sync.(*RWMutex).RLock":           rwRLockFrame,

	"github.com/lockdiag/lockdiag/locks.(*Mutex).Lock":        mutexLockFrame,
	"github.com/lockdiag/lockdiag/locks.(*Mutex).lockSlow":    mutexLockFrame,
	"github.com/lockdiag/lockdiag/locks.(*RWMutex).Lock":      rwLockFrame,
	"github.com/lockdiag/lockdiag/locks.(*RWMutex).lockSlow":  rwLockFrame,
	"github.com/lockdiag/lockdiag/locks.(*RWMutex).RLock":     rwRLockFrame,
	"github.com/lockdiag/lockdiag/locks.(*RWMutex).rlockSlow": rwRLockFrame,
	"github.com/lockdiag/lockdiag/locks.(*rlocker).Lock":      rwRLockFrame,
}

// onceSlow is where sync.Once.Do takes its Mutex, and where the goroutine
// that runs the function is while it runs.
const onceSlow = "sync.(*Once).doSlow"

// lockStates are the wait reasons of goroutines parked on a lock (Go ≥
// 1.20); "semacquire" is what older runtimes printed.
var lockStates = map[string]bool{
	"sync.Mutex.Lock":    true,
	"sync.RWMutex.RLock": true,
	"sync.RWMutex.Lock":  true,
	"semacquire":         true,
}

// isRuntimeFrame reports whether fn belongs to the runtime or the sync
// implementation (package locks' lock types included, see
// [stacks.Internal]): frames skipped when looking for a lock's call site
// and for the objects a goroutine holds.
//
// sync.OnceFunc, OnceValue and OnceValues are generic closures named after
// the function that instantiated them ("app.load.OnceValue[...].func5"):
// they are sync's frames too.
func isRuntimeFrame(fn string) bool {
	return stacks.Internal(fn) || fn == "panic" || isOnceWrapper(fn)
}

func isOnceWrapper(fn string) bool {
	return strings.Contains(fn, ".OnceFunc.func") || strings.Contains(fn, ".OnceValue[...].func") ||
		strings.Contains(fn, ".OnceValues[...].func")
}
