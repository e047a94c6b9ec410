package diag

import (
	"bytes"
	"cmp"
	"math"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"

	"github.com/lockdiag/lockdiag/internal/gdump"
	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/lockreport"
)

// waiterScanner counts goroutines parked in Mutex/RWMutex acquire from a
// goroutine profile. It keeps its buffers and caches between scans; it is
// used by the sampling goroutine only.
type waiterScanner struct {
	records []runtime.StackRecord
	// sched reads the goroutines runnable and running (see ready).
	sched []metrics.Sample
	// pcKind caches, per program counter, whether it is a semaphore
	// acquire of a lock (lockNone otherwise).
	pcKind map[uintptr]uint8
	// sites caches the wait site of each distinct stack.
	sites map[[32]uintptr]siteKey
}

type siteKey struct {
	kind, fn, file string
	line           int
	// named: the goroutines wait in a named lock's slow path (package
	// locks), whose lock the monitor follows by its state, not by site.
	named bool
}

const (
	pcUnknown uint8 = iota
	pcOther
	pcLockAcquire
)

func newWaiterScanner() *waiterScanner {
	return &waiterScanner{
		pcKind: make(map[uintptr]uint8),
		sites:  make(map[[32]uintptr]siteKey),
		sched:  []metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}, {Name: "/sched/goroutines/running:goroutines"}},
	}
}

// ready returns the goroutines runnable or running now, or NaN if the
// runtime does not say (before Go 1.26): a goroutine that a scan finds in
// a lock's wait path may be one of them, woken and waiting for a CPU
// (stuckTracker).
func (w *waiterScanner) ready() float64 {
	metrics.Read(w.sched)
	n := 0.0
	for _, s := range w.sched {
		if s.Value.Kind() != metrics.KindUint64 {
			return math.NaN()
		}
		n += float64(s.Value.Uint64())
	}
	return n
}

// scan returns the number of goroutines parked on locks and the sites
// they wait at, most waiters first.
func (w *waiterScanner) scan() (int, []lockreport.ParkedSite) {
	for {
		n, ok := runtime.GoroutineProfile(w.records)
		if ok {
			return w.count(w.records[:n])
		}
		// Room for growth while the profile is taken again.
		w.records = make([]runtime.StackRecord, n+n/4+16)
	}
}

func (w *waiterScanner) count(records []runtime.StackRecord) (int, []lockreport.ParkedSite) {
	// Bound the caches: a program with ever-new stacks must not grow them
	// forever.
	if len(w.sites) > 4096 {
		clear(w.sites)
	}
	if len(w.pcKind) > 1<<16 {
		clear(w.pcKind)
	}
	total := 0
	bySite := make(map[siteKey]int)
	for i := range records {
		r := &records[i]
		if !w.parkedOnLock(r.Stack0[:]) {
			continue
		}
		total++
		key, ok := w.sites[r.Stack0]
		if !ok {
			key = lockSite(r.Stack())
			w.sites[r.Stack0] = key
		}
		bySite[key]++
	}
	sites := make([]lockreport.ParkedSite, 0, len(bySite))
	for k, n := range bySite {
		sites = append(sites, lockreport.ParkedSite{Kind: k.kind, Func: k.fn, File: k.file, Line: k.line, Waiters: n, Named: k.named})
	}
	slices.SortFunc(sites, func(a, b lockreport.ParkedSite) int {
		if c := cmp.Compare(b.Waiters, a.Waiters); c != 0 {
			return c
		}
		return cmp.Compare(a.Func, b.Func)
	})
	return total, sites
}

// parkedOnLock reports whether one of the first frames of a goroutine's
// stack is the runtime's semaphore acquire for sync.Mutex or
// sync.RWMutex (the stack starts at runtime.gopark).
func (w *waiterScanner) parkedOnLock(stk []uintptr) bool {
	for _, pc := range stk[:min(len(stk), 6)] {
		if pc == 0 {
			return false
		}
		k := w.pcKind[pc]
		if k == pcUnknown {
			k = pcOther
			if f := runtime.FuncForPC(pc - 1); f != nil && stacks.IsLockAcquire(f.Name()) {
				k = pcLockAcquire
			}
			w.pcKind[pc] = k
		}
		if k == pcLockAcquire {
			return true
		}
	}
	return false
}

// blockedAtSites counts, by the goroutine dump, the goroutines at each
// lock site: those blocked in the lock (their state is the lock's wait
// reason, "sync.Mutex.Lock") and all whose stacks are in its wait path,
// woken ones waiting for a CPU included (a scan cannot tell them apart).
// The dump costs about a microsecond per goroutine and stops the world
// for it: the stuck tracker asks only before it calls a site stuck, and
// never above guard goroutines.
func blockedAtSites(guard int) (map[siteKey]siteCount, bool) {
	if runtime.NumGoroutine() > guard {
		return nil, false
	}
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		return nil, false
	}
	d, err := gdump.Parse(&buf)
	if err != nil {
		return nil, false
	}
	out := make(map[siteKey]siteCount)
	for _, g := range d.Goroutines {
		k, ok := dumpSite(g.Frames)
		if !ok {
			continue
		}
		c := out[k]
		c.all++
		if g.State == "sync."+k.kind {
			c.blocked++
		}
		out[k] = c
	}
	return out, true
}

// dumpSite is lockSite for a goroutine of a dump: the site of the lock
// method on its stack, if there is one.
func dumpSite(fs []gdump.Frame) (siteKey, bool) {
	key := siteKey{}
	for _, f := range fs {
		if p := stacks.LockMethod(f.Func); p != stacks.PrimNone {
			key.kind = p.String()
		} else if !stacks.Internal(f.Func) {
			if key.kind == "" {
				return key, false
			}
			key.fn, key.file, key.line = f.Func, f.File, f.Line
			return key, true
		}
	}
	return key, false
}

// lockSite finds the lock method and its caller in a parked goroutine's
// stack: the outermost sync frame (or package locks' frame) is the method,
// the frame after it the site.
func lockSite(stk []uintptr) siteKey {
	frames := runtime.CallersFrames(stk)
	key := siteKey{kind: "Mutex.Lock"}
	for {
		f, more := frames.Next()
		if stacks.NamedWait(f.Function) {
			key.named = true
		}
		if p := stacks.LockMethod(f.Function); p != stacks.PrimNone {
			key.kind = p.String()
		} else if !stacks.Internal(f.Function) {
			key.fn, key.file, key.line = f.Function, f.File, f.Line
			return key
		}
		if !more {
			break
		}
	}
	key.fn = "?"
	return key
}
