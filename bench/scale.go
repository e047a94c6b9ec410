package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/diag"
)

func init() {
	register(section{
		name: "scale",
		help: "1k, 10k and 100k idle goroutines: scan cost, recorder start, idle CPU, snapshot time and the goroutine guard",
		run:  runScale,
	})
}

// parkGoroutines starts n goroutines, each parked on a channel receive at
// the bottom of depth calls, and returns once they are all on their way
// to park; release lets them go and waits for them to exit.
func parkGoroutines(n, depth int) (release func()) {
	ch := make(chan struct{})
	var started, exited sync.WaitGroup
	started.Add(n)
	exited.Add(n)
	for range n {
		go func() {
			defer exited.Done()
			parkDeep(depth, ch, &started)
		}()
	}
	started.Wait()
	sleep(100 * time.Millisecond) // the last ones reach the receive
	return func() {
		close(ch)
		exited.Wait()
	}
}

//go:noinline
func parkDeep(depth int, ch <-chan struct{}, started *sync.WaitGroup) int {
	if depth > 0 {
		return parkDeep(depth-1, ch, started) + 1
	}
	started.Done()
	<-ch
	return 0
}

// scaleRow is what one goroutine count measured.
type scaleRow struct {
	n          int
	profile    time.Duration            // one runtime.GoroutineProfile
	startTime  map[string]time.Duration // config -> Start
	idleCPU    map[string]float64       // config -> CPUs used by the process at idle
	idleAlloc  map[string]float64       // config -> bytes allocated per second at idle
	idleGCs    map[string]uint64        // config -> GC cycles in the idle window
	waiters    string                   // the lock_waiters scan: ran, or the guard's note
	snap       taken
	snapErr    error
	goroutines int
}

func runScale(w io.Writer, quick bool) error {
	counts := []int{1000, 10000, 100000}
	idle, profReps := 4*time.Second, 5
	if quick {
		idle, profReps = 2*time.Second, 3
	}
	const depth = 16
	dir, err := os.MkdirTemp("", "lockdiag-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	guard := diag.Config{}.GoroutineGuard
	if m, err := diag.New(diag.Config{Dir: dir}); err == nil {
		guard = m.Config().GoroutineGuard
	}

	var rows []scaleRow
	for _, n := range counts {
		release := parkGoroutines(n, depth)
		row := scaleRow{n: n, startTime: map[string]time.Duration{}, idleCPU: map[string]float64{}, idleAlloc: map[string]float64{}, idleGCs: map[string]uint64{}, goroutines: runtime.NumGoroutine()}

		// One lock_waiters scan is one goroutine profile plus a walk of
		// its records; the profile is the part that grows with the count.
		recs := make([]runtime.StackRecord, runtime.NumGoroutine()+1024)
		var prof []float64
		for range profReps {
			t := time.Now()
			if _, ok := runtime.GoroutineProfile(recs); !ok {
				log.Printf("bench: scale: goroutine profile buffer too small")
			}
			prof = append(prof, float64(time.Since(t)))
		}
		row.profile = time.Duration(median(prof))
		recs = nil

		for _, c := range []config{nothingConfig("nothing"), bareRecorderConfig(), fullConfig(dir)} {
			t := time.Now()
			r, err := c.start()
			if err != nil {
				release()
				return fmt.Errorf("%s: %w", c.name, err)
			}
			row.startTime[c.name] = time.Since(t)
			sleep(500 * time.Millisecond)
			c0, a0, g0, t0 := selfCPU(), allocBytes(), gcCycles(), time.Now()
			sleep(idle)
			el := time.Since(t0).Seconds()
			row.idleCPU[c.name] = (selfCPU() - c0) / el
			row.idleAlloc[c.name] = float64(allocBytes()-a0) / el
			row.idleGCs[c.name] = gcCycles() - g0
			if r.mon != nil {
				st := r.mon.Status()
				switch {
				case st.WaitSitesNote != "":
					row.waiters = st.WaitSitesNote
				case !st.WaitSitesTime.IsZero():
					row.waiters = fmt.Sprintf("ran (%v ago)", time.Since(st.WaitSitesTime).Round(100*time.Millisecond))
				default:
					row.waiters = "not yet run"
				}
				row.snap, row.snapErr = takeSnapshot(r.mon, diag.SnapshotOptions{Reason: "bench", Wall: time.Second})
			}
			r.stop()
		}
		release()
		runtime.GC()
		rows = append(rows, row)
		log.Printf("bench: scale: %d goroutines done", n)
	}

	fmt.Fprintf(w, "## Scale\n\n")
	fmt.Fprintf(w, "N goroutines parked on a channel receive %d calls deep, nothing else running. For each N: one `runtime.GoroutineProfile`\n", depth)
	fmt.Fprintf(w, "(median of %d; it is what a lock_waiters scan costs: every 1 s at most, further apart within the scan's CPU budget), then each configuration in turn: its Start,\n", profReps)
	fmt.Fprintf(w, "0.5 s, then the CPU the idle process uses over %v (the recorder's 1 s generations and lockdiag's sampling are the only work),\n", idle)
	fmt.Fprintf(w, "and for lockdiag the state of its lock_waiters scan and one snapshot with a 1 s wall-clock profile (as an automatic one).\n")
	fmt.Fprintf(w, "The goroutine guard is %d: above it the wall-clock profile and the full goroutine dump (which stop the world) are skipped;\n", guard)
	fmt.Fprintf(w, "the lock_waiters scan runs at any count, as often as its CPU budget allows (the incidents section has its cadence and cost).\n\n")

	fmt.Fprintf(w, "| goroutines | one goroutine profile | per goroutine | lock_waiters scan at defaults | Start: bare recorder | Start: full defaults |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", goroutineLabel(r.n), fmtDur(r.profile), fmtDur(r.profile/time.Duration(r.goroutines)),
			r.waiters, fmtDur(r.startTime["bare recorder"]), fmtDur(r.startTime["full defaults"]))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "The idle process over %v: CPUs used (1.000 = one core busy), bytes allocated per second and GC cycles in the window.\n", idle)
	fmt.Fprintf(w, "Each 1 s trace generation restates every goroutine, so the recorder's cost grows with the goroutine count even when\n")
	fmt.Fprintf(w, "nothing runs; a GC cycle (which scans every goroutine stack) falls into some windows and not others, which makes\n")
	fmt.Fprintf(w, "single windows differ.\n\n")
	fmt.Fprintf(w, "| goroutines | nothing: CPU | alloc | GCs | bare recorder: CPU | alloc | GCs | full defaults: CPU | alloc | GCs |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |", goroutineLabel(r.n))
		for _, c := range []string{"nothing", "bare recorder", "full defaults"} {
			fmt.Fprintf(w, " %.3f | %s/s | %d |", r.idleCPU[c], fmtBytes(r.idleAlloc[c]), r.idleGCs[c])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "A snapshot at each count (`m.Snapshot` with `Wall: 1s`):\n\n")
	fmt.Fprintf(w, "| goroutines | m.Snapshot wall time | trace window | trace.out (write) | goroutines.txt | analysis | skipped by the guard |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.snapErr != nil {
			fmt.Fprintf(w, "| %s | failed: %v | | | | | |\n", goroutineLabel(r.n), r.snapErr)
			continue
		}
		took := func(part string) string {
			if n, ok := r.snap.part(part); ok {
				return fmtDur(n.Took)
			}
			return ""
		}
		var skipped []string
		for _, n := range r.snap.meta.Collection {
			if n.Status == "skipped" {
				skipped = append(skipped, fmt.Sprintf("%s (%s)", n.Part, n.Detail))
			}
		}
		if len(skipped) == 0 {
			skipped = []string{"nothing"}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", goroutineLabel(r.n), fmtDur(r.snap.wall), fmtBytes(float64(r.snap.traceBytes())),
			took("trace.out"), took("goroutines.txt"), took("analysis"), strings.Join(skipped, "; "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "The snapshot's trace covers only the %v the monitor ran. Above the guard the trace, the goroutine dump (debug=1, one\n", 500*time.Millisecond+idle)
	fmt.Fprintf(w, "goroutine profile) and the profiles are still collected, and the snapshot says what it skipped.\n\n")
	return nil
}

var gcSamples = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}

func readGC() (allocs, cycles uint64) {
	metrics.Read(gcSamples)
	if gcSamples[0].Value.Kind() == metrics.KindUint64 {
		allocs = gcSamples[0].Value.Uint64()
	}
	if gcSamples[1].Value.Kind() == metrics.KindUint64 {
		cycles = gcSamples[1].Value.Uint64()
	}
	return allocs, cycles
}

func allocBytes() uint64 { a, _ := readGC(); return a }

func gcCycles() uint64 { _, c := readGC(); return c }

// goroutineLabel prints 1000 as "1k", 100000 as "100k".
func goroutineLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
