package diag

import (
	"encoding/json"
	"math"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	"github.com/lockdiag/lockdiag/lockreport"
)

func TestSampleJSON(t *testing.T) {
	s := emptySample(time.Date(2026, 11, 22, 4, 0, 0, 5, time.UTC))
	s.Values[MutexWait] = 1.5
	s.Values[Goroutines] = 42
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"t":"2026-11-22T04:00:00.000000005Z","mutex_wait":1.5,"goroutines":42}`
	if string(data) != want {
		t.Errorf("got %s, want %s", data, want)
	}
	var back Sample
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(s.Time) || back.Values[MutexWait] != 1.5 || back.Values[Goroutines] != 42 || !math.IsNaN(back.Values[LockWaiters]) {
		t.Errorf("round trip = %+v", back)
	}
}

func TestSignalNames(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Signals() {
		name := s.String()
		if seen[name] || name == "" || strings.ContainsAny(name, " -") {
			t.Errorf("bad or duplicate name %q", name)
		}
		seen[name] = true
		if got, ok := ParseSignal(name); !ok || got != s {
			t.Errorf("ParseSignal(%q) = %v, %v", name, got, ok)
		}
		if s.Help() == "" {
			t.Errorf("%s has no help", name)
		}
	}
	if _, ok := ParseSignal("nope"); ok {
		t.Error("ParseSignal(nope) succeeded")
	}
}

func TestWaitRateWindow(t *testing.T) {
	r := newMetricsReader()
	t0 := time.Unix(1000, 0)
	steps := []struct {
		dt   time.Duration
		v    float64
		want float64 // NaN: not yet a full window
	}{
		{0, 10, math.NaN()},
		{50 * time.Millisecond, 10.5, math.NaN()},
		{100 * time.Millisecond, 11, 10}, // (11-10)/0.1
		{150 * time.Millisecond, 11, 5},  // base is the 50ms point: (11-10.5)/0.1
		{250 * time.Millisecond, 11, 0},  // base 150ms
		{350 * time.Millisecond, 9, 0},   // a counter going back is not negative wait
		{450 * time.Millisecond, 9.4, 4}, // base 350ms
		{2 * time.Second, 10.95, 1},      // a late tick: the whole gap (1.55s) is the window, 1.55/1.55
	}
	for i, st := range steps {
		got := r.waitRate(t0.Add(st.dt), st.v)
		if math.IsNaN(st.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-st.want) > 1e-9) {
			t.Errorf("step %d: rate = %v, want %v", i, got, st.want)
		}
	}
	if len(r.waits) > 4 {
		t.Errorf("kept %d points; old ones must be dropped", len(r.waits))
	}
}

func TestLatencyP99(t *testing.T) {
	r := newMetricsReader()
	h := &metrics.Float64Histogram{
		Buckets: []float64{0, 1e-6, 1e-5, 1e-4, 1e-3, math.Inf(1)},
		Counts:  []uint64{0, 0, 0, 0, 0},
	}
	if got := r.latencyP99(h); !math.IsNaN(got) {
		t.Errorf("first call = %v, want NaN", got)
	}
	if got := r.latencyP99(h); got != 0 {
		t.Errorf("nothing scheduled = %v, want 0", got)
	}
	h.Counts = []uint64{0, 990, 0, 10, 0} // 990 under 1µs, 10 in [1e-5, 1e-4)
	if got := r.latencyP99(h); got != 1e-5 {
		t.Errorf("p99 = %v, want 1e-5 (the 990th of 1000 is in [1µs, 10µs))", got)
	}
	h.Counts = []uint64{0, 990, 0, 10, 100} // +100 in the last bucket, open-ended
	if got := r.latencyP99(h); got != 1e-3 {
		t.Errorf("p99 = %v, want 1e-3 (lower bound of the +Inf bucket)", got)
	}
}

func TestMetricsReaderLive(t *testing.T) {
	r := newMetricsReader()
	s := emptySample(time.Now())
	r.read(&s)
	if v, ok := s.Get(Goroutines); !ok || v < 1 {
		t.Errorf("goroutines = %v, %v", v, ok)
	}
	if _, ok := s.Get(MutexWait); ok {
		t.Error("mutex_wait measured on the first read")
	}
}

func TestTimeline(t *testing.T) {
	tl := newTimeline(4)
	if _, ok := tl.latest(); ok {
		t.Error("latest on an empty timeline")
	}
	t0 := time.Unix(0, 0)
	for i := range 6 {
		s := emptySample(t0.Add(time.Duration(i) * time.Second))
		s.Values[Goroutines] = float64(i)
		tl.add(s)
	}
	got := tl.since(t0, 0)
	if len(got) != 4 || got[0].Values[Goroutines] != 2 || got[3].Values[Goroutines] != 5 {
		t.Errorf("since(0) = %v", got)
	}
	if got := tl.since(t0.Add(4*time.Second), 0); len(got) != 2 {
		t.Errorf("since(4s) has %d samples, want 2", len(got))
	}
	if got := tl.since(t0, 1); len(got) != 1 || got[0].Values[Goroutines] != 5 {
		t.Errorf("since(0, limit 1) = %v", got)
	}
	if s, _ := tl.latest(); s.Values[Goroutines] != 5 {
		t.Errorf("latest = %v", s)
	}
}

func TestWaiterScanner(t *testing.T) {
	_, releaseM := contention.Stuck(5)
	defer releaseM()
	releaseRW := contention.RWReaders(3)
	defer releaseRW()
	w := newWaiterScanner()
	var sites []lockreport.ParkedSite
	testkit.WaitFor(t, 5*time.Second, "9 parked goroutines", func() bool {
		var n int
		n, sites = w.scan()
		return n >= 9
	})
	want := map[string]int{
		"Mutex.Lock contention.StuckWaiter": 5,
		"RWMutex.RLock contention.RWReader": 3,
		"RWMutex.Lock contention.RWWriter":  1,
	}
	for _, s := range sites {
		key := s.Kind + " " + stacks.Short(s.Func)
		if n, ok := want[key]; ok {
			if s.Waiters != n {
				t.Errorf("%s: %d waiters, want %d", key, s.Waiters, n)
			}
			if s.Line == 0 || !strings.HasSuffix(s.File, "contention.go") {
				t.Errorf("%s: site %s:%d", key, s.File, s.Line)
			}
			delete(want, key)
		}
	}
	if len(want) > 0 {
		t.Errorf("sites not found: %v (got %+v)", want, sites)
	}
}
