package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/diag"
)

func init() {
	register(section{
		name: "memory",
		help: "Go heap and resident memory added by the bare recorder and lockdiag's defaults under the HTTP workload",
		run:  runMemory,
	})
}

// memStat is the process's memory at one moment.
type memStat struct {
	rss        float64 // VmRSS as the host sees it
	heapLive   float64 // Go heap live after a GC
	goMapped   float64 // memory the Go runtime holds from the OS, after returning what it can
	rssFreed   float64 // VmRSS after the GC and returning free memory
	goroutines float64
}

var memSamples = []metrics.Sample{
	{Name: "/gc/heap/live:bytes"},
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
}

func readMem() memStat {
	s := memStat{rss: vmRSS(), goroutines: float64(runtime.NumGoroutine())}
	debug.FreeOSMemory() // a GC, then free pages back to the OS
	metrics.Read(memSamples)
	v := func(i int) float64 {
		if memSamples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return float64(memSamples[i].Value.Uint64())
	}
	s.heapLive = v(0)
	s.goMapped = v(1) - v(2)
	s.rssFreed = vmRSS()
	return s
}

// vmRSS returns VmRSS from /proc/self/status in bytes, or 0.
func vmRSS() float64 { return procStatus("VmRSS:") }

// vmHWM returns the peak resident size, VmHWM, in bytes, or 0.
func vmHWM() float64 { return procStatus("VmHWM:") }

// resetPeakRSS sets VmHWM back to the current resident size (Linux 4.0
// and later) and reports whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// procStatus returns a "kB" field of /proc/self/status in bytes, or 0.
func procStatus(key string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func runMemory(w io.Writer, quick bool) error {
	reps, on, off := 3, 12*time.Second, 4*time.Second
	if quick {
		reps, on, off = 1, 3*time.Second, 2*time.Second
	}
	dir, err := os.MkdirTemp("", "lockdiag-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	wl, err := startHTTP(16)
	if err != nil {
		return err
	}
	defer wl.close()
	sleep(time.Second)

	const withSnap = "full defaults + 1 snapshot kept"
	configs := []config{nothingConfig("nothing"), bareRecorderConfig(), fullConfig(dir)}
	got := map[string][]memStat{}
	var zips, held, peak, window []float64
	for rep := range reps {
		for k := range configs {
			c := configs[(rep+k)%len(configs)]
			r, err := c.start()
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if r.rec == nil && r.mon == nil {
				sleep(off)
			} else {
				sleep(on)
			}
			got[c.name] = append(got[c.name], readMem())
			if r.mon != nil {
				before, reset := vmRSS(), resetPeakRSS()
				info, err := r.mon.Snapshot(context.Background(), diag.SnapshotOptions{Reason: "bench"})
				if err != nil {
					r.stop()
					return err
				}
				if reset {
					peak = append(peak, vmHWM()-before)
				}
				zips = append(zips, float64(info.Bytes))
				if b, err := r.mon.Bundle(info.ID); err == nil {
					held = append(held, float64(cap(b.Bytes())))
					if t, err := b.File(bundle.TraceFile); err == nil {
						window = append(window, float64(len(t)))
					}
				}
				got[withSnap] = append(got[withSnap], readMem())
			}
			r.stop()
		}
		log.Printf("bench: memory: rep %d/%d", rep+1, reps)
	}

	fmt.Fprintf(w, "## Memory\n\n")
	fmt.Fprintf(w, "The HTTP workload runs throughout; the configurations take turns (%d repetitions, rotating order): nothing for %v, the bare\n", reps, off)
	fmt.Fprintf(w, "recorder and lockdiag's defaults for %v each (longer than the 10 s trace window, so that the recorder's ring is full).\n", on)
	fmt.Fprintf(w, "At the end of each turn, while the configuration still runs: VmRSS as it is, then a GC with the free memory returned to the\n")
	fmt.Fprintf(w, "OS (`debug.FreeOSMemory`), then the live Go heap (`/gc/heap/live:bytes`), the memory the Go runtime holds from the OS\n")
	fmt.Fprintf(w, "(`/memory/classes/total` minus `heap/released`) and VmRSS again. With lockdiag, one snapshot is then taken and kept (the\n")
	fmt.Fprintf(w, "in-memory ring keeps up to 4 snapshots and 64 MiB by default, and a snapshot's transient buffers are garbage by then).\n")
	fmt.Fprintf(w, "*Added* is the median over repetitions of the difference to the same repetition's *nothing*.\n\n")
	fmt.Fprintf(w, "| configuration | Go heap live | added | Go runtime's memory | added | VmRSS after GC | added | VmRSS as is | added | goroutines | added |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range []string{"nothing", "bare recorder", "full defaults", withSnap} {
		xs := got[name]
		col := func(f func(memStat) float64) (string, string) {
			var v, d []float64
			for i, x := range xs {
				v = append(v, f(x))
				if i < len(got["nothing"]) {
					d = append(d, f(x)-f(got["nothing"][i]))
				}
			}
			if name == "nothing" {
				return fmtBytes(median(v)), ""
			}
			return fmtBytes(median(v)), "+" + strings.TrimPrefix(fmtBytes(median(d)), "+")
		}
		heap, heapD := col(func(m memStat) float64 { return m.heapLive })
		mapped, mappedD := col(func(m memStat) float64 { return m.goMapped })
		rssF, rssFD := col(func(m memStat) float64 { return m.rssFreed })
		rss, rssD := col(func(m memStat) float64 { return m.rss })
		var g, gd []float64
		for i, x := range xs {
			g = append(g, x.goroutines)
			if i < len(got["nothing"]) {
				gd = append(gd, x.goroutines-got["nothing"][i].goroutines)
			}
		}
		gds := ""
		if name != "nothing" {
			gds = fmt.Sprintf("%+.0f", median(gd))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %s |\n", name, heap, heapD, mapped, mappedD, rssF, rssFD, rss, rssD, median(g), gds)
	}
	fmt.Fprintln(w)
	var kept []float64
	for i, x := range got[withSnap] {
		if i < len(got["full defaults"]) {
			kept = append(kept, x.heapLive-got["full defaults"][i].heapLive)
		}
	}
	fmt.Fprintf(w, "Keeping the snapshot adds %s of live heap to full defaults (median of the differences). ", fmtBytes(median(kept)))
	fmt.Fprintf(w, "The snapshot kept in memory is a zip of %s (median); the zip the monitor keeps for it has a capacity of %s\n", fmtBytes(median(zips)), fmtBytes(median(held)))
	fmt.Fprintf(w, "(the bytes the in-memory copy actually holds, when the store keeps the slice it was built in).\n")
	if len(peak) > 0 {
		fmt.Fprintf(w, "While the snapshot is taken, VmRSS peaks %s above its level just before (median; VmHWM reset through /proc/self/clear_refs):\n", fmtBytes(median(peak)))
		fmt.Fprintf(w, "the trace window, its parse and the bundle are transient garbage that the next GC frees, as the *VmRSS after GC* column shows.\n")
		if len(window) > 0 {
			ratio := median(peak) / median(window)
			verdict := "met"
			if ratio > 3 {
				verdict = "**not met**"
			}
			fmt.Fprintf(w, "The snapshot's trace window was %s (median), so the peak is %.1f× the window; goal at most 3×: %s.\n", fmtBytes(median(window)), ratio, verdict)
		}
	}
	fmt.Fprintf(w, "Notes: the recorder's ring is Go heap, bounded by the trace window\n")
	fmt.Fprintf(w, "(10 s, 10 MiB as a hint that whole ~1 s generations can exceed); under a busier host it fills to that bound sooner.\n")
	fmt.Fprintf(w, "*VmRSS as is* depends on when the last GC ran and is the noisiest column; negative *added* values are noise.\n")
	fmt.Fprintf(w, "Goroutines counted include the HTTP workload's (server connections and clients).\n\n")
	return nil
}
