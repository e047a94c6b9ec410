package main

import (
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"time"

	"github.com/lockdiag/lockdiag/diag"
)

func init() {
	register(section{
		name: "overhead",
		help: "throughput (and HTTP p99) with nothing, the bare flight recorder and lockdiag's defaults, A/B alternating",
		run:  runOverhead,
	})
}

// The comparisons of the overhead table: ratio = a's throughput over b's,
// in the same repetition.
type comparison struct {
	a, b string
	goal float64 // minimum ratio, 0 = no goal
	what string
}

func runOverhead(w io.Writer, quick bool) error {
	// The warm-up lets auto make its first decision (its cost estimate
	// needs two reads a second apart) before the window opens.
	reps, warm, win := 9, 3*time.Second, 1200*time.Millisecond
	if quick {
		reps, warm, win = 3, 2500*time.Millisecond, 400*time.Millisecond
	}
	dir, err := os.MkdirTemp("", "lockdiag-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	configs := []config{nothingConfig("nothing"), nothingConfig("nothing again"), bareRecorderConfig(),
		monitorConfig("trace on", diag.Config{Dir: dir, Trace: diag.TraceOn}),
		monitorConfig("trace armed", diag.Config{Dir: dir, Trace: diag.TraceArmed}),
		monitorConfig("auto (default)", diag.Config{Dir: dir})}

	type result struct {
		wl    *workload
		win   map[string][]window // by config, by repetition
		trace []float64           // bytes/s written by the bare recorder
	}
	var results []result
	for _, start := range []func() (*workload, error){
		func() (*workload, error) { return startFastPath(), nil },
		func() (*workload, error) { return startParking(), nil },
		func() (*workload, error) { return startHTTP(16) },
		func() (*workload, error) { return startWithIdle(startHTTP(16))(10_000) },
	} {
		wl, err := start()
		if err != nil {
			return err
		}
		sleep(time.Second) // let the workload settle
		res := result{wl: wl, win: map[string][]window{}}
		for rep := range reps {
			for k := range configs {
				c := configs[(rep+k)%len(configs)]
				r, err := c.start()
				if err != nil {
					wl.close()
					return fmt.Errorf("%s: %w", c.name, err)
				}
				sleep(warm)
				wl.begin()
				sleep(win)
				got := wl.end()
				if r.rec != nil {
					res.trace = append(res.trace, r.traceRate())
				}
				r.stop()
				res.win[c.name] = append(res.win[c.name], got)
			}
			log.Printf("bench: overhead: %s: rep %d/%d: nothing %s, bare recorder %s, on %s, armed %s, auto %s", wl.name, rep+1, reps,
				fmtCount(res.win["nothing"][rep].rate), fmtCount(res.win["bare recorder"][rep].rate), fmtCount(res.win["trace on"][rep].rate),
				fmtCount(res.win["trace armed"][rep].rate), fmtCount(res.win["auto (default)"][rep].rate))
		}
		wl.close()
		results = append(results, res)
	}

	fmt.Fprintf(w, "## Overhead\n\n")
	fmt.Fprintf(w, "Four workloads run in this process, each with six configurations that take turns (rotating order) in every repetition:\n")
	fmt.Fprintf(w, "*nothing*, *nothing again* (a second baseline: the noise floor), the *bare recorder* (the stdlib `runtime/trace.FlightRecorder` through\n")
	fmt.Fprintf(w, "`flightrec.Recorder`, 10 s / 10 MiB window), and lockdiag (`diag.New` + `Start`: runtime/metrics every 100 ms, rules, mutex profile\n")
	fmt.Fprintf(w, "fraction 100, goroutine scans under 0.5%% of a CPU, /proc scan every 1 s, profile reads every 5 s) in three trace modes: *trace on*\n")
	fmt.Fprintf(w, "(the recorder always on), *trace armed* (off until an early warning) and *auto (default)* (on when the recorder's estimated cost is\n")
	fmt.Fprintf(w, "under 1%% of the process's CPU, armed otherwise).\n")
	fmt.Fprintf(w, "Per configuration: start it, %v warm-up, measure for %v, stop it. A ratio is one configuration's throughput over another's\n", warm, win)
	fmt.Fprintf(w, "in the same repetition; %d repetitions. The interval is a distribution-free ≥95 %% confidence interval of the median\n", reps)
	fmt.Fprintf(w, "(order statistics; with fewer than 6 repetitions it is min–max with less coverage). *met* means the whole interval clears the goal.\n\n")

	fmt.Fprintf(w, "| workload | what | nothing (median) | CPUs used | lock wait | trace written (bare recorder) |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		var rate, wait, cpu []float64
		for _, x := range r.win["nothing"] {
			rate = append(rate, x.rate)
			wait = append(wait, x.wait)
			cpu = append(cpu, x.cpu)
		}
		fmt.Fprintf(w, "| %s | %s | %s %s | %.2f | %.2f s/s | %s/s |\n", r.wl.name, r.wl.desc, fmtCount(median(rate)), r.wl.unit, median(cpu), median(wait), fmtBytes(median(r.trace)))
	}
	fmt.Fprintln(w)

	comps := []comparison{
		{a: "nothing again", b: "nothing", what: "nothing again / nothing (noise floor)"},
		{a: "bare recorder", b: "nothing", what: "bare recorder / nothing"},
		{a: "trace on", b: "nothing", what: "trace on / nothing"},
		{a: "trace armed", b: "nothing", what: "trace armed / nothing"},
		{a: "auto (default)", b: "nothing", goal: 0.98, what: "auto (default) / nothing"},
		{a: "trace on", b: "bare recorder", goal: 0.98, what: "trace on / bare recorder"},
	}
	var notes []string
	table := func(metric func(window) float64, noteNoise bool) {
		fmt.Fprintf(w, "| workload | comparison | median ratio | change | 95%% interval | IQR | min–max | goal | verdict |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range results {
			values := func(name string) []float64 {
				var xs []float64
				for _, x := range r.win[name] {
					xs = append(xs, metric(x))
				}
				return xs
			}
			var noise float64
			for _, c := range comps {
				goal := c.goal
				d := summarize(ratios(values(c.a), values(c.b)))
				if c.b == "nothing" && c.a == "nothing again" {
					noise = math.Max(math.Abs(d.q1-1), math.Abs(d.q3-1))
				}
				g, v := "", ""
				if goal > 0 {
					g, v = fmt.Sprintf("≥ %.2f (≤ %.0f%% slower)", goal, (1-goal)*100), verdict(d, goal)
					if noise > 1-goal && noteNoise {
						resolved := d.ciLo >= goal || d.ciHi < goal
						notes = append(notes, fmt.Sprintf("%s, %s: single ratios of nothing against nothing scatter by up to %.1f%% (IQR), more than the goal's %.0f%% margin; the median's interval %s.",
							r.wl.name, c.what, noise*100, (1-goal)*100, map[bool]string{true: "resolved it nevertheless", false: "could not resolve it"}[resolved]))
					}
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.wl.name, c.what, fmtRatio(d.med), fmtChange(d.med),
					fmtRange(d.ciLo, d.ciHi), fmtRange(d.q1, d.q3), fmtRange(d.lo, d.hi), g, v)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Throughput ratios, operations per second of wall time (1 = no change, below 1 = slower). This is what the goals speak of:\n\n")
	table(func(x window) float64 { return x.rate }, true)
	fmt.Fprintf(w, "The same windows, as operations per CPU-second of this process. On a quiet machine the workloads keep both CPUs (nearly)\n")
	fmt.Fprintf(w, "busy; this counts the CPU lockdiag takes (its goroutines and the runtime work it causes are in the process's CPU time) but\n")
	fmt.Fprintf(w, "not the CPU other processes took from the run. It is a second estimate, not a cleaner one: other load also changes how\n")
	fmt.Fprintf(w, "often a lock holder loses its CPU, and with it how much the workloads park.\n\n")
	table(func(x window) float64 { return x.perCPU }, false)

	// Latency of the HTTP service.
	for _, r := range results {
		if r.wl.latOn == nil {
			continue
		}
		p99 := func(name string) []float64 {
			var xs []float64
			for _, x := range r.win[name] {
				xs = append(xs, float64(x.p(99)))
			}
			return xs
		}
		fmt.Fprintf(w, "%s, request latency p99 (ratio above 1 = slower requests):\n\n", r.wl.name)
		fmt.Fprintf(w, "| configuration | median p50 | median p99 | median p99.9 | p99 ratio to nothing (median) | 95%% interval | min–max |\n|---|---|---|---|---|---|---|\n")
		for _, c := range configs {
			var p50, p999 []float64
			for _, x := range r.win[c.name] {
				p50 = append(p50, float64(x.p(50)))
				p999 = append(p999, float64(x.p(99.9)))
			}
			lat := fmt.Sprintf("| %s | %s | %s | %s |", c.name, fmtDur(time.Duration(median(p50))), fmtDur(time.Duration(median(p99(c.name)))), fmtDur(time.Duration(median(p999))))
			if c.name == "nothing" {
				fmt.Fprintf(w, "%s | | |\n", lat)
				continue
			}
			d := summarize(ratios(p99(c.name), p99("nothing")))
			fmt.Fprintf(w, "%s %s | %s | %s |\n", lat, fmtRatio(d.med), fmtRange(d.ciLo, d.ciHi), fmtRange(d.lo, d.hi))
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "Notes:\n\n")
	fmt.Fprintf(w, "- The goals: auto (the default) at most 2%% slower than nothing on every workload, and lockdiag with the recorder on at most 2%% slower than the bare recorder (what lockdiag adds to the tracer).\n")
	fmt.Fprintf(w, "- The HTTP clients run in the same process as the server, so the ratio covers both sides; the recorder traces both.\n")
	fmt.Fprintf(w, "- A window of %v sees one or two lock_waiters and /proc scans but usually none of the 5-second profile reads (about 1 ms each, 0.02%% of a core).\n", win)
	fmt.Fprintf(w, "  No baseline rule can trigger (they warm up for 10 s) and no lock stays stuck, so no snapshot is taken here (snapshot costs are in the next sections).\n")
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "- A verdict that is not resolved means this run cannot tell; more repetitions on a quiet machine narrow the interval.\n")
	}
	fmt.Fprintln(w)
	return nil
}
