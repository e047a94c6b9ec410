package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"runtime"
	"time"

	xtrace "golang.org/x/exp/trace"

	"github.com/lockdiag/lockdiag/flightrec"
	"github.com/lockdiag/lockdiag/lockreport"
)

func init() {
	register(section{
		name: "analysis",
		help: "trace analysis speed (MB/s) beside bare golang.org/x/exp/trace reading of the same window, A/B alternating",
		run:  runAnalysis,
	})
}

// runAnalysis records a flight-recorder window of the parking-heavy
// workload (the densest trace of the overhead workloads) and of the HTTP
// workload, then reads each window again and again, alternating a bare
// x/exp/trace read (every event, nothing else) with lockreport.Analyze,
// and reports the speeds and their ratio.
func runAnalysis(w io.Writer, quick bool) error {
	reps, fill := 9, 8*time.Second
	if quick {
		reps, fill = 3, 3*time.Second
	}
	type input struct {
		name string
		data []byte
	}
	var inputs []input
	for _, start := range denseWorkloads {
		wl, err := start()
		if err != nil {
			return err
		}
		data, err := recordWindow(fill)
		wl.close()
		if err != nil {
			return err
		}
		inputs = append(inputs, input{wl.name, data})
		settleGoroutines(10, 5*time.Second)
	}

	fmt.Fprintf(w, "## Analysis speed\n\n")
	fmt.Fprintf(w, "Each window (flight recorder, default 10 s / 10 MiB, filled for %v under the workload) is read %d times by each\n", fill, reps)
	fmt.Fprintf(w, "of two readers, alternating which goes first: *bare read*, golang.org/x/exp/trace's `ReadEvent` over every event and nothing\n")
	fmt.Fprintf(w, "else, and *analysis*, `lockreport.Analyze` with no other inputs (the parse, in a second goroutine, and the analysis).\n")
	fmt.Fprintf(w, "MB/s are trace bytes per second of wall time; *CPU ×* is the analysis' process CPU over the bare read's. Goal: analysis\n")
	fmt.Fprintf(w, "at least 0.9× the bare read's speed.\n\n")
	fmt.Fprintf(w, "| window | size | bare read, MB/s | analysis, MB/s | analysis / bare read (median) | 95%% interval | min–max | CPU × | goal | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, in := range inputs {
		var readMBs, analyzeMBs, speed, cpuX []float64
		for rep := range reps {
			var rd, an, rdCPU, anCPU float64
			measure := func(f func([]byte) error, wall, cpu *float64) error {
				runtime.GC()
				c0, t0 := selfCPU(), time.Now()
				err := f(in.data)
				*wall, *cpu = time.Since(t0).Seconds(), selfCPU()-c0
				return err
			}
			first, second := bareRead, analyzeTrace
			pw, pc, sw, sc := &rd, &rdCPU, &an, &anCPU
			if rep%2 == 1 {
				first, second = analyzeTrace, bareRead
				pw, pc, sw, sc = &an, &anCPU, &rd, &rdCPU
			}
			if err := measure(first, pw, pc); err != nil {
				return err
			}
			if err := measure(second, sw, sc); err != nil {
				return err
			}
			mb := float64(len(in.data)) / 1e6
			readMBs = append(readMBs, mb/rd)
			analyzeMBs = append(analyzeMBs, mb/an)
			speed = append(speed, rd/an)
			if rdCPU > 0 {
				cpuX = append(cpuX, anCPU/rdCPU)
			}
			log.Printf("bench: analysis: %s rep %d/%d: read %.1f MB/s, analysis %.1f MB/s", in.name, rep+1, reps, mb/rd, mb/an)
		}
		d := summarize(speed)
		fmt.Fprintf(w, "| %s | %s | %.1f | %.1f | %s | %s | %s | %.2f | ≥ 0.9 | %s |\n", in.name, fmtBytes(float64(len(in.data))),
			median(readMBs), median(analyzeMBs), fmtRatio(d.med), fmtRange(d.ciLo, d.ciHi), fmtRange(d.lo, d.hi), median(cpuX), verdict(d, 0.9))
	}
	fmt.Fprintf(w, "\n`go test -run XXX -bench AnalyzeVsRead ./lockreport` measures the same on a trace of the package's own\n")
	fmt.Fprintf(w, "(`LOCKDIAG_BENCH_TRACE=FILE` for another), and `-bench AnalyzeMemory` the heap the analysis adds to the parse.\n\n")
	return nil
}

// recordWindow runs the flight recorder at its defaults for fill and
// returns its window.
func recordWindow(fill time.Duration) ([]byte, error) {
	rec := flightrec.New(flightrec.Config{})
	if err := rec.Start(); err != nil {
		return nil, err
	}
	defer rec.Stop()
	sleep(fill)
	var buf bytes.Buffer
	if _, err := rec.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// bareRead reads every event of a trace and does nothing with them.
func bareRead(data []byte) error {
	r, err := xtrace.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	for {
		if _, err := r.ReadEvent(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// analyzeTrace analyzes a trace with no other inputs.
func analyzeTrace(data []byte) error {
	rep, err := lockreport.Analyze(context.Background(), bytes.NewReader(data), lockreport.Options{})
	if err == nil && rep.Partial {
		err = fmt.Errorf("partial report: %s", rep.PartialReason)
	}
	return err
}
