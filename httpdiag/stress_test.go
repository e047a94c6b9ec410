package httpdiag

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

// TestStress runs everything at once for a while: thousands of contending
// goroutines, flapping breaches, 20 concurrent snapshot requests, 50
// stream clients of which 10 never read. It checks that nothing deadlocks,
// that memory, disk and the snapshot budget stay within their bounds, and
// (TestMain's goleak) that nothing is left running after Stop.
//
// By default (and in CI) it runs for 8s with 2000 contending goroutines;
// with LOCKDIAG_STRESS=long, for 60s with 7000 (the race detector allows
// 8128 goroutines).
func TestStress(t *testing.T) {
	dur, workers := 8*time.Second, 2000
	if os.Getenv("LOCKDIAG_STRESS") == "long" {
		dur, workers = 60*time.Second, 7000
	}
	dir := t.TempDir()
	const budget, keep, memKeep = 2, 3, 2
	const maxDisk = 64 << 20
	m, err := diag.New(diag.Config{
		Interval:       20 * time.Millisecond,
		Rules:          "mutex_wait > 1 for 40ms",
		Warmup:         -1,
		Cooldown:       -1,
		Budget:         budget,
		WallProfile:    100 * time.Millisecond,
		TraceWindow:    2 * time.Second,
		TraceMaxBytes:  4 << 20,
		Dir:            dir,
		Keep:           keep,
		MaxDisk:        maxDisk,
		MemoryKeep:     memKeep,
		MemoryMaxBytes: 32 << 20,
		GoroutineGuard: 1000, // the guards must kick in
		AnalysisBudget: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	srv := httptest.NewServer(Handler(m, Options{MaxStreamClients: 60}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup

	// Count breaches and the snapshots they were refused.
	sub := m.Subscribe(1 << 16)
	var breaches, budgetSkips atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range sub.C() {
			switch {
			case ev.Type == diag.EventBreach:
				breaches.Add(1)
			case ev.Type == diag.EventSnapshotSkipped && strings.HasPrefix(ev.Reason, "budget"):
				budgetSkips.Add(1)
			}
		}
	}()

	// Flapping contention: on for 500ms, off for 2.5s (longer than the
	// rules' 2s clear time, so that every burst is an episode).
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			on, stop := context.WithTimeout(ctx, 500*time.Millisecond)
			contention.Mutex(on, workers, 20*time.Microsecond)()
			stop()
			pause := time.NewTimer(2500 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-pause.C:
			}
			pause.Stop()
		}
	}()

	// 50 stream clients; 10 of them never read.
	var frames atomic.Int64
	for i := range 50 {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), nil)
		if err != nil {
			t.Fatalf("stream client %d: %v", i, err)
		}
		defer c.Close()
		if i < 10 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				frames.Add(1)
			}
		}()
	}

	// 20 concurrent snapshot requests, twice.
	var posted, failed atomic.Int32
	for round := range 2 {
		var rw sync.WaitGroup
		for range 20 {
			rw.Add(1)
			go func() {
				defer rw.Done()
				resp, err := http.Post(srv.URL+"/debug/locks/snapshots?wall=50ms", "", nil)
				if err != nil {
					failed.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					posted.Add(1)
				} else {
					failed.Add(1)
				}
			}()
		}
		rw.Wait()
		t.Logf("round %d: %d snapshot requests answered 201", round, posted.Load())
	}

	// Status and lists keep answering meanwhile.
	for ctx.Err() == nil {
		resp, err := http.Get(srv.URL + "/debug/locks?format=json")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status: %s", resp.Status)
		}
		tick := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		tick.Stop()
	}
	// The sampler is alive and current.
	if s, ok := m.Latest(); !ok || time.Since(s.Time) > 2*time.Second {
		t.Errorf("sampler is behind: latest sample at %v", s.Time)
	}
	st := m.Status()
	if !strings.Contains(st.WaitSitesNote, "above the guard") && len(st.WaitSites) > 0 {
		t.Logf("wait sites at the end: %d (guard note %q)", len(st.WaitSites), st.WaitSitesNote)
	}

	// Stop everything: the monitor first, so that the stream ends its
	// clients, then the workload.
	m.Stop()
	cancel()
	wg.Wait()

	if failed.Load() != 0 || posted.Load() != 40 {
		t.Errorf("snapshot requests: %d answered 201, %d failed", posted.Load(), failed.Load())
	}
	if frames.Load() == 0 {
		t.Error("reading stream clients got nothing")
	}
	auto := 0
	snaps := m.Snapshots()
	for _, s := range snaps {
		if s.Trigger.Kind == "rule" {
			auto++
		}
	}
	if auto > budget {
		t.Errorf("%d automatic snapshots stored, budget %d", auto, budget)
	}
	if b := int(breaches.Load()); b > budget && budgetSkips.Load() == 0 {
		t.Errorf("%d breaches and no snapshot refused for the budget of %d", b, budget)
	}
	// Disk and memory bounds.
	files, _ := filepath.Glob(filepath.Join(dir, "*.zip"))
	var disk int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			disk += fi.Size()
		}
	}
	if len(files) > keep || disk > maxDisk {
		t.Errorf("disk: %d files, %d bytes; bounds %d files, %d bytes", len(files), disk, keep, maxDisk)
	}
	inMemory := 0
	for _, s := range snaps {
		if s.InMemory {
			inMemory++
		}
	}
	if inMemory > memKeep {
		t.Errorf("%d snapshots in memory, bound %d", inMemory, memKeep)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d breaches, %d snapshots (%d automatic, %d refused for the budget), %d stream frames read, heap in use %d MiB",
		breaches.Load(), len(snaps), auto, budgetSkips.Load(), frames.Load(), ms.HeapInuse>>20)
}
