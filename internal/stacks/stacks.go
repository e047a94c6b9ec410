// Package stacks is lockdiag's one vocabulary of stack frames: which frames
// are the runtime's and the sync package's (never a program's call site),
// which frame says what a blocked goroutine waits on and which one says
// what a waking goroutine did, and how function names are shortened for
// people. The trace analysis (lockreport) and the goroutine scans (diag)
// both use it, so that they agree on every Go version lockdiag supports.
//
// Frame names differ between Go versions: since Go 1.24 sync.Mutex is a
// wrapper around internal/sync.Mutex, whose lockSlow parks in
// internal/sync.runtime_SemacquireMutex; before, sync.(*Mutex).lockSlow
// parked in sync.runtime_SemacquireMutex. Both spellings are listed.
//
// lockdiag's own lock types (package locks: Mutex and RWMutex with a name)
// wrap sync's, and their frames are lock frames too: a goroutine parked in
// locks.(*Mutex).Lock is parked on a Mutex at the caller of that Lock, as
// one parked in sync.(*Mutex).Lock is, and its Unlock is a Mutex.Unlock. A
// named lock waits in the types' slow paths ((*Mutex).lockSlow,
// (*RWMutex).lockSlow, (*RWMutex).rlockSlow), an unnamed one does not:
// [NamedWait] tells them apart.
package stacks

import "strings"

// Prim is the synchronization primitive a blocked goroutine waits on, as
// its stack shows it.
type Prim uint8

// The primitives. PrimNone is the zero value: no frame says.
const (
	PrimNone Prim = iota
	PrimMutex
	PrimRLock // RWMutex.RLock
	PrimWLock // RWMutex.Lock
	PrimWaitGroup
	PrimCond
	PrimChanSend
	PrimChanRecv
	PrimSelect
	PrimSleep
	PrimNetwork
	PrimBlock // runtime.block: select{} or a nil channel, forever
)

var primNames = [...]string{
	PrimNone:      "",
	PrimMutex:     "Mutex.Lock",
	PrimRLock:     "RWMutex.RLock",
	PrimWLock:     "RWMutex.Lock",
	PrimWaitGroup: "WaitGroup.Wait",
	PrimCond:      "Cond.Wait",
	PrimChanSend:  "chan send",
	PrimChanRecv:  "chan receive",
	PrimSelect:    "select",
	PrimSleep:     "sleep",
	PrimNetwork:   "network",
	PrimBlock:     "block",
}

// String names the primitive the way reports do: "Mutex.Lock",
// "RWMutex.RLock", "chan receive", ...
func (p Prim) String() string {
	if int(p) < len(primNames) {
		return primNames[p]
	}
	return ""
}

// IsLock reports whether p is a wait on sync.Mutex or sync.RWMutex.
func (p Prim) IsLock() bool { return p == PrimMutex || p == PrimRLock || p == PrimWLock }

// Rank orders primitives found on one stack: the outermost sync primitive
// wins (RWMutex.Lock calls Mutex.Lock for the writers' mutex), and a sync
// primitive wins over the runtime frames it is built on.
func (p Prim) Rank() int {
	switch p {
	case PrimMutex:
		return 1
	case PrimRLock, PrimWLock, PrimWaitGroup, PrimCond:
		return 2
	}
	return 0
}

// The frames of package locks' lock types.
const (
	locksPkg     = "github.com/lockdiag/lockdiag/locks"
	locksMutex   = locksPkg + ".(*Mutex)."
	locksRWMutex = locksPkg + ".(*RWMutex)."
	locksRLocker = locksPkg + ".(*rlocker)."
)

// Waiter returns the primitive that frame fn of a blocked goroutine's
// stack waits on, or PrimNone.
func Waiter(fn string) Prim {
	switch fn {
	case locksMutex + "Lock", locksMutex + "lockSlow":
		return PrimMutex
	case locksRWMutex + "RLock", locksRWMutex + "rlockSlow", locksRLocker + "Lock":
		return PrimRLock
	case locksRWMutex + "Lock", locksRWMutex + "lockSlow":
		return PrimWLock
	case "sync.(*Mutex).Lock", "sync.(*Mutex).lockSlow",
		"internal/sync.(*Mutex).Lock", "internal/sync.(*Mutex).lockSlow":
		return PrimMutex
	case "sync.(*RWMutex).RLock":
		return PrimRLock
	case "sync.(*RWMutex).Lock":
		return PrimWLock
	case "sync.(*WaitGroup).Wait":
		return PrimWaitGroup
	case "sync.(*Cond).Wait":
		return PrimCond
	case "runtime.chansend1", "runtime.chansend":
		return PrimChanSend
	case "runtime.chanrecv1", "runtime.chanrecv2", "runtime.chanrecv":
		return PrimChanRecv
	case "runtime.selectgo":
		return PrimSelect
	case "runtime.block":
		return PrimBlock
	case "time.Sleep":
		return PrimSleep
	case "runtime.netpollblock", "internal/poll.runtime_pollWait":
		return PrimNetwork
	}
	return PrimNone
}

// LockMethod returns the lock primitive that a sync frame is the method
// of, or PrimNone: the frame a report names as "the Lock call".
// The methods of package locks' types count as sync's.
func LockMethod(fn string) Prim {
	switch fn {
	case "sync.(*Mutex).Lock", "sync.(*Mutex).TryLock",
		locksMutex + "Lock", locksMutex + "TryLock":
		return PrimMutex
	case "sync.(*RWMutex).RLock",
		locksRWMutex + "RLock", locksRWMutex + "TryRLock", locksRLocker + "Lock":
		return PrimRLock
	case "sync.(*RWMutex).Lock",
		locksRWMutex + "Lock", locksRWMutex + "TryLock":
		return PrimWLock
	}
	return PrimNone
}

// NamedWait reports whether fn is the slow path of a named lock of
// package locks: a goroutine parked under it waits for a lock whose name,
// holder and waiters package locks knows exactly (see locks.Read). An
// unnamed locks.Mutex parks in sync directly from its Lock.
func NamedWait(fn string) bool {
	switch fn {
	case locksMutex + "lockSlow", locksRWMutex + "lockSlow", locksRWMutex + "rlockSlow":
		return true
	}
	return false
}

// MutexPark reports whether fn is the frame through which a goroutine
// parks in sync.Mutex.Lock (also the writers' mutex of RWMutex.Lock),
// where a woken waiter can lose the race and park again in the same call.
func MutexPark(fn string) bool {
	return fn == "sync.(*Mutex).Lock" || fn == "internal/sync.(*Mutex).Lock"
}

// IsLockAcquire reports whether fn is the runtime's semaphore acquire of a
// sync.Mutex or sync.RWMutex: a goroutine whose stack starts (after
// runtime.gopark) with one of these is parked on a lock.
func IsLockAcquire(fn string) bool {
	switch fn {
	case "sync.runtime_SemacquireMutex", // Go <= 1.23
		"internal/sync.runtime_SemacquireMutex", // Go >= 1.24: Mutex, and RWMutex's writers' mutex
		"sync.runtime_SemacquireRWMutexR",       // RWMutex.RLock waiting for a writer
		"sync.runtime_SemacquireRWMutex":        // RWMutex.Lock waiting for readers
		return true
	}
	return false
}

// Waker returns the wake-up call that frame fn of a waking goroutine's
// stack is ("Mutex.Unlock", "RWMutex.RUnlock", "chan send", ...) and its
// rank (the outermost sync call wins), or "" and 0.
func Waker(fn string) (op string, rank int) {
	switch fn {
	case "sync.(*Mutex).Unlock", "sync.(*Mutex).unlockSlow",
		"internal/sync.(*Mutex).Unlock", "internal/sync.(*Mutex).unlockSlow",
		locksMutex + "Unlock", locksMutex + "unlockSlow":
		return "Mutex.Unlock", 1
	case "sync.(*RWMutex).Unlock", locksRWMutex + "Unlock", locksRWMutex + "unlockSlow":
		return "RWMutex.Unlock", 2
	case "sync.(*RWMutex).RUnlock", "sync.(*RWMutex).rUnlockSlow",
		locksRWMutex + "RUnlock", locksRWMutex + "runlockSlow", locksRLocker + "Unlock":
		return "RWMutex.RUnlock", 2
	case "sync.(*Cond).Signal":
		return "Cond.Signal", 2
	case "sync.(*Cond).Broadcast":
		return "Cond.Broadcast", 2
	case "sync.(*WaitGroup).Add", "sync.(*WaitGroup).Done":
		return "WaitGroup.Done", 2
	case "runtime.chansend1", "runtime.chansend", "runtime.selectnbsend":
		return "chan send", 1
	case "runtime.chanrecv1", "runtime.chanrecv2", "runtime.chanrecv", "runtime.selectnbrecv":
		return "chan receive", 1
	case "runtime.closechan":
		return "close", 1
	case "runtime.selectgo":
		return "select", 1
	}
	return "", 0
}

// Internal reports whether fn belongs to the runtime, the sync packages,
// an internal package of the standard library or lockdiag's package locks
// (whose lock types wrap sync's): frames that are never the program's
// call site. The test functions of package locks (TestXxx, ...) are not.
func Internal(fn string) bool {
	return strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "sync.") ||
		strings.HasPrefix(fn, "internal/") || strings.HasPrefix(fn, "sync/atomic.") ||
		inLocks(fn)
}

// inLocks reports whether fn is a function of package locks other than a
// test function.
func inLocks(fn string) bool {
	rest, ok := strings.CutPrefix(fn, locksPkg+".")
	if !ok {
		return false
	}
	for _, p := range []string{"Test", "Benchmark", "Fuzz", "Example"} {
		if strings.HasPrefix(rest, p) {
			return false
		}
	}
	return true
}

// Short drops the import path: "net/http.(*Client).Do" becomes
// "http.(*Client).Do".
func Short(fn string) string {
	// The path ends at the last '/' before the package name; a '/' can
	// also appear inside a generic type's brackets, which come later.
	end := len(fn)
	if i := strings.IndexByte(fn, '['); i >= 0 {
		end = i
	}
	if i := strings.LastIndexByte(fn[:end], '/'); i >= 0 {
		// A major version is not the package's name: keep the element
		// before it ("golang-lru/v2.(*Cache[...]).Get").
		if isMajor(fn[i+1 : i+1+max(strings.IndexByte(fn[i+1:end], '.'), 0)]) {
			if j := strings.LastIndexByte(fn[:i], '/'); j >= 0 {
				return fn[j+1:]
			}
		}
		return fn[i+1:]
	}
	return fn
}

// Bare drops the package as well: "main.(*Store).Get" becomes
// "(*Store).Get". Use it only next to the file name that says where.
func Bare(fn string) string {
	fn = Short(fn)
	// The package name ends at the first '.' (package names have none).
	if i := strings.IndexByte(fn, '.'); i >= 0 && i+1 < len(fn) {
		return fn[i+1:]
	}
	return fn
}

// Package returns the import path of fn's package: "net/http" for
// "net/http.(*Client).Do", "main" for "main.main".
func Package(fn string) string {
	end := len(fn)
	if i := strings.IndexByte(fn, '['); i >= 0 {
		end = i
	}
	slash := strings.LastIndexByte(fn[:end], '/')
	if i := strings.IndexByte(fn[slash+1:end], '.'); i >= 0 {
		return fn[:slash+1+i]
	}
	return fn[:end]
}

// RuntimeLock reports whether leaf, the innermost frame of a mutex
// profile sample, marks contention on one of the Go runtime's own locks:
// runtime.unlock, or runtime._LostContendedRuntimeLock where the runtime
// did not record the stack.
func RuntimeLock(leaf string) bool {
	return leaf == "runtime.unlock" || leaf == "runtime._LostContendedRuntimeLock"
}

// IsUnlock reports whether fn is the sync method that releases a
// sync.Mutex or sync.RWMutex (or the same method of package locks' types):
// the frame under which a wake-up stack's program frames begin.
func IsUnlock(fn string) bool {
	switch fn {
	case "sync.(*Mutex).Unlock", "sync.(*RWMutex).Unlock", "sync.(*RWMutex).RUnlock",
		locksMutex + "Unlock", locksRWMutex + "Unlock", locksRWMutex + "RUnlock", locksRLocker + "Unlock":
		return true
	}
	return false
}

// Std reports whether pkg (an import path, as [Package] returns) belongs
// to the standard library: its first path element has no dot. "main" and
// test packages of the standard library ("sync_test") count as not
// standard and standard, respectively, as the go command names them.
func Std(pkg string) bool {
	if pkg == "main" || pkg == "" {
		return false
	}
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}

// Module guesses the module path of a package path: the repository root
// on the usual code hosts (github.com/owner/repo, with a /vN major version
// suffix), the first two elements elsewhere (go.uber.org/zap,
// go.etcd.io/bbolt), "std" for the standard library and "main" for main.
// It is a guess for display: a module may be nested deeper.
func Module(pkg string) string {
	switch {
	case pkg == "main":
		return "main"
	case Std(pkg):
		return "std"
	}
	parts := strings.Split(pkg, "/")
	n := 2
	switch parts[0] {
	case "github.com", "gitlab.com", "bitbucket.org", "golang.org", "google.golang.org", "gopkg.in", "codeberg.org":
		n = 3
		if parts[0] == "gopkg.in" || parts[0] == "google.golang.org" {
			n = 2
		}
	}
	if n > len(parts) {
		n = len(parts)
	}
	if n < len(parts) && isMajor(parts[n]) {
		n++
	}
	return strings.Join(parts[:n], "/")
}

func isMajor(s string) bool {
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Closure returns the function that defines the closure fn and true
// ("main.handleOrder" for "main.handleOrder.func1", also for ".gowrapN"
// and ".deferwrapN"), or "" and false when fn is not a closure.
func Closure(fn string) (string, bool) {
	name := fn
	closure := false
	for {
		i := strings.LastIndexByte(name, '.')
		if i <= 0 {
			break
		}
		last := name[i+1:]
		num := last != "" && strings.Trim(last, "0123456789") == ""
		wrap := false
		for _, p := range []string{"func", "gowrap", "deferwrap"} {
			if rest, ok := strings.CutPrefix(last, p); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
				wrap = true
			}
		}
		if !num && !wrap {
			break
		}
		// Nested closures are main.f.func1.2: strip every level.
		name = name[:i]
		closure = closure || wrap
	}
	if !closure {
		return "", false
	}
	return name, true
}

// Cgo reports whether fn is a frame of a cgo call: the generated
// main._Cfunc_xxx (or pkg._Cfunc_xxx) stub or the runtime's cgocall.
func Cgo(fn string) bool {
	return fn == "runtime.cgocall" || strings.Contains(fn, "._Cfunc_") || strings.Contains(fn, "._C2func_")
}

// Own reports whether fn is a frame of lockdiag's own runtime: the
// monitor, its recorder, its HTTP handlers and the /proc and profile
// readers that run inside a host process. Goroutines with such frames are
// lockdiag's, not the program's. Test functions in those packages
// (TestXxx, BenchmarkXxx, ...) are not.
func Own(fn string) bool {
	rest, ok := strings.CutPrefix(fn, "github.com/lockdiag/lockdiag/")
	if !ok {
		return false
	}
	pkg := Package(fn)
	switch strings.TrimPrefix(pkg, "github.com/lockdiag/lockdiag/") {
	case "diag", "diag/auto", "flightrec", "httpdiag", "internal/procfs", "internal/coalesce",
		"internal/profdelta", "internal/rules", "internal/knobs":
	default:
		return false
	}
	name := rest[len(pkg)-len("github.com/lockdiag/lockdiag/")+1:]
	for _, p := range []string{"Test", "Benchmark", "Fuzz", "Example"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// Helper reports whether a frame of package pkg is a generic helper that
// a report should look through when it names the call that blocked:
// io.ReadFull says less than the net.(*conn).Read under it.
func Helper(pkg string) bool {
	switch pkg {
	case "io", "bufio", "fmt", "io/ioutil", "encoding/json", "encoding/binary":
		return true
	}
	return false
}
