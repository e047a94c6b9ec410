package lockgraph

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/lockdiag/lockdiag/internal/gdump"
)

// holders fills in the likely holders of one lock and which of them each
// waiter waits for.
func (a *analysis) holders(s *lockState, detail bool) {
	l := s.l
	waiterOf := make(map[*gdump.Goroutine]*wait, len(s.waits))
	siteTypes := make(map[string]bool)
	siteFuncs := make(map[string]bool)
	for _, w := range s.waits {
		waiterOf[w.g] = w
		if w.siteType != "" {
			siteTypes[w.siteType] = true
		}
		if w.site >= 0 {
			siteFuncs[w.g.Frames[w.site].Func] = true
		}
	}

	var others, selfs []*Holder // non-waiters; waiters that may hold it already
	if detail {
		others, selfs = a.refHolders(s, waiterOf, siteTypes)
	}
	hints := a.hinted(siteFuncs)
	if !hasConfidence(others, High) {
		if l.Kind == Once {
			others = append(others, a.onceHolders(waiterOf, siteFuncs, detail)...)
		}
		others = append(others, a.typeHolders(s, waiterOf, siteTypes, detail)...)
		others = append(others, a.hintHolders(s, waiterOf, hints, detail)...)
	}
	others = bestPerGoroutine(others)
	others = preferOwners(others)
	others = topTier(others)
	for _, h := range others {
		if h.why != nil {
			h.Reason = h.why()
		}
		if h.demoted {
			h.Reason += "; other goroutines have it as the receiver of a method of its type, where locks are taken"
		}
	}
	for _, h := range others {
		if hint, ok := inHinted(h.G, hints); ok && h.Evidence != ByHint {
			h.hinted = true
			h.Reason += fmt.Sprintf("; it is also in %s, which %s saw holding this lock", shortFunc(hint.Holder), hintSource(hint))
		}
	}

	var pending []*Holder
	for _, w := range s.waits {
		if w.kind == WaitWriteBehindReaders {
			pending = append(pending, &Holder{
				G: w.g, Mode: HoldsWriterSlot, Evidence: ByPendingWriter, Confidence: High, Frame: w.site,
				Reason: fmt.Sprintf("is waiting to write-lock it (RWMutex.Lock in %s): it holds the writer slot, and readers that came after it queue behind it", frameWhere(w.g, w.site)),
			})
		}
	}
	if !detail {
		for _, p := range pending {
			p.Confidence = Low
			p.Reason += " (debug=1: maybe another instance of the lock)"
		}
	}

	mode := Holds
	if l.Kind == RWMutex {
		mode = HoldsWrite
		if len(pending) > 0 {
			mode = HoldsRead
		}
	}
	for _, h := range others {
		h.Mode = mode
	}
	selfs = bestPerGoroutine(selfs)
	var keptSelf []*Holder
	switch {
	case mode == HoldsRead:
		// Readers inside: any waiter that already read-holds it counts,
		// the pending writer too (a read lock "upgraded" to a write lock
		// waits for itself).
		for _, h := range selfs {
			if k := waiterOf[h.G].kind; k == WaitRLock || k == WaitWriteBehindReaders {
				h.Mode = HoldsRead
				keptSelf = append(keptSelf, h)
			}
		}
	case len(others) == 0 && len(pending) == 0 && len(selfs) == 1:
		// Nobody else can hold it; the one waiter whose caller is on the
		// same object likely does.
		h := selfs[0]
		h.Mode = mode
		keptSelf = append(keptSelf, h)
	}
	for _, h := range keptSelf {
		w := waiterOf[h.G]
		h.Reason = selfReason(h, w, l)
	}

	hs := append(pending, others...)
	hs = append(hs, keptSelf...)
	slices.SortStableFunc(hs, func(x, y *Holder) int {
		if c := cmp.Compare(y.Confidence, x.Confidence); c != 0 {
			return c
		}
		if x.hinted != y.hinted {
			if x.hinted {
				return -1
			}
			return 1
		}
		if x.owner != y.owner {
			if x.owner {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(x.Evidence, y.Evidence); c != 0 {
			return c
		}
		return cmp.Compare(x.G.ID, y.G.ID)
	})
	for _, h := range hs {
		if w := a.byG[h.G]; w != nil {
			h.Waits = w.ls.l
		}
	}
	hs = a.capHolders(l, hs, mode)
	l.Holders = hs
	for i := range l.Waiters {
		w := &l.Waiters[i]
		for hi, h := range hs {
			if waitsFor(w, h) {
				w.For = append(w.For, hi)
			}
		}
	}
	if len(hs) == 0 {
		l.NoHolder = a.noHolderReason(s, siteTypes, detail)
	}
}

// waitsFor reports whether waiter w waits for holder h.
func waitsFor(w *Waiter, h *Holder) bool {
	if h.G == w.G && h.Evidence != BySelf {
		return false
	}
	switch w.Kind {
	case WaitRLock, WaitWriteBehindWriter:
		if h.Mode == HoldsRead {
			return false
		}
	case WaitWriteBehindReaders:
		return h.Mode == HoldsRead && (h.G != w.G || h.Evidence == BySelf)
	}
	return true
}

// refHolders ties goroutines to the lock through the words of their frames
// near it.
func (a *analysis) refHolders(s *lockState, waiterOf map[*gdump.Goroutine]*wait, siteTypes map[string]bool) (others, selfs []*Holder) {
	l := s.l
	lockAddr, upper := l.Addr, s.upper
	if upper == 0 {
		return nil, nil
	}
	obj, objType, fromWaiters := l.Object, s.objType, l.Object != 0
	if obj == 0 && lockAddr != 0 {
		// The nearest plausible object below the lock.
		for _, r := range s.refs {
			if w := waiterOf[r.g]; w != nil && r.frame <= w.site {
				continue
			}
			if r.value <= lockAddr && a.plausible(r.typ, lockAddr-r.value) && (r.value > obj || r.value == obj && objType == "") {
				obj, objType = r.value, r.typ
			}
		}
		if obj != 0 {
			l.Object, s.objType, l.Type = obj, objType, typeName(objType)
		}
	}
	// A pointer that many goroutines have (a worker pool's channel, a
	// shared config) says nothing about which of them holds a lock just
	// above it: such pointers count only as the lock's object or address.
	shared := make(map[uint64]int)
	for _, r := range s.refs {
		shared[r.value]++
	}
	learned := func(t string) bool {
		return lockAddr != 0 && obj != 0 && slices.Contains(a.offs[offKey(t, l.Kind)], lockAddr-obj)
	}
	for _, r := range s.refs {
		w := waiterOf[r.g]
		if w != nil && r.frame <= w.site {
			continue // the waiter's own call to Lock
		}
		h := &Holder{G: r.g, Frame: r.frame}
		at := func() string { return frameWhere(r.g, r.frame) }
		switch {
		case lockAddr != 0 && r.value == lockAddr:
			h.Evidence, h.Confidence, h.owner = ByLockAddress, High, true
			h.why = func() string { return fmt.Sprintf("%s has the lock's address %#x", at(), lockAddr) }
		case obj != 0 && r.value == obj:
			h.Evidence = ByObjectRef
			h.owner = r.typ != "" && (r.typ == objType || siteTypes[r.typ])
			switch {
			case fromWaiters:
				h.Confidence = High
				h.why = func() string {
					return fmt.Sprintf("%s has the %s that the waiters lock", at(), objDesc(obj, objType))
				}
			case siteTypes[r.typ] || learned(r.typ):
				h.Confidence = High
				h.why = func() string {
					return fmt.Sprintf("%s has the %s, the nearest object below the lock (+%#x), and it is of the waiters' type", at(), objDesc(obj, objType), lockAddr-obj)
				}
			default:
				h.Confidence = Medium
				h.why = func() string {
					return fmt.Sprintf("%s has the %s, the nearest object below the lock (+%#x); nothing else ties it to the lock", at(), objDesc(obj, objType), lockAddr-obj)
				}
			}
		case obj != 0 && r.value > obj && lockAddr != 0 && r.value < lockAddr:
			h.Evidence, h.Confidence = ByObjectRef, High
			v := r.value
			h.why = func() string {
				return fmt.Sprintf("%s has %#x, a pointer into the %s below the lock", at(), v, objDesc(obj, objType))
			}
		case obj != 0 && r.value < obj && obj-r.value <= maxEnclosing && !siteTypes[r.typ] && shared[r.value] <= maxHolders &&
			(r.typ == "" || r.typ != objType) && a.plausible(r.typ, upper-r.value):
			h.Evidence, h.Confidence = ByEnclosing, Medium
			v, t := r.value, r.typ
			h.why = func() string {
				return fmt.Sprintf("%s has the %s, %d bytes below the %s: it may contain it (an embedded struct)", at(), objDesc(v, t), obj-v, objDesc(obj, objType))
			}
		default:
			continue
		}
		if w != nil {
			selfs = append(selfs, h)
		} else {
			others = append(others, h)
		}
	}
	// Waiters whose callers are methods of the same type, receivers lost:
	// weaker self evidence.
	for _, w := range s.waits {
		if w.siteType == "" {
			continue
		}
		fr := w.g.Frames
		for fi := w.site + 1; fi < len(fr); fi++ {
			t, ok := recvType(fr[fi].Func)
			if !ok || t != w.siteType {
				continue
			}
			if _, ok := fr[fi].Receiver(); ok {
				continue // an accurate receiver was judged above
			}
			selfs = append(selfs, &Holder{G: w.g, Frame: fi, Evidence: BySelf, Confidence: Medium})
			break
		}
	}
	for _, h := range selfs {
		switch h.Evidence {
		case BySelf:
		case ByLockAddress, ByObjectRef:
			h.Evidence = BySelf
		default:
			h.Evidence, h.Confidence = BySelf, Medium
		}
	}
	return others, selfs
}

// frameRef is a frame of a goroutine.
type frameRef struct {
	g     *gdump.Goroutine
	frame int
}

// methodFrames returns, for each receiver type in want, the first frame of
// each goroutine that is a method of that type; the index is built once.
func (a *analysis) methodFrames(t string) []frameRef {
	if a.byType == nil {
		a.byType = make(map[string][]frameRef)
		var seen []string
		for _, g := range a.d.Goroutines {
			seen = seen[:0]
			for fi := range g.Frames {
				typ, ok := recvType(g.Frames[fi].Func)
				if !ok || slices.Contains(seen, typ) {
					continue
				}
				seen = append(seen, typ)
				a.byType[typ] = append(a.byType[typ], frameRef{g, fi})
			}
		}
	}
	return a.byType[t]
}

// typeHolders finds goroutines in methods of the waiters' receiver type
// whose receiver is not in the dump.
func (a *analysis) typeHolders(s *lockState, waiterOf map[*gdump.Goroutine]*wait, siteTypes map[string]bool, detail bool) []*Holder {
	l := s.l
	var hs []*Holder
	for t := range siteTypes {
		for _, fr := range a.methodFrames(t) {
			g, fi := fr.g, fr.frame
			if waiterOf[g] != nil {
				continue
			}
			if detail {
				if _, ok := g.Frames[fi].Receiver(); ok && (l.Object != 0 || l.Addr != 0) {
					// Printed accurately and not near the lock: another
					// object of the type.
					continue
				}
			}
			h := &Holder{G: g, Frame: fi, Evidence: ByType, Confidence: Medium}
			h.why = func() string {
				return fmt.Sprintf("is in %s, a method of %s like the waiters' call site; the dump lost its receiver, so the object is not confirmed", frameWhere(g, fi), typeName(t))
			}
			if !detail {
				h.Confidence = Low
				h.why = func() string {
					return fmt.Sprintf("is in %s, a method of %s like the waiters' call site (debug=1: no arguments, so the object is not known)", frameWhere(g, fi), typeName(t))
				}
			}
			hs = append(hs, h)
		}
	}
	return hs
}

// onceHolders finds goroutines running a sync.Once's function that was
// called (through Do) from one of the waiters' call sites.
func (a *analysis) onceHolders(waiterOf map[*gdump.Goroutine]*wait, siteFuncs map[string]bool, detail bool) []*Holder {
	var hs []*Holder
	for _, g := range a.d.Goroutines {
		if waiterOf[g] != nil {
			continue
		}
		for fi := range g.Frames {
			if g.Frames[fi].Func != onceSlow {
				continue
			}
			site := fi + 1
			for site < len(g.Frames) && isRuntimeFrame(g.Frames[site].Func) {
				site++
			}
			if site < len(g.Frames) && siteFuncs[g.Frames[site].Func] {
				h := &Holder{G: g, Frame: fi, Evidence: ByOnceRunner, Confidence: Medium,
					why: func() string {
						return fmt.Sprintf("runs the function of a sync.Once (in sync.(*Once).doSlow) called from %s, the waiters' call site", frameWhere(g, site))
					}}
				if !detail {
					h.Confidence = Low
				}
				hs = append(hs, h)
			}
			break
		}
	}
	return hs
}

// hinted returns the hints that apply to a lock waited for at siteFuncs,
// by holder function.
func (a *analysis) hinted(siteFuncs map[string]bool) map[string]Hint {
	var want map[string]Hint
	for _, h := range a.opts.Hints {
		if h.Holder != "" && (h.Site == "" || siteFuncs[h.Site]) {
			if want == nil {
				want = make(map[string]Hint)
			}
			want[h.Holder] = h
		}
	}
	return want
}

// funcFrames returns the first frame running fn in each goroutine; the
// index (of hinted functions only) is built once.
func (a *analysis) funcFrames(fn string) []frameRef {
	if a.byFunc == nil {
		a.byFunc = make(map[string][]frameRef)
		hinted := make(map[string]bool)
		for _, h := range a.opts.Hints {
			hinted[h.Holder] = true
		}
		for _, g := range a.d.Goroutines {
			for fi := range g.Frames {
				f := g.Frames[fi].Func
				if hinted[f] {
					if rs := a.byFunc[f]; len(rs) == 0 || rs[len(rs)-1].g != g {
						a.byFunc[f] = append(rs, frameRef{g, fi})
					}
				}
			}
		}
	}
	return a.byFunc[fn]
}

// hintHolders finds goroutines in functions named by Options.Hints for
// the lock's call sites.
func (a *analysis) hintHolders(s *lockState, waiterOf map[*gdump.Goroutine]*wait, want map[string]Hint, detail bool) []*Holder {
	l := s.l
	var hs []*Holder
	for fn, hint := range want {
		for _, fr := range a.funcFrames(fn) {
			g, fi := fr.g, fr.frame
			if waiterOf[g] != nil {
				continue
			}
			f := &g.Frames[fi]
			if r, ok := f.Receiver(); ok && detail && l.Object != 0 && r != l.Object {
				if _, isMethod := recvType(f.Func); isMethod {
					continue // the same function on another object
				}
			}
			hs = append(hs, &Holder{
				G: g, Frame: fi, Evidence: ByHint, Confidence: Medium,
				why: func() string {
					return fmt.Sprintf("is in %s, which %s saw holding the lock waited for at %s", frameWhere(g, fi), hintSource(hint), shortFunc(l.Site.Func))
				},
			})
		}
	}
	return hs
}

func hintSource(h Hint) string {
	if h.Source == "" {
		return "a hint"
	}
	return h.Source
}

// inHinted returns the hint whose function g runs, if any.
func inHinted(g *gdump.Goroutine, want map[string]Hint) (Hint, bool) {
	for i := range g.Frames {
		if h, ok := want[g.Frames[i].Func]; ok {
			return h, true
		}
	}
	return Hint{}, false
}

func (a *analysis) noHolderReason(s *lockState, siteTypes map[string]bool, detail bool) string {
	l := s.l
	var b strings.Builder
	if !detail {
		b.WriteString("no holder found: a debug=1 profile has no goroutine ids or arguments, and no stack outside the waiters is in a method of the waiters' type")
		if len(a.opts.Hints) > 0 {
			b.WriteString(" or in a hinted function")
		}
		if countWaiters(l) > 1 {
			b.WriteString(". The holder may be one of the waiters (a lock-order deadlock among goroutines at this site, or a self-deadlock); a debug=2 dump can tell")
		}
		return b.String()
	}
	b.WriteString("no holder found: no goroutine other than the waiters has ")
	switch {
	case l.Addr != 0 && l.Object != 0:
		fmt.Fprintf(&b, "the lock's address or the %s it is in", objDesc(l.Object, s.objType))
	case l.Addr != 0:
		b.WriteString("the lock's address or an object just below it")
	case l.Object != 0:
		fmt.Fprintf(&b, "the %s the lock is in", objDesc(l.Object, s.objType))
	default:
		b.WriteString("anything that identifies the lock (the dump shows neither its address nor its object)")
	}
	if len(siteTypes) > 0 {
		var ts []string
		for t := range siteTypes {
			ts = append(ts, typeName(t))
		}
		slices.Sort(ts)
		fmt.Fprintf(&b, ", or is in a method of %s with a receiver the dump lost", strings.Join(ts, ", "))
	}
	b.WriteString(". The lock may have been left locked by a goroutine that has returned (an Unlock missing on some path), or its holder keeps no pointer to it in an argument")
	return b.String()
}

func selfReason(h *Holder, w *wait, l *Lock) string {
	at := frameWhere(w.g, w.site)
	caller := frameWhere(w.g, h.Frame)
	what := "it likely holds the lock already: a self-deadlock"
	switch {
	case h.Mode == HoldsRead && w.kind == WaitWriteBehindReaders:
		what = "it likely holds a read lock already and waits for itself to release it: a read lock upgraded to a write lock"
	case h.Mode == HoldsRead:
		what = "it likely holds a read lock already: a recursive read lock, stuck behind the pending writer"
	}
	if h.Confidence == High {
		obj := fmt.Sprintf("object at %#x", l.Object)
		if l.Type != "" {
			obj = fmt.Sprintf("%s %#x", l.Type, l.Object)
		}
		return fmt.Sprintf("waits for this lock in %s, and its caller %s has the same %s; %s", at, caller, obj, what)
	}
	return fmt.Sprintf("waits for this lock in %s, called from %s, a method of the same type whose receiver the dump lost; %s", at, caller, what)
}

func hasConfidence(hs []*Holder, c Confidence) bool {
	for _, h := range hs {
		if h.Confidence == c {
			return true
		}
	}
	return false
}

// maxHolders bounds Lock.Holders: a shared object (a server, a pool)
// can be in the frames of thousands of goroutines.
const maxHolders = 8

// preferOwners demotes, when some high-confidence holder has the object as
// the receiver of a method of its type, those that only have it as an
// argument passed along (a request handler holding the server).
func preferOwners(hs []*Holder) []*Holder {
	owners := false
	for _, h := range hs {
		owners = owners || h.Confidence == High && h.owner
	}
	if !owners {
		return hs
	}
	for _, h := range hs {
		if h.Confidence == High && !h.owner {
			h.Confidence, h.demoted = Medium, true
		}
	}
	return hs
}

// capHolders lowers the confidence of holders of an exclusive lock that
// are too many to tell apart, and keeps the first maxHolders.
func (a *analysis) capHolders(l *Lock, hs []*Holder, mode HoldMode) []*Holder {
	n := 0
	for _, h := range hs {
		if h.Confidence == hs[0].Confidence && h.Evidence != ByPendingWriter {
			n++
		}
	}
	if mode != HoldsRead && n > 3 {
		for _, h := range hs {
			if h.Confidence == hs[0].Confidence && h.Evidence != ByPendingWriter {
				if h.Confidence > Low {
					h.Confidence--
				}
				h.Reason += fmt.Sprintf(" (one of %d goroutines tied to the lock alike: the dump cannot tell which holds it)", n)
			}
		}
	}
	if len(hs) > maxHolders {
		l.MoreHolders = len(hs) - maxHolders
		hs = hs[:maxHolders]
	}
	return hs
}

// bestPerGoroutine keeps each goroutine's strongest tie.
func bestPerGoroutine(hs []*Holder) []*Holder {
	best := make(map[*gdump.Goroutine]*Holder)
	var order []*gdump.Goroutine
	for _, h := range hs {
		b, ok := best[h.G]
		if !ok {
			order = append(order, h.G)
		}
		if !ok || h.Confidence > b.Confidence || (h.Confidence == b.Confidence &&
			(h.owner && !b.owner || h.owner == b.owner && h.Evidence < b.Evidence)) {
			best[h.G] = h
		}
	}
	out := make([]*Holder, 0, len(order))
	for _, g := range order {
		out = append(out, best[g])
	}
	return out
}

// topTier keeps the holders of the highest confidence present.
func topTier(hs []*Holder) []*Holder {
	var top Confidence
	for _, h := range hs {
		top = max(top, h.Confidence)
	}
	out := hs[:0]
	for _, h := range hs {
		if h.Confidence == top {
			out = append(out, h)
		}
	}
	return out
}
