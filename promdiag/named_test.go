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
func enforceDurations(mu *locks.Mutex, name string, rounds int, hold time.Duration) {
	for range rounds {
		mu.Lock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			mu.Lock()
			time.Sleep(hold)
			mu.Unlock()
		}()
		for waiters(name) != 1 { // the waiter is in Lock's slow path
			goruntime.Gosched()
		}
		time.Sleep(hold)
		mu.Unlock()
		<-done
	}
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
	enforceDurations(&mu, name, rounds, hold)

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
	// Every wait and every hold lasted 10ms and a little: all are in the
	// bucket from 2^-8 s (3.9ms) to 2^-6 s (15.6ms).
	for _, c := range []struct {
		metric string
		count  float64
	}{
		{"lockdiag_lock_wait_duration_seconds", rounds},     // every round's second acquisition waited
		{"lockdiag_lock_held_duration_seconds", 2 * rounds}, // every hold, the last one timed
	} {
		n := get(c.metric+"_count", "")
		if n != c.count {
			t.Errorf("%s_count = %v, want %v", c.metric, n, c.count)
		}
		if b := get(c.metric+"_bucket", `,le="0.00390625"`); b != 0 {
			t.Errorf("%s: %v durations up to 3.9ms, want 0", c.metric, b)
		}
		if b := get(c.metric+"_bucket", `,le="0.015625"`); b != n {
			t.Errorf("%s: %v durations up to 15.6ms, want all %v", c.metric, b, n)
		}
		if b := get(c.metric+"_bucket", `,le="+Inf"`); b != n {
			t.Errorf("%s: +Inf bucket %v, want %v", c.metric, b, n)
		}
		if mean := get(c.metric+"_sum", "") / n; mean < hold.Seconds() || mean > 1.1*hold.Seconds() {
			t.Errorf("%s: mean %v, want %v within 10%%", c.metric, time.Duration(mean*1e9), hold)
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
