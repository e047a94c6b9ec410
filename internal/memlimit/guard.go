package memlimit

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The guard lowers the Go runtime's soft memory limit while a snapshot
// runs, so that the garbage its parse makes is collected as it goes
// instead of letting the heap double first (GOGC's pacing over a heap that
// already holds the recorder's ring). Guards nest: the lowest limit wins,
// and the host's own limit comes back when the last guard is released,
// unless the host set another one meanwhile.
var guard struct {
	mu   sync.Mutex
	n    int   // guards held
	host int64 // the limit before the first guard
	set  int64 // the limit the guards set, or 0 if they set none
}

// Guard sets the soft memory limit to the memory the Go runtime holds now
// plus extra bytes, unless a limit at or below that is already set, and
// returns the function that undoes it. While it holds, the runtime
// collects garbage sooner when the heap nears the limit; the limit being
// soft, it never fails an allocation, and the runtime bounds the CPU the
// collector takes then (about half of GOMAXPROCS at most).
func Guard(extra int64) (release func()) {
	guard.mu.Lock()
	defer guard.mu.Unlock()
	cur := debug.SetMemoryLimit(-1)
	if guard.n == 0 {
		guard.host, guard.set = cur, 0
	}
	guard.n++
	want := int64(math.MaxInt64)
	if used, ok := inUse(); ok {
		want = used + extra
	}
	if want < cur {
		debug.SetMemoryLimit(want)
		guard.set = want
	}
	var once sync.Once
	return func() { once.Do(releaseGuard) }
}

func releaseGuard() {
	guard.mu.Lock()
	defer guard.mu.Unlock()
	guard.n--
	if guard.n > 0 || guard.set == 0 {
		return
	}
	// Put the host's limit back, unless the host changed it meanwhile.
	if debug.SetMemoryLimit(-1) == guard.set {
		debug.SetMemoryLimit(guard.host)
	}
	guard.set = 0
}

// hostLimit is the soft memory limit as the host set it: a guard's own is
// looked through.
func hostLimit() int64 {
	guard.mu.Lock()
	defer guard.mu.Unlock()
	cur := debug.SetMemoryLimit(-1)
	if guard.n > 0 && guard.set != 0 && cur == guard.set {
		return guard.host
	}
	return cur
}

// inUse is the memory the Go runtime holds from the OS and has not
// returned: what the soft limit counts.
func inUse() (int64, bool) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64()), true
}
