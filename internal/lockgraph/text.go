package lockgraph

import (
	"fmt"
	"path"
	"strings"

	"github.com/lockdiag/lockdiag/internal/gdump"
)

// recvType returns "pkg.(*T)" for a method "pkg.(*T).m" (generic:
// "pkg.(*T[...])"), and false for functions, closures inside methods and
// method values ("-fm"), whose first argument is not the receiver.
func recvType(fn string) (string, bool) {
	i := strings.Index(fn, ".(*")
	if i < 0 {
		return "", false
	}
	j := strings.Index(fn[i:], ").")
	if j < 0 {
		return "", false
	}
	method := fn[i+j+2:]
	if method == "" || strings.ContainsAny(method, ".-") {
		return "", false
	}
	return fn[:i+j+1], true
}

// typeName turns "github.com/a/store.(*Cache)" into "*store.Cache".
func typeName(t string) string {
	if t == "" {
		return ""
	}
	t = shortFunc(t)
	if i := strings.Index(t, ".(*"); i >= 0 && strings.HasSuffix(t, ")") {
		return "*" + t[:i] + "." + t[i+3:len(t)-1]
	}
	return t
}

// shortFunc trims the import path: "github.com/a/store.(*Cache).Get" ->
// "store.(*Cache).Get".
func shortFunc(fn string) string {
	// The path ends at the last slash before the first dot after it.
	slash := strings.LastIndexByte(fn, '/')
	if slash < 0 {
		return fn
	}
	return fn[slash+1:]
}

// frameWhere describes a frame: "store.(*Cache).Get at cache.go:42".
func frameWhere(g *gdump.Goroutine, i int) string {
	if i < 0 || i >= len(g.Frames) {
		return "(no call site)"
	}
	return funcAt(&g.Frames[i])
}

func funcAt(f *gdump.Frame) string {
	if f.File == "" {
		return shortFunc(f.Func)
	}
	return fmt.Sprintf("%s at %s:%d", shortFunc(f.Func), path.Base(f.File), f.Line)
}

// objDesc: "*store.Cache 0xc000123400" or "object at 0xc000123400".
func objDesc(addr uint64, t string) string {
	if t != "" {
		return fmt.Sprintf("%s %#x", typeName(t), addr)
	}
	return fmt.Sprintf("object at %#x", addr)
}

// String names the lock: "the Mutex at 0xc000010058 (in *bank.Account
// 0xc000010040, +0x18)", "the RWMutex in *store.Cache 0xc000100000", or
// "the Mutex locked at cache.go:42 (store.(*Cache).Get)".
func (l *Lock) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the %s", l.Kind)
	switch l.Identity {
	case ByAddress:
		fmt.Fprintf(&b, " at %#x", l.Addr)
		if l.Object != 0 && l.Object <= l.Addr {
			in := fmt.Sprintf("object %#x", l.Object)
			if l.Type != "" {
				in = fmt.Sprintf("%s %#x", l.Type, l.Object)
			}
			fmt.Fprintf(&b, " (in %s, +%#x)", in, l.Addr-l.Object)
		}
	case ByObject:
		if l.Type != "" {
			fmt.Fprintf(&b, " in %s %#x", l.Type, l.Object)
		} else {
			fmt.Fprintf(&b, " in the object at %#x", l.Object)
		}
	default:
		if l.Site.Func != "" {
			fmt.Fprintf(&b, " locked at %s:%d (%s)", path.Base(l.Site.File), l.Site.Line, shortFunc(l.Site.Func))
		} else {
			b.WriteString(" of unknown site")
		}
	}
	return b.String()
}

// goroutineDesc: "goroutine 8 [sleep, 3 minutes] in store.(*Cache).migrate at cache.go:80"
// (the first frame outside the runtime), or "2 goroutines in ..." for a
// debug=1 stack.
func goroutineDesc(g *gdump.Goroutine, frame int) string {
	if frame < 0 {
		for i := range g.Frames {
			if !isRuntimeFrame(g.Frames[i].Func) {
				frame = i
				break
			}
		}
	}
	where := ""
	if frame >= 0 && frame < len(g.Frames) {
		where = " in " + funcAt(&g.Frames[frame])
	}
	if g.State == "" {
		return g.Header() + where
	}
	h := strings.TrimPrefix(g.Header(), "goroutine ")
	return "goroutine " + h + where
}

// String describes the holder in one line: who, its state, where, how sure
// and why.
func (h *Holder) String() string {
	frame := h.Frame
	if frame >= 0 && frame < len(h.G.Frames) && isRuntimeFrame(h.G.Frames[frame].Func) {
		frame = -1 // say where the program is, not sync.(*Once).doSlow
	}
	return fmt.Sprintf("%s (%s confidence): %s", goroutineDesc(h.G, frame), h.Confidence, h.Reason)
}

func gName(g *gdump.Goroutine) string {
	if g.State == "" {
		return fmt.Sprintf("a stack of %d goroutines", max(g.Count, 1))
	}
	return fmt.Sprintf("goroutine %d", g.ID)
}

func waiterOf(g *gdump.Goroutine, l *Lock) *Waiter {
	for i := range l.Waiters {
		if l.Waiters[i].G == g {
			return &l.Waiters[i]
		}
	}
	return nil
}

// waitVerb: "waits for", "waits to read-lock", "waits to write-lock".
func waitVerb(w *Waiter) string {
	if w != nil {
		switch w.Kind {
		case WaitRLock:
			return "waits to read-lock"
		case WaitWriteBehindWriter, WaitWriteBehindReaders:
			return "waits to write-lock"
		}
	}
	return "waits for"
}

// String tells the cycle in words: "goroutine 7 in main.transfer at
// bank.go:12 holds the Mutex at 0x...38 (...) and waits for the Mutex at
// 0x...58 held by goroutine 8; goroutine 8 ... held by goroutine 7.".
func (d *Deadlock) String() string {
	var b strings.Builder
	if len(d.Steps) == 1 {
		s := d.Steps[0]
		w := waiterOf(s.G, s.Waits)
		caller := "(its caller)"
		if s.Holder != nil {
			caller = frameWhere(s.G, s.Holder.Frame)
		}
		how := "is a method of the same type (the dump lost its receiver)"
		if s.Holder != nil && s.Holder.Confidence == High {
			how = "has the same object"
		}
		site := "(no call site)"
		if w != nil {
			site = frameWhere(s.G, w.Site)
		}
		holds := "it likely holds the lock already"
		if s.Holder != nil && s.Holder.Mode == HoldsRead {
			holds = "it likely holds a read lock on it already (a read lock upgraded to a write lock waits for itself)"
		}
		fmt.Fprintf(&b, "self-deadlock (%s confidence): %s %s %s in %s; its caller %s %s, so %s.",
			d.Confidence, gName(s.G), waitVerb(w), s.Waits, site, caller, how, holds)
		return b.String()
	}
	fmt.Fprintf(&b, "deadlock of %d goroutines (%s confidence): ", len(d.Steps), d.Confidence)
	for i, s := range d.Steps {
		next := d.Steps[(i+1)%len(d.Steps)]
		if i > 0 {
			b.WriteString("; ")
		}
		holds := "holds"
		if s.Holder != nil && s.Holder.Mode == HoldsRead {
			holds = "holds a read lock on"
		} else if s.Holder != nil && s.Holder.Mode == HoldsWriterSlot {
			holds = "holds the writer slot of"
		}
		w := waiterOf(s.G, s.Waits)
		site := frameWhere(s.G, -1)
		if w != nil {
			site = frameWhere(s.G, w.Site)
		}
		fmt.Fprintf(&b, "%s in %s %s %s and %s %s held by %s",
			gName(s.G), site, holds, s.Holds, waitVerb(w), s.Waits, gName(next.G))
	}
	b.WriteString(".")
	if leaked(d) {
		b.WriteString(" The runtime's leak detector marked every one of them leaked: nothing reachable can unlock them.")
	}
	return b.String()
}

func leaked(d *Deadlock) bool {
	for _, s := range d.Steps {
		if !s.G.Leaked {
			return false
		}
	}
	return len(d.Steps) > 0
}

// String tells the chain: "2 goroutines wait for the Mutex at ... held by
// goroutine 22 in ..., which waits for ... held by goroutine 21 in ...,
// which is in chan receive (the root).".
func (c *Chain) String() string {
	var b strings.Builder
	n := 0
	for _, g := range c.Waiters {
		n += max(g.Count, 1)
	}
	fmt.Fprintf(&b, "chain (%s confidence): %d goroutine(s) wait for %s", c.Confidence, n, c.Lock)
	for i, s := range c.Steps {
		if i == 0 {
			fmt.Fprintf(&b, " held by %s", goroutineDesc(s.G, s.Holder.Frame))
		} else {
			fmt.Fprintf(&b, ", which waits for %s held by %s", s.Holds, goroutineDesc(s.G, s.Holder.Frame))
		}
	}
	last := c.Steps[len(c.Steps)-1]
	if last.Waits == nil {
		state := last.G.State
		if state == "" {
			state = "not waiting for a lock"
		}
		fmt.Fprintf(&b, ", which is the root (%s)", state)
	} else {
		fmt.Fprintf(&b, ", which waits for %s, whose holder is unknown", last.Waits)
	}
	b.WriteString(".")
	return b.String()
}
