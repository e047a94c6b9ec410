package oteldiag

import (
	"context"
	"encoding/json"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/lockdiag/lockdiag/locks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collect registers a Producer with an SDK ManualReader and collects once.
func collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	reader := metric.NewManualReader(metric.WithProducer(NewProducer()))
	provider := metric.NewMeterProvider(metric.WithReader(reader))
	t.Cleanup(func() { provider.Shutdown(context.Background()) })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// point finds the data point of metric name for the lock called id, the one
// named last if there are several (as with go test -count=2).
func point(t *testing.T, rm metricdata.ResourceMetrics, name, id string) (metricdata.Metrics, metricdata.ExponentialHistogramDataPoint[float64]) {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			h, ok := m.Data.(metricdata.ExponentialHistogram[float64])
			if !ok {
				t.Fatalf("%s is a %T, want an exponential histogram", name, m.Data)
			}
			if h.Temporality != metricdata.CumulativeTemporality {
				t.Errorf("%s: temporality %v, want cumulative", name, h.Temporality)
			}
			for i := len(h.DataPoints) - 1; i >= 0; i-- {
				dp := h.DataPoints[i]
				if v, ok := dp.Attributes.Value(locks.AttrID); ok && v.AsString() == id {
					return m, dp
				}
			}
		}
	}
	t.Fatalf("no %s data point for lock %q", name, id)
	return metricdata.Metrics{}, metricdata.ExponentialHistogramDataPoint[float64]{}
}

func state(t *testing.T, id string) locks.State {
	t.Helper()
	states := locks.Read(nil)
	for i := len(states) - 1; i >= 0; i-- {
		if states[i].Name == id {
			return states[i]
		}
	}
	t.Fatalf("no lock %q", id)
	return locks.State{}
}

// lockWorkload gives two locks waits and holds of a few milliseconds.
func lockWorkload(m *locks.Mutex, rw *locks.RWMutex) {
	for _, d := range []time.Duration{1, 3, 7} {
		m.Lock()
		var wg sync.WaitGroup
		wg.Go(func() { m.Lock(); m.Unlock() }) // waits about d
		time.Sleep(d * time.Millisecond)
		m.Unlock()
		wg.Wait()

		rw.Lock()
		time.Sleep(d * time.Millisecond)
		rw.Unlock()
	}
}

// TestExportEqualsLocks: the exported histograms equal the locks' own, with
// the schema's names, unit and attributes.
func TestExportEqualsLocks(t *testing.T) {
	var m locks.Mutex
	m.SetName("otel_mutex")
	var rw locks.RWMutex
	rw.SetName("otel_rwmutex")
	lockWorkload(&m, &rw)

	rm := collect(t)
	for _, c := range []struct {
		id, typ string
	}{{"otel_mutex", locks.TypeMutex}, {"otel_rwmutex", locks.TypeRWMutex}} {
		st := state(t, c.id)
		for _, mc := range []struct {
			name string
			h    locks.Histogram
		}{{locks.MetricWaitDuration, st.Wait}, {locks.MetricHeldDuration, st.Hold}} {
			m, dp := point(t, rm, mc.name, c.id)
			if m.Unit != "s" || m.Description == "" {
				t.Errorf("%s: unit %q, description %q", mc.name, m.Unit, m.Description)
			}
			want := attribute.NewSet(attribute.String(locks.AttrType, c.typ), attribute.String(locks.AttrID, c.id))
			if !dp.Attributes.Equals(&want) {
				t.Errorf("%s %s: attributes %v, want %v", mc.name, c.id, dp.Attributes.ToSlice(), want.ToSlice())
			}
			checkEqual(t, mc.name+" "+c.id, dp, mc.h)
			if !dp.StartTime.Equal(st.Named) || dp.Time.Before(dp.StartTime) {
				t.Errorf("%s %s: start %v, time %v; want start %v", mc.name, c.id, dp.StartTime, dp.Time, st.Named)
			}
		}
	}
	if _, dp := point(t, rm, locks.MetricWaitDuration, "otel_mutex"); dp.Count != 3 {
		t.Errorf("otel_mutex waits: count %d, want 3", dp.Count)
	}
	runtime.KeepAlive(&m)
	runtime.KeepAlive(&rw)
}

// checkEqual compares an exported data point with a locks.Histogram: equal
// count, sum, max and buckets, and the buckets where the layout says.
func checkEqual(t *testing.T, what string, dp metricdata.ExponentialHistogramDataPoint[float64], h locks.Histogram) {
	t.Helper()
	if dp.Count != h.Count || dp.Sum != h.Sum.Seconds() || dp.ZeroCount != h.Buckets[0] || dp.Scale != 3 {
		t.Errorf("%s: count %d sum %v zero %d scale %d; locks has count %d sum %v zero %d", what,
			dp.Count, dp.Sum, dp.ZeroCount, dp.Scale, h.Count, h.Sum.Seconds(), h.Buckets[0])
	}
	if max, ok := dp.Max.Value(); h.Count > 0 && (!ok || max != h.Max.Seconds()) {
		t.Errorf("%s: max %v, locks has %v", what, max, h.Max.Seconds())
	}
	var total uint64 = dp.ZeroCount
	for _, c := range dp.PositiveBucket.Counts {
		total += c
	}
	if total != dp.Count {
		t.Errorf("%s: buckets add up to %d, count is %d", what, total, dp.Count)
	}
	// The JSON of locks.Histogram states the same layout, from locks'
	// own constants.
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Offset        int32
		BucketCounts  []uint64 `json:"bucket_counts"`
		ZeroThreshold float64  `json:"zero_threshold"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if len(j.BucketCounts) > 0 && (j.Offset != dp.PositiveBucket.Offset || !slices.Equal(j.BucketCounts, dp.PositiveBucket.Counts)) ||
		j.ZeroThreshold != dp.ZeroThreshold {
		t.Errorf("%s: exported offset %d counts %v zero threshold %v; locks says %d %v %v", what,
			dp.PositiveBucket.Offset, dp.PositiveBucket.Counts, dp.ZeroThreshold, j.Offset, j.BucketCounts, j.ZeroThreshold)
	}
}

// TestBucketHoldsTheDuration: one hold, whose duration the lock knows
// exactly (it is the Max), lands in the exported bucket whose OpenTelemetry
// bounds contain it.
func TestBucketHoldsTheDuration(t *testing.T) {
	var m locks.Mutex
	m.SetName("otel_one_wait")
	m.Lock()
	var wg sync.WaitGroup
	wg.Go(func() { m.Lock(); m.Unlock() })
	for state(t, "otel_one_wait").Waiters == 0 {
		runtime.Gosched()
	}
	time.Sleep(3 * time.Millisecond)
	m.Unlock()
	wg.Wait()

	_, dp := point(t, collect(t), locks.MetricWaitDuration, "otel_one_wait")
	max, _ := dp.Max.Value()
	if dp.Count != 1 || len(dp.PositiveBucket.Counts) != 1 {
		t.Fatalf("count %d, buckets %v; want one wait in one bucket", dp.Count, dp.PositiveBucket.Counts)
	}
	i := float64(dp.PositiveBucket.Offset)
	base := math.Exp2(math.Exp2(-float64(dp.Scale)))
	if lo, hi := math.Pow(base, i), math.Pow(base, i+1); !(lo < max && max <= hi*(1+1e-12)) {
		t.Errorf("the wait of %v s is exported in bucket %v = (%v, %v]", max, i, lo, hi)
	}
	runtime.KeepAlive(&m)
}

func TestProduceHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewProducer().Produce(ctx); err == nil {
		t.Error("Produce with a cancelled context returned no error")
	}
}

// TestCollectedLockNotExported: a lock that was garbage collected is not
// exported, and its attribute set is forgotten.
func TestCollectedLockNotExported(t *testing.T) {
	func() {
		m := new(locks.Mutex)
		m.SetName("otel_gone")
		m.Lock()
		m.Unlock()
	}()
	p := NewProducer()
	runtime.GC()
	sms, err := p.Produce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sms[0].Metrics {
		for _, dp := range m.Data.(metricdata.ExponentialHistogram[float64]).DataPoints {
			if v, _ := dp.Attributes.Value(locks.AttrID); v.AsString() == "otel_gone" {
				t.Errorf("%s exported for a collected lock", m.Name)
			}
		}
	}
	if _, ok := p.attrs[attrKey{locks.TypeMutex, "otel_gone"}]; ok {
		t.Error("the collected lock's attributes are still cached")
	}
}
