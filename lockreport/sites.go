package lockreport

import (
	"container/heap"

	"golang.org/x/exp/trace"
)

// siteKey identifies a call site of one kind of wait.
type siteKey struct {
	kind waitKind
	fn   string
	file string
	line int
}

// Pseudo-holders.
const (
	holderNone     = -1 // woken by a timer or the runtime, or the waker has no stack
	holderNotFreed = -2 // the wait was still going at the end of the window
)

// siteAgg aggregates the waits at one call site, and blames them on the
// critical sections (or wakers) that ended them.
type siteAgg struct {
	kind    waitKind
	frame   Frame
	stack   *stackInfo
	waits   int
	atLeast int
	total   int64
	max     int64
	hist    hist
	waiters goSet

	// Blame accounting (locks): n goroutines are waiting here and the sum
	// of the times from which each is still to be blamed is sumStart. At
	// each wake-up at the site, the waiters' time since the previous one,
	// n*t - sumStart, is blamed on the waker's critical section.
	n        int64
	sumStart int64
	lastWake int64
	blamed   int64
	holders  map[int]*holderAgg

	// Reader convoys: wake-ups of RLock waiters by one RWMutex.Unlock:
	// distinct readers woken by one goroutine's one Unlock call (the same
	// stack, nothing else done by it in between, within burstGap).
	burstG       trace.GoID
	burstEpoch   uint32
	burstStack   *stackInfo
	burstT       int64
	burstSeen    []trace.GoID
	bursts       int // bursts of at least 3 readers
	burstReaders int
	burstMax     int

	// Time: busy is how long at least one goroutine waited here (busySince
	// when the current stretch began); held the union of the holds seen
	// ending here (heldEnd the latest end). first and lastEnd bound the
	// waits; perSec counts them by the second of the window they began in;
	// openAtEnd is how many were still waiting when the window ended.
	busy, busySince int64
	held, heldEnd   int64
	first, lastEnd  int64
	// lastServed is when the last wait here that was served (woken)
	// ended; 0 if none was.
	lastServed int64
	perSec     []int32
	openAtEnd  int

	// lastGrant is when a waiter here was last woken with the lock, and
	// lastGrantG which one: a hold that spans another goroutine's grant
	// ended unseen.
	lastGrant  int64
	lastGrantG trace.GoID

	// stacks are the waiter stacks seen here (their waits are counted in
	// stackInfo.lw): the site's entry points past wrappers.
	stacks []*stackInfo
}

// holderAgg is one critical section's (or waker's) part of a site's wait.
type holderAgg struct {
	id         int
	blame      int64
	wakeups    int
	goroutines goSet
	stack      *stackInfo
	inside     *insideAgg
	holds      *holdAgg
}

// insideAgg is the evidence that a holder blocked inside its critical
// section.
type insideAgg struct {
	times     int // critical sections with blocking
	blocked   int64
	wait      int64
	maxQueued int
	stack     *stackInfo // of the longest block
	kind      waitKind   // of the longest block
	longest   int64
}

// enter counts a goroutine that waits at the lock site from time from.
func (s *siteAgg) enter(from int64) {
	if s.n == 0 {
		s.busySince = from
	}
	s.n++
	s.sumStart += from
}

// leave removes a waiter at the window's end without blaming anyone.
func (s *siteAgg) leave(end int64) {
	s.n--
	s.sumStart -= end
	if s.n == 0 {
		s.busy += end - s.busySince
	}
}

// wakeOne ends one waiter's wait at t and returns the waiting time to
// blame on the waker: every waiter's time since the previous wake-up.
func (s *siteAgg) wakeOne(t int64) (blame int64) {
	blame = s.n*t - s.sumStart
	s.sumStart = s.n * t
	s.lastWake = t
	s.n--
	s.sumStart -= t
	if s.n == 0 {
		s.busy += t - s.busySince
	}
	return blame
}

// holder returns the aggregate of the critical section that waker stack us
// ends, or of "woken by the runtime" when us says nothing.
func (s *siteAgg) holder(us *stackInfo) *holderAgg {
	id := holderNone
	if us != nil && us.holder >= 0 {
		id = us.holder
	}
	return s.holderByID(id, us)
}

func (s *siteAgg) holderByID(id int, us *stackInfo) *holderAgg {
	h := s.holders[id]
	if h == nil {
		h = &holderAgg{id: id, stack: us}
		s.holders[id] = h
	}
	return h
}

// credit blames d of the site's waiting on h, whose goroutine unb ended a
// wait.
func (s *siteAgg) credit(h *holderAgg, d int64, unb trace.GoID) {
	h.blame += d
	h.wakeups++
	if unb != trace.NoGoroutine {
		h.goroutines.add(unb)
	}
	s.blamed += d
}

// readerWoken counts reader r woken at t by goroutine w's Unlock (stack
// us): one Unlock wakes every reader queued behind it, each once, in a
// loop in which w does nothing else. A reader woken twice, another
// stack, a state change of w or a gap longer than burstGap begins the
// next Unlock's burst, so that back-to-back Unlocks are not merged and a
// burst never counts more readers than there are goroutines.
func (s *siteAgg) readerWoken(w *gstate, r trace.GoID, us *stackInfo, t int64) {
	same := s.burstG == w.id && s.burstEpoch == w.epoch && s.burstStack == us && t-s.burstT <= int64(burstGap)
	if same {
		for _, x := range s.burstSeen {
			if x == r {
				same = false
				break
			}
		}
	}
	if !same {
		s.flushBurst()
		s.burstG, s.burstEpoch, s.burstStack = w.id, w.epoch, us
	}
	s.burstSeen = append(s.burstSeen, r)
	s.burstT = t
}

func (s *siteAgg) flushBurst() {
	if n := len(s.burstSeen); n >= 3 {
		s.bursts++
		s.burstReaders += n
		s.burstMax = max(s.burstMax, n)
	}
	s.burstSeen = s.burstSeen[:0]
	s.burstG = trace.NoGoroutine
	s.burstStack = nil
}

// kindAgg sums waits that are not aggregated by site.
type kindAgg struct {
	waits, atLeast int
	total, max     int64
}

func (k *kindAgg) add(d int64, atLeast bool) {
	k.waits++
	k.total += d
	k.max = max(k.max, d)
	if atLeast {
		k.atLeast++
	}
}

// siteTable holds the call sites, and the totals of the waits that are not
// aggregated by site.
type siteTable struct {
	byKey map[siteKey]*siteAgg
	list  []*siteAgg
	other [numKinds]kindAgg
}

func newSiteTable() siteTable {
	return siteTable{byKey: make(map[siteKey]*siteAgg)}
}

// get returns the aggregate for waits of kind k with waiter stack si
// (nil: unknown site).
func (t *siteTable) get(k waitKind, si *stackInfo) *siteAgg {
	if si != nil && si.siteKind == k && si.siteAgg != nil {
		return si.siteAgg
	}
	f := si.siteFrame()
	key := siteKey{kind: k, fn: f.Func, file: f.File, line: f.Line}
	s, ok := t.byKey[key]
	if !ok {
		s = &siteAgg{kind: k, frame: f, stack: si,
			holders: make(map[int]*holderAgg), burstG: trace.NoGoroutine, first: -1}
		t.byKey[key] = s
		t.list = append(t.list, s)
	}
	if s.stack == nil {
		s.stack = si
	}
	if si != nil {
		si.siteKind, si.siteAgg = k, s
	}
	return s
}

// finish blames the waiters still queued at the window's end on a
// pseudo-holder, "not released in the window".
func (t *siteTable) finish(end int64) {
	for _, s := range t.list {
		if s.kind.isLock() && s.n > 0 {
			blame := s.n*end - s.sumStart
			h := s.holderByID(holderNotFreed, nil)
			h.blame += blame
			s.blamed += blame
			s.sumStart = s.n * end
			s.lastWake = end
			s.busy += end - s.busySince
			s.busySince = end
		}
		s.flushBurst()
	}
}

// waitRec is one finished wait.
type waitRec struct {
	kind      waitKind
	site      *siteAgg
	g         trace.GoID
	start     int64
	dur       int64
	atLeast   bool
	open      bool // still going when the window ended: not served
	parks     int
	stack     *stackInfo
	unblocker trace.GoID
	ustack    *stackInfo
	own       bool // a wait of lockdiag's own goroutines
}

// waitKeeper counts the finished waits and keeps the longest ones.
type waitKeeper struct {
	keep                 int
	lockWaits, syncWaits waitHeap
	lockTotal            int64
	lockCount            int
	merged               int // parks merged into the wait before them
	atLeast              int // waits cut by the window's start or end
	// waits of goroutines blocked before the window without a stack,
	// whose site was inferred from their wakers (mergeUnknown)
	inferred int
	// lockdiag's own goroutines' waits, left out of the tables
	ownWaits int
	ownTotal int64
}

// finishWait aggregates one finished wait.
func (a *analyzer) finishWait(w waitRec) {
	if w.kind == kindRuntime {
		return
	}
	w.dur = max(w.dur, 0)
	k := &a.waits
	if w.own {
		k.ownWaits++
		k.ownTotal += w.dur
		return
	}
	if w.atLeast {
		k.atLeast++
	}
	s := w.site
	if s == nil {
		a.sites.other[w.kind].add(w.dur, w.atLeast)
		return
	}
	s.waits++
	s.total += w.dur
	s.max = max(s.max, w.dur)
	s.hist.add(w.dur)
	s.waiters.add(w.g)
	if w.atLeast {
		s.atLeast++
	}
	if s.first < 0 || w.start < s.first {
		s.first = w.start
	}
	s.lastEnd = max(s.lastEnd, w.start+w.dur)
	if !w.open {
		s.lastServed = max(s.lastServed, w.start+w.dur)
	}
	if sec := int((w.start - a.win.start) / 1e9); sec >= 0 && sec < maxSeconds {
		for len(s.perSec) <= sec {
			s.perSec = append(s.perSec, 0)
		}
		s.perSec[sec]++
	}
	if si := w.stack; si != nil && w.kind.isLock() && si.siteAgg == s {
		if si.lw.waits == 0 {
			s.stacks = append(s.stacks, si)
		}
		si.lw.waits++
		si.lw.total += w.dur
		si.lw.max = max(si.lw.max, w.dur)
	}
	if w.kind.isLock() {
		k.lockTotal += w.dur
		k.lockCount++
		k.lockWaits.offer(w, k.keep)
	} else {
		k.syncWaits.offer(w, k.keep)
	}
}

// waitHeap keeps the longest waits: a min-heap on duration.
type waitHeap []waitRec

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].dur < h[j].dur }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(waitRec)) }
func (h *waitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *waitHeap) offer(w waitRec, keep int) {
	if len(*h) < keep {
		heap.Push(h, w)
	} else if w.dur > (*h)[0].dur {
		(*h)[0] = w
		heap.Fix(h, 0)
	}
}
