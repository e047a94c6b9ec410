package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/lockdiag/lockdiag/diag"
)

var steadyFor = flag.Duration("steady", 12*time.Minute, "how long the steady section runs lockdiag beside each workload (its duty horizon is 10m)")

func init() {
	register(section{
		name: "steady",
		help: "auto (the default) for minutes beside a workload in permanent contention and an HTTP service: share of time the recorder records, throughput vs nothing",
		run:  runSteady,
	})
}

// runSteady runs auto for minutes beside the workloads the short windows
// of the overhead section cannot speak for: a workload whose contention
// never ends gives armed tracing an early warning at every tick, and only
// the recorder's duty (budget over cost of a ten-minute horizon) keeps it
// off most of the time. A fresh monitor has its whole allowance at once,
// so the first minutes record more than the average; the second half of
// a run longer than the horizon is the steady state.
func runSteady(w io.Writer, quick bool) error {
	run, base := *steadyFor, 10*time.Second
	if quick {
		run, base = 20*time.Second, 2*time.Second
	}
	dir, err := os.MkdirTemp("", "lockdiag-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	half := run / 2
	fmt.Fprintf(w, "## Steady state of auto\n\n")
	fmt.Fprintf(w, "Each workload runs %v of nothing, then lockdiag at its defaults for %v, then %v of nothing again. The status is read\n", base, run, base)
	fmt.Fprintf(w, "every 100 ms for whether the recorder records; the throughput of each half of lockdiag's run is compared with the mean of the\n")
	fmt.Fprintf(w, "two runs of nothing (one run each: rough figures; the A/B tables of the overhead section are the careful ones).\n\n")
	fmt.Fprintf(w, "| workload | recorder on, first %v | recorder on, last %v | throughput / nothing, first %v | last %v | trace mode at the end |\n|---|---|---|---|---|---|\n", half, half, half, half)
	for _, start := range denseWorkloads {
		wl, err := start()
		if err != nil {
			return err
		}
		sleep(time.Second)
		measure := func(d time.Duration) window {
			wl.begin()
			sleep(d)
			return wl.end()
		}
		before := measure(base)
		m, err := diag.New(diag.Config{Dir: dir})
		if err == nil {
			err = m.Start()
		}
		if err != nil {
			wl.close()
			return err
		}
		var on [2]float64
		var during [2]window
		for h := range 2 {
			wl.begin()
			n, k := 0, 0
			for t0 := time.Now(); time.Since(t0) < half; n++ {
				if m.Status().TraceRecording {
					k++
				}
				sleep(100 * time.Millisecond)
			}
			during[h] = wl.end()
			on[h] = float64(k) / float64(max(n, 1))
		}
		mode := m.Status().Trace
		m.Stop()
		after := measure(base)
		wl.close()
		nothing := (before.rate + after.rate) / 2
		r0, r1 := during[0].rate/nothing, during[1].rate/nothing
		log.Printf("bench: steady: %s: recorder on %.0f%% then %.0f%%, throughput %.3f then %.3f", wl.name, 100*on[0], 100*on[1], r0, r1)
		fmt.Fprintf(w, "| %s | %.0f%% | %.0f%% | %s | %s | %s |\n", wl.name, 100*on[0], 100*on[1], fmtRatio(r0), fmtRatio(r1), mode)
	}
	fmt.Fprintf(w, "\nA workload in permanent contention (parking-heavy: 64 goroutines on one lock, ~20 of them blocked at any time) is an incident\n")
	fmt.Fprintf(w, "that never ends: armed tracing starts on its warnings and records its share of the budget (budget / estimated cost of ten\n")
	fmt.Fprintf(w, "minutes, decayed; a fresh monitor has all of it at once, which the first half shows), then stays off until half of that\n")
	fmt.Fprintf(w, "share is free again; a snapshot still starts it. Over a long run the recorder's average cost is at most the budget, if\n")
	fmt.Fprintf(w, "its cost estimate is right (the overhead section's bare/nothing row is the measured cost).\n\n")
	return nil
}
