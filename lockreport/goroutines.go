package lockreport

import (
	"golang.org/x/exp/trace"
)

// gstate is what the analysis knows of one goroutine: whether and how it
// waits, and, allocated when first needed, the lock wait that may still
// merge with its next park and the lock it holds (lk), and its recent
// blocks (to find a lock held across a blocking call). A window can hold
// tens of thousands of goroutines, most of them only ever seen waiting:
// those take 128 bytes each.
type gstate struct {
	id    trace.GoID
	state trace.GoState

	waiting    bool
	kind       waitKind
	atLeast    bool
	inSet      bool // counted among site's waiters for blame
	sysAtLeast bool // in the system call since before the window
	// own is set once a stack of the goroutine showed lockdiag's own
	// runtime (the monitor, the recorder, snapshot collection).
	own bool
	// epoch counts the goroutine's transitions: a reader convoy burst is
	// the wake-ups of one Unlock, with nothing else in between.
	epoch uint32
	parks int32

	stack *stackInfo
	site  *siteAgg
	start int64

	sysStart  int64
	sysStack  *stackInfo
	lastStack *stackInfo
	rawStack  trace.Stack // a later stack than lastStack, not looked at yet
	thread    *threadRec

	lk     *wokenState // nil until the goroutine is first woken at a lock site
	blocks *blockList  // nil until it first blocks on something else
}

// wokenState is what a goroutine that was woken at a lock site carries:
// the wait that may still merge with its next park, and the lock it holds
// since.
type wokenState struct {
	pend     pendingWait
	runStart int64 // when it ran after the wake-up, if pend.valid
	// hold is the lock the goroutine holds, as far as the trace shows.
	hold         holdState
	lastLockWake int64
}

// pendingWait is a finished lock wait that may still merge with the next
// park of the same goroutine (see mergeWindow).
type pendingWait struct {
	stack     *stackInfo
	site      *siteAgg
	start     int64
	end       int64
	parks     int
	unblocker trace.GoID
	ustack    *stackInfo
	valid     bool
	kind      waitKind
	atLeast   bool
}

// blockList is a goroutine's recent non-lock blocks.
type blockList struct {
	n    int
	recs [maxBlocks]blockRec
}

// blockRec is one recent non-lock block of a goroutine.
type blockRec struct {
	stack      *stackInfo
	start, end int64
	kind       waitKind
	counted    bool
}

// pending reports whether g has a lock wait that may still merge.
func (g *gstate) pending() bool { return g.lk != nil && g.lk.pend.valid }

// holding returns the lock g holds, nil if none.
func (g *gstate) holding() *holdState {
	if g.lk == nil || g.lk.hold.site == nil {
		return nil
	}
	return &g.lk.hold
}

// clearBlocks forgets g's recent blocks.
func (g *gstate) clearBlocks() {
	if g.blocks != nil {
		g.blocks.n = 0
	}
}

// goroutineTable holds the live goroutines. Goroutine IDs below smallGoIDs
// are kept in a slice: a map lookup per event is a good part of the
// analysis' cost.
type goroutineTable struct {
	small []*gstate
	n     int // non-nil entries of small
	big   map[trace.GoID]*gstate
}

const smallGoIDs = 1 << 16

func (t *goroutineTable) get(id trace.GoID) *gstate {
	if id >= 0 && id < smallGoIDs {
		if int(id) < len(t.small) {
			return t.small[id]
		}
		return nil
	}
	return t.big[id]
}

func (t *goroutineTable) set(id trace.GoID, g *gstate) {
	if id < 0 || id >= smallGoIDs {
		if g == nil {
			delete(t.big, id)
		} else {
			t.big[id] = g
		}
		return
	}
	if int(id) >= len(t.small) {
		n := max(int(id)+1, 2*len(t.small), 1024)
		t.small = append(t.small, make([]*gstate, min(n, smallGoIDs)-len(t.small))...)
	}
	switch {
	case t.small[id] == nil && g != nil:
		t.n++
	case t.small[id] != nil && g == nil:
		t.n--
	}
	t.small[id] = g
}

// each calls f for every goroutine alive.
func (t *goroutineTable) each(f func(*gstate)) {
	if t.n > 0 {
		for _, g := range t.small {
			if g != nil {
				f(g)
			}
		}
	}
	for _, g := range t.big {
		f(g)
	}
}

func (a *analyzer) goTransition(ev *trace.Event, st *trace.StateTransition, t int64) {
	id := st.Resource.Goroutine()
	from, to := st.Goroutine()
	g := a.gs.get(id)
	fresh := false
	if g == nil {
		if to == trace.GoNotExist {
			return
		}
		g = &gstate{id: id, state: trace.GoUndetermined}
		a.gs.set(id, g)
		fresh = true
	}
	g.epoch++
	if lk := g.lk; lk != nil {
		if lk.hold.site != nil {
			lk.hold.account(g.state, t)
		}
		if lk.pend.valid && !(from == trace.GoRunnable && to == trace.GoRunning && lk.runStart == 0) &&
			!(from == trace.GoRunning && to == trace.GoWaiting) {
			a.flushPending(g)
		}
	}

	switch {
	case to == trace.GoWaiting:
		switch from {
		case trace.GoRunning:
			a.block(g, t, st.Reason, a.stacks.get(st.Stack))
		case trace.GoWaiting, trace.GoUndetermined:
			if !g.waiting {
				// A status event: the goroutine was already waiting. If we
				// have not seen it before, it has been waiting since
				// before the window began.
				start := t
				if fresh {
					start = a.win.start
				}
				si := a.stacks.get(st.Stack)
				a.beginWait(g, start, t, waitKindOf("", si), si, true, 1)
			}
		default: // created blocked
			si := a.stacks.get(st.Stack)
			a.beginWait(g, t, t, waitKindOf("", si), si, false, 1)
		}
	case from == trace.GoWaiting:
		a.wake(g, t, ev)
	}

	switch {
	case to == trace.GoRunning:
		if lk := g.lk; lk != nil && lk.pend.valid && lk.runStart == 0 {
			lk.runStart = t
		}
		a.threads.ranOn(g, ev.Thread(), t)
	case to == trace.GoSyscall && from != trace.GoRunning && g.sysStart == 0:
		// A status event: in a system or cgo call since before the
		// window (or since it was first seen).
		g.sysStart, g.sysAtLeast = t, true
		if fresh {
			g.sysStart = a.win.start
		}
		if si := a.stacks.get(st.Stack); si != nil {
			g.sysStack = si
			g.lastStack, g.rawStack = si, trace.NoStack
			g.own = g.own || si.own
		}
	case to == trace.GoSyscall && from == trace.GoRunning:
		g.sysStart, g.sysAtLeast = t, false
		g.sysStack = a.stacks.get(st.Stack)
		g.lastStack, g.rawStack = g.sysStack, trace.NoStack
		if g.sysStack != nil {
			g.own = g.own || g.sysStack.own
			a.checkHold(g, g.sysStack)
		}
	case to == trace.GoRunnable && from == trace.GoRunning:
		if h := g.holding(); h != nil {
			// What a holder runs when it is preempted is what its
			// critical section does on the CPU: worth the lookup.
			if si := a.stacks.get(st.Stack); si != nil {
				g.lastStack, g.rawStack = si, trace.NoStack
				if a.checkHold(g, si) && !si.handoff {
					h.sample = si
				}
				break
			}
		}
		g.rawStack = st.Stack
	}
	if from == trace.GoSyscall && to != trace.GoSyscall && g.sysStart != 0 {
		if g.sysStack != nil {
			if !g.own {
				a.sites.other[kindSyscall].add(t-g.sysStart, false)
			}
			g.addBlock(kindSyscall, g.sysStack, g.sysStart, t)
			if g.sysStack.cgo && !g.own {
				a.cgo.add(g.sysStack, g.id, t-g.sysStart, false)
			}
		}
		g.sysStart = 0
	}
	g.state = to
	if to == trace.GoNotExist {
		a.exit(g)
	}
}

// waitKindOf classifies a block from its reason and stack.
func waitKindOf(reason string, si *stackInfo) waitKind {
	if si != nil && si.site < 0 {
		return kindRuntime // nothing of the program's on the stack
	}
	if k, ok := kindFromReason(reason); ok {
		if k == kindOther && si != nil && si.waitKind != kindUnknown {
			return si.waitKind
		}
		return k
	}
	switch {
	case si == nil:
		return kindUnknown
	case si.waitKind != kindUnknown:
		return si.waitKind
	case reason == "sync":
		return kindSyncOther
	}
	return kindOther
}

func (a *analyzer) block(g *gstate, t int64, reason string, si *stackInfo) {
	k := waitKindOf(reason, si)
	if si != nil {
		g.lastStack, g.rawStack = si, trace.NoStack
		if si.own {
			g.own = true
		}
		a.checkHold(g, si)
	}
	if g.waiting {
		// Lost track (should not happen): close what we had.
		a.endWait(g, t, trace.NoGoroutine, nil, true)
	}
	if lk := g.lk; lk != nil && lk.pend.valid {
		p := &lk.pend
		if k.isLock() && si != nil && si.mutexPark && p.kind == k && p.stack == si && lk.runStart != 0 && t-lk.runStart <= int64(mergeWindow) {
			// The same Lock call parking again after losing the race.
			p.valid = false
			a.waits.merged++
			a.beginWait(g, p.start, t, k, si, p.atLeast, p.parks+1)
			return
		}
		a.flushPending(g)
	}
	a.beginWait(g, t, t, k, si, false, 1)
}

// beginWait records that g waits from start (the current park began at
// park; they differ for merged and pre-window waits).
func (a *analyzer) beginWait(g *gstate, start, park int64, k waitKind, si *stackInfo, atLeast bool, parks int) {
	g.waiting = true
	g.kind = k
	g.stack = si
	g.start = start
	g.atLeast = atLeast
	g.parks = int32(parks)
	g.site = nil
	g.inSet = false
	if si != nil && si.own {
		g.own = true
	}
	if !k.hasSite() {
		return
	}
	s := a.sites.get(k, si)
	g.site = s
	if k.isLock() {
		if h := g.holding(); h != nil && h.site == s {
			// Woken, it lost the lock and waits again: it never held it.
			h.site = nil
		}
		from := park
		if atLeast {
			from = start
		}
		s.enter(from)
		g.inSet = true
	}
}

func (a *analyzer) wake(g *gstate, t int64, ev *trace.Event) {
	unb := ev.Goroutine()
	us := a.stacks.get(ev.Stack())
	if !g.waiting {
		// Blocked before the window, announced without a stack.
		a.beginWait(g, a.win.start, a.win.start, kindUnknown, nil, true, 1)
	}
	if g.kind == kindUnknown || (g.kind == kindOther && g.stack == nil) {
		k := kindOther
		if us != nil {
			k = kindFromOp(us.op)
		}
		g.kind = k
		if k.hasSite() {
			g.site = a.sites.get(k, g.stack)
		}
	}
	a.endWait(g, t, unb, us, false)
}

// endWait ends g's park at t, woken by unb (stack us).
func (a *analyzer) endWait(g *gstate, t int64, unb trace.GoID, us *stackInfo, lost bool) {
	g.waiting = false
	k := g.kind
	s := g.site
	if !k.isLock() || s == nil {
		a.finishWait(waitRec{kind: k, site: s, g: g.id, start: g.start, dur: t - g.start, atLeast: g.atLeast || lost,
			parks: int(g.parks), stack: g.stack, unblocker: unb, ustack: us, own: g.own})
		if s != nil {
			s.credit(s.holder(us), t-g.start, unb)
		}
		if k != kindRuntime {
			g.addBlock(k, g.stack, g.start, t)
		}
		return
	}

	// A lock wait: blame the time since the previous wake-up at the site
	// on this waker's critical section.
	queued := int(s.n)
	var blame int64
	if g.inSet {
		blame = s.wakeOne(t)
		g.inSet = false
	} else {
		blame = t - g.start
	}
	if lost {
		unb, us = trace.NoGoroutine, nil
	}
	h := s.holder(us)
	s.credit(h, blame, unb)
	var hs *gstate
	if unb != trace.NoGoroutine && us != nil {
		if hs = a.gs.get(unb); hs != nil {
			a.checkInside(hs, h, us, g.start, t, blame, queued)
			// hs released a lock: what it blocked on before is not inside
			// its next critical section.
			hs.clearBlocks()
			if hd := hs.holding(); hd != nil && releases(us.op, hd.site.kind) {
				a.endHold(hs, h, s, us, t, t-g.start)
			}
		}
	}
	if k == kindRLock && us != nil && us.op == "RWMutex.Unlock" && hs != nil {
		s.readerWoken(hs, g.id, us, t)
	}
	lk := g.lk
	if lk == nil {
		lk = new(wokenState)
		g.lk = lk
	}
	if !lost {
		// The waiter holds the lock from now on (a Mutex waiter that
		// loses the race parks again, and beginWait forgets this).
		lk.hold = holdState{site: s, stack: g.stack, start: t, since: t}
		s.lastGrant, s.lastGrantG = t, g.id
	}
	lk.lastLockWake = t
	g.clearBlocks()
	lk.pend = pendingWait{valid: true, kind: k, stack: g.stack, site: s, start: g.start, end: t,
		atLeast: g.atLeast || lost, parks: int(g.parks), unblocker: unb, ustack: us}
	lk.runStart = 0
	if lost {
		a.flushPending(g)
	}
}

func (g *gstate) addBlock(k waitKind, si *stackInfo, start, end int64) {
	if si == nil || k.isLock() {
		return
	}
	b := blockRec{kind: k, stack: si, start: start, end: end}
	bl := g.blocks
	if bl == nil {
		bl = new(blockList)
		g.blocks = bl
	}
	if bl.n < maxBlocks {
		bl.recs[bl.n] = b
		bl.n++
		return
	}
	// Replace the shortest.
	j := 0
	for i := 1; i < maxBlocks; i++ {
		if bl.recs[i].end-bl.recs[i].start < bl.recs[j].end-bl.recs[j].start {
			j = i
		}
	}
	if end-start > bl.recs[j].end-bl.recs[j].start {
		bl.recs[j] = b
	}
}

// checkInside looks for evidence that the holder hs blocked inside the
// critical section that its wake-up call us ended: one of its recent
// non-lock blocks has the critical section's function on its stack, ended
// after the waiter began waiting, and came after hs last acquired a
// contended lock.
func (a *analyzer) checkInside(hs *gstate, h *holderAgg, us *stackInfo, waitStart, t, blame int64, queued int) {
	bl := hs.blocks
	if bl == nil || bl.n == 0 || us.site < 0 {
		return
	}
	// A block inside the critical section: it ended after the waiter
	// began to wait, began after the holder acquired the lock (when the
	// trace showed the acquisition), and its stack runs inside the call
	// of the function that unlocked.
	var from int64
	held := hs.holding()
	if hs.lk != nil {
		from = hs.lk.lastLockWake
	}
	if held != nil {
		from = max(from, held.start)
	}
	inside := func(b *blockRec) bool {
		if b.end > t || b.end <= waitStart || b.start < from && held != nil || b.end < from {
			return false
		}
		k, _ := a.owner(us, b.stack)
		return k >= 0
	}
	found := false
	for i := 0; i < bl.n; i++ {
		found = found || inside(&bl.recs[i])
	}
	if !found {
		return
	}
	in := h.inside
	if in == nil {
		in = &insideAgg{}
		h.inside = in
	}
	in.wait += blame
	in.maxQueued = max(in.maxQueued, queued)
	counted := false
	for i := 0; i < bl.n; i++ {
		b := &bl.recs[i]
		if b.counted || !inside(b) {
			continue
		}
		b.counted, counted = true, true
		d := b.end - b.start
		in.blocked += d
		if d > in.longest {
			in.longest, in.stack, in.kind = d, b.stack, b.kind
		}
	}
	if counted {
		in.times++
	}
}

func (a *analyzer) flushPending(g *gstate) {
	if !g.pending() {
		return
	}
	p := &g.lk.pend
	p.valid = false
	a.finishWait(waitRec{kind: p.kind, site: p.site, g: g.id, start: p.start, dur: p.end - p.start, atLeast: p.atLeast,
		parks: p.parks, stack: p.stack, unblocker: p.unblocker, ustack: p.ustack, own: g.own})
}

func (a *analyzer) exit(g *gstate) {
	a.resolveLastStack(g)
	if g.pending() {
		a.flushPending(g)
	}
	if g.waiting {
		a.endWait(g, a.win.last, trace.NoGoroutine, nil, true)
	}
	a.threads.exited(g)
	a.gs.set(g.id, nil)
}
