package flightrec

import (
	"path"
	"strings"
)

// waitKind is how a goroutine waited.
type waitKind uint8

const (
	kindUnknown waitKind = iota
	kindMutex
	kindRLock
	kindWLock
	kindWaitGroup
	kindCond
	kindChanSend
	kindChanRecv
	kindSelect
	kindSleep
	kindNetwork
	kindSyscall
	kindSyncOther // reason "sync" with a stack we do not recognize
	kindGC
	kindRuntime // system goroutines: nothing of the program's on the stack
	kindOther
	numKinds
)

var kindNames = [numKinds]string{
	kindUnknown:   "unknown",
	kindMutex:     "Mutex.Lock",
	kindRLock:     "RWMutex.RLock",
	kindWLock:     "RWMutex.Lock",
	kindWaitGroup: "WaitGroup.Wait",
	kindCond:      "Cond.Wait",
	kindChanSend:  "chan send",
	kindChanRecv:  "chan receive",
	kindSelect:    "select",
	kindSleep:     "sleep",
	kindNetwork:   "network",
	kindSyscall:   "syscall",
	kindSyncOther: "sync (other)",
	kindGC:        "GC",
	kindRuntime:   "runtime",
	kindOther:     "other",
}

func (k waitKind) String() string { return kindNames[k] }

// isLock reports whether k is a wait on sync.Mutex or sync.RWMutex.
func (k waitKind) isLock() bool { return k == kindMutex || k == kindRLock || k == kindWLock }

// hasSite reports whether waits of kind k are aggregated by call site.
func (k waitKind) hasSite() bool { return k >= kindMutex && k <= kindSelect }

// kindFromReason maps the runtime's block reason. "sync" and "" (status
// events for goroutines blocked before the window) need the stack.
func kindFromReason(reason string) (waitKind, bool) {
	switch reason {
	case "sync", "":
		return kindUnknown, false
	case "sync.(*Cond).Wait":
		return kindCond, true
	case "chan send":
		return kindChanSend, true
	case "chan receive":
		return kindChanRecv, true
	case "select":
		return kindSelect, true
	case "sleep":
		return kindSleep, true
	case "network":
		return kindNetwork, true
	case "system goroutine wait":
		return kindRuntime, true
	case "GC mark assist wait for work", "GC background sweeper wait",
		"wait until GC ends", "GC weak to strong wait":
		return kindGC, true
	}
	if strings.HasPrefix(reason, "GC ") {
		return kindGC, true
	}
	return kindOther, true
}

// maxFrames bounds the frames kept per stack.
const maxFrames = 32

// stackInfo is the per-stack work, done once per distinct stack.
type stackInfo struct {
	frames []Frame // leaf first, at most maxFrames

	// As a waiter's stack: the primitive found in the frames and the index
	// of the call site (first frame outside runtime, sync, internal/...),
	// -1 if there is none.
	waitKind waitKind
	site     int

	// As a waker's stack: the wake-up call and the first frame outside
	// runtime, sync, internal/...; holder is its interned id.
	op     string
	holder int

	http bool // has net/http frames

	// mutexPark: the goroutine parks in sync.Mutex.Lock (also the
	// writer-vs-writer part of RWMutex.Lock), where a woken waiter can
	// lose the race and park again in the same Lock call.
	mutexPark bool

	// memo of the site aggregate for the kind it was last used with
	siteKind waitKind
	siteAgg  *siteAgg
}

// internalFunc reports whether fn belongs to the runtime, sync or an
// internal package: frames that are not the program's call site.
func internalFunc(fn string) bool {
	return strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "sync.") ||
		strings.HasPrefix(fn, "internal/") || strings.HasPrefix(fn, "sync/atomic.")
}

// waiterPrimitive maps a frame to the blocking primitive it is.
func waiterPrimitive(fn string) (waitKind, bool) {
	switch fn {
	case "sync.(*Mutex).Lock", "internal/sync.(*Mutex).Lock", "internal/sync.(*Mutex).lockSlow":
		return kindMutex, true
	case "sync.(*RWMutex).RLock":
		return kindRLock, true
	case "sync.(*RWMutex).Lock":
		return kindWLock, true
	case "sync.(*WaitGroup).Wait":
		return kindWaitGroup, true
	case "sync.(*Cond).Wait":
		return kindCond, true
	case "runtime.chansend1", "runtime.chansend":
		return kindChanSend, true
	case "runtime.chanrecv1", "runtime.chanrecv2", "runtime.chanrecv":
		return kindChanRecv, true
	case "runtime.selectgo":
		return kindSelect, true
	case "runtime.block":
		return kindOther, true
	case "time.Sleep":
		return kindSleep, true
	case "runtime.netpollblock", "internal/poll.runtime_pollWait":
		return kindNetwork, true
	}
	return kindUnknown, false
}

// rank orders primitives: the outermost sync primitive wins (RWMutex.Lock
// calls Mutex.Lock), but a sync primitive wins over the runtime frames it
// is built on.
func (k waitKind) rank() int {
	switch k {
	case kindMutex:
		return 1
	case kindRLock, kindWLock, kindWaitGroup, kindCond:
		return 2
	}
	return 0
}

// wakerOp maps a frame of a waker's stack to the wake-up call.
func wakerOp(fn string) (string, int) {
	switch fn {
	case "sync.(*Mutex).Unlock", "internal/sync.(*Mutex).Unlock", "internal/sync.(*Mutex).unlockSlow":
		return "Mutex.Unlock", 1
	case "sync.(*RWMutex).Unlock":
		return "RWMutex.Unlock", 2
	case "sync.(*RWMutex).RUnlock":
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

// classifyFrames fills the waiter and waker views of a stack.
func classifyFrames(si *stackInfo) {
	si.site = -1
	si.holder = -1
	wrank, orank := -1, -1
	for i, f := range si.frames {
		if strings.HasPrefix(f.Func, "net/http.") {
			si.http = true
		}
		if f.Func == "sync.(*Mutex).Lock" || f.Func == "internal/sync.(*Mutex).Lock" {
			si.mutexPark = true
		}
		if si.site >= 0 {
			continue
		}
		if !internalFunc(f.Func) && f.Func != "time.Sleep" {
			si.site = i
			continue
		}
		if k, ok := waiterPrimitive(f.Func); ok && k.rank() >= wrank {
			si.waitKind, wrank = k, k.rank()
		}
		if op, r := wakerOp(f.Func); op != "" && r >= orank {
			si.op, orank = op, r
		}
	}
	if si.waitKind == kindUnknown && len(si.frames) > 0 {
		if si.site < 0 {
			si.waitKind = kindRuntime
		} else if strings.HasPrefix(si.frames[si.site].Func, "net.") {
			si.waitKind = kindNetwork
		}
	}
	if si.op == "" && len(si.frames) > 0 && si.site != 0 {
		si.op = shortFunc(si.frames[0].Func)
	}
}

// frameAt returns the site frame of si, or a placeholder.
func (si *stackInfo) siteFrame() Frame {
	if si == nil || si.site < 0 {
		return Frame{Func: "?"}
	}
	return si.frames[si.site]
}

// contains reports whether fn is on the stack.
func (si *stackInfo) contains(fn string) bool {
	if si == nil {
		return false
	}
	for _, f := range si.frames {
		if f.Func == fn {
			return true
		}
	}
	return false
}

// shortFunc drops the import path: "net/http.(*Client).Do" becomes
// "http.(*Client).Do".
func shortFunc(fn string) string {
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// bareFunc drops the package as well: "main.(*Store).Get" becomes
// "(*Store).Get". The file name printed next to it says where it is.
func bareFunc(fn string) string {
	fn = shortFunc(fn)
	// The package name ends at the first '.' not inside parentheses;
	// package names have no dots, so the first '.' it is.
	if i := strings.IndexByte(fn, '.'); i >= 0 && i+1 < len(fn) {
		return fn[i+1:]
	}
	return fn
}

// siteLabel is "file.go:88 ((*Store).Get)".
func siteLabel(f Frame) string {
	if f.Func == "?" || f.Func == "" {
		return "an unknown site (blocked before the window, no stack)"
	}
	return path.Base(f.File) + ":" + itoa(f.Line) + " (" + bareFunc(f.Func) + ")"
}

// funcAt is "(*Store).Save at store.go:140".
func funcAt(f Frame) string {
	if f.Func == "" || f.Func == "?" {
		return "an unknown function"
	}
	if f.File == "" {
		return bareFunc(f.Func)
	}
	return bareFunc(f.Func) + " at " + path.Base(f.File) + ":" + itoa(f.Line)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// short returns up to n frames of si, starting at the call into the
// runtime or sync (Mutex.Lock, chanrecv1, ...) just below the program's
// frame: gopark and friends say nothing to the reader.
func (si *stackInfo) short(n int) []Frame {
	if si == nil {
		return nil
	}
	start := si.site - 1
	if start < 0 {
		start = 0
	}
	return shortStack(si.frames[start:], n)
}

// shortStack copies up to n frames.
func shortStack(frames []Frame, n int) []Frame {
	if len(frames) > n {
		frames = frames[:n]
	}
	out := make([]Frame, len(frames))
	copy(out, frames)
	return out
}

// userFrame is the first frame outside the runtime, sync and time.Sleep.
func userFrame(fs []Frame) (Frame, bool) {
	for _, f := range fs {
		if !internalFunc(f.Func) && f.Func != "time.Sleep" {
			return f, true
		}
	}
	return Frame{}, false
}
