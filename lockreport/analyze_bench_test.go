package lockreport

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime/trace"
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

// BenchmarkAnalyzeVsRead alternates bare reading and analysis of the same
// trace in each iteration, so that both see the same machine load, and
// reports the speed ratio (analysis / bare reading; 1 means free).
func BenchmarkAnalyzeVsRead(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	var read, analyze, readCPU, analyzeCPU time.Duration
	for b.Loop() {
		c0, t0 := processCPU(), time.Now()
		readAll(b, data)
		c1, t1 := processCPU(), time.Now()
		if _, err := Analyze(context.Background(), bytes.NewReader(data), Options{}); err != nil {
			b.Fatal(err)
		}
		read += t1.Sub(t0)
		analyze += time.Since(t1)
		readCPU += c1 - c0
		analyzeCPU += processCPU() - c1
	}
	mb := float64(len(data)) * float64(b.N) / 1e6
	b.ReportMetric(mb/read.Seconds(), "read-MB/s")
	b.ReportMetric(mb/analyze.Seconds(), "analyze-MB/s")
	b.ReportMetric(read.Seconds()/analyze.Seconds(), "ratio")
	if analyzeCPU > 0 {
		// CPU seconds per wall second of analysis, against bare reading.
		b.ReportMetric(analyzeCPU.Seconds()/readCPU.Seconds(), "cpu-cost-x")
	}
}
