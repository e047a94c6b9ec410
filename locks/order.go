package locks

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The lock-order check.
//
// While it is on, every named lock acquisition is pushed on a list of the
// locks its goroutine holds (keyed by goroutine id, in shards), and every
// release pops it. When a goroutine that holds A is about to wait for B, the
// ordered pair (A, B) is an edge; the first time an edge is seen, its stack
// is recorded, and if the reverse edge (B, A) is already known, the pair is
// an inversion: two goroutines running those two paths at once can
// deadlock. It is reported then, before this goroutine waits for B. Each
// pair is reported once.
//
// A TryLock cannot wait, so it adds no edge towards the lock it takes; the
// lock is still pushed, so that later acquisitions are ordered after it. Only
// inversions of two locks are found, not longer cycles (A, B, C, A).

const (
	orderShards = 64
	maxHeld     = 16      // locks held at once per goroutine that the check follows
	maxEdges    = 1 << 14 // edges kept; later new edges are not checked
	maxReports  = 64      // inversions kept
	envOrder    = "LOCKDIAG_LOCK_ORDER"
)

var order struct {
	on      atomic.Bool
	envOnce sync.Once

	shards [orderShards]heldShard

	mu      sync.RWMutex // guards the fields below
	edges   map[edgeKey]*edge
	reports []Inversion
	dropped int // inversions not kept, and new edges not checked
}

type heldShard struct {
	mu   sync.Mutex
	held map[uint64]*heldList // goroutine id -> the named locks it holds
	_    [48]byte             // 64 bytes a shard, so that neighbours rarely share a cache line
}

type heldList struct {
	n     int
	locks [maxHeld]*state
}

var heldPool = sync.Pool{New: func() any { return new(heldList) }}

type edgeKey struct{ a, b uint64 } // state ids: a held while b was locked

type edge struct {
	g     uint64
	stack []uintptr
}

// Inversion is a potential deadlock between two named locks: one goroutine
// locked B while it held A, and another (or the same) locked A while it held
// B. Had they run at the same time, each could have waited for the other
// forever.
type Inversion struct {
	// A and B are the names of the locks. A-then-B is the order seen
	// first.
	A, B string
	// GoroutineAB is the id of the goroutine that locked B while holding
	// A, and StackAB its stack then, starting at the caller of Lock (or
	// RLock), as from [runtime.Callers]: the first time that order was
	// seen.
	GoroutineAB uint64
	StackAB     []uintptr
	// GoroutineBA and StackBA are the same for B-then-A, the order seen
	// second, at Time.
	GoroutineBA uint64
	StackBA     []uintptr
	// Time is when the inversion was found: before GoroutineBA waited for
	// A.
	Time time.Time
}

// SetOrderCheck turns the lock-order check on or off for all named locks. It
// is off by default unless the environment variable LOCKDIAG_LOCK_ORDER is
// "on" (or "1" or "true") when the first lock is named; SetOrderCheck
// overrides that. The check needs goroutine ids: where they are unavailable
// (see the package doc), SetOrderCheck(true) returns an error that matches
// [errors.ErrUnsupported] and the check stays off.
//
// The check costs: it takes a sharded mutex on every named lock and unlock,
// and a process-wide read lock when a lock is taken while another is held
// (a write lock and a stack trace the first time a pair is seen). Turn it on
// in tests, in staging, or for a while in production, and turn it on before
// the locks are used: it follows only the holds that began while it was on,
// and it forgets every hold when turned off. Inversions found are read with
// [Inversions]. SetOrderCheck is safe for concurrent use.
func SetOrderCheck(on bool) error {
	probeRuntime()
	orderFromEnv()
	if on && goidOffset == 0 {
		return fmt.Errorf("locks: the lock-order check needs goroutine ids, which are unavailable on %s/%s: %w",
			runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
	}
	setOrder(on)
	return nil
}

// orderFromEnv applies LOCKDIAG_LOCK_ORDER, once.
func orderFromEnv() {
	order.envOnce.Do(func() {
		switch os.Getenv(envOrder) {
		case "on", "1", "true":
			if goidOffset != 0 {
				setOrder(true)
			}
		}
	})
}

func setOrder(on bool) {
	if order.on.Swap(on) == on || on {
		return
	}
	// Turned off: forget every hold, so that turning it on again starts
	// from empty lists rather than from stale ones.
	for i := range order.shards {
		sh := &order.shards[i]
		sh.mu.Lock()
		clear(sh.held)
		sh.mu.Unlock()
	}
}

// Inversions appends the inversions found so far to dst, in the order they
// were found, and returns the extended slice and the number of inversions
// that were found but not kept (at most 64 are kept) or could not be checked
// (at most 16384 distinct ordered pairs are followed). The stacks are shared
// with later calls and must not be modified. Inversions is safe for
// concurrent use.
func Inversions(dst []Inversion) ([]Inversion, int) {
	order.mu.RLock()
	defer order.mu.RUnlock()
	return append(dst, order.reports...), order.dropped
}

// orderLock is called when goroutine g is about to lock s (wait: it may
// wait) or has locked it with TryLock (!wait).
func (s *state) orderLock(g uint64, wait bool) {
	if g == unknownG {
		return
	}
	sh := &order.shards[g%orderShards]
	var held [maxHeld]*state
	sh.mu.Lock()
	if sh.held == nil {
		sh.held = make(map[uint64]*heldList)
	}
	l := sh.held[g]
	if l == nil {
		l = heldPool.Get().(*heldList)
		sh.held[g] = l
	}
	k := copy(held[:], l.locks[:l.n])
	if l.n < maxHeld {
		l.locks[l.n] = s
		l.n++
	}
	sh.mu.Unlock()
	if !wait {
		return
	}
	for _, h := range held[:k] {
		if h != s {
			checkEdge(h, s, g)
		}
	}
}

// orderUnlock is called when the hold of s by goroutine g ends.
func (s *state) orderUnlock(g uint64) {
	if g == 0 || g == unknownG {
		return
	}
	sh := &order.shards[g%orderShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l := sh.held[g]
	if l == nil {
		return
	}
	for i := l.n - 1; i >= 0; i-- {
		if l.locks[i] == s {
			copy(l.locks[i:], l.locks[i+1:l.n])
			l.n--
			l.locks[l.n] = nil
			break
		}
	}
	if l.n == 0 {
		delete(sh.held, g)
		heldPool.Put(l)
	}
}

// checkEdge records that goroutine g is about to lock b while holding a,
// and reports an inversion if b was ever held while a was locked.
func checkEdge(a, b *state, g uint64) {
	key := edgeKey{a.id, b.id}
	order.mu.RLock()
	known := order.edges[key] != nil
	order.mu.RUnlock()
	if known {
		return
	}
	var pcs [stackDepth]uintptr
	// Skip Callers, checkEdge, orderLock, lockSlow (or rlockSlow) and
	// Lock (or RLock).
	n := runtime.Callers(5, pcs[:])
	e := &edge{g: g, stack: append([]uintptr(nil), pcs[:n]...)}

	order.mu.Lock()
	defer order.mu.Unlock()
	if order.edges[key] != nil {
		return
	}
	if len(order.edges) >= maxEdges {
		order.dropped++
		return
	}
	if order.edges == nil {
		order.edges = make(map[edgeKey]*edge)
	}
	order.edges[key] = e
	rev := order.edges[edgeKey{b.id, a.id}]
	if rev == nil {
		return
	}
	if len(order.reports) >= maxReports {
		order.dropped++
		return
	}
	order.reports = append(order.reports, Inversion{
		A: *b.name.Load(), B: *a.name.Load(),
		GoroutineAB: rev.g, StackAB: rev.stack,
		GoroutineBA: g, StackBA: e.stack,
		Time: time.Now(),
	})
}
