package lockgraph

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/lockdiag/lockdiag/internal/gdump"
)

const (
	// maxObjectSpan bounds how far above the start of its object a lock
	// is assumed to be: pointers further below a lock are not considered.
	maxObjectSpan = 4096
	// maxEnclosing bounds how far below the waiters' object an enclosing
	// object may start to count as a (medium) holder.
	maxEnclosing = 512
	// minPointer: smaller words are never addresses.
	minPointer = 1 << 16
)

// wait is a goroutine parked on a lock, as classified from its frames.
type wait struct {
	g        *gdump.Goroutine
	kind     WaitKind
	lockKind LockKind
	addr     uint64 // the lock's address: from the lock frames, or derived
	derived  bool   // addr is the object plus a learned offset
	site     int    // index of the call site in g.Frames, -1 if none
	siteType string // "pkg.(*T)" when the site is a method
	recv     uint64 // the site method's receiver if printed accurately
	obj      uint64 // the object the lock is in, from the site frame
	once     bool   // the Mutex is a sync.Once's
	ls       *lockState
	waiter   int // index in ls.l.Waiters
}

// ref is an argument word near a lock.
type ref struct {
	g     *gdump.Goroutine
	frame int
	value uint64
	typ   string // receiver type when the word is a method's receiver
}

type lockState struct {
	l       *Lock
	waits   []*wait
	upper   uint64 // the highest address the lock can be at: Addr, else Object
	refs    []ref
	objType string // internal type key of Object, if known
}

type analysis struct {
	d      *gdump.Dump
	opts   Options
	waits  []*wait
	byG    map[*gdump.Goroutine]*wait
	gap    map[string]uint64   // min distance between two receivers of a type
	offs   map[string][]uint64 // learned lock offsets, by type and lock kind
	states []*lockState
	byType map[string][]frameRef // built on first use
	byFunc map[string][]frameRef
}

func newAnalysis(d *gdump.Dump, opts Options) *analysis {
	return &analysis{
		d:    d,
		opts: opts,
		byG:  make(map[*gdump.Goroutine]*wait),
		gap:  make(map[string]uint64),
		offs: make(map[string][]uint64),
	}
}

func (a *analysis) run() *Result {
	res := &Result{Format: a.d.Format}
	for _, g := range a.d.Goroutines {
		if w := classify(g); w != nil {
			a.waits = append(a.waits, w)
			a.byG[g] = w
		}
	}
	if len(a.waits) == 0 {
		return res
	}
	detail := a.d.Format != gdump.Aggregated
	if detail {
		a.learnGaps()
		a.objects()
	}
	a.group()
	if detail {
		a.collectRefs()
	}
	for _, s := range a.states {
		a.holders(s, detail)
		res.Locks = append(res.Locks, s.l)
	}
	slices.SortStableFunc(res.Locks, func(x, y *Lock) int {
		return cmp.Compare(countWaiters(y), countWaiters(x))
	})
	if detail {
		res.Deadlocks = a.deadlocks()
	}
	res.Chains = a.chains(res.Deadlocks)
	return res
}

func countWaiters(l *Lock) int {
	n := 0
	for _, w := range l.Waiters {
		n += max(w.G.Count, 1)
	}
	return n
}

// classify recognizes a goroutine parked on a Mutex or RWMutex (see
// vocab.go) and returns nil for any other.
func classify(g *gdump.Goroutine) *wait {
	if g.State != "" && !lockStates[g.State] {
		return nil
	}
	fr := g.Frames
	sema := -1
	for i := 0; i < len(fr) && i < 8; i++ { // SIGQUIT dumps show gopark, goparkunlock, semacquire1 first
		if semaFuncs[fr[i].Func] {
			sema = i
			break
		}
	}
	if sema < 0 {
		return nil
	}
	w := &wait{g: g, site: -1}
	outer, sawSlow := notLockFrame, false
	j := sema + 1
	for ; j < len(fr); j++ {
		fn := fr[j].Func
		lf, ok := lockFrames[fn]
		if !ok {
			if fn == onceSlow {
				w.once = true
			}
			if strings.HasPrefix(fn, "sync.") || strings.HasPrefix(fn, "internal/sync.") {
				continue
			}
			break
		}
		if lf == lockSlowFrame {
			sawSlow = true
		}
		outer = lf
		if v, ok := fr[j].Receiver(); ok && v >= minPointer && w.addr == 0 {
			w.addr = v
		}
	}
	for ; j < len(fr); j++ {
		if !isRuntimeFrame(fr[j].Func) {
			w.site = j
			break
		}
	}
	semaFn := fr[sema].Func
	switch {
	case outer == rwRLockFrame:
		w.kind = WaitRLock
	case outer == rwLockFrame && sawSlow:
		w.kind = WaitWriteBehindWriter
	case outer == rwLockFrame:
		w.kind = WaitWriteBehindReaders
	case outer == notLockFrame && semaFn == "sync.runtime_SemacquireRWMutexR":
		w.kind = WaitRLock
	case outer == notLockFrame && semaFn == "sync.runtime_SemacquireRWMutex":
		w.kind = WaitWriteBehindReaders
	default:
		w.kind = WaitLock
	}
	w.lockKind = Mutex
	switch {
	case w.kind != WaitLock:
		w.lockKind = RWMutex
	case w.once:
		w.lockKind = Once
	}
	if w.site >= 0 {
		f := &fr[w.site]
		if t, ok := recvType(f.Func); ok {
			w.siteType = t
			if v, ok := f.Receiver(); ok && v >= minPointer {
				w.recv = v
			}
		}
	}
	return w
}

// learnGaps records, for each receiver type, the smallest distance
// between two distinct receivers of that type in the dump: no object of
// the type is larger, so a lock that far above a receiver is not in it.
func (a *analysis) learnGaps() {
	seen := make(map[string][]uint64)
	for _, g := range a.d.Goroutines {
		for i := range g.Frames {
			f := &g.Frames[i]
			t, ok := recvType(f.Func)
			if !ok {
				continue
			}
			if v, ok := f.Receiver(); ok && v >= minPointer && len(seen[t]) < 1<<14 {
				seen[t] = append(seen[t], v)
			}
		}
	}
	for t, vs := range seen {
		slices.Sort(vs)
		vs = slices.Compact(vs)
		for i := 1; i < len(vs); i++ {
			if d := vs[i] - vs[i-1]; a.gap[t] == 0 || d < a.gap[t] {
				a.gap[t] = d
			}
		}
	}
}

// plausible reports whether a lock can be off bytes into an object of
// type t ("" when unknown).
func (a *analysis) plausible(t string, off uint64) bool {
	if off >= maxObjectSpan {
		return false
	}
	if g := a.gap[t]; t != "" && g != 0 && off >= g {
		return false
	}
	return true
}

// objects finds each waiter's object from its call site, learns lock
// offsets per receiver type, and derives the address of locks whose
// waiters show only their object.
func (a *analysis) objects() {
	for _, w := range a.waits {
		if w.site < 0 {
			continue
		}
		f := &w.g.Frames[w.site]
		if w.addr == 0 {
			w.obj = w.recv
			continue
		}
		var best uint64
		for i, arg := range f.Args {
			if arg.Kind != gdump.Word || arg.Inaccurate || arg.Value < minPointer || arg.Value > w.addr {
				continue
			}
			t := ""
			if i == 0 && arg.Param == 0 {
				t = w.siteType
			}
			if a.plausible(t, w.addr-arg.Value) && arg.Value > best {
				best = arg.Value
			}
		}
		w.obj = best
		if best != 0 && best == w.recv {
			k := offKey(w.siteType, w.lockKind)
			if off := w.addr - best; !slices.Contains(a.offs[k], off) {
				a.offs[k] = append(a.offs[k], off)
			}
		}
	}
	for _, w := range a.waits {
		if w.addr != 0 || w.obj == 0 || w.siteType == "" {
			continue
		}
		if offs := a.offs[offKey(w.siteType, w.lockKind)]; len(offs) == 1 {
			w.addr, w.derived = w.obj+offs[0], true
		}
	}
}

func offKey(t string, k LockKind) string { return t + "|" + k.String() }

// group puts the waiters of each lock together: by address, else by
// object, else by call site.
func (a *analysis) group() {
	byKey := make(map[string]*lockState)
	objToAddr := make(map[uint64]*lockState) // nil value: ambiguous
	key := func(w *wait) string {
		switch {
		case w.addr != 0:
			return fmt.Sprintf("a%x", w.addr)
		case w.obj != 0:
			return fmt.Sprintf("o%x", w.obj)
		case w.site >= 0:
			f := &w.g.Frames[w.site]
			return fmt.Sprintf("s%s %s:%d", f.Func, f.File, f.Line)
		}
		return "s?"
	}
	// Goroutines in id order (input order for debug=1).
	waits := slices.Clone(a.waits)
	slices.SortStableFunc(waits, func(x, y *wait) int { return cmp.Compare(x.g.ID, y.g.ID) })
	for _, w := range waits {
		k := key(w)
		s := byKey[k]
		if s == nil {
			s = &lockState{l: &Lock{}}
			byKey[k] = s
			a.states = append(a.states, s)
		}
		s.waits = append(s.waits, w)
		if w.addr != 0 && w.obj != 0 {
			if prev, ok := objToAddr[w.obj]; ok && prev != s {
				objToAddr[w.obj] = nil
			} else {
				objToAddr[w.obj] = s
			}
		}
	}
	// An RWMutex known by its object (readers) and by its address (a
	// writer behind a writer with the same receiver) is one lock.
	kept := a.states[:0]
	for _, s := range a.states {
		w0 := s.waits[0]
		if w0.addr == 0 && w0.obj != 0 {
			if t := objToAddr[w0.obj]; t != nil && t != s && t.waits[0].lockKind == RWMutex {
				t.waits = append(t.waits, s.waits...)
				slices.SortStableFunc(t.waits, func(x, y *wait) int { return cmp.Compare(x.g.ID, y.g.ID) })
				continue
			}
		}
		kept = append(kept, s)
	}
	a.states = kept
	for _, s := range a.states {
		l := s.l
		l.Kind = Mutex
		objVotes := make(map[uint64]int)
		for i, w := range s.waits {
			w.ls, w.waiter = s, i
			if w.lockKind != Mutex {
				l.Kind = w.lockKind
			}
			if w.addr != 0 && l.Addr == 0 {
				l.Addr = w.addr
			}
			if w.obj != 0 {
				objVotes[w.obj]++
			}
			l.Waiters = append(l.Waiters, Waiter{G: w.g, Kind: w.kind, Site: w.site})
		}
		for o, n := range objVotes {
			if n > objVotes[l.Object] || (n == objVotes[l.Object] && o > l.Object) {
				l.Object = o
			}
		}
		for _, w := range s.waits {
			if w.obj == l.Object && w.obj != 0 && w.obj == w.recv {
				s.objType = w.siteType
				break
			}
		}
		l.Type = typeName(s.objType)
		if w0 := s.waits[0]; w0.site >= 0 {
			l.Site = w0.g.Frames[w0.site]
		}
		switch {
		case l.Addr != 0:
			l.Identity = ByAddress
		case l.Object != 0:
			l.Identity = ByObject
		default:
			l.Identity = BySite
		}
		s.upper = l.Addr
		if s.upper == 0 {
			s.upper = l.Object
		}
	}
}

// collectRefs finds, in every goroutine's frames outside the runtime,
// the accurate argument words at most maxObjectSpan below a lock.
func (a *analysis) collectRefs() {
	type window struct {
		lo, hi uint64
		s      *lockState
	}
	var ws []window
	for _, s := range a.states {
		if s.upper == 0 {
			continue
		}
		lo := uint64(0)
		if s.upper > maxObjectSpan {
			lo = s.upper - maxObjectSpan
		}
		ws = append(ws, window{lo, s.upper, s})
	}
	if len(ws) == 0 {
		return
	}
	slices.SortFunc(ws, func(x, y window) int { return cmp.Compare(x.lo, y.lo) })
	// A goroutine passes the same pointer down many frames (a worker
	// pool's channel, a recursion): one ref per goroutine, lock and value,
	// the innermost; a waiter's frames below and above its call site are
	// kept apart (the outer ones say it may hold the lock already).
	type seenRef struct {
		s     *lockState
		v     uint64
		outer bool
	}
	var seen []seenRef
	for _, g := range a.d.Goroutines {
		seen = seen[:0]
		for fi := range g.Frames {
			f := &g.Frames[fi]
			if isRuntimeFrame(f.Func) || len(f.Args) == 0 {
				continue
			}
			var recvT string
			for ai, arg := range f.Args {
				if arg.Kind != gdump.Word || arg.Inaccurate || arg.Value < minPointer {
					continue
				}
				v := arg.Value
				// Windows containing v start in [v-maxObjectSpan, v].
				i, _ := slices.BinarySearchFunc(ws, v+1, func(x window, t uint64) int { return cmp.Compare(x.lo, t) })
				for k := i - 1; k >= 0 && ws[k].lo+maxObjectSpan >= v; k-- {
					if v > ws[k].hi {
						continue
					}
					t := ""
					if ai == 0 && arg.Param == 0 {
						if recvT == "" {
							recvT, _ = recvType(f.Func)
						}
						t = recvT
					}
					key := seenRef{ws[k].s, v, false}
					if w := a.byG[g]; w != nil && w.ls == ws[k].s && fi > w.site {
						key.outer = true
					}
					if t == "" && slices.Contains(seen, key) {
						continue
					}
					seen = append(seen, key)
					ws[k].s.refs = append(ws[k].s.refs, ref{g: g, frame: fi, value: v, typ: t})
				}
			}
		}
	}
}
