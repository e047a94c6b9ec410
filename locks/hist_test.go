package locks

import (
	"encoding/json"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	if upperNS[0] != 59 {
		t.Errorf("zero bucket ends at %d ns, want 59 (2^-24 s)", upperNS[0])
	}
	if got, want := upperNS[numBuckets-1], int64(1024e9); got != want {
		t.Errorf("last bucket ends at %d ns, want %d (2^10 s)", got, want)
	}
	if upperNS[192] != 1e9/1<<0 && upperNS[192] != 1e9 { // 2^0 s
		t.Errorf("bucket 192 ends at %d ns, want 1e9", upperNS[192])
	}
	for i := range numBuckets {
		hi := upperNS[i]
		if got := bucketOf(hi); got != i {
			t.Errorf("bucketOf(%d) = %d, want %d (its upper bound)", hi, got, i)
		}
		if i+1 < numBuckets {
			if got := bucketOf(hi + 1); got != i+1 {
				t.Errorf("bucketOf(%d) = %d, want %d", hi+1, got, i+1)
			}
		}
		// The bound is the OpenTelemetry exponential bound of scale 3:
		// 2^((i-192)/8) seconds, to the nanosecond.
		if want := 1e9 * math.Exp2(float64(i-192)/8); float64(hi) > want || float64(hi) < want-1 {
			t.Errorf("upperNS[%d] = %d, want floor(%f)", i, hi, want)
		}
	}
	for _, d := range []int64{0, 1, 59, 60, 1 << 40, math.MaxInt64} {
		if b := bucketOf(d); b < 0 || b >= numBuckets {
			t.Errorf("bucketOf(%d) = %d, out of range", d, b)
		}
	}
	if bucketOf(math.MaxInt64) != numBuckets-1 {
		t.Error("a huge duration is not in the last bucket")
	}
}

func TestQuantile(t *testing.T) {
	var h hist
	var want []time.Duration
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		h.record(int64(d), 1)
		want = append(want, d)
	}
	var got Histogram
	h.read(&got)
	if got.Count != 1000 || got.Max != time.Millisecond {
		t.Fatalf("Count %d, Max %v; want 1000, 1ms", got.Count, got.Max)
	}
	if wantSum := time.Duration(500500) * time.Microsecond; got.Sum != wantSum {
		t.Errorf("Sum %v, want %v", got.Sum, wantSum)
	}
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 1} {
		exact := want[int(q*1000)-1]
		if est := got.Quantile(q); relErr(est, exact) > 0.09 {
			t.Errorf("Quantile(%v) = %v, exact %v: off by more than a bucket (9%%)", q, est, exact)
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Error("Quantile of an empty histogram is not 0")
	}
}

func relErr(got, want time.Duration) float64 {
	return math.Abs(float64(got-want)) / float64(want)
}

// holdFor holds l for about d and returns the hold as measured inside it.
func holdFor(l sync.Locker, d time.Duration) time.Duration {
	l.Lock()
	start := time.Now()
	time.Sleep(d)
	held := time.Since(start)
	l.Unlock()
	return held
}

// checkHist compares a histogram with the durations a workload measured:
// count exact, sum and max within 10 %, and the median within 10 % of the
// measurements' median taken from buckets alike.
func checkHist(t *testing.T, what string, h Histogram, measured []time.Duration) {
	t.Helper()
	var sum time.Duration
	for _, d := range measured {
		sum += d
	}
	slices.Sort(measured)
	if h.Count != uint64(len(measured)) {
		t.Errorf("%s: Count %d, want %d", what, h.Count, len(measured))
	}
	if relErr(h.Sum, sum) > 0.1 {
		t.Errorf("%s: Sum %v, measured %v", what, h.Sum, sum)
	}
	if max := measured[len(measured)-1]; relErr(h.Max, max) > 0.1 {
		t.Errorf("%s: Max %v, measured %v", what, h.Max, max)
	}
	// A quantile is interpolated within its bucket, which can put it
	// anywhere in a bucket twice as wide as the one below: compare it with
	// the same quantile of the measurements put in buckets alike, so that
	// what is checked is the durations the lock recorded.
	var ref hist
	for _, d := range measured {
		ref.record(int64(d), 1)
	}
	var want Histogram
	ref.read(&want)
	if p50, w := h.Quantile(0.5), want.Quantile(0.5); relErr(p50, w) > 0.1 {
		lo, hi := measured[len(measured)/2-1], measured[len(measured)/2]
		t.Errorf("%s: Quantile(0.5) %v; the measured durations, bucketed alike, give %v (their median is between %v and %v)", what, p50, w, lo, hi)
	}
}

// TestHoldHistogramMatchesWorkload holds locks for durations measured inside
// the critical section and compares the hold histograms with them.
func TestHoldHistogramMatchesWorkload(t *testing.T) {
	setHoldMask(t, 0) // time every hold
	var m Mutex
	m.SetName("hold_workload")
	var rw RWMutex
	rw.SetName("hold_workload_rw")
	var measured, measuredRW []time.Duration
	for range 3 {
		for _, d := range []time.Duration{1, 2, 3, 5} {
			measured = append(measured, holdFor(&m, d*time.Millisecond))
			measuredRW = append(measuredRW, holdFor(rw.RLocker(), d*time.Millisecond))
		}
	}
	checkHist(t, "Mutex hold", find(t, "hold_workload").Hold, measured)
	if goidOffset != 0 { // else read holds are not timed (see the package doc)
		checkHist(t, "RWMutex read hold", find(t, "hold_workload_rw").Hold, measuredRW)
	}
	runtime.KeepAlive(&m)
	runtime.KeepAlive(&rw)
}

// TestWaitHistogramMatchesWorkload makes a goroutine wait for a lock held for
// a set time, measures that wait around its Lock call, and compares the wait
// histogram with the measurements.
func TestWaitHistogramMatchesWorkload(t *testing.T) {
	var m Mutex
	m.SetName("wait_workload")
	var measured []time.Duration
	for range 3 {
		for _, d := range []time.Duration{2, 4, 8, 12} {
			m.Lock()
			waited := make(chan time.Duration)
			go func() {
				start := time.Now()
				m.Lock()
				w := time.Since(start)
				m.Unlock()
				waited <- w
			}()
			waitFor(t, "the waiter", func() bool { return find(t, "wait_workload").Waiters == 1 })
			time.Sleep(d * time.Millisecond)
			m.Unlock()
			measured = append(measured, <-waited)
		}
	}
	s := find(t, "wait_workload")
	checkHist(t, "Mutex wait", s.Wait, measured)
	if s.Contended != uint64(len(measured)) {
		t.Errorf("Contended %d, want %d", s.Contended, len(measured))
	}
	runtime.KeepAlive(&m)
}

// TestHoldSamplingScales: with the default sampling (1 in holdMask+1
// uncontended holds timed, each counted holdMask+1 times), the hold count
// is exact when the acquisitions are a multiple of holdMask+1.
func TestHoldSamplingScales(t *testing.T) {
	n := 25 * int(holdMask+1)
	var m Mutex
	m.SetName("hold_sampling")
	for range n {
		m.Lock()
		m.Unlock()
	}
	s := find(t, "hold_sampling")
	if s.Acquisitions != uint64(n) || s.Hold.Count != uint64(n) {
		t.Errorf("Acquisitions %d, Hold.Count %d; want %d, %d", s.Acquisitions, s.Hold.Count, n, n)
	}
	var rw RWMutex
	rw.SetName("hold_sampling_rw")
	for range n {
		rw.RLock()
		rw.RUnlock()
	}
	if s := find(t, "hold_sampling_rw"); goidOffset != 0 && s.Hold.Count != uint64(n) {
		t.Errorf("RWMutex: Hold.Count %d, want %d", s.Hold.Count, n)
	}
	runtime.KeepAlive(&m)
	runtime.KeepAlive(&rw)
}

// TestReadHoldSlotRecovers: a read hold released from another goroutine
// (which sync allows) must not stop read holds from being timed.
func TestReadHoldSlotRecovers(t *testing.T) {
	needGoid(t)
	setHoldMask(t, 0)
	var rw RWMutex
	rw.SetName("read_slot")
	rw.RLock() // timed: this goroutine takes the slot
	var wg sync.WaitGroup
	wg.Go(rw.RUnlock) // released elsewhere: the slot is freed, untimed
	wg.Wait()
	for range 5 {
		rw.RLock()
		rw.RUnlock()
	}
	s := find(t, "read_slot")
	if s.Hold.Count != 6 || s.Readers != 0 {
		t.Errorf("Hold.Count %d, Readers %d; want 6 (5 timed, one of them standing for the lost one too), 0", s.Hold.Count, s.Readers)
	}
	runtime.KeepAlive(&rw)
}

func TestHistogramJSON(t *testing.T) {
	var h hist
	h.record(1000, 1) // 1 µs
	h.record(2000, 2) // 2 µs, twice
	h.record(10, 1)   // zero bucket
	var got Histogram
	h.read(&got)
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Count         uint64
		Sum, Max      float64
		Scale         int
		ZeroThreshold float64 `json:"zero_threshold"`
		ZeroCount     uint64  `json:"zero_count"`
		Offset        int
		BucketCounts  []uint64 `json:"bucket_counts"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Count != 4 || v.ZeroCount != 1 || v.Scale != 3 || v.Max != 2e-6 || math.Abs(v.Sum-5.01e-6) > 1e-12 {
		t.Errorf("got %s", b)
	}
	// 1 µs is in OpenTelemetry bucket ceil(8*log2(1e-6))-1 = -160, 2 µs
	// in -152; the counts run from the first to the last.
	if v.Offset != -160 || len(v.BucketCounts) != 9 || v.BucketCounts[0] != 1 || v.BucketCounts[8] != 2 {
		t.Errorf("offset %d, counts %v; want -160, [1 0 0 0 0 0 0 0 2]", v.Offset, v.BucketCounts)
	}
	for _, i := range []int{-160, -152} {
		lo, hi := math.Exp2(float64(i)/8), math.Exp2(float64(i+1)/8)
		d := 1e-6 * float64(1+(i+160)/8)
		if !(lo < d && d <= hi) {
			t.Errorf("%g s is not in (%g, %g]", d, lo, hi)
		}
	}
}
