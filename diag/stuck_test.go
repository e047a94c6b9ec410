package diag

import (
	"bytes"
	"math"
	"runtime/trace"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	"github.com/lockdiag/lockdiag/lockreport"
)

func site(fn string, n int) lockreport.ParkedSite {
	return lockreport.ParkedSite{Kind: "Mutex.Lock", Func: fn, File: "x.go", Line: 1, Waiters: n}
}

func rsite(fn string, n int) lockreport.ParkedSite {
	s := site(fn, n)
	s.Kind = "RWMutex.RLock"
	return s
}

// feedTracker scans every step from t0 for d, with sites(t) parked and
// the cumulative lock wait growing by rate(t) seconds per second, and
// returns the first time stuck_waiters was positive (zero if never) and
// the last stuck count.
func feedTracker(tr *stuckTracker, d, step time.Duration, sites func(el time.Duration) []lockreport.ParkedSite, rate func(el time.Duration) float64, ready float64) (first time.Duration, stuck int) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cum := 0.0
	first = -1
	for el := time.Duration(0); el <= d; el += step {
		if el > 0 {
			cum += rate(el) * step.Seconds()
		}
		stuck, _ = tr.update(t0.Add(el), sites(el), cum, ready)
		if stuck > 0 && first < 0 {
			first = el
		}
	}
	return first, stuck
}

func TestStuckTracker(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		sites     func(el time.Duration) []lockreport.ParkedSite
		rate      func(el time.Duration) float64
		ready     float64       // goroutines runnable or running at each scan (the sampler's own: 1)
		wantFirst time.Duration // -1: never stuck
	}{{
		name:      "50 waiters, no wait ends: stuck after the bound",
		sites:     func(time.Duration) []lockreport.ParkedSite { return []lockreport.ParkedSite{site("main.get", 50)} },
		rate:      func(time.Duration) float64 { return 0 },
		wantFirst: 2 * s,
	}, {
		name:      "a saturated lock: 30 waiters always, served all the time",
		sites:     func(time.Duration) []lockreport.ParkedSite { return []lockreport.ParkedSite{site("main.hot", 30)} },
		rate:      func(time.Duration) float64 { return 30 },
		wantFirst: -1,
	}, {
		name: "a stuck lock beside a saturated one",
		sites: func(time.Duration) []lockreport.ParkedSite {
			return []lockreport.ParkedSite{site("main.hot", 30), site("main.get", 50)}
		},
		rate:      func(time.Duration) float64 { return 30 },
		wantFirst: 2 * s,
	}, {
		name:      "one waiter: stuck only after five scans",
		sites:     func(time.Duration) []lockreport.ParkedSite { return []lockreport.ParkedSite{site("main.get", 1)} },
		rate:      func(time.Duration) float64 { return 0 },
		wantFirst: 4 * s,
	}, {
		name: "a waiter caught at a busy lock now and then is never stuck",
		sites: func(el time.Duration) []lockreport.ParkedSite {
			if int(el/s)%3 == 2 {
				return nil
			}
			return []lockreport.ParkedSite{site("main.busy", 1)}
		},
		rate:      func(time.Duration) float64 { return 0.3 },
		wantFirst: -1,
	}, {
		// A waiter leaves a sync lock's queue only by taking the lock.
		name: "readers behind a ticking writer: their number falls now and then, the runtime's count misses their waits",
		sites: func(el time.Duration) []lockreport.ParkedSite {
			return []lockreport.ParkedSite{site("main.read", []int{6, 5, 7, 6, 7, 4}[int(el/s)%6])}
		},
		rate:      func(time.Duration) float64 { return 0.01 },
		wantFirst: -1,
	}, {
		name: "busy until 4s (falls at 1s and 3s), then stuck: stuck the bound after the last fall",
		sites: func(el time.Duration) []lockreport.ParkedSite {
			if el >= 4*s {
				return []lockreport.ParkedSite{site("main.read", 8)}
			}
			return []lockreport.ParkedSite{site("main.read", 6-int(el/s)%2)}
		},
		rate:      func(time.Duration) float64 { return 0.01 },
		wantFirst: 5 * s,
	}, {
		// Readers woken by the writer wait for a CPU with the same stack.
		name:      "8 readers on 2 CPUs: 7 always in RLock, but as many runnable or running",
		sites:     func(time.Duration) []lockreport.ParkedSite { return []lockreport.ParkedSite{rsite("main.read", 7)} },
		rate:      func(time.Duration) float64 { return 0.01 },
		ready:     8,
		wantFirst: -1,
	}, {
		name:      "a stuck RWMutex in a busy process: 50 readers beyond 10 runnable",
		sites:     func(time.Duration) []lockreport.ParkedSite { return []lockreport.ParkedSite{rsite("main.get", 50)} },
		rate:      func(time.Duration) float64 { return 0 },
		ready:     10,
		wantFirst: 2 * s,
	}, {
		name: "two goroutines deadlocked in a busy process: Mutex waiters are not bounded",
		sites: func(time.Duration) []lockreport.ParkedSite {
			return []lockreport.ParkedSite{site("main.a", 1), site("main.b", 1)}
		},
		rate:      func(time.Duration) float64 { return 0 },
		ready:     6,
		wantFirst: 4 * s,
	}, {
		name: "released after 1.5s: never stuck",
		sites: func(el time.Duration) []lockreport.ParkedSite {
			if el < 1500*time.Millisecond {
				return []lockreport.ParkedSite{site("main.get", 20)}
			}
			return nil
		},
		rate:      func(el time.Duration) float64 { return 0 },
		wantFirst: -1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := tt.ready
			if ready == 0 {
				ready = 1
			}
			first, _ := feedTracker(newStuckTracker(2*s), 10*s, s, tt.sites, tt.rate, ready)
			if first != tt.wantFirst {
				t.Errorf("first stuck at %v, want %v", first, tt.wantFirst)
			}
		})
	}
}

func TestStuckTrackerMarksSites(t *testing.T) {
	tr := newStuckTracker(time.Second)
	t0 := time.Now()
	tr.update(t0, []lockreport.ParkedSite{site("main.get", 8)}, 0, 1)
	stuck, sites := tr.update(t0.Add(1500*time.Millisecond), []lockreport.ParkedSite{site("main.get", 9), site("main.other", 2)}, 0, 1)
	if stuck != 9 || len(sites) != 2 || sites[0].NoProgress != 1500*time.Millisecond || sites[1].NoProgress != 0 {
		t.Errorf("stuck = %d, sites = %+v", stuck, sites)
	}
	if at := tr.confirmAt(); !at.Equal(t0.Add(1500 * time.Millisecond).Add(time.Second / 2)) {
		t.Errorf("confirmAt = %v", at.Sub(t0))
	}
	// Without the runtime's counter the scans alone decide.
	tr = newStuckTracker(time.Second)
	tr.update(t0, []lockreport.ParkedSite{site("main.get", 8)}, math.NaN(), math.NaN())
	if stuck, _ := tr.update(t0.Add(time.Second), []lockreport.ParkedSite{site("main.get", 8)}, math.NaN(), math.NaN()); stuck != 8 {
		t.Errorf("without the counter: stuck = %d, want 8", stuck)
	}
}

// TestScanScheduleBudget: at 100k goroutines (a scan costs 100ms) the
// regular scans keep to the budget, their gaps vary (no aliasing), and a
// pile-up of waiting goroutines gets an early scan from the saved budget.
func TestScanScheduleBudget(t *testing.T) {
	s := newScanSchedule(time.Second, 0.005, 1)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	var spent time.Duration
	var gaps []time.Duration
	last := now
	for now.Sub(t0) < time.Hour {
		if s.due(now, 100_000, time.Time{}) {
			if len(gaps) > 0 || now != t0 {
				gaps = append(gaps, now.Sub(last))
			}
			s.done(now, 100*time.Millisecond, 100_000)
			spent += 100 * time.Millisecond
			last = now
		}
		now = now.Add(100 * time.Millisecond)
	}
	share := spent.Seconds() / time.Hour.Seconds()
	if share > 0.0055 || share < 0.003 {
		t.Errorf("steady-state scans used %.4f of a CPU, want about the budget 0.005", share)
	}
	lo, hi := gaps[0], gaps[0]
	for _, g := range gaps {
		lo, hi = min(lo, g), max(hi, g)
	}
	if lo < 14*time.Second || hi > 26*time.Second || hi-lo < 4*time.Second {
		t.Errorf("gaps from %v to %v, want jittered around 20s", lo, hi)
	}

	// Goroutines pile up: three ticks with 200 more waiting.
	early := false
	for i := range 3 {
		now = now.Add(100 * time.Millisecond)
		early = s.due(now, 100_200, time.Time{})
		if early && i < 2 {
			t.Fatalf("early scan after %d ticks, want 3", i+1)
		}
	}
	if !early || now.Sub(last) > 20*time.Second && !early {
		t.Errorf("no early scan for 200 more waiting goroutines")
	}
}

// TestScansAreOffTheTickGrid runs a program in the worst phase a ticker
// can have: it lets its lock's waiters through at every tick of the
// monitor and holds them parked the rest of the time. Scans taken at the
// ticks would never see a waiter; scans off the tick's grid do.
func TestScansAreOffTheTickGrid(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	const n = 8
	var mu sync.Mutex
	mu.Lock() // the program holds the lock between the monitor's ticks
	passed := make(chan struct{})
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				mu.Lock()
				mu.Unlock()
				select {
				case passed <- struct{}{}:
				case <-quit:
					return
				}
				// Off the lock for a moment after the tick: where a
				// scan at the tick would look.
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	cfg := testConfig(t)
	cfg.LockWaitersInterval = 10 * time.Millisecond
	cfg.ScanCPU = 1
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.hooks.tick = func() {
		mu.Unlock()
		for range n {
			select {
			case <-passed:
			case <-quit:
			}
		}
		mu.Lock()
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(quit)
		m.Stop()
		mu.Unlock()
		wg.Wait()
	}()
	testkit.WaitFor(t, 10*time.Second, "lock_waiters seen between ticks", func() bool {
		s, ok := m.Latest()
		return ok && s.Values[LockWaiters] >= n/2
	})
}

// TestStuckTrackerConfirms: before a site is first called stuck, the
// goroutine dump must show most of its waiters blocked, not woken and
// waiting for a CPU; a site found busy is not called stuck again for
// confirmEvery. A dump that shows nothing at the site leaves the scans'
// verdict.
func TestStuckTrackerConfirms(t *testing.T) {
	s := time.Second
	k := siteKey{kind: "Mutex.Lock", fn: "main.add", file: "x.go", line: 1}
	for _, tt := range []struct {
		name      string
		count     siteCount
		woken     int // by the witness; -1: it cannot say
		wantFirst time.Duration
	}{
		{"15 in Lock, 2 of them blocked: busy", siteCount{blocked: 2, all: 15}, -1, -1},
		{"15 in Lock, all blocked: stuck", siteCount{blocked: 15, all: 15}, -1, 2 * s},
		{"the dump does not see the site: the scans decide", siteCount{}, -1, 2 * s},
		{"all blocked, none woken lately: stuck", siteCount{blocked: 15, all: 15}, 0, 2 * s},
		{"all blocked, 7 woken lately: stuck (fewer than half)", siteCount{blocked: 15, all: 15}, 7, 2 * s},
		{"all blocked, but 8 woken lately: busy", siteCount{blocked: 15, all: 15}, 8, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newStuckTracker(2 * s)
			dumps := 0
			tr.confirm = func() (map[siteKey]siteCount, bool) {
				dumps++
				return map[siteKey]siteCount{k: tt.count}, true
			}
			tr.witness = func(recent time.Duration) (map[siteKey]int, bool) {
				if recent < 2*s {
					t.Errorf("witness asked about the last %v, want the run's %v or more", recent, 2*s)
				}
				return map[siteKey]int{k: tt.woken}, tt.woken >= 0
			}
			first, _ := feedTracker(tr, 12*s, s/2, func(time.Duration) []lockreport.ParkedSite { return []lockreport.ParkedSite{site("main.add", 15)} },
				func(time.Duration) float64 { return 0 }, 1)
			if first != tt.wantFirst {
				t.Errorf("first stuck at %v, want %v", first, tt.wantFirst)
			}
			if tt.wantFirst < 0 && dumps > 2 {
				t.Errorf("%d dumps in 12s, want at most one per %v", dumps, confirmEvery)
			}
		})
	}
}

//go:noinline
func blockedAtSitesWaiter(mu *sync.Mutex, done *sync.WaitGroup) {
	defer done.Done()
	mu.Lock()
	mu.Unlock()
}

// TestBlockedAtSites: goroutines parked on a held Mutex are counted
// blocked at their site by the goroutine dump, with the site the scans
// find.
func TestBlockedAtSites(t *testing.T) {
	var mu sync.Mutex
	mu.Lock()
	var done sync.WaitGroup
	for range 5 {
		done.Add(1)
		go blockedAtSitesWaiter(&mu, &done)
	}
	w := newWaiterScanner()
	var k siteKey
	testkit.WaitFor(t, 10*time.Second, "5 goroutines parked at blockedAtSitesWaiter", func() bool {
		_, sites := w.scan()
		for _, s := range sites {
			if s.Func == "github.com/lockdiag/lockdiag/diag.blockedAtSitesWaiter" && s.Waiters == 5 {
				k = siteKey{kind: s.Kind, fn: s.Func, file: s.File, line: s.Line}
				return true
			}
		}
		return false
	})
	counts, ok := blockedAtSites(1 << 20)
	mu.Unlock()
	done.Wait()
	if !ok {
		t.Fatal("no dump")
	}
	if c := counts[k]; c.blocked != 5 || c.all != 5 {
		t.Errorf("dump at %+v: %+v, want 5 blocked of 5 (all counts: %v)", k, c, counts)
	}
	if _, ok := blockedAtSites(0); ok {
		t.Error("a dump above the goroutine guard")
	}
}

// TestWokenIn: in a trace, a goroutine parked on a Mutex that stays held
// is never woken, while a writer that waits for busy readers again and
// again is, each time; the scans cannot tell the two apart.
func TestWokenIn(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("tracing is already enabled")
	}
	ready, release := contention.Stuck(1)
	<-ready
	var rw sync.RWMutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rw.RLock()
				for i := 0; i < 1000; i++ {
					_ = i * i
				}
				rw.RUnlock()
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				contention.RWWriter(&rw)
			}
		}
	})
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(200 * time.Millisecond)
	<-timer.C
	trace.Stop()
	close(stop)
	wg.Wait()
	release()

	woken, err := wokenIn(bytes.NewReader(buf.Bytes()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var busy, held int
	for k, n := range woken {
		switch k.fn {
		case "github.com/lockdiag/lockdiag/internal/testkit/contention.RWWriter":
			if k.kind != "RWMutex.Lock" {
				t.Errorf("the writer's site is %+v, want an RWMutex.Lock site", k)
			}
			busy += n
		case "github.com/lockdiag/lockdiag/internal/testkit/contention.StuckWaiter":
			held += n
		}
	}
	if busy != 1 || held != 0 {
		t.Errorf("woken: the busy writer %d, the waiter on the held Mutex %d; want 1 and 0 (all: %v)", busy, held, woken)
	}
	if _, err := wokenIn(bytes.NewReader([]byte("not a trace")), time.Second); err == nil {
		t.Error("wokenIn read a text as a trace")
	}
}
