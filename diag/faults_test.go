package diag

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/trace"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

func TestPanicInSamplerIsRecovered(t *testing.T) {
	cfg := testConfig(t)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ticks atomic.Int32
	m.hooks.tick = func() {
		if ticks.Add(1) == 3 {
			panic("collector exploded")
		}
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	testkit.WaitFor(t, 10*time.Second, "ticks after the panic", func() bool { return ticks.Load() > 10 })
	st := m.Status()
	if !strings.Contains(st.Errors["sampler"], "collector exploded") {
		t.Errorf("status errors = %v, want the panic", st.Errors)
	}
	before := st.Now.Time
	testkit.WaitFor(t, 10*time.Second, "new samples after the panic", func() bool {
		s, _ := m.Latest()
		return s.Time.After(before)
	})
}

func TestPanicInSnapshotIsRecovered(t *testing.T) {
	cfg := testConfig(t)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	m.hooks.snapshot = func() {
		if calls.Add(1) == 1 {
			panic("snapshot collector exploded")
		}
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	sub := m.Subscribe(1024)
	defer sub.Close()
	if _, err := m.Snapshot(context.Background(), SnapshotOptions{}); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("first snapshot: err = %v, want a recovered panic", err)
	}
	if ev := nextEvent(t, sub, 5*time.Second, EventSnapshotFailed); !strings.Contains(ev.Reason, "exploded") {
		t.Errorf("failure event reason = %q", ev.Reason)
	}
	if _, err := m.Snapshot(context.Background(), SnapshotOptions{}); err != nil {
		t.Errorf("second snapshot: %v", err)
	}
}

func TestDiskFullKeepsMemoryCopy(t *testing.T) {
	m := startMonitor(t, testConfig(t))
	m.store.mu.Lock()
	m.store.writeFault = func() error { return syscall.ENOSPC }
	m.store.mu.Unlock()
	info, err := m.Snapshot(context.Background(), SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.OnDisk || !strings.Contains(info.DiskError, "no space left") {
		t.Errorf("info = %+v, want memory only with the disk error", info)
	}
	if _, err := bundleFile(m, info.ID, "report.txt"); err != nil {
		t.Errorf("memory copy: %v", err)
	}
	if d := m.Status().Disk; !strings.Contains(d, "failing") || !strings.Contains(d, "no space left") {
		t.Errorf("status disk = %q", d)
	}
	// The disk recovers: the next snapshot lands there again.
	m.store.mu.Lock()
	m.store.writeFault = nil
	m.store.mu.Unlock()
	info, err = m.Snapshot(context.Background(), SnapshotOptions{})
	if err != nil || !info.OnDisk {
		t.Errorf("after recovery: %+v, %v", info, err)
	}
	if d := m.Status().Disk; strings.Contains(d, "failing") {
		t.Errorf("status disk after recovery = %q", d)
	}
}

func TestStopDuringSnapshot(t *testing.T) {
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	m := startMonitor(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := m.Snapshot(context.Background(), SnapshotOptions{Wall: 30 * time.Second})
		done <- err
	}()
	testkit.WaitFor(t, 5*time.Second, "the snapshot to be in flight", func() bool { return m.Status().SnapshotInFlight })
	stopped := make(chan struct{})
	go func() {
		m.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("Stop did not return during a snapshot")
	}
	// The snapshot ended early (its wall profile cut short) and was stored.
	if err := <-done; err != nil {
		t.Errorf("snapshot interrupted by Stop: %v", err)
	}
	if n := len(m.Snapshots()); n != 1 {
		t.Errorf("%d snapshots stored", n)
	}
}

func TestHostTraceStartCoexists(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	m := startMonitor(t, testConfig(t))
	var hostTrace bytes.Buffer
	if err := trace.Start(&hostTrace); err != nil {
		t.Fatalf("host trace.Start: %v", err)
	}
	info, err := m.Snapshot(context.Background(), SnapshotOptions{})
	trace.Stop()
	if err != nil {
		t.Fatal(err)
	}
	data, err := bundleFile(m, info.ID, "trace.out")
	if err != nil || len(data) == 0 {
		t.Fatalf("trace.out while the host traces: %d bytes, %v", len(data), err)
	}
	countSyncBlocks(t, data, "") // parses
	if hostTrace.Len() == 0 {
		t.Error("the host's trace got nothing")
	}
	if st := m.Status(); !st.TraceRecording || !strings.HasPrefix(st.Trace, "on: recording always") {
		t.Errorf("trace status = %q, recording %v", st.Trace, st.TraceRecording)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestTinyWallProfile(t *testing.T) {
	m := startMonitor(t, testConfig(t))
	info, err := m.Snapshot(context.Background(), SnapshotOptions{Wall: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundleFile(m, info.ID, "wall.pb.gz"); err != nil {
		t.Errorf("a 1ns wall profile: %v", err)
	}
}

// TestSnapshotNearMemoryLimit: a snapshot taken a few MiB under
// GOMEMLIMIT keeps its trace for an offline analysis instead of parsing
// it, says so, and stays under the limit.
func TestSnapshotNearMemoryLimit(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	m := startMonitor(t, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	contention.Yielding(ctx, 8)() // a trace window of a few MB
	cancel()

	runtime.GC()
	used := func() int64 {
		s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
		metrics.Read(s)
		return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
	}
	limit := used() + 6<<20
	prev := debug.SetMemoryLimit(limit)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	// Watch the memory the runtime holds while the snapshot runs.
	var peak atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak.Store(max(peak.Load(), used()))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	info, err := m.Snapshot(context.Background(), SnapshotOptions{})
	close(stop)
	<-watched
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bundle(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, n := range b.Meta().Collection {
		if n.Status == "skipped" && strings.Contains(n.Detail, "memory limit") {
			skipped = append(skipped, n.Part)
		}
	}
	if len(skipped) == 0 {
		t.Errorf("nothing left out near the memory limit: %+v", b.Meta().Collection)
	}
	rep, err := b.Report()
	if err != nil || !strings.Contains(rep.TraceUnavailable, "memory limit") {
		t.Errorf("report does not say why there is no trace analysis: %v %q", err, rep.TraceUnavailable)
	}
	// The limit is soft: the collector may run a little late under load
	// (the race detector, a busy machine), so a few percent, at least
	// 2 MiB, are allowed over it.
	if p := peak.Load(); p > limit+max(limit/20, 2<<20) {
		t.Errorf("the runtime held %.1f MiB during the snapshot, over the limit of %.1f MiB", float64(p)/(1<<20), float64(limit)/(1<<20))
	}
}
