package diag

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	"github.com/lockdiag/lockdiag/lockreport"
)

// These tests run the default rules in this process against real
// workloads. They take tens of seconds (the default warm-up is 10s) and
// are skipped with -short.

// nextEvent returns the next event of one of the types, failing after
// timeout.
func nextEvent(t *testing.T, sub *Subscription, timeout time.Duration, types ...EventType) Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				t.Fatal("subscription closed")
			}
			for _, ty := range types {
				if ev.Type == ty {
					return ev
				}
			}
		case <-deadline.C:
			t.Fatalf("no %v event within %v", types, timeout)
		}
	}
}

func TestDefaultRulesCatchSpikeAndStuckLock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 20s")
	}
	cfg := testConfig(t)
	cfg.Rules = "" // the defaults
	cfg.TraceWindow = 5 * time.Second
	cfg.WallProfile = 300 * time.Millisecond
	cfg.LockWaitersInterval = 0 // the default 1s
	cfg.MutexProfileFraction = 0
	m := startMonitor(t, cfg)
	sub := m.Subscribe(4096)
	defer sub.Close()

	// Warm-up and baselines: light, healthy activity.
	ctx, cancel := context.WithCancel(context.Background())
	light := lightlyContended(ctx)
	t.Cleanup(func() { cancel(); light() })
	warm := time.NewTimer(11 * time.Second)
	for warming := true; warming; {
		select {
		case ev := <-sub.C():
			if ev.Type == EventBreach {
				t.Fatalf("breach while healthy: %+v", ev.Breach)
			}
		case <-warm.C:
			warming = false
		}
	}

	// A spike: 12 goroutines on one lock held 1ms at a time.
	spikeStart := time.Now()
	spikeCtx, stopSpike := context.WithCancel(ctx)
	spike := contention.Mutex(spikeCtx, 12, time.Millisecond)
	t.Cleanup(func() { stopSpike(); spike() })
	ev := nextEvent(t, sub, 5*time.Second, EventBreach)
	if ev.Breach.Signal != "mutex_wait" || !ev.Breach.Snapshot {
		t.Errorf("breach = %+v, want mutex_wait with a snapshot", ev.Breach)
	}
	t.Logf("spike breach %v after onset: %+v", ev.Time.Sub(spikeStart), ev.Breach)
	snap := nextEvent(t, sub, 20*time.Second, EventSnapshot, EventSnapshotFailed)
	if snap.Type != EventSnapshot {
		t.Fatalf("snapshot failed: %s", snap.Reason)
	}
	stopSpike()
	spike()
	info := snap.Snapshot
	if info.Trigger.Kind != "rule" || info.Trigger.Breach == nil || info.Trigger.Breach.Rule != ev.Breach.Rule {
		t.Errorf("trigger = %+v", info.Trigger)
	}
	if !strings.Contains(info.Headline, "HotLockWorker") {
		t.Errorf("headline does not name the lock's site: %q", info.Headline)
	}
	var meta bundle.Meta
	data, err := bundleFile(m, info.ID, "meta.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	if !meta.Window.Start.Before(spikeStart) {
		t.Errorf("window starts %v, after the spike began at %v: the trace must reach back before it", meta.Window.Start, spikeStart)
	}
	if _, err := bundleFile(m, info.ID, "wall.pb.gz"); err != nil {
		t.Errorf("automatic snapshot has no wall profile: %v", err)
	}
	nextEvent(t, sub, 10*time.Second, EventRecovered)

	// A stuck lock: 50 goroutines parked behind a holder that does not
	// let go. mutex_wait cannot see it until release; stuck_waiters can.
	ready, release := contention.Stuck(50)
	t.Cleanup(release)
	<-ready
	stuckStart := time.Now()
	ev = nextEvent(t, sub, 15*time.Second, EventBreach)
	if ev.Breach.Signal != "stuck_waiters" || !ev.Breach.Snapshot {
		t.Errorf("breach = %+v, want stuck_waiters with a snapshot", ev.Breach)
	}
	t.Logf("stuck-lock breach %v after the holder stopped", ev.Time.Sub(stuckStart))
	snap = nextEvent(t, sub, 20*time.Second, EventSnapshot, EventSnapshotFailed)
	if snap.Type != EventSnapshot {
		t.Fatalf("snapshot failed: %s", snap.Reason)
	}
	// The lock is still held: release has not been called.
	rep, err := bundleFile(m, snap.Snapshot.ID, "report.json")
	if err != nil {
		t.Fatal(err)
	}
	var r lockreport.Report
	if err := json.Unmarshal(rep, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Parked) == 0 || !strings.HasSuffix(r.Parked[0].Func, "contention.StuckWaiter") || r.Parked[0].Waiters != 50 {
		t.Errorf("wait sites at the trigger = %+v, want 50 in StuckWaiter", r.Parked)
	}
	if !strings.Contains(snap.Snapshot.Headline, "StuckWaiter") {
		t.Errorf("headline = %q, want it to name StuckWaiter", snap.Snapshot.Headline)
	}
}

func TestDefaultRulesQuietWhenHealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 30s")
	}
	cfg := testConfig(t)
	cfg.Rules = ""
	cfg.Trace = TraceOff
	cfg.LockWaitersInterval = 0
	cfg.MutexProfileFraction = 0
	m := startMonitor(t, cfg)
	sub := m.Subscribe(4096)
	defer sub.Close()

	ctx, cancel := context.WithCancel(context.Background())
	stops := []func(){cpuBound(ctx), ioBound(t, ctx), lightlyContended(ctx)}
	t.Cleanup(func() {
		cancel()
		for _, s := range stops {
			s()
		}
	})
	end := time.NewTimer(30 * time.Second)
	defer end.Stop()
	samples := 0
	for done := false; !done; {
		select {
		case ev := <-sub.C():
			switch ev.Type {
			case EventBreach:
				t.Errorf("breach on a healthy workload: %+v", ev.Breach)
			case EventSample:
				samples++
			}
		case <-end.C:
			done = true
		}
	}
	if samples < 100 {
		t.Errorf("only %d samples in 30s", samples)
	}
	for _, r := range m.Status().Rules {
		t.Logf("%s: %s, value %v, threshold %v, baseline %v", r.Rule, r.State, r.Value, r.Threshold, r.Baseline)
	}
}

// cpuBound keeps two goroutines computing.
func cpuBound(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 1.0
			for ctx.Err() == nil {
				for range 10000 {
					x = x*1.0000001 + 1e-9
				}
			}
			_ = x
		}()
	}
	return wg.Wait
}

// ioBound runs a loopback HTTP server and eight clients, each with its own
// connection, whose requests wait on a short timer in the handler.
func ioBound(t *testing.T, ctx context.Context) (wait func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		timer := time.NewTimer(time.Millisecond)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String(), nil)
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	return func() {
		wg.Wait()
		srv.Close()
	}
}

// lightlyContended has four goroutines that share a lock briefly between
// pauses, as a healthy service's shared map does.
func lightlyContended(ctx context.Context) (wait func()) {
	var mu sync.Mutex
	shared := map[int]int{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				mu.Lock()
				shared[g] = i
				mu.Unlock()
			}
		}()
	}
	return wg.Wait
}
