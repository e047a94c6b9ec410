package diag

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
)

// goroutineLeakProfile adds goroutineleak.pb.gz where the runtime has the
// goroutine-leak profile (Go 1.27 and later): goroutines blocked on
// something that no runnable goroutine can reach any more, sync.Mutex and
// sync.Cond included, found by a garbage collection cycle that the write
// runs. A lock whose holder leaked shows its waiters here. Before Go 1.27
// (or when the runtime lacks it) the bundle notes that it is off.
//
// The check costs a GC cycle, so it is skipped above the goroutine guard.
// A goroutine it reports stays parked for good: the runtime treats waking
// it as a fatal error (go1.27.3: "bad g->status in ready"), which only a
// program that revives the primitive (a weak pointer, a finalizer) could
// do; /debug/pprof/goroutineleak has the same effect.
func (m *Monitor) goroutineLeakProfile(b *bundle.Builder, goroutines int) {
	t0 := time.Now()
	p := pprof.Lookup("goroutineleak")
	switch {
	case p == nil:
		b.Note(bundle.GoroutineLeakFile, "off", "no goroutineleak profile in "+runtime.Version()+" (Go 1.27 has it)", t0)
		return
	case goroutines > m.cfg.GoroutineGuard:
		b.Note(bundle.GoroutineLeakFile, "skipped", fmt.Sprintf("%d goroutines is above the guard of %d (the leak check is a GC cycle over every goroutine)", goroutines, m.cfg.GoroutineGuard), t0)
		return
	}
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, 0); err != nil {
		b.Note(bundle.GoroutineLeakFile, "failed", err.Error(), t0)
		return
	}
	b.Add(bundle.GoroutineLeakFile, buf.Bytes())
	b.Note(bundle.GoroutineLeakFile, "ok", fmt.Sprintf("%d leaked goroutines", p.Count()), t0)
}
