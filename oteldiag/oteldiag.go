// Package oteldiag exports the wait and hold histograms of the named locks of
// package locks to OpenTelemetry, under the schema's names:
// lock.wait.duration and lock.held.duration, in seconds, with the attributes
// lock.type ("mutex" or "rwmutex") and lock.id (the lock's name).
//
// # Usage
//
// A [Producer] is a [metric.Producer]: register it with the reader that
// feeds your exporter.
//
//	reader := metric.NewPeriodicReader(exporter, metric.WithProducer(oteldiag.NewProducer()))
//	provider := metric.NewMeterProvider(metric.WithReader(reader))
//
// Every collection then carries one exponential histogram data point per
// named lock and metric.
//
// # Why a Producer
//
// The locks keep their histograms themselves, in fixed log-scale buckets that
// are exactly those of an OpenTelemetry exponential histogram of scale 3
// ([locks.Histogram]). The OpenTelemetry metric API has no asynchronous
// (observable) histogram, and a synchronous one can only be fed one
// observation at a time: replaying every wait would cost as much as the
// waits, and the hold histogram's sampled, weighted counts could not be
// reproduced. A Producer hands the SDK the aggregated data as it is, which
// is how OpenTelemetry bridges other metric sources (its OpenCensus and
// Prometheus bridges are Producers too). The exported histograms equal the
// locks' own: same buckets, count, sum and max.
//
// The data points are cumulative, starting when each lock was named
// ([locks.State].Named); a lock that is garbage collected stops being
// exported. A reader configured for delta temporality receives them as
// cumulative all the same (the SDK does not convert a Producer's data).
//
// Only this package imports OpenTelemetry: programs that use package locks
// without it do not link it.
package oteldiag

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/lockdiag/lockdiag/locks"
)

// ScopeName is the instrumentation scope of the exported metrics.
const ScopeName = "github.com/lockdiag/lockdiag/oteldiag"

// The bucket layout of locks.Histogram (see its doc): an exponential
// histogram of scale 3 whose zero bucket ends at 2^-24 s, and whose
// Buckets[i], i ≥ 1, is bucket index i-193.
const (
	scale         = 3
	zeroThreshold = 1.0 / (1 << 24) // seconds
	indexOffset   = -193
)

// Producer produces the named locks' histograms for an OpenTelemetry SDK
// reader. It is safe for concurrent use.
type Producer struct {
	mu     sync.Mutex
	states []locks.State
	attrs  map[attrKey]attrEntry // attribute sets of the locks, reused
	round  uint64
}

type attrKey struct{ typ, id string }

type attrEntry struct {
	set   attribute.Set
	round uint64
}

var _ metric.Producer = (*Producer)(nil)

// NewProducer returns a Producer of the histograms of every named lock.
func NewProducer() *Producer {
	return &Producer{attrs: make(map[attrKey]attrEntry)}
}

// Produce returns the current histograms of every named lock (see
// [locks.Read]): the metrics lock.wait.duration and lock.held.duration, in
// one scope named ScopeName. It returns ctx's error if ctx is done.
func (p *Producer) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.states = locks.Read(p.states[:0])
	now := time.Now()
	p.round++
	wait := make([]metricdata.ExponentialHistogramDataPoint[float64], len(p.states))
	hold := make([]metricdata.ExponentialHistogramDataPoint[float64], len(p.states))
	for i := range p.states {
		st := &p.states[i]
		attrs := p.attrSet(st.Type, st.Name)
		fill(&wait[i], &st.Wait, attrs, st.Named, now)
		fill(&hold[i], &st.Hold, attrs, st.Named, now)
	}
	for k, e := range p.attrs {
		if e.round != p.round {
			delete(p.attrs, k) // a lock that was collected or renamed
		}
	}
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: ScopeName},
		Metrics: []metricdata.Metrics{
			{
				Name:        locks.MetricWaitDuration,
				Description: "Time goroutines waited to acquire a named lock, for every acquisition that had to wait.",
				Unit:        "s",
				Data: metricdata.ExponentialHistogram[float64]{
					DataPoints:  wait,
					Temporality: metricdata.CumulativeTemporality,
				},
			},
			{
				Name: locks.MetricHeldDuration,
				Description: "Time a named lock was held, from acquisition to release. Sampled: " +
					"each timed hold also counts for the untimed ones before it.",
				Unit: "s",
				Data: metricdata.ExponentialHistogram[float64]{
					DataPoints:  hold,
					Temporality: metricdata.CumulativeTemporality,
				},
			},
		},
	}}, nil
}

// attrSet returns the attribute set of a lock, made once per lock.
func (p *Producer) attrSet(typ, id string) attribute.Set {
	k := attrKey{typ, id}
	e, ok := p.attrs[k]
	if !ok {
		e.set = attribute.NewSet(attribute.String(locks.AttrType, typ), attribute.String(locks.AttrID, id))
	}
	e.round = p.round
	p.attrs[k] = e
	return e.set
}

// fill makes dp the data point of histogram h.
func fill(dp *metricdata.ExponentialHistogramDataPoint[float64], h *locks.Histogram, attrs attribute.Set, start, now time.Time) {
	*dp = metricdata.ExponentialHistogramDataPoint[float64]{
		Attributes:    attrs,
		StartTime:     start,
		Time:          now,
		Count:         h.Count,
		Sum:           h.Sum.Seconds(),
		Scale:         scale,
		ZeroCount:     h.Buckets[0],
		ZeroThreshold: zeroThreshold,
	}
	if h.Count > 0 {
		dp.Max = metricdata.NewExtrema(h.Max.Seconds())
	}
	first, last := 0, 0
	for i := 1; i < len(h.Buckets); i++ {
		if h.Buckets[i] != 0 {
			if first == 0 {
				first = i
			}
			last = i
		}
	}
	if first != 0 {
		dp.PositiveBucket = metricdata.ExponentialBucket{
			Offset: int32(first + indexOffset),
			Counts: append([]uint64(nil), h.Buckets[first:last+1]...),
		}
	}
}
