package promdiag

import (
	"fmt"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockdiag/lockdiag/locks"
)

// waiters returns the waiters of the named lock called name.
func waiters(name string) int {
	for _, st := range locks.Read(nil) {
		if st.Name == name {
			return st.Waiters
		}
	}
	return -1
}

// enforceDurations runs rounds in which the test goroutine holds mu for
// hold while a second goroutine waits for it, then holds it for hold
// itself: every wait and every hold lasts hold (plus scheduling), and
// every second acquisition is contended.
func enforceDurations(mu *locks.Mutex, name string, rounds int, hold time.Duration) (waits, holds []time.Duration) {
	for range rounds {
		mu.Lock()
		held := time.Now()
		done := make(chan struct{})
		var wait, waiterHold time.Duration
		go func() {
			defer close(done)
			start := time.Now()
			mu.Lock()
			wait = time.Since(start)
			got := time.Now()
			time.Sleep(hold)
			waiterHold = time.Since(got)
			mu.Unlock()
		}()
		for waiters(name) != 1 { // the waiter is in Lock's slow path
			goruntime.Gosched()
		}
		time.Sleep(hold)
		holds = append(holds, time.Since(held))
		mu.Unlock()
		<-done
		waits, holds = append(waits, wait), append(holds, waiterHold)
	}
	return waits, holds
}

// within counts the durations of ds up to limit.
func within(ds []time.Duration, limit time.Duration) (n float64) {
	for _, d := range ds {
		if d <= limit {
			n++
		}
	}
	return n
}

// TestNamedLockHistograms: the exposition has the named lock's wait and
// hold histograms with the counts and durations a workload enforced, and
// its gauges.
func TestNamedLockHistograms(t *testing.T) {
	m := newMonitor(t, "")
	name := fmt.Sprintf("promdiag_test_%d", time.Now().UnixNano()) // one per run under -count
	var mu locks.Mutex
	mu.SetName(name)
	const rounds, hold = 20, 10 * time.Millisecond
	waits, holds := enforceDurations(&mu, name, rounds, hold)

	text := scrape(t, Handler(m), "")
	labels := `lock_id="` + name + `",lock_type="mutex"`
	get := func(metric, extra string) float64 {
		t.Helper()
		key := metric + "{" + labels + extra + "} "
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, key); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		t.Errorf("exposition has no %s", key)
		return -1
	}
	// Every wait and every hold lasted 10ms and a little: in the bucket from
	// 2^-8 s (3.9ms) to 2^-6 s (15.6ms), unless the machine was slow to
	// wake a sleeper. The lock and the test clock a duration a little
	// apart, so those within 5% of the bucket's bound may fall either side.
	const bound = 15625 * time.Microsecond
	for _, c := range []struct {
		metric   string
		measured []time.Duration
	}{
		{"lockdiag_lock_wait_duration_seconds", waits}, // every round's second acquisition waited
		{"lockdiag_lock_held_duration_seconds", holds}, // every hold, the last one timed
	} {
		n := get(c.metric+"_count", "")
		if n != float64(len(c.measured)) {
			t.Errorf("%s_count = %v, want %v", c.metric, n, len(c.measured))
		}
		if b := get(c.metric+"_bucket", `,le="0.00390625"`); b != 0 {
			t.Errorf("%s: %v durations up to 3.9ms, want 0", c.metric, b)
		}
		lo, hi := within(c.measured, bound*95/100), within(c.measured, bound*105/100)
		if b := get(c.metric+"_bucket", `,le="0.015625"`); b < lo || b > hi {
			t.Errorf("%s: %v durations up to 15.6ms, want %v to %v (measured: %v)", c.metric, b, lo, hi, c.measured)
		}
		if b := get(c.metric+"_bucket", `,le="+Inf"`); b != n {
			t.Errorf("%s: +Inf bucket %v, want %v", c.metric, b, n)
		}
		var sum time.Duration
		for _, d := range c.measured {
			sum += d
		}
		mean, want := get(c.metric+"_sum", "")/n, (sum / time.Duration(len(c.measured))).Seconds()
		if mean < 0.9*want || mean > 1.1*want {
			t.Errorf("%s: mean %v, measured %v: want within 10%%", c.metric, time.Duration(mean*1e9), time.Duration(want*1e9))
		}
	}
	if n := get("lockdiag_lock_acquisitions_total", ""); n != 2*rounds {
		t.Errorf("acquisitions = %v, want %d", n, 2*rounds)
	}
	if n := get("lockdiag_named_lock_waiters", ""); n != 0 {
		t.Errorf("waiters = %v, want 0", n)
	}
	if n := get("lockdiag_named_lock_held_seconds", ""); n != 0 {
		t.Errorf("held = %v, want 0", n)
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", text)
	}

	// Held now, with a waiter: the gauges say so.
	mu.Lock()
	done := make(chan struct{})
	go func() {
		mu.Lock()
		mu.Unlock()
		close(done)
	}()
	for waiters(name) != 1 {
		goruntime.Gosched()
	}
	text = scrape(t, Handler(m), "")
	if n := get("lockdiag_named_lock_waiters", ""); n != 1 {
		t.Errorf("waiters = %v, want 1", n)
	}
	mu.Unlock()
	<-done
	goruntime.KeepAlive(&mu)
}

// TestNamedLockSameName: two locks given one name are one series, their
// counts added; the registry's lint finds nothing wrong.
func TestNamedLockSameName(t *testing.T) {
	m := newMonitor(t, "")
	name := fmt.Sprintf("promdiag_twin_%d", time.Now().UnixNano())
	var a, b locks.RWMutex
	a.SetName(name)
	b.SetName(name)
	a.Lock()
	a.Unlock()
	b.RLock()
	b.RUnlock()
	b.RLock()
	b.RUnlock()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(m))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	want := fmt.Sprintf("lockdiag_lock_acquisitions_total{lock_id=%q,lock_type=\"rwmutex\"} 3", name)
	if text := scrape(t, Handler(m), ""); !strings.Contains(text, want) {
		t.Errorf("exposition lacks %q:\n%s", want, text)
	}
	goruntime.KeepAlive(&a)
	goruntime.KeepAlive(&b)
}
