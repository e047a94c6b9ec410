package lockreport

import (
	"strings"

	"github.com/lockdiag/lockdiag/internal/stacks"
)

// Lock wrappers are functions whose work is to call Lock or Unlock: a
// logging library's (*mutexWrap).Lock, a program's (*store).lock, a
// withLock(f) helper with a deferred unlock, a generic Guarded[T].With.
// Named as the lock's site or as the critical section they say nothing a
// reader can act on, so the report walks past them. They are learned from
// the stacks themselves, never from a list of names:
//
//   - A lock helper is a function F that calls the sync lock method and
//     never the unlock method itself, while the function that called it
//     also calls (through a helper of its own) an unlock; or whose
//     receiver type has an unlock-only method (the wrapper type's Unlock).
//     Unlock helpers mirror it.
//   - A with-lock helper is a function that locks and unlocks while the
//     work inside its critical section runs in a closure that an outer
//     frame defined (f in withLock(f)): the lock's site is the function
//     that defined the closure and the critical section is the closure.
//     This needs a stack taken inside the critical section (a block,
//     syscall or preemption of the holder).
type wrapKnowledge struct {
	lock1, unlock1 map[string]bool // direct callers of the sync lock / unlock methods
	lock2, unlock2 map[string]bool // their callers

	// with maps a with-lock helper to the function whose closure ran
	// inside its critical section, callback to that closure, and
	// withDepth to how many closures deep that function was found (see
	// learnInside).
	with, callback map[string]string
	withDepth      map[string]int

	// computed by finish
	lockRecv, unlockRecv map[string]bool
}

func newWrapKnowledge() wrapKnowledge {
	return wrapKnowledge{
		lock1: map[string]bool{}, unlock1: map[string]bool{},
		lock2: map[string]bool{}, unlock2: map[string]bool{},
		with: map[string]string{}, callback: map[string]string{},
		withDepth: map[string]int{},
	}
}

// learn records the lock and unlock calls of a new stack.
func (w *wrapKnowledge) learn(si *stackInfo) {
	i := si.site
	if i < 1 {
		return
	}
	below := si.frames[i-1].Func
	switch {
	case stacks.LockMethod(below) != stacks.PrimNone:
		w.lock1[si.frames[i].Func] = true
		if i+1 < len(si.frames) {
			w.lock2[si.frames[i+1].Func] = true
		}
	case stacks.IsUnlock(below):
		w.unlock1[si.frames[i].Func] = true
		if i+1 < len(si.frames) {
			w.unlock2[si.frames[i+1].Func] = true
		}
	}
}

// finish derives the wrapper types once every stack has been learned.
func (w *wrapKnowledge) finish() {
	w.lockRecv, w.unlockRecv = map[string]bool{}, map[string]bool{}
	for f := range w.lock1 {
		if !w.unlock1[f] {
			if r := receiver(f); r != "" {
				w.lockRecv[r] = true
			}
		}
	}
	for f := range w.unlock1 {
		if !w.lock1[f] {
			if r := receiver(f); r != "" {
				w.unlockRecv[r] = true
			}
		}
	}
}

// receiver returns the receiver type of method fn, "pkg.(*T)", or "".
func receiver(fn string) string {
	if _, ok := stacks.Closure(fn); ok {
		return ""
	}
	pkg := stacks.Package(fn)
	if len(fn) <= len(pkg)+1 {
		return ""
	}
	rest := fn[len(pkg)+1:] // "(*T).M", "T.M", "F", "F[...]"
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return ""
	}
	recv := rest[:i]
	if strings.Count(recv, "[") != strings.Count(recv, "]") {
		return "" // the dots of "F[...]"
	}
	return pkg + "." + recv
}

// lockHelper reports whether f, called by caller, is a lock helper.
func (w *wrapKnowledge) lockHelper(f, caller string) bool {
	if !w.lock1[f] || w.unlock1[f] {
		return false
	}
	return w.unlock2[caller] || w.unlockRecv[receiver(f)]
}

// unlockHelper reports whether f, called by caller, is an unlock helper.
func (w *wrapKnowledge) unlockHelper(f, caller string) bool {
	if !w.unlock1[f] || w.lock1[f] {
		return false
	}
	return w.lock2[caller] || w.lockRecv[receiver(f)]
}

// lockEntry returns the index in waiter stack si of the lock's site: the
// first frame that is not a wrapper. It is si.site when there is none.
func (w *wrapKnowledge) lockEntry(si *stackInfo) int {
	i := si.site
	if i < 0 {
		return i
	}
	fs := si.frames
	if i+1 < len(fs) && w.lockHelper(fs[i].Func, fs[i+1].Func) {
		i++
	}
	return w.pastWith(fs, i)
}

// unlockOwner returns the index in wake-up stack si of the function that
// released the lock for real: past an unlock helper.
func (w *wrapKnowledge) unlockOwner(si *stackInfo) int {
	i := si.site
	if i < 0 {
		return i
	}
	fs := si.frames
	if i+1 < len(fs) && w.unlockHelper(fs[i].Func, fs[i+1].Func) {
		i++
	}
	return i
}

// pastWith walks from a with-lock helper at fs[i] out to the function
// whose closure ran inside it.
func (w *wrapKnowledge) pastWith(fs []Frame, i int) int {
	p, ok := w.with[fs[i].Func]
	if !ok {
		return i
	}
	for j := i + 1; j < len(fs); j++ {
		if fs[j].Func == p {
			return j
		}
	}
	return i
}

// learnInside looks at a stack taken inside a critical section whose
// owner (the function that locked and unlocked) is at index o: when the
// frames right under it are closures defined by outer frames, the owner
// is a with-lock helper.
//
// Helpers nest (a generic Guarded[T].With that passes withLock a closure
// calling the program's own), and a stack taken early in the critical
// section shows only the outer closures: so of the stacks seen, the one
// with the most closures under the owner wins, and among those the
// parent and closure first in name order, so that the answer does not
// depend on the order the stacks are looked at (they come from maps).
func (w *wrapKnowledge) learnInside(fs []Frame, o int) {
	if o <= 0 || o >= len(fs) {
		return
	}
	var parent, cb string
	depth := 0
	for j := o - 1; j >= 0; j-- {
		p, ok := stacks.Closure(fs[j].Func)
		if !ok || !outer(fs, o, p) {
			break
		}
		parent, cb = p, fs[j].Func
		depth++
	}
	if parent == "" {
		return
	}
	h := fs[o].Func
	if old, ok := w.with[h]; ok && (depth < w.withDepth[h] || depth == w.withDepth[h] && parent+" "+cb >= old+" "+w.callback[h]) {
		return
	}
	w.with[h], w.callback[h], w.withDepth[h] = parent, cb, depth
}

// outer reports whether fn is a frame of fs outside index o.
func outer(fs []Frame, o int, fn string) bool {
	for _, f := range fs[o+1:] {
		if f.Func == fn {
			return true
		}
	}
	return false
}

// ownerIndex finds the function that both released the lock (in wake-up
// stack us) and is on stack bs, at the same place in the program: the
// first frame of us from its first frame outside sync outward whose
// function is on bs with the same callers (functions and lines) above it.
// That function locked and unlocked; bs ran inside its call. It returns
// the indexes in us and bs, or -1, -1.
func ownerIndex(us, bs *stackInfo) (int, int) {
	if us == nil || bs == nil || us.site < 0 {
		return -1, -1
	}
	for k := us.site; k < len(us.frames) && k <= us.site+4; k++ {
		fn := us.frames[k].Func
		for j := range bs.frames {
			if bs.frames[j].Func != fn {
				continue
			}
			if sameCallers(us.frames[k+1:], bs.frames[j+1:]) {
				return k, j
			}
		}
	}
	return -1, -1
}

// sameCallers reports whether two stacks' outer frames agree as far as
// both go (stacks are cut at maxFrames).
func sameCallers(a, b []Frame) bool {
	n := min(len(a), len(b))
	if len(a) != len(b) && n < 2 {
		// One stack ends here and the other goes on: only a cut stack
		// may do that, and it keeps at least a few frames.
		return false
	}
	for i := range n {
		if a[i].Func != b[i].Func || a[i].Line != b[i].Line {
			return false
		}
	}
	return true
}
