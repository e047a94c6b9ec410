package locks

import (
	"encoding/json"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram layout: an OpenTelemetry exponential histogram of scale 3 (8
// buckets per doubling, each 9 % wider than the one before it) over seconds,
// from 2^histMinExp s (59.6 ns) to 2^histMaxExp s (17 min).
const (
	histScale  = 3
	histMinExp = -24
	histMaxExp = 10

	// numBuckets counts the zero bucket and the exponential ones.
	numBuckets = 1 + (histMaxExp-histMinExp)<<histScale
)

var (
	// upperNS[i] is the inclusive upper bound of bucket i in whole
	// nanoseconds: floor(1e9 * 2^(histMinExp + i/8)).
	upperNS [numBuckets]int64
	// firstBucket[n] is the first bucket that can hold a duration of bit
	// length n (n >= 1).
	firstBucket [65]uint16
)

func init() {
	for i := range upperNS {
		upperNS[i] = int64(math.Floor(1e9 * math.Exp2(histMinExp+float64(i)/(1<<histScale))))
	}
	for n := 1; n < len(firstBucket); n++ {
		lo := int64(1) << (n - 1)
		if n == 64 {
			lo = math.MaxInt64
		}
		i := 0
		for i < numBuckets-1 && upperNS[i] < lo {
			i++
		}
		firstBucket[n] = uint16(i)
	}
}

// bucketOf returns the bucket of a duration of d nanoseconds.
func bucketOf(d int64) int {
	if d <= upperNS[0] {
		return 0
	}
	i := int(firstBucket[bits.Len64(uint64(d))])
	for i < numBuckets-1 && d > upperNS[i] {
		i++
	}
	return i
}

// hist is the recording side of a Histogram: atomic counters, no locks, no
// allocation.
type hist struct {
	sum     atomic.Int64 // nanoseconds, weighted
	max     atomic.Int64
	buckets [numBuckets]atomic.Uint64
}

// record adds a duration of d nanoseconds that stands for w durations.
func (h *hist) record(d int64, w uint64) {
	if d < 0 {
		d = 0
	}
	h.buckets[bucketOf(d)].Add(w)
	h.sum.Add(d * int64(w))
	for m := h.max.Load(); d > m && !h.max.CompareAndSwap(m, d); m = h.max.Load() {
	}
}

// read copies h into dst. Count is the sum of the buckets read, so it always
// agrees with them; Sum may include a recording whose bucket was not yet
// counted, or the other way round.
func (h *hist) read(dst *Histogram) {
	dst.Count = 0
	for i := range h.buckets {
		c := h.buckets[i].Load()
		dst.Buckets[i] = c
		dst.Count += c
	}
	dst.Sum = time.Duration(h.sum.Load())
	dst.Max = time.Duration(h.max.Load())
}

// Histogram is a distribution of durations in fixed log-scale buckets.
//
// Buckets[0] counts durations up to 2^-24 s (59.6 ns). For i ≥ 1, Buckets[i]
// counts durations d with 2^((i-1)/8 - 24) s < d ≤ 2^(i/8 - 24) s, so that
// each bucket is 9 % wider than the one before it; the last bucket ends at
// 2^10 s (17 min) and also counts every longer duration. This is the layout
// of an OpenTelemetry exponential histogram of scale 3 with a zero threshold
// of 2^-24 s: Buckets[i] is its bucket index i-193.
type Histogram struct {
	// Count is the number of durations: the sum of Buckets.
	Count uint64
	// Sum is the total of the durations.
	Sum time.Duration
	// Max is the longest duration recorded (Count and Sum may be
	// estimates; Max is one real duration).
	Max time.Duration
	// Buckets are the counts per bucket, as described above.
	Buckets [numBuckets]uint64
}

// Quantile returns an estimate of the q-quantile (0 ≤ q ≤ 1) of the
// durations: it finds the bucket that holds it and interpolates linearly
// inside that bucket, so the estimate is within one bucket width (9 %) of
// the true value, and never above Max. It returns 0 if Count is 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(h.Count)
	var cum float64
	for i, c := range h.Buckets {
		if c == 0 {
			continue
		}
		if next := cum + float64(c); next >= rank {
			lo, hi := 0.0, float64(upperNS[i])
			if i > 0 {
				lo = float64(upperNS[i-1])
			}
			if i == numBuckets-1 && float64(h.Max) > hi {
				hi = float64(h.Max)
			}
			v := time.Duration(lo + (rank-cum)/float64(c)*(hi-lo))
			if h.Max > 0 && v > h.Max {
				v = h.Max
			}
			return v
		}
		cum += float64(c)
	}
	return h.Max
}

// MarshalJSON encodes h in seconds, the unit of the metrics, as
//
//	{"count": 12, "sum": 0.0123, "max": 0.004, "p50": 0.0009, "p99": 0.0039,
//	 "scale": 3, "zero_threshold": 5.960464477539063e-08, "zero_count": 0,
//	 "offset": -81, "bucket_counts": [1, 0, 3, ...]}
//
// The last six fields are those of an OpenTelemetry exponential histogram:
// bucket_counts[k] counts the durations in (2^((offset+k)/8), 2^((offset+k+1)/8)]
// seconds, from the first non-empty bucket to the last (none and offset 0
// if all are empty).
func (h Histogram) MarshalJSON() ([]byte, error) {
	first, last := 1, 0
	for i := 1; i < numBuckets; i++ {
		if h.Buckets[i] != 0 {
			if last == 0 {
				first = i
			}
			last = i
		}
	}
	counts, offset := []uint64{}, 0
	if last != 0 {
		counts, offset = h.Buckets[first:last+1], first+histMinExp<<histScale-1
	}
	return json.Marshal(struct {
		Count         uint64   `json:"count"`
		Sum           float64  `json:"sum"`
		Max           float64  `json:"max"`
		P50           float64  `json:"p50"`
		P99           float64  `json:"p99"`
		Scale         int      `json:"scale"`
		ZeroThreshold float64  `json:"zero_threshold"`
		ZeroCount     uint64   `json:"zero_count"`
		Offset        int      `json:"offset"`
		BucketCounts  []uint64 `json:"bucket_counts"`
	}{
		h.Count, h.Sum.Seconds(), h.Max.Seconds(), h.Quantile(0.5).Seconds(), h.Quantile(0.99).Seconds(),
		histScale, math.Exp2(histMinExp), h.Buckets[0], offset, counts,
	})
}
