package lockreport

import (
	"encoding/binary"
	"strings"

	"golang.org/x/exp/trace"

	"github.com/lockdiag/lockdiag/internal/stacks"
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

// kindOfPrim maps the shared vocabulary's primitives to wait kinds.
var kindOfPrim = [...]waitKind{
	stacks.PrimNone:      kindUnknown,
	stacks.PrimMutex:     kindMutex,
	stacks.PrimRLock:     kindRLock,
	stacks.PrimWLock:     kindWLock,
	stacks.PrimWaitGroup: kindWaitGroup,
	stacks.PrimCond:      kindCond,
	stacks.PrimChanSend:  kindChanSend,
	stacks.PrimChanRecv:  kindChanRecv,
	stacks.PrimSelect:    kindSelect,
	stacks.PrimSleep:     kindSleep,
	stacks.PrimNetwork:   kindNetwork,
	stacks.PrimBlock:     kindOther,
}

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
	}
	if strings.HasPrefix(reason, "GC ") || reason == "wait until GC ends" {
		return kindGC, true
	}
	return kindOther, true
}

// kindFromOp infers what a goroutine blocked before the window waited on
// from the call that woke it.
func kindFromOp(op string) waitKind {
	switch op {
	case "Mutex.Unlock":
		return kindMutex
	case "RWMutex.Unlock":
		return kindRLock
	case "RWMutex.RUnlock":
		return kindWLock
	case "Cond.Signal", "Cond.Broadcast":
		return kindCond
	case "WaitGroup.Done":
		return kindWaitGroup
	case "chan send", "close":
		return kindChanRecv
	case "chan receive":
		return kindChanSend
	}
	return kindOther
}

// maxFrames bounds the frames kept per stack: enough to reach the
// program's own code under a library and a web framework.
const maxFrames = 64

// stackInfo is the per-stack work, done once per distinct stack.
type stackInfo struct {
	frames []Frame // leaf first, at most maxFrames
	id     uint32  // the order in which it was interned

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
	own  bool // has frames of lockdiag's own runtime (stacks.Own)
	cgo  bool // in a cgo call
	// handoff: a preemption inside an Unlock (the runtime handing the lock
	// to a waiter); it says nothing of what the critical section did.
	handoff bool

	// mutexPark: the goroutine parks in sync.Mutex.Lock (also the
	// writer-vs-writer part of RWMutex.Lock), where a woken waiter can
	// lose the race and park again in the same Lock call.
	mutexPark bool

	// memo of the site aggregate for the kind it was last used with
	siteKind waitKind
	siteAgg  *siteAgg
	// this stack's lock waits at siteAgg: the site's entry points
	// (wrappers walked past) are told apart by them
	lw stackWaits
}

// stackWaits counts the lock waits of one waiter stack.
type stackWaits struct {
	waits      int
	total, max int64
}

// callSite reports whether fn can be a program's call site: it is
// neither the runtime's, sync's nor time.Sleep.
func callSite(fn string) bool { return !stacks.Internal(fn) && fn != "time.Sleep" }

// classifyFrames fills the waiter and waker views of a stack.
func classifyFrames(si *stackInfo) {
	si.site = -1
	si.holder = -1
	wrank, orank := -1, -1
	for i, f := range si.frames {
		if strings.HasPrefix(f.Func, "net/http.") {
			si.http = true
		}
		if stacks.MutexPark(f.Func) {
			si.mutexPark = true
		}
		if stacks.Own(f.Func) {
			si.own = true
		}
		if stacks.Cgo(f.Func) {
			si.cgo = true
		}
		if si.site < 0 && stacks.IsUnlock(f.Func) {
			si.handoff = true
		}
		if si.site >= 0 {
			continue
		}
		if callSite(f.Func) {
			si.site = i
			continue
		}
		if p := stacks.Waiter(f.Func); p != stacks.PrimNone && p.Rank() >= wrank {
			si.waitKind, wrank = kindOfPrim[p], p.Rank()
		}
		if op, r := stacks.Waker(f.Func); op != "" && r >= orank {
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
		si.op = stacks.Short(si.frames[0].Func)
	}
}

// siteFrame returns the site frame of si, or a placeholder.
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

// short returns up to n frames of si, starting at the call into the
// runtime or sync (Mutex.Lock, chanrecv1, ...) just below the program's
// frame: gopark and friends say nothing to the reader.
func (si *stackInfo) short(n int) []Frame {
	if si == nil {
		return nil
	}
	return shortStack(si.frames[max(si.site-1, 0):], n)
}

// shortStack copies up to n frames.
func shortStack(frames []Frame, n int) []Frame {
	return append([]Frame(nil), frames[:min(len(frames), n)]...)
}

// holderKey identifies a critical section (or waker) by its wake-up call
// and the first frame outside the runtime and sync.
type holderKey struct {
	op   string
	fn   string
	file string
	line int
	// the caller of fn: one Unlock wrapper ((*mutexWrap).Unlock) serves
	// several critical sections, told apart by it
	cfn   string
	cline int
}

// stackTable interns the trace's stacks: each distinct stack is classified
// once. Stack handles are only valid within a trace generation, so the
// table maps handles to interned stacks per generation and interns by
// content across generations.
type stackTable struct {
	byHandle map[trace.Stack]*stackInfo // this generation's stacks
	cache    [2]stackCacheEntry
	byPCs    map[string]*stackInfo // every stack, by content
	keyBuf   []byte
	frameBuf []Frame

	holderIDs map[holderKey]int
	holders   []holderKey

	// wraps learns the lock and unlock wrappers from the stacks.
	wraps wrapKnowledge
}

type stackCacheEntry struct {
	s  trace.Stack
	si *stackInfo
}

func newStackTable() stackTable {
	return stackTable{
		byHandle:  make(map[trace.Stack]*stackInfo),
		byPCs:     make(map[string]*stackInfo),
		holderIDs: make(map[holderKey]int),
		wraps:     newWrapKnowledge(),
	}
}

// endGeneration forgets the generation's stack handles.
func (t *stackTable) endGeneration() {
	clear(t.byHandle)
	t.cache = [len(t.cache)]stackCacheEntry{}
}

// get returns the per-stack work for s, doing it on first sight.
func (t *stackTable) get(s trace.Stack) *stackInfo {
	if s == trace.NoStack {
		return nil
	}
	// Most stacks come back soon (the same Lock and Unlock calls): two
	// entries in front of the map save most of its lookups.
	if c := &t.cache; c[0].s == s && c[0].si != nil {
		return c[0].si
	} else if c[1].s == s && c[1].si != nil {
		c[0], c[1] = c[1], c[0]
		return c[0].si
	}
	if si, ok := t.byHandle[s]; ok {
		t.cache[1], t.cache[0] = t.cache[0], stackCacheEntry{s, si}
		return si
	}
	frames := t.frameBuf[:0]
	key := t.keyBuf[:0]
	for f := range s.Frames() {
		key = binary.LittleEndian.AppendUint64(key, f.PC)
		key = binary.LittleEndian.AppendUint32(key, uint32(f.Line))
		if len(frames) < maxFrames {
			frames = append(frames, Frame{Func: f.Func, File: f.File, Line: int(f.Line)})
		}
	}
	t.keyBuf, t.frameBuf = key, frames
	si, ok := t.byPCs[string(key)]
	if !ok {
		si = &stackInfo{frames: append([]Frame(nil), frames...), id: uint32(len(t.byPCs))}
		classifyFrames(si)
		t.wraps.learn(si)
		if si.site >= 0 || si.op != "" {
			si.holder = t.holderID(si)
		}
		t.byPCs[string(key)] = si
	}
	t.byHandle[s] = si
	t.cache[1], t.cache[0] = t.cache[0], stackCacheEntry{s, si}
	return si
}

// holderID interns the critical section that a waker's stack ends.
func (t *stackTable) holderID(si *stackInfo) int {
	f := si.siteFrame()
	hk := holderKey{op: si.op, fn: f.Func, file: f.File, line: f.Line}
	if si.site >= 0 && si.site+1 < len(si.frames) {
		c := si.frames[si.site+1]
		hk.cfn, hk.cline = c.Func, c.Line
	}
	id, ok := t.holderIDs[hk]
	if !ok {
		id = len(t.holders)
		t.holders = append(t.holders, hk)
		t.holderIDs[hk] = id
	}
	return id
}

// userFrame is the first frame outside the runtime, sync and time.Sleep.
func userFrame(fs []Frame) (Frame, bool) {
	for _, f := range fs {
		if callSite(f.Func) {
			return f, true
		}
	}
	return Frame{}, false
}
