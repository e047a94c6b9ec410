package lockreport

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/trace"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	xtrace "golang.org/x/exp/trace"
)

var (
	benchOnce  sync.Once
	benchTrace []byte
	benchErr   string
)

// benchData returns a trace of several MB: $LOCKDIAG_BENCH_TRACE if set,
// else 32 goroutines on one Mutex yielding inside the critical section,
// traced in-process for 0.4s (several MB).
func benchData(b *testing.B) []byte {
	benchOnce.Do(func() {
		if f := os.Getenv("LOCKDIAG_BENCH_TRACE"); f != "" {
			data, err := os.ReadFile(f)
			if err != nil {
				benchErr = err.Error()
			}
			benchTrace = data
			return
		}
		if trace.IsEnabled() {
			benchErr = "tracing already enabled"
			return
		}
		var buf bytes.Buffer
		if err := trace.Start(&buf); err != nil {
			benchErr = err.Error()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		contention.Yielding(ctx, 32)()
		cancel()
		trace.Stop()
		benchTrace = buf.Bytes()
	})
	if benchErr != "" {
		b.Skip(benchErr)
	}
	return benchTrace
}

// BenchmarkReadEvents is the floor: x/exp/trace reading every event and
// doing nothing with it.
func BenchmarkReadEvents(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		r, err := xtrace.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.ReadEvent()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAnalyze(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var rep *Report
	for b.Loop() {
		var err error
		rep, err = Analyze(context.Background(), bytes.NewReader(data), Options{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Partial {
			b.Fatal(rep.PartialReason)
		}
	}
	b.ReportMetric(float64(rep.Window.Events)/float64(b.Elapsed().Seconds()/float64(b.N))/1e6, "Mevents/s")
}

func readAll(b *testing.B, data []byte) {
	r, err := xtrace.NewReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	for {
		_, err := r.ReadEvent()
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func analyzeAll(b *testing.B, data []byte) {
	rep, err := Analyze(context.Background(), bytes.NewReader(data), Options{})
	if err != nil {
		b.Fatal(err)
	}
	if rep.Partial {
		b.Fatal(rep.PartialReason)
	}
}

// BenchmarkAnalyzeVsRead measures Analyze beside bare x/exp/trace reading
// of the same trace (BenchmarkReadEvents), taking turns in each iteration
// (the order alternates, and each starts after a GC) so that both see the
// same machine load. Its metrics:
//
//   - read-MB/s: bare reading, trace bytes per second of wall time;
//   - analyze-MB/s: Analyze, the same;
//   - speed-ratio: analyze-MB/s over read-MB/s (1: the analysis is free;
//     the parse runs in a goroutine of its own, so with a second CPU free
//     the ratio is bounded by how much slower the parse runs beside it);
//   - cpu-x: the CPU time (user+system, whole process) of Analyze over that
//     of bare reading (1: free).
//
// Compare builds on the same trace file (LOCKDIAG_BENCH_TRACE); the
// default trace is made anew in each process:
//
//	LOCKDIAG_BENCH_TRACE=f go test -run XXX -bench AnalyzeVsRead -benchtime 5x -count 10 ./lockreport
func BenchmarkAnalyzeVsRead(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	var read, analyze, readCPU, analyzeCPU time.Duration
	measure := func(f func(*testing.B, []byte), wall, cpu *time.Duration) {
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		c0, t0 := processCPU(), time.Now()
		f(b, data)
		*wall += time.Since(t0)
		*cpu += processCPU() - c0
	}
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			measure(readAll, &read, &readCPU)
			measure(analyzeAll, &analyze, &analyzeCPU)
		} else {
			measure(analyzeAll, &analyze, &analyzeCPU)
			measure(readAll, &read, &readCPU)
		}
		i++
	}
	mb := float64(len(data)) * float64(b.N) / 1e6
	b.ReportMetric(mb/read.Seconds(), "read-MB/s")
	b.ReportMetric(mb/analyze.Seconds(), "analyze-MB/s")
	b.ReportMetric(read.Seconds()/analyze.Seconds(), "speed-ratio")
	if readCPU > 0 && analyzeCPU > 0 {
		b.ReportMetric(analyzeCPU.Seconds()/readCPU.Seconds(), "cpu-x")
	}
}

// BenchmarkAnalyzeEvents is the analysis side alone: the events are read
// beforehand (which takes about 80 bytes of memory per event), and each
// iteration analyzes them in this goroutine. Its MB/s are trace bytes per
// second of the analysis' own CPU, without the parse.
func BenchmarkAnalyzeEvents(b *testing.B) {
	data := benchData(b)
	r, err := xtrace.NewReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	var evs []xtrace.Event
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, ev)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		a := newAnalyzer(Options{}.withDefaults())
		for i := range evs {
			a.event(&evs[i])
		}
		a.endGeneration()
		a.finish()
	}
	b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mevents/s")
}

// BenchmarkAnalyzeMemory measures the Go heap that bare reading and
// Analyze add, above what was live before (the trace's bytes, which the
// caller holds): peak-live-MB is the largest live heap, measured at every
// GC while GOGC is 2 (so that the GC runs often and the live heap is
// measured near its peak); analysis-own-MB is Analyze's minus bare
// reading's, the part the analysis adds to the parse (its tables and the
// batches of events between the two goroutines); peak-heap-MB is the
// largest heap of Analyze (live or not yet collected, sampled every 100µs)
// at the default GOGC, which is what the host pays.
func BenchmarkAnalyzeMemory(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	var readLive, analyzeLive, analyzeHeap []float64
	for b.Loop() {
		l, _ := heapPeak(2, func() { readAll(b, data) })
		readLive = append(readLive, l)
		l, _ = heapPeak(2, func() { analyzeAll(b, data) })
		analyzeLive = append(analyzeLive, l)
		_, h := heapPeak(100, func() { analyzeAll(b, data) })
		analyzeHeap = append(analyzeHeap, h)
	}
	med := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2] / (1 << 20)
	}
	b.ReportMetric(med(readLive), "read-peak-live-MB")
	b.ReportMetric(med(analyzeLive), "peak-live-MB")
	b.ReportMetric(med(analyzeLive)-med(readLive), "analysis-own-MB")
	b.ReportMetric(med(analyzeHeap), "peak-heap-MB")
	b.ReportMetric(float64(len(data))/(1<<20), "trace-MB")
}

// heapPeak runs f with GOGC set to gogc and returns the peaks of the live
// heap (measured at each GC) and of the heap's objects (live or not yet
// collected, sampled every 100µs) above their values before f.
func heapPeak(gogc int, f func()) (live, objects float64) {
	defer debug.SetGCPercent(debug.SetGCPercent(gogc))
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	read := func() (uint64, uint64) {
		metrics.Read(samples)
		return samples[0].Value.Uint64(), samples[1].Value.Uint64()
	}
	runtime.GC()
	live0, obj0 := read()
	var maxLive, maxObj uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			l, o := read()
			maxLive, maxObj = max(maxLive, l), max(maxObj, o)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	// The live heap is known at the end of a GC: one more makes sure the
	// last stretch of f is measured too (what f returned is still live).
	runtime.GC()
	l, o := read()
	maxLive, maxObj = max(maxLive, l), max(maxObj, o)
	return float64(maxLive) - float64(live0), float64(maxObj) - float64(obj0)
}
