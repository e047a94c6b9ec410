package diag

import (
	"context"
	"fmt"
	"runtime"
	"runtime/trace"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	"github.com/lockdiag/lockdiag/locks"
)

// benchMonitor returns a monitor whose sampler state is ready but whose
// loop is not running, so that ticks can be driven by the benchmark.
func benchMonitor(b *testing.B, cfg Config) *Monitor {
	b.Helper()
	cfg.Dir = b.TempDir()
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.resetSampler()
	b.Cleanup(m.threads.close)
	return m
}

// BenchmarkTick measures one sampling tick. "metrics" is the tick that runs
// every Interval; the others add the work that runs at a slower cadence on
// some ticks; "default" is the mix at the default configuration, per tick.
func BenchmarkTick(b *testing.B) {
	far := time.Now().Add(time.Hour)
	run := func(b *testing.B, cfg Config, setup func(m *Monitor)) {
		m := benchMonitor(b, cfg)
		tickAndScan(m, time.Now()) // the first tick does every scan once
		setup(m)
		b.ReportAllocs()
		for b.Loop() {
			tickAndScan(m, time.Now())
		}
	}
	b.Run("metrics", func(b *testing.B) {
		run(b, Config{LockWaitersInterval: -1}, func(m *Monitor) { m.next.threads, m.next.profiles = far, far })
	})
	b.Run("metrics+lock_waiters", func(b *testing.B) {
		run(b, Config{LockWaitersInterval: time.Nanosecond, ScanCPU: 0.5}, func(m *Monitor) { m.next.threads, m.next.profiles = far, far })
	})
	b.Run("metrics+threads", func(b *testing.B) {
		run(b, Config{ThreadsInterval: time.Nanosecond, LockWaitersInterval: -1}, func(m *Monitor) { m.next.profiles = far })
	})
	b.Run("profiles", func(b *testing.B) {
		m := benchMonitor(b, Config{})
		m.mutexRate = 100
		b.ReportAllocs()
		for b.Loop() {
			m.captureProfiles(time.Now())
		}
	})
	b.Run("lock_waiters", func(b *testing.B) {
		m := benchMonitor(b, Config{})
		b.ReportAllocs()
		for b.Loop() {
			m.scanWaiters(time.Now(), 10)
		}
	})
	b.Run("metrics+rules", func(b *testing.B) {
		run(b, Config{Rules: DefaultRules, LockWaitersInterval: -1}, func(m *Monitor) { m.next.threads, m.next.profiles = far, far })
	})
}

// tickAndScan runs a tick and, when it asks for one, the goroutine scan
// that the loop would run before the next tick.
func tickAndScan(m *Monitor, now time.Time) {
	if m.tick(now) {
		m.scanWaiters(now, m.waitingAtTick)
	}
}

// BenchmarkTickDefaultMix runs ticks at the default cadences on a clock
// that advances by the default Interval per tick, so that the slower
// scans come as often as they do in production: ns/op is the average cost
// of a tick at the defaults.
func BenchmarkTickDefaultMix(b *testing.B) {
	m := benchMonitor(b, Config{})
	m.mutexRate = 100
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(m.cfg.Interval)
		tickAndScan(m, now)
	}
}

// BenchmarkSnapshot10MiB takes snapshots of a window of about 10 MiB of
// trace: trace write, profile deltas, dumps, thread scan, analysis, zip
// and store. A contended workload first fills the window, then stops, so
// that the benchmark measures the snapshot, not the workload.
func BenchmarkSnapshot10MiB(b *testing.B) {
	if trace.IsEnabled() {
		b.Skip("the benchmark binary is being traced")
	}
	cfg := Config{
		Dir:            DirOff,
		Rules:          RulesOff,
		TraceWindow:    time.Minute, // keep the loaded generations in the window
		TraceMaxBytes:  10 << 20,
		MemoryKeep:     1,
		AnalysisBudget: time.Minute,
	}
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(); err != nil {
		b.Fatal(err)
	}
	defer m.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Mutex(ctx, 64, time.Microsecond)
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := m.rec.Window(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(data) >= 10<<20 || time.Now().After(deadline) {
			break
		}
		timer := time.NewTimer(500 * time.Millisecond)
		<-timer.C
	}
	cancel()
	wait()

	var bytes int64
	b.ResetTimer()
	for b.Loop() {
		info, err := m.Snapshot(context.Background(), SnapshotOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range info.Files {
			if f.Name == "trace.out" {
				bytes = f.Bytes
			}
		}
	}
	b.ReportMetric(float64(bytes)/(1<<20), "trace-MiB")
}

// BenchmarkReadNamed is the sampler's read of 100 named locks: locks.Read
// into its buffer, the summaries (quantiles) and the stuck check.
func BenchmarkReadNamed(b *testing.B) {
	m := benchMonitor(b, Config{})
	ms := make([]locks.Mutex, 100)
	for i := range ms {
		ms[i].SetName(fmt.Sprint("bench_read_named_", i))
		for range 100 {
			ms[i].Lock()
			ms[i].Unlock()
		}
	}
	now := time.Now()
	m.readNamed(now)
	b.ReportAllocs()
	for b.Loop() {
		m.namedRd.next = time.Time{}
		m.readNamed(now)
	}
	runtime.KeepAlive(ms)
}
